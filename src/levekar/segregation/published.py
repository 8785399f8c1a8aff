"""Residential segregation indices per published geography and year, computed from published numbers only.

The store's `segregation_indices` table. Its input is the indicator stage's values frame, of which only the
cells the store publishes are read: the catalogue's group shares (numerator = the group, denominator = the
unit's population), breakdown total, single years. A unit whose cell is suppressed is not used on its own:
all such units of a scope are pooled into one *residual unit* whose counts are the published scope total minus
the sum of the published units — two published numbers, so anyone can compute the residual already. A scope
whose own total is suppressed gets no rows. Every published index, and its bootstrap interval (fixed seed), is
then a function of published numbers only: an index over the hidden units themselves would be one more
equation in counts the indicator store suppresses, which with the published margins can reveal them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from levekar.indicators.disclosure import TOTAL
from levekar.segregation import indices as ix

COLUMNS = [
    "scope_level",
    "scope_code",
    "unit_level",
    "year",
    "group_id",
    "index",
    "value",
    "ci_low",
    "ci_high",
    "units",
    "pooled_units",
    "pooled_population",
]
DROPPED_COLUMNS = ["scope_level", "scope_code", "unit_level", "year", "group_id"]
SORT = ["scope_level", "scope_code", "unit_level", "year", "group_id", "index"]

# (unit level, scope level): grunnkretser within every published geography; analysis areas and bydeler as the
# units of a kommune. The country is a scope only when it holds more than one kommune (else it is the kommune).
PAIRS = (
    ("grunnkrets", "country"),
    ("grunnkrets", "kommune"),
    ("grunnkrets", "bydel"),
    ("grunnkrets", "analysis_area"),
    ("analysis_area", "kommune"),
    ("bydel", "kommune"),
)
# a residual within this much of zero is zero (the counts are sums of integers held as floats)
TOLERANCE = 1e-6

Counts = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Group:
    """A grouping of the population: `indicators` are the catalogue share indicators whose cells it reads,
    `counts(cells)` turns their numerators and denominators (columns `<indicator>:num`, `<indicator>:den`,
    NaN where not published) into exhaustive group counts per row — two columns (the group, the rest) give
    the single-group indices, more the multigroup ones."""

    id: str
    indicators: tuple[str, ...]
    counts: Counts


def share_group(indicator: str) -> Group:
    """The persons counted by a share indicator against the rest of its denominator."""

    def counts(c: pd.DataFrame) -> np.ndarray:
        num, den = c[f"{indicator}:num"].to_numpy(float), c[f"{indicator}:den"].to_numpy(float)
        return np.column_stack([num, den - num])

    return Group(indicator, (indicator,), counts)


def landbakgrunn(immigrant: str = "immigrant_background", africa_asia: str = "africa_asia_background") -> Group:
    """Norway (no immigrant background), EU/EØS mv. (immigrant background, not Afrika/Asia mv.) and Afrika,
    Asia mv.: exhaustive, from two nested share indicators over the same population."""

    def counts(c: pd.DataFrame) -> np.ndarray:
        imm, aa = c[f"{immigrant}:num"].to_numpy(float), c[f"{africa_asia}:num"].to_numpy(float)
        den, den_aa = c[f"{immigrant}:den"].to_numpy(float), c[f"{africa_asia}:den"].to_numpy(float)
        both = np.isfinite(den) & np.isfinite(den_aa)
        if (differ := both & (den != den_aa)).any():
            i = int(np.flatnonzero(differ)[0])
            raise ValueError(
                f"indicator values: {immigrant} and {africa_asia} must share their denominator (the population); "
                f"{int(differ.sum())} cell(s) differ, e.g. {c.index[i]}: {den[i]:g} vs {den_aa[i]:g}"
            )
        return np.column_stack([den - imm, imm - aa, aa])

    return Group("landbakgrunn", (immigrant, africa_asia), counts)


DEFAULT_GROUPS = (
    share_group("immigrant_background"),
    share_group("africa_asia_background"),
    share_group("children_low_income_eu60"),
    landbakgrunn(),
)


def published_cells(values: pd.DataFrame, indicators: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per level: (area_code, year) → `<indicator>:num`, `<indicator>:den` for the indicators' total-breakdown,
    single-year cells, NaN wherever the cell is suppressed or absent, and `<indicator>:cell` (1 where the cell
    exists, published or not). The hidden numbers are dropped here, before anything else sees them."""
    need = {"indicator_id", "level", "area_code", "year", "pooled_years", "breakdown", "numerator", "denominator",
            "suppressed"}  # fmt: skip
    if missing := sorted(need - set(values.columns)):
        raise ValueError(f"indicator values: no column {', '.join(missing)}")
    v = values[values["indicator_id"].isin(indicators) & (values["breakdown"] == TOTAL) & (values["pooled_years"] == 1)]
    shown = ~v["suppressed"].astype(bool).to_numpy()
    cells = pd.DataFrame(
        {
            "indicator_id": v["indicator_id"].to_numpy(),
            "cell": 1.0,
            "level": v["level"].astype(str).to_numpy(),
            "area_code": v["area_code"].astype(str).to_numpy(),
            "year": v["year"].astype(np.int64).to_numpy(),
            "num": np.where(shown, pd.to_numeric(v["numerator"]).to_numpy(float), np.nan),
            "den": np.where(shown, pd.to_numeric(v["denominator"]).astype(float).to_numpy(), np.nan),
        }
    )
    if cells.duplicated(["indicator_id", "level", "area_code", "year"]).any():
        raise ValueError("indicator values: more than one total single-year cell per indicator, area and year")
    wide = cells.pivot(index=["level", "area_code", "year"], columns="indicator_id", values=["num", "den", "cell"])
    wide.columns = [f"{ind}:{what}" for what, ind in wide.columns]
    for ind in indicators:  # an indicator the catalogue lacks: every cell unknown
        for what in ("num", "den", "cell"):
            if f"{ind}:{what}" not in wide.columns:
                wide[f"{ind}:{what}"] = np.nan
    return {str(lv): f.droplevel("level").sort_index() for lv, f in wide.groupby(level="level", sort=True)}


def unit_scopes(levels: dict[str, pd.DataFrame]) -> dict[tuple[str, str], pd.Series]:
    """For each (unit level, scope level) of PAIRS whose levels exist and nest: unit code → scope code."""
    maps = {name: m.drop_duplicates("grunnkrets").set_index("grunnkrets")["area_code"].astype(str)
            for name, m in levels.items()}  # fmt: skip
    grunnkretser = pd.Index(sorted({str(g) for m in levels.values() for g in m["grunnkrets"]}))
    maps["grunnkrets"] = pd.Series(grunnkretser, index=grunnkretser)
    maps["country"] = pd.Series("0", index=grunnkretser)
    several_kommuner = "kommune" in maps and maps["kommune"].nunique() > 1
    out = {}
    for unit, scope in PAIRS:
        if unit not in maps or scope not in maps or (scope == "country" and not several_kommuner):
            continue
        both = pd.DataFrame({"u": maps[unit], "s": maps[scope].reindex(maps[unit].index)}).dropna()
        per_unit = both.groupby("u")["s"].agg(["nunique", "first"])
        if (per_unit["nunique"] > 1).any():  # a unit across a scope border has no place in one scope
            continue
        out[(unit, scope)] = per_unit["first"].rename(None)
    return out


@dataclass
class _Scope:
    """One scope's pooled input: published units (sorted by code), then the residual if it holds anyone."""

    counts: np.ndarray
    hidden: int  # units pooled into the residual
    residual: np.ndarray


def _pooled(unit_counts: np.ndarray, exists: np.ndarray, total: np.ndarray, where: str) -> _Scope:
    """The scope's published units and the residual (published total − published units); `exists` marks the
    units that have a cell at all (a unit without any is nobody)."""
    shown = np.isfinite(unit_counts).all(axis=1)
    pub = unit_counts[shown]
    residual = total - pub.sum(axis=0)
    if (residual < -TOLERANCE).any():
        raise ValueError(
            f"indicator values: the published units of {where} add up to more than its published total "
            f"(total {total.tolist()}, units {pub.sum(axis=0).tolist()})"
        )
    residual = np.where(residual < TOLERANCE, 0.0, residual)
    counts = np.vstack([pub, residual[None, :]]) if residual.sum() > 0 else pub
    return _Scope(counts, int((exists & ~shown).sum()), residual)


def published_indices(
    values: pd.DataFrame,
    levels: dict[str, pd.DataFrame],
    groups: Sequence[Group] = DEFAULT_GROUPS,
    replications: int = 99,
    seed: int = 2020,
    level: float = 0.95,
    min_units: int = 5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`segregation_indices`, the scopes left out because their total is suppressed).

    One row per scope × unit level × year × group × index (COLUMNS). `units` counts the units the index ran
    over (published units with anyone in them, plus the residual), `pooled_units` the suppressed units pooled
    into the residual, `pooled_population` the residual's population. A scope needs `min_units` such units.
    The interval is the basic bootstrap interval of `indices.infer` (`replications`, `seed`; NaN when 0).
    At country scope with several kommuner, Theil's H of each group is also split into the part between
    kommuner and the part within them (`<H>_between_kommune`, `<H>_within_kommune`), over the grunnkretser
    pooled per kommune (the kommune scopes' own residuals), when every kommune total is published."""
    indicators = sorted({i for g in groups for i in g.indicators})
    cells = published_cells(values, indicators)
    rows: list[dict] = []
    dropped: list[dict] = []
    for (unit_level, scope_level), scope_of in unit_scopes(levels).items():
        if unit_level not in cells or scope_level not in cells:
            continue
        units = cells[unit_level]
        units = units.assign(_scope=scope_of.reindex(units.index.get_level_values("area_code")).to_numpy())
        units = units[units["_scope"].notna()]
        scopes = cells[scope_level]
        for group in groups:
            unit_counts = group.counts(units)
            exists = units[[f"{i}:cell" for i in group.indicators]].notna().any(axis=1).to_numpy()
            totals = dict(zip(scopes.index, group.counts(scopes), strict=True))
            years = units.index.get_level_values("year").to_numpy()
            keys = pd.MultiIndex.from_arrays([units["_scope"].to_numpy(), years])
            for (code, year), pos in pd.Series(np.arange(len(units)), index=keys).groupby(level=[0, 1]):
                key = {"scope_level": scope_level, "scope_code": str(code), "unit_level": unit_level,
                       "year": int(year), "group_id": group.id}  # fmt: skip
                total = totals.get((code, year))
                if total is None or not np.isfinite(total).all():
                    dropped.append(key)
                    continue
                where = f"{scope_level} {code} {year} ({group.id})"
                at = pos.to_numpy()
                s = _pooled(unit_counts[at], exists[at], total, where)
                populated = s.counts[s.counts.sum(axis=1) > 0]
                if len(populated) < max(min_units, 2):
                    continue
                extra = {"units": len(populated), "pooled_units": s.hidden, "pooled_population": s.residual.sum()}
                for r in ix.interval_rows(populated, replications, seed, level):
                    rows.append({**key, "index": r["index"], "value": r["value"], "ci_low": r["ci_low"],
                                 "ci_high": r["ci_high"], **extra})  # fmt: skip
            if (unit_level, scope_level) == ("grunnkrets", "country"):
                rows.extend(_decomposition(units, unit_counts, exists, cells.get("kommune"), group, levels))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.astype({"year": "int64", "units": "int64", "pooled_units": "int64", "value": "float64",
                          "ci_low": "float64", "ci_high": "float64", "pooled_population": "float64"})  # fmt: skip
    table = table.sort_values(SORT, kind="stable").reset_index(drop=True)
    gone = pd.DataFrame(dropped, columns=DROPPED_COLUMNS).sort_values(DROPPED_COLUMNS).reset_index(drop=True)
    return table, gone


def _decomposition(
    units: pd.DataFrame,
    unit_counts: np.ndarray,
    exists: np.ndarray,
    kommuner: pd.DataFrame | None,
    group: Group,
    levels: dict[str, pd.DataFrame],
) -> list[dict]:
    """H at country scope = between kommuner + Σ weight × H within each kommune, each kommune's suppressed
    grunnkretser pooled into its own residual (so H_r is the kommune scope's published value)."""
    if kommuner is None or "kommune" not in levels:
        return []
    kommune_of = levels["kommune"].drop_duplicates("grunnkrets").set_index("grunnkrets")["area_code"].astype(str)
    k_counts = pd.DataFrame(group.counts(kommuner), index=kommuner.index)
    codes = units.index.get_level_values("area_code")
    years = units.index.get_level_values("year").to_numpy()
    kom = kommune_of.reindex(codes).to_numpy()
    out = []
    for year in np.unique(years):
        mats, regions, hidden, pooled = [], [], 0, 0.0
        complete = True
        for k in sorted(set(kom[(years == year) & pd.notna(kom)])):
            if (k, year) not in k_counts.index or not np.isfinite(total := k_counts.loc[(k, year)].to_numpy()).all():
                complete = False
                break
            sel = (years == year) & (kom == k)
            s = _pooled(unit_counts[sel], exists[sel], total, f"kommune {k} {year} ({group.id})")
            mats.append(s.counts)
            regions += [k] * len(s.counts)
            hidden += s.hidden
            pooled += float(s.residual.sum())
        if not complete or not mats:
            continue
        mat = np.vstack(mats)
        keep = mat.sum(axis=1) > 0
        mat, region = mat[keep], np.asarray(regions)[keep]
        share = mat.sum(axis=0) / mat.sum()
        if len(np.unique(region)) < 2 or (share > 0).sum() < 2:
            continue  # one kommune, or a group that is nobody or everybody: nothing to split
        d = ix.decompose_information_theory(mat, region)
        base = "entropy" if mat.shape[1] == 2 else "multigroup_information_theory"
        key = {"scope_level": "country", "scope_code": "0", "unit_level": "grunnkrets", "year": int(year),
               "group_id": group.id, "ci_low": np.nan, "ci_high": np.nan, "units": len(mat),
               "pooled_units": hidden, "pooled_population": pooled}  # fmt: skip
        out.append({**key, "index": f"{base}_between_kommune", "value": d.between})
        out.append({**key, "index": f"{base}_within_kommune", "value": d.within})
    return out
