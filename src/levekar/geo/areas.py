"""Analysis areas (the report's 5 000–10 000 inhabitant areas), stable over years, and user zonings."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from levekar.geo.adjacency import join_islands, polygon_adjacency
from levekar.geo.inputs import InputError
from levekar.geo.regionalize import regionalize
from levekar.io import sql_string, write_geoparquet, write_parquet
from levekar.schema.validate import Problem


@dataclass
class AreaResult:
    assignment: pd.DataFrame  # unit_id, area_id, population, within columns
    polygons: gpd.GeoDataFrame  # one row per area
    report: dict = field(default_factory=dict)


def _group_keys(units: pd.DataFrame, within: list[str]) -> np.ndarray:
    if not within:
        return np.zeros(len(units), dtype=object)
    return units[within].astype(str).agg("-".join, axis=1).to_numpy()


def build_areas(
    units: gpd.GeoDataFrame,
    population: pd.Series,
    id_column: str,
    within: list[str] | None = None,
    lo: float = 5000,
    hi: float = 10000,
    attributes: list[str] | None = None,
    adjacency: str = "rook",
    seed: int = 2020,
    restarts: int = 16,
) -> AreaResult:
    """Contiguous analysis areas of units, never crossing `within` borders, population in [lo, hi] where a
    contiguous partition allows it, as many areas as possible."""
    within = list(within or [])
    units = units.reset_index(drop=True)
    pop = np.asarray(population, dtype=float)
    group = _group_keys(units, within)
    geoms = units.geometry.to_numpy()
    adj = polygon_adjacency(geoms, group, adjacency)
    adj, links = join_islands(adj, geoms, group)
    attrs = None
    if attributes:
        missing = [a for a in attributes if a not in units.columns]
        if missing:
            raise InputError(
                [Problem("geography", a, "missing_column", 0, "", "attribute column not found") for a in missing]
            )
        attrs = units[attributes].astype(float).to_numpy()
    sol = regionalize(pop, adj, group, lo, hi, attrs, seed=seed, restarts=restarts)

    # stable, readable ids: group key + number, west to east by the area's population-weighted centroid
    cx = units.geometry.centroid.x.to_numpy()
    k = sol.labels.max() + 1
    wx = np.bincount(sol.labels, weights=cx * np.maximum(pop, 1e-9), minlength=k) / np.bincount(
        sol.labels, weights=np.maximum(pop, 1e-9), minlength=k
    )
    first_unit = pd.Series(np.arange(len(units))).groupby(sol.labels).min().to_numpy()
    area_group = group[first_unit]
    order = np.lexsort((wx, area_group.astype(str)))
    names = np.empty(k, dtype=object)
    counter: dict[str, int] = {}
    for r in order:
        key = str(area_group[r])
        counter[key] = counter.get(key, 0) + 1
        names[r] = f"{key}-{counter[key]:03d}" if within else f"A{counter[key]:04d}"
    assignment = pd.DataFrame(
        {"unit_id": units[id_column].astype(str), "area_id": names[sol.labels], "population": pop}
    )
    for c in within:
        assignment[c] = units[c].astype(str).to_numpy()
    assignment = assignment.sort_values(["area_id", "unit_id"]).reset_index(drop=True)

    area_pop = np.bincount(sol.labels, weights=pop, minlength=k)
    n_units = np.bincount(sol.labels, minlength=k)
    polys = units[[id_column, "geometry"]].assign(area_id=names[sol.labels]).dissolve(by="area_id").reset_index()
    info = pd.DataFrame(
        {
            "area_id": names,
            "population": area_pop,
            "units": n_units,
            "in_band": (area_pop >= lo) & (area_pop <= hi),
            "reason": [sol.reasons.get(r, "") for r in range(k)],
        }
    )
    for c in within:
        info[c] = units[c].astype(str).to_numpy()[first_unit]
    polygons = (
        gpd.GeoDataFrame(info.merge(polys[["area_id", "geometry"]], on="area_id"), geometry="geometry", crs=units.crs)
        .sort_values("area_id")
        .reset_index(drop=True)
    )

    out_of_band = info[~info["in_band"]].sort_values("area_id")
    report = {
        "units": len(units),
        "areas": int(k),
        "band": [lo, hi],
        "within": within,
        "adjacency": adjacency,
        "attributes": attributes or [],
        "seed": seed,
        "population": {
            "min": float(area_pop.min()),
            "median": float(np.median(area_pop)),
            "max": float(area_pop.max()),
        },
        "areas_in_band": int(info["in_band"].sum()),
        "out_of_band": [
            {
                "area_id": r.area_id,
                "population": float(r.population),
                "units": int(r.units),
                "reason": r.reason,
                "unit_ids": sorted(assignment.loc[assignment.area_id == r.area_id, "unit_id"].tolist()),
            }
            for r in out_of_band.itertuples()
        ],
        "islands_joined": [
            {"unit": str(units[id_column].iloc[i]), "to": str(units[id_column].iloc[j]), "distance_m": round(d, 1)}
            for i, j, d in links
        ],
    }
    return AreaResult(assignment, polygons, report)


def extend_over_years(assignment: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """Give later grunnkrets codes the area of the code they came from (through the correspondence table,
    year by year; a new code made of several old ones follows the one that gave it most population, using
    the assignment's `population` when it has one), so the areas stay the same on the ground and time
    series compare like with like."""
    area = dict(zip(assignment["unit_id"], assignment["area_id"], strict=True))
    pop = (
        dict(zip(assignment["unit_id"], assignment["population"], strict=True))
        if "population" in assignment
        else dict.fromkeys(area, 1.0)
    )
    via = {u: u for u in area}
    rows, problems = [], []
    for year, chunk in changes.sort_values(["year", "new_grunnkrets", "old_grunnkrets"]).groupby("year"):
        given: dict[str, float] = {}
        for r in chunk.itertuples():
            given[r.new_grunnkrets] = given.get(r.new_grunnkrets, 0.0) + r.population_share * pop.get(
                r.old_grunnkrets, 0.0
            )
        for new, g in chunk.groupby("new_grunnkrets"):
            unknown = [o for o in g["old_grunnkrets"] if o not in area]
            if unknown:
                problems.append(
                    Problem(
                        "grunnkrets_changes",
                        "old_grunnkrets",
                        "reference",
                        len(unknown),
                        f"year={year}, old_grunnkrets={unknown[0]!r}",
                        "code has no analysis area",
                    )
                )
                continue
            contrib = sorted(
                (-r.population_share * pop.get(r.old_grunnkrets, 0.0), r.old_grunnkrets) for r in g.itertuples()
            )
            old = contrib[0][1]
            area[new], via[new], pop[new] = area[old], via[old], given[new]
            rows.append(
                {
                    "unit_id": new,
                    "area_id": area[old],
                    "from_year": int(year),
                    "via": via[old],
                    "straddles": len({area[o] for o in g["old_grunnkrets"]}) > 1,
                }
            )
    if problems:
        raise InputError(problems)
    base = assignment[["unit_id", "area_id"]].assign(from_year=pd.NA, via=assignment["unit_id"], straddles=False)
    out = pd.concat([base, pd.DataFrame(rows, columns=base.columns)], ignore_index=True)
    out["from_year"] = out["from_year"].astype("Int16")
    return out.sort_values(["area_id", "unit_id"]).reset_index(drop=True)


def validate_zoning(zonings: pd.DataFrame, codes: set[str], source: str = "zonings") -> list[Problem]:
    """A user zoning must cover every grunnkrets code once per zoning and name only known codes."""
    problems = []
    for name, z in zonings.groupby("zoning"):
        dup = z[z.duplicated("grunnkrets", keep=False)]
        if len(dup):
            problems.append(
                Problem(
                    source,
                    "grunnkrets",
                    "overlap",
                    len(dup),
                    f"zoning={name!r}, grunnkrets={dup['grunnkrets'].iloc[0]!r}",
                    "grunnkrets placed in more than one zone",
                )
            )
        unknown = z[~z["grunnkrets"].isin(codes)]
        if len(unknown):
            problems.append(
                Problem(
                    source,
                    "grunnkrets",
                    "reference",
                    len(unknown),
                    f"zoning={name!r}, grunnkrets={unknown['grunnkrets'].iloc[0]!r}",
                    "grunnkrets not in the geography",
                )
            )
        missing = sorted(codes - set(z["grunnkrets"]))
        if missing:
            problems.append(
                Problem(
                    source,
                    "grunnkrets",
                    "coverage",
                    len(missing),
                    f"zoning={name!r}, grunnkrets={missing[0]!r}",
                    "grunnkrets not covered by the zoning",
                )
            )
    return problems


def zoning_level(zonings: pd.DataFrame, name: str, codes: set[str]) -> pd.DataFrame:
    """A validated user zoning as an area level (unit_id → area_id)."""
    z = zonings[zonings["zoning"] == name]
    if z.empty:
        raise InputError([Problem("zonings", "zoning", "reference", 0, f"zoning={name!r}", "no such zoning")])
    if problems := validate_zoning(z, codes):
        raise InputError(problems)
    return (
        z.rename(columns={"grunnkrets": "unit_id", "zone": "area_id", "zone_name": "area_name"})[
            ["unit_id", "area_id", "area_name"]
        ]
        .sort_values(["area_id", "unit_id"])
        .reset_index(drop=True)
    )


def write_areas(result: AreaResult, out: str | Path, force: bool = False) -> list[Path]:
    """Write `out` (unit → area), `<stem>.geo.parquet` (area polygons) and `<stem>.report.json`; each file is
    written to a temporary name and renamed, so none is ever half-written."""
    out = Path(out)
    targets = [out, out.with_name(out.stem + ".geo.parquet"), out.with_name(out.stem + ".report.json")]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists; use --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmps = [p.with_name(f".{p.name}.tmp") for p in targets]
    try:
        write_parquet(pa.Table.from_pandas(result.assignment, preserve_index=False), tmps[0])
        write_geoparquet(result.polygons, tmps[1])
        tmps[2].write_text(json.dumps(result.report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for t, p in zip(tmps, targets, strict=True):
            os.replace(t, p)
    finally:
        for t in tmps:
            t.unlink(missing_ok=True)
    return targets


def fill_inner_levels(units: pd.DataFrame, within: list[str]) -> pd.DataFrame:
    """A kommune without bydeler is its own bydel: missing inner levels take the outer level's code, so
    bydel borders hold wherever they exist."""
    units = units.copy()
    for outer, inner in itertools.pairwise(within):
        units[inner] = units[inner].fillna(units[outer])
    return units


def areas_for_extract(
    extract_dir: str | Path,
    out_dir: str | Path,
    lo: float = 5000,
    hi: float = 10000,
    within: tuple[str, ...] = ("kommune", "bydel"),
    force: bool = True,
) -> dict:
    """Analysis areas for a register extract: built on its first year's grunnkretser and population,
    carried to later codes through its code correspondence; its user zonings written as area levels."""
    import duckdb

    extract_dir, out_dir = Path(extract_dir), Path(out_dir)
    geo = gpd.read_parquet(extract_dir / "geography.parquet")
    persons = extract_dir / "persons.parquet"
    con = duckdb.connect()
    source = f"read_parquet({sql_string(persons)})"
    year = con.execute(f"SELECT min(year) FROM {source}").fetchone()[0]
    pop = dict(con.execute(f"SELECT grunnkrets, count(*) FROM {source} WHERE year = ? GROUP BY 1", [year]).fetchall())
    valid = (geo["valid_from"] <= year) & (geo["valid_to"].isna() | (geo["valid_to"] >= year))
    units = geo[valid].reset_index(drop=True)
    within = [c for c in within if c in units.columns]
    units = fill_inner_levels(units, within)
    result = build_areas(units, units["grunnkrets"].map(pop).fillna(0), "grunnkrets", within, lo, hi)
    changes_path = extract_dir / "grunnkrets_changes.parquet"
    if changes_path.exists():
        changes = pd.read_parquet(changes_path)
        result.assignment = extend_over_years(result.assignment, changes).merge(
            result.assignment.drop(columns=["area_id"]), on="unit_id", how="left"
        )
    result.report["base_year"] = int(year)
    written = write_areas(result, out_dir / "analysis_areas.parquet", force=force)
    zonings_path = extract_dir / "zonings.parquet"
    if zonings_path.exists():
        zonings = pd.read_parquet(zonings_path)
        for name in sorted(zonings["zoning"].unique()):
            level = zoning_level(zonings, name, set(geo["grunnkrets"]))
            path = out_dir / f"zones_{name}.parquet"
            write_parquet(pa.Table.from_pandas(level, preserve_index=False), path)
            written.append(path)
    return {"report": result.report, "written": written}
