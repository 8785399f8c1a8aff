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
from levekar.indicators.catalogue import load_catalogue
from levekar.indicators.disclosure import membership
from levekar.indicators.run import compute_indicators
from levekar.publish.store import area_polygons, write_store
from levekar.schema.validate import ExtractError, validate_extract


def run(
    extract_dir: str | Path,
    out: str | Path,
    areas_path: str | Path | None = None,
    catalogue_path: str | Path | None = None,
    force: bool = False,
    progress: Callable[[str, float], None] | None = None,
    check: bool = True,
) -> dict:
    """Validate the extract (unless the caller has just done so: `check=False`), compute the catalogue at
    every level, write the store. Nothing is written when the extract is invalid."""
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
    )
    say("classifying", 0.82)
    directions = directions_of(catalogue)
    schemes, skipped = usable_schemes(directions)
    classification = classify_values(values, directions, schemes)
    say("writing", 0.86)
    geography = gpd.read_parquet(extract_dir / "geography.parquet")
    polygons = area_polygons(geography, levels)
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
        "classification": {"schemes": {s.id: s.version for s in schemes}, "skipped": skipped},
    }
    members = membership(levels, geography["grunnkrets"])
    synthetic = bool(manifest.get("synthetic"))
    write_store(
        out,
        values,
        polygons,
        catalogue,
        inputs,
        config,
        synthetic=synthetic,
        members=members,
        extra={"classification": classification, **flows.tables(values)},
        force=force,
    )
    say("done", 1.0)
    return {
        "rows": len(values),
        "levels": ["grunnkrets", *sorted(levels), "country"],
        "suppressed": int(values["suppressed"].sum()),
        "classification": len(classification),
        "disclosure": disclosure,
    }
