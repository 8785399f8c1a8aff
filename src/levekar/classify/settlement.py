"""The settlement check (NOU 2020:16 ch. 19): for a grunnkrets or a point, which area it lies in, and whether
that area has accumulated living-condition challenges under the configured rule — with the reasons.
Reads only the published store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import geopandas as gpd
from shapely.geometry import Point

from levekar.io import sql_string

# the level the answer is given at, the first the store has (the report's unit is the analysis area)
LEVEL_PREFERENCE = ("analysis_area", "bydel", "kommune")


class SettlementError(ValueError):
    """A question the store cannot answer (unknown grunnkrets, a point outside every grunnkrets, …)."""


@dataclass(frozen=True)
class SettlementAnswer:
    grunnkrets: str
    level: str
    area_code: str
    year: int
    scheme: str
    category: str
    accumulated: bool | None  # None: the rule cannot decide (suppressed or missing inputs)
    reasons: str

    def as_dict(self) -> dict:
        return asdict(self)


def grunnkrets_at(store: Path, x: float, y: float, crs: str | None = None) -> str:
    """The grunnkrets containing the point (x, y), given in `crs` (default: the store's own)."""
    polygons = gpd.read_parquet(store / "areas.geo.parquet")
    gk = polygons[polygons["level"] == "grunnkrets"]
    point = gpd.GeoSeries([Point(x, y)], crs=crs or gk.crs)
    if crs:
        point = point.to_crs(gk.crs)
    hit = gk[gk.contains(point.iloc[0])]
    if hit.empty:
        raise SettlementError(
            f"the point ({x}, {y}) lies in no grunnkrets of {store} (its CRS is {gk.crs.to_string()})"
        )
    return str(hit["area_code"].iloc[0])


def check_settlement(
    store: str | Path,
    grunnkrets: str | None = None,
    x: float | None = None,
    y: float | None = None,
    crs: str | None = None,
    level: str | None = None,
    year: int | None = None,
    scheme: str = "settlement",
) -> SettlementAnswer:
    """Answer the settlement question for a grunnkrets code or a point."""
    store = Path(store)
    if not (store / "barometer.duckdb").exists():
        raise SettlementError(f"{store}: not a published store (no barometer.duckdb)")
    if (grunnkrets is None) == (x is None or y is None):
        raise SettlementError("give either a grunnkrets code or both coordinates x and y")
    if grunnkrets is None:
        grunnkrets = grunnkrets_at(store, float(x), float(y), crs)
    con = duckdb.connect(str(store / "barometer.duckdb"), read_only=True)
    try:
        if "classification" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}:
            raise SettlementError(f"{store}: the store has no classification table (rebuild it with `levekar run`)")
        levels = [r[0] for r in con.execute("SELECT DISTINCT level FROM area_grunnkrets").fetchall()]
        level = level or next((lv for lv in LEVEL_PREFERENCE if lv in levels), None)
        if level not in levels:
            raise SettlementError(f"{store}: no level {level!r} (levels: {', '.join(sorted(levels))})")
        row = con.execute(
            "SELECT area_code FROM area_grunnkrets WHERE level = ? AND grunnkrets = ?", [level, grunnkrets]
        ).fetchall()
        if not row:
            example = con.execute("SELECT min(grunnkrets) FROM area_grunnkrets").fetchall()[0][0]
            raise SettlementError(f"grunnkrets {grunnkrets!r} is not in {store} (codes look like {example!r})")
        area = row[0][0]
        query = (
            "SELECT year, category, reasons FROM classification WHERE scheme = ? AND level = ? AND area_code = ?"
            + (" AND year = ?" if year is not None else "")
            + " ORDER BY year DESC LIMIT 1"
        )
        params = [scheme, level, area] + ([int(year)] if year is not None else [])
        found = con.execute(query, params).fetchall()
        if not found:
            years = con.execute(
                f"SELECT list(DISTINCT year ORDER BY year) FROM classification WHERE scheme = {sql_string(scheme)}"
            ).fetchall()[0][0]
            raise SettlementError(f"no {scheme!r} result for {level} {area} in year {year} (years: {years})")
    finally:
        con.close()
    yr, category, reasons = found[0]
    undecided = category != "accumulated" and "could be accumulated" in reasons
    return SettlementAnswer(
        grunnkrets=grunnkrets,
        level=level,
        area_code=area,
        year=int(yr),
        scheme=scheme,
        category=category,
        accumulated=None if undecided else category == "accumulated",
        reasons=reasons,
    )
