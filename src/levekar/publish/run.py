"""`levekar run`: from a register extract to the published store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from levekar.classify.inputs import directions_of
from levekar.classify.run import classify_values, usable_schemes
from levekar.flows.run import FlowsStage
from levekar.indicators.catalogue import Catalogue, load_catalogue
from levekar.indicators.disclosure import membership
from levekar.indicators.run import compute_indicators
from levekar.publish.store import area_names, area_polygons, write_store
from levekar.schema.validate import ExtractError, validate_extract
from levekar.segregation.results import StoreSettings
from levekar.segregation.results import store_tables as segregation_tables


def publish(
    values: pd.DataFrame,
    levels: dict[str, pd.DataFrame],
    geography: gpd.GeoDataFrame,
    catalogue: Catalogue,
    inputs: dict[str, Path],
    config: dict,
    synthetic: bool,
    out: str | Path,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    extra: dict[str, pd.DataFrame] | None = None,
    zonings: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Classify the published values and write the store (shared by the microdata and the aggregate-table
    run), with the later stages' `extra` tables. Returns the classification."""
    say = progress or (lambda step, frac: None)
    say("classifying", 0.82)
    directions = directions_of(catalogue)
    schemes, skipped = usable_schemes(directions)
    # a store of a few indicators (aggregate tables) may leave every scheme without its inputs
    classification = classify_values(values, directions, schemes) if schemes else None
    say("writing", 0.86)
    polygons = area_polygons(geography, levels, area_names(geography, zonings))
    config = {**config, "classification": {"schemes": {s.id: s.version for s in schemes}, "skipped": skipped}}
    members = membership(levels, geography["grunnkrets"])
    write_store(
        out,
        values,
        polygons,
        catalogue,
        inputs,
        config,
        synthetic=synthetic,
        members=members,
        extra={**(extra or {}), **({"classification": classification} if classification is not None else {})},
        force=force,
    )
    return classification if classification is not None else pd.DataFrame()


def _zonings(extract_dir: Path) -> pd.DataFrame | None:
    """The extract's zonings (for the zone names), if it has any."""
    if (p := extract_dir / "zonings.parquet").exists():
        return pd.read_parquet(p)
    if (p := extract_dir / "zonings.csv").exists():
        return pd.read_csv(p, dtype=str)
    return None


def run(
    extract_dir: str | Path,
    out: str | Path,
    areas_path: str | Path | None = None,
    catalogue_path: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    check: bool = True,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_workdir: str | Path | None = None,
) -> dict:
    """Validate the extract (unless the caller has just done so: `check=False`), compute the catalogue at
    every level, write the store. Nothing is written when the extract is invalid. `engine` ("duckdb" or
    "spark") is where the indicators are counted (`levekar.indicators.run.compute_indicators`); the store is
    the same either way."""
    extract_dir = Path(extract_dir)
    say = progress or (lambda step, frac: None)
    say("validating", 0.0)
    if check and (problems := validate_extract(extract_dir)):
        raise ExtractError(problems)
    if Path(out).exists() and not force:
        raise FileExistsError(f"{out} exists; use --force to replace it")
    areas = pd.read_parquet(areas_path) if areas_path else None
    catalogue = load_catalogue(catalogue_path)  # the packaged one when no path is given
    flows = FlowsStage(extract_dir, catalogue)
    values, levels, disclosure = compute_indicators(
        extract_dir,
        areas,
        catalogue,
        progress=lambda s, f: say(s, 0.1 + 0.7 * f),
        extra_columns=flows.columns,
        on_facts=flows.collect,
        engine=engine,
        spark_master=spark_master,
        spark_workdir=spark_workdir,
    )
    geography = gpd.read_parquet(extract_dir / "geography.parquet")
    rule = catalogue.disclosure_rules.get("default")
    segregation = segregation_tables(
        extract_dir, levels, geography, rule, progress=lambda s, f: say(s, 0.8 + 0.02 * f), values=values
    )
    manifest = (
        json.loads((extract_dir / "manifest.json").read_text()) if (extract_dir / "manifest.json").exists() else {}
    )
    inputs = {p.name: p for p in sorted(extract_dir.glob("*.parquet"))}
    if areas_path:
        inputs["areas:" + Path(areas_path).name] = Path(areas_path)
    config = {
        "levels": sorted(levels),
        "catalogue": str(catalogue_path or "packaged"),
        "disclosure": disclosure,
        "segregation": StoreSettings().describe(),
    }
    synthetic = bool(manifest.get("synthetic"))
    classification = publish(
        values,
        levels,
        geography,
        catalogue,
        inputs,
        config,
        synthetic,
        out,
        force,
        say,
        extra={**segregation, **flows.tables(values)},
        zonings=_zonings(extract_dir),
    )
    say("done", 1.0)
    return {
        "rows": len(values),
        "levels": ["grunnkrets", *sorted(levels), "country"],
        "suppressed": int(values["suppressed"].sum()),
        "classification": len(classification),
        "disclosure": disclosure,
    }


def run_tables(
    tables_path: str | Path,
    geography_path: str | Path,
    out: str | Path,
    areas_path: str | Path | None = None,
    zonings_path: str | Path | None = None,
    catalogue_path: str | Path | None = None,
    synthetic: bool = False,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """The published store from an ordered SSB delivery (numerators and denominators per grunnkrets and
    year, `levekar.indicators.tables`) instead of microdata: same levels, comparisons, intervals, disclosure
    control and classification. Nothing is written when an input is invalid."""
    from levekar.indicators.tables import compute_from_tables, read_geography, read_tables

    say = progress or (lambda step, frac: None)
    if Path(out).exists() and not force:
        raise FileExistsError(f"{out} exists; use --force to replace it")
    say("reading", 0.0)
    catalogue = load_catalogue(catalogue_path)
    geography = read_geography(geography_path)
    counts, unknown = read_tables(tables_path, catalogue, set(geography["grunnkrets"]))
    areas = pd.read_parquet(areas_path) if areas_path else None
    zonings = None
    if zonings_path:
        z = Path(zonings_path)
        zonings = pd.read_parquet(z) if z.suffix == ".parquet" else pd.read_csv(z, dtype=str)
    values, levels, disclosure, used = compute_from_tables(
        counts,
        unknown,
        pd.DataFrame(geography.drop(columns="geometry")),
        catalogue,
        areas,
        zonings,
        progress=lambda s, f: say(s, 0.1 + 0.7 * f),
    )
    inputs = {
        "tables:" + Path(tables_path).name: Path(tables_path),
        "geography:" + Path(geography_path).name: Path(geography_path),
    }
    for kind, p in (("areas", areas_path), ("zonings", zonings_path)):
        if p:
            inputs[f"{kind}:" + Path(p).name] = Path(p)
    config = {
        "mode": "aggregate tables",
        "levels": sorted(levels),
        "catalogue": str(catalogue_path or "packaged"),
        "indicators": sorted(i.id for i in used.indicators),
        "disclosure": disclosure,
    }
    classification = publish(
        values, levels, geography, used, inputs, config, synthetic, out, force, say, zonings=zonings
    )
    say("done", 1.0)
    return {
        "rows": len(values),
        "levels": ["grunnkrets", *sorted(levels), "country"],
        "indicators": len(used.indicators),
        "suppressed": int(values["suppressed"].sum()),
        "unknown_input": len(unknown),
        "classification": len(classification),
        "disclosure": disclosure,
    }
