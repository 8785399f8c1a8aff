"""The published store: one folder, written atomically.

- `barometer.duckdb`: tables `indicator_values`, `indicator_ranges`, `areas`, `area_grunnkrets` (which
  grunnkretser make up each area — public, and what an attacker would use), `catalogue`, `classification`
  (every scheme's category per area and year, with the reasons; made from the published values only);
- `indicator_values.parquet` and `indicator_values.csv` (SSB symbols: `:` suppressed, `..` missing),
  `classification.parquet` and `classification.csv` — byte-identical for the same input;
- `areas.geo.parquet`: polygons of every published area at every level;
- `manifest.json`: input hashes, configuration, catalogue and method version, the synthetic flag.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from levekar import METHOD_VERSION, __version__
from levekar.indicators.catalogue import Catalogue
from levekar.io import atomic_dir, sha256, write_csv, write_geoparquet, write_json, write_parquet


def _fmt(v) -> str:
    return ".." if v is None or pd.isna(v) else f"{float(v):.1f}"


def _count(v) -> str | int:
    """A count; a median has none (".."); a mean's numerator is a sum, written with its decimals."""
    if v is None or pd.isna(v):
        return ".."
    return int(v) if float(v).is_integer() else f"{float(v):.4f}"


def _csv_bytes(values: pd.DataFrame) -> bytes:
    """CSV with SSB's table symbols (`:` suppressed, `..` missing) and one decimal for percentages."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = ["indicator_id", "level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
    w.writerow(
        [
            *keys,
            "numerator",
            "denominator",
            "value",
            "ci_low",
            "ci_high",
            "value_kommune",
            "value_country",
            "relative_difference_country",
            "label",
        ]
    )
    for r in values.itertuples(index=False):
        head = [getattr(r, k) for k in keys]
        if r.suppressed:
            body = [":", ":", ":", ":", ":", _fmt(r.value_kommune), _fmt(r.value_country), ":", ""]
        else:
            body = [
                _count(r.numerator),
                _count(r.denominator),
                _fmt(r.value),
                _fmt(r.ci_low),
                _fmt(r.ci_high),
                _fmt(r.value_kommune),
                _fmt(r.value_country),
                _fmt(r.relative_difference_country),
                r.label or "",
            ]
        w.writerow(head + body)
    return buf.getvalue().encode("utf-8")


def publishable(values: pd.DataFrame) -> pd.DataFrame:
    """The rows as published: a suppressed cell keeps its key and flag, but no count or value."""
    out = values.copy()
    hidden = out["suppressed"].to_numpy()
    out["denominator"] = out["denominator"].astype("Int64")
    out.loc[hidden, "denominator"] = pd.NA
    out.loc[hidden, "numerator"] = np.nan  # a count, or the sum behind a mean
    for col in ("value", "ci_low", "ci_high", "relative_difference_kommune", "relative_difference_country"):
        out.loc[hidden, col] = np.nan
    out.loc[hidden, ["label", "significance_kommune", "significance_country"]] = None
    return out


def ranges(values: pd.DataFrame) -> pd.DataFrame:
    """Min and max across the published areas of each level (as the report's tables show)."""
    v = values[~values["suppressed"] & values["value"].notna()]
    return v.groupby(["indicator_id", "level", "year", "breakdown", "breakdown_value"], as_index=False)["value"].agg(
        min="min", max="max", areas="count"
    )


# the geography's name columns for its own levels (the data model: grunnkrets_name, bydel_name, kommune_name)
NAME_COLUMNS = {"grunnkrets": "grunnkrets_name", "bydel": "bydel_name", "kommune": "kommune_name"}


def area_names(geography: pd.DataFrame, zonings: pd.DataFrame | None = None) -> dict[str, dict[str, str]]:
    """level → area code → name, from the geography's name columns and the zonings' `zone_name` (analysis
    areas have none). Place names are public: they describe no one."""
    out: dict[str, dict[str, str]] = {}
    for level, col in NAME_COLUMNS.items():
        if level in geography.columns and col in geography.columns:
            d = geography[[level, col]].dropna().astype(str).sort_values([level, col]).drop_duplicates(level)
            out[level] = dict(zip(d[level], d[col], strict=True))
    if zonings is not None and {"zoning", "zone", "zone_name"} <= set(zonings.columns):
        z = zonings[["zoning", "zone", "zone_name"]].dropna().astype(str).sort_values(["zoning", "zone", "zone_name"])
        for name, f in z.drop_duplicates(["zoning", "zone"]).groupby("zoning", sort=True):
            out[str(name)] = dict(zip(f["zone"], f["zone_name"], strict=True))
    return out


def area_polygons(
    geography: gpd.GeoDataFrame, levels: dict[str, pd.DataFrame], names: dict[str, dict[str, str]] | None = None
) -> gpd.GeoDataFrame:
    """Polygons of every area at every level (grunnkretser as given, the rest dissolved from them), with the
    area's `name` where `names` (default: `area_names(geography)`) has one."""
    g = geography[["grunnkrets", "kommune", "geometry"]]
    parts = [g.assign(level="grunnkrets", area_code=g["grunnkrets"])[["level", "area_code", "kommune", "geometry"]]]
    for name, m in {**levels, "country": g[["grunnkrets"]].assign(area_code="0")}.items():
        d = g.merge(m[["grunnkrets", "area_code"]], on="grunnkrets").dissolve(by="area_code", aggfunc="first")
        d = d.reset_index().assign(level=name)
        if name == "country":
            d["kommune"] = None
        parts.append(d[["level", "area_code", "kommune", "geometry"]])
    out = pd.concat(parts, ignore_index=True).sort_values(["level", "area_code"]).reset_index(drop=True)
    names = area_names(geography) if names is None else names
    out["name"] = [names.get(lv, {}).get(str(c)) for lv, c in zip(out["level"], out["area_code"], strict=True)]
    out = out[["level", "area_code", "name", "kommune", "geometry"]]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=geography.crs)


def write_store(
    out: str | Path,
    values: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    catalogue: Catalogue,
    inputs: dict[str, Path],
    config: dict,
    synthetic: bool,
    members: pd.DataFrame,
    extra: dict[str, pd.DataFrame] | None = None,
    force: bool = False,
) -> Path:
    """Write the store. `extra` are the later stages' tables (classification, segregation, flows, …): each
    becomes a DuckDB table and `<name>.parquet` + `<name>.csv`. Everything in it must already obey the
    disclosure rules — the store publishes what it is given."""
    out = Path(out)
    published = publishable(values)
    catalogue_rows = pd.DataFrame(
        [
            {
                "indicator_id": i.id,
                "title_nb": i.title.get("nb"),
                "title_en": i.title.get("en"),
                "theme": i.theme,
                "kind": i.kind,
                "direction": i.direction,
                "population": i.population,
                "numerator": i.numerator,
                "breakdowns": ",".join(i.breakdowns),
                "screening": i.screening,
                "per_level": i.per_level,
            }
            for i in catalogue.indicators
        ]
    )
    rng = ranges(values)
    area_rows = pd.DataFrame(areas.drop(columns="geometry"))
    with atomic_dir(out, force=force) as tmp:
        write_parquet(pa.Table.from_pandas(published, preserve_index=False), tmp / "indicator_values.parquet")
        (tmp / "indicator_values.csv").write_bytes(_csv_bytes(published))
        tables = dict(sorted((extra or {}).items()))
        for name, frame in tables.items():
            write_parquet(pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet")
            write_csv(frame, tmp / f"{name}.csv")
        write_geoparquet(areas, tmp / "areas.geo.parquet")
        con = duckdb.connect(str(tmp / "barometer.duckdb"))
        for name, frame in (
            ("indicator_values", published),
            ("indicator_ranges", rng),
            ("areas", area_rows),
            ("area_grunnkrets", members.sort_values(["level", "area_code", "grunnkrets"]).reset_index(drop=True)),
            ("catalogue", catalogue_rows),
            *tables.items(),
        ):
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.close()
        files = sorted(p.name for p in tmp.iterdir())
        manifest = {
            "generator": f"levekar {__version__}",
            "method_version": METHOD_VERSION,
            "catalogue_version": catalogue.version,
            "synthetic": synthetic,
            "notice": "Synthetic data: no real person is described." if synthetic else "",
            "inputs": {name: sha256(p) for name, p in sorted(inputs.items())},
            "configuration": config,
            "disclosure": {
                "rules": catalogue.disclosure_rules,
                "method": "primary suppression by the catalogue's rules; secondary suppression until no suppressed "
                "count can be recovered from the published cells (margins, levels, differences of areas, pooled "
                "years), checked by an exact audit",
            },
            "files": {f: sha256(tmp / f) for f in files if f != "barometer.duckdb"},
            "rows": {
                "indicator_values": len(published),
                "areas": len(area_rows),
                **{k: len(v) for k, v in tables.items()},
            },
        }
        write_json(manifest, tmp / "manifest.json")
    return out
