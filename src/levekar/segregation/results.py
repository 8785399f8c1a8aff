"""The segregation tables of the published store: indices per geography and year (from the published
indicator cells, `published.py`), K-nearest profiles from register grid cells, and the school and
kindergarten tables (`schools.py`).

`store_tables(extract_dir, levels, geography, values=…)` is the one call `publish.run` makes. Everything
returned is publishable: the residential indices are functions of published cells only, the K-profiles are
aggregates (a K-neighbourhood holds ≥ 200 persons; no per-cell count is published), and the school tables
pass the catalogue's primary rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd

from levekar.indicators.catalogue import load_catalogue
from levekar.indicators.disclosure import primary, rule_columns
from levekar.segregation import indices as ix
from levekar.segregation.inputs import register_groups
from levekar.segregation.knn import DEFAULT_K, knn_table, profile
from levekar.segregation.published import DEFAULT_GROUPS, published_indices
from levekar.segregation.schools import Settings, school_tables

RESIDENTIAL_GROUPS = ("immigrant_background", "africa_asia", "low_income_eu60")
# exhaustive country-background groups for the multigroup indices: Norway (everyone without immigrant
# background), EU/EØS mv. and Afrika/Asia mv. (immigrant background by landbakgrunn)
MULTIGROUP = "landbakgrunn"
KNN_GROUPS = ("immigrant_background", "afrika_asia_mv")
INFERENCE_SCOPES = ("kommune", "country")


@dataclass(frozen=True)
class StoreSettings:
    """What `store_tables` computes. `replications` (bootstrap, fixed `seed`) gives the residential indices'
    intervals (0: none); a scope needs `min_units` units; `cell_size` is the register grid of the K-profiles."""

    replications: int = 99
    seed: int = 2020
    level: float = 0.95
    min_units: int = 5
    cell_size: int = 100
    ks: tuple[int, ...] = DEFAULT_K
    schools: Settings = field(default_factory=Settings)

    def describe(self) -> dict:
        """The settings as plain values (for the store's manifest)."""
        return {
            **asdict(self),
            "ks": list(self.ks),
            "index_groups": {g.id: list(g.indicators) for g in DEFAULT_GROUPS},
            "schools": {**asdict(self.schools), "groups": list(self.schools.groups)},
        }


def _unit_maps(levels: dict[str, pd.DataFrame], grunnkretser: Sequence[str]) -> dict[str, pd.Series]:
    """grunnkrets → area code for every level (grunnkrets itself and the country included)."""
    g = pd.Index(sorted(set(grunnkretser)))
    maps = {"grunnkrets": pd.Series(g, index=g), "country": pd.Series("0", index=g)}
    for name, m in levels.items():
        s = m.drop_duplicates("grunnkrets").set_index("grunnkrets")["area_code"].astype(str)
        maps[name] = s.reindex(g)
    return maps


def _pairs(maps: dict[str, pd.Series]) -> list[tuple[str, str]]:
    """(unit level, scope level) pairs: every level's areas as units within each coarser level that nests them
    (every unit inside one scope area) — grunnkretser within bydel, kommune and country, analysis areas within
    kommune and country, …"""
    order = ["grunnkrets"] + [lv for lv in maps if lv not in ("grunnkrets", "kommune", "country")]
    scopes = [lv for lv in ("bydel", "kommune", "country") if lv in maps]
    if "kommune" in maps and maps["kommune"].nunique() == 1:
        scopes.remove("country")  # the same numbers as the one kommune's
    out = []
    for unit in order:
        for scope in scopes:
            if unit == scope:
                continue
            both = pd.DataFrame({"u": maps[unit], "s": maps[scope]}).dropna()
            nested = both.groupby("u")["s"].nunique().max() == 1
            coarser = both["s"].nunique() < both["u"].nunique()
            if nested and coarser and not (unit == "bydel" and scope == "bydel"):
                out.append((unit, scope))
    return out


def residential_indices(
    counts: pd.DataFrame,
    levels: dict[str, pd.DataFrame],
    rule: dict,
    groups: Sequence[str] = RESIDENTIAL_GROUPS,
    replications: int = 99,
    seed: int = 2020,
    level: float = 0.95,
) -> pd.DataFrame:
    """Indices per year, unit level, scope (an area of a coarser level, or the country) and group, from the
    grunnkrets counts of `inputs.grunnkrets_counts`. Long: one row per index. The scope's population and
    group share are published when they pass the primary rule."""
    maps = _unit_maps(levels, counts["grunnkrets"])
    rows = []
    c = counts.copy()
    c["norge"] = c["population"] - c["immigrant_background"]
    c["eu_eos_mv"] = c["immigrant_background"] - c["africa_asia"]
    specs = [(g, [g, f"{g}_total"]) for g in groups] + [(MULTIGROUP, ["norge", "eu_eos_mv", "africa_asia"])]
    value_cols = sorted({col for _, cols in specs for col in cols})
    for unit, scope in _pairs(maps):
        c["unit"] = maps[unit].reindex(c["grunnkrets"]).to_numpy()
        c["scope"] = maps[scope].reindex(c["grunnkrets"]).to_numpy()
        agg = c.dropna(subset=["unit", "scope"]).groupby(["year", "scope", "unit"], sort=True)[value_cols].sum()
        for (year, code), f in agg.groupby(level=[0, 1], sort=True):
            for group, cols in specs:
                v = f[cols].to_numpy(dtype=float)
                if group == MULTIGROUP:
                    mat, x, t = v, float(v[:, 2].sum()), float(v.sum())
                else:
                    mat, x, t = (
                        np.column_stack([v[:, 0], v[:, 1] - v[:, 0]]),
                        float(v[:, 0].sum()),
                        float(v[:, 1].sum()),
                    )
                hidden = bool(primary([x], [t], rule_columns(rule))[0])
                key = {
                    "year": int(year),
                    "unit_level": unit,
                    "scope_level": scope,
                    "scope_code": str(code),
                    "group": group,
                    "units": int((mat.sum(axis=1) > 0).sum()),
                    "population": np.nan if hidden else t,
                    "group_share": np.nan if hidden or t <= 0 else 100 * x / t,
                }
                # inference for the headline scopes only: it is what costs time (one bootstrap per scope)
                reps = replications if scope in INFERENCE_SCOPES else 0
                for r in ix.index_rows(mat, reps, seed, level):
                    rows.append({**key, **r})
    out = pd.DataFrame(rows)
    return out.sort_values(["year", "unit_level", "scope_level", "scope_code", "group", "index"]).reset_index(drop=True)


def register_cells_by_year(con: duckdb.DuckDBPyConnection, size: int) -> pd.DataFrame:
    """Persons per SSB grid cell of side `size` and year (the dwelling's cell; as `inputs.register_cells`),
    with the immigrant-background and Afrika/Asia mv. counts."""
    return con.sql(
        f"""
        SELECT r.year, floor(d.x / {size}) * {size} AS x, floor(d.y / {size}) * {size} AS y,
               count(*) AS population,
               count(*) FILTER (WHERE r.innvandringskategori IN ('B', 'C')) AS immigrant_background,
               count(*) FILTER (WHERE r.innvandringskategori IN ('B', 'C') AND r.landbakgrunn = 'afrika_asia_mv')
                   AS afrika_asia_mv
        FROM seg_raw r JOIN seg_dwellings d ON r.dwelling_id = d.dwelling_id AND r.year = d.year
        GROUP BY ALL ORDER BY ALL
        """
    ).df()


def knn_profiles(cells: pd.DataFrame, size: int, ks: Sequence[int] = DEFAULT_K) -> pd.DataFrame:
    """The K-profile (D, H, isolation, mean share and percentiles of the neighbourhood shares; `knn.profile`)
    per year, convention `exact`. Only these aggregates leave: the per-cell counts stay here."""
    parts = []
    for year, f in cells.groupby("year", sort=True):
        table = knn_table(f, "x", "y", "population", list(KNN_GROUPS), ks, "exact")
        parts.append(profile(table, list(KNN_GROUPS), ks).assign(year=int(year), cell_size=size, convention="exact"))
    out = pd.concat(parts, ignore_index=True)
    first = ["year", "cell_size", "convention", "k", "group"]
    return out[first + [c for c in out.columns if c not in first]]


def store_tables(
    extract_dir: str | Path,
    levels: dict[str, pd.DataFrame],
    geography: gpd.GeoDataFrame | None = None,
    rule: dict | None = None,
    settings: StoreSettings = StoreSettings(),
    progress: Callable[[str, float], None] | None = None,
    values: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every segregation table of the store, keyed by table name (`segregation_…`). `levels` are the
    indicator stage's grunnkrets → area mappings (analysis areas, zonings, bydel, kommune); `rule` a catalogue
    disclosure rule (default: the packaged catalogue's `default`); `values` the indicator stage's values
    (with their suppression flags): `segregation_indices` is computed from its published cells, and left out
    without it. The school tables are left out when the extract has no institutions."""
    say = progress or (lambda step, frac: None)
    extract_dir = Path(extract_dir)
    rule = rule or load_catalogue().disclosure_rules["default"]
    say("segregation: groups", 0.0)
    con = register_groups(extract_dir)
    out = {}
    if values is not None:
        # Not `residential_indices` over the register counts: over units whose cells the indicator store
        # suppresses, an index is one more equation in those counts. This one reads published cells only.
        say("segregation: indices", 0.2)
        out["segregation_indices"] = published_indices(
            values,
            levels,
            replications=settings.replications,
            seed=settings.seed,
            level=settings.level,
            min_units=settings.min_units,
        )[0]
    say("segregation: K-nearest", 0.4)
    out["segregation_knn_profile"] = knn_profiles(
        register_cells_by_year(con, settings.cell_size), settings.cell_size, settings.ks
    )
    if (extract_dir / "institutions.parquet").exists() or (extract_dir / "institutions.csv").exists():
        say("segregation: schools", 0.7)
        out.update(school_tables(extract_dir, settings=settings.schools, rule=rule, con=con, geography=geography))
    con.close()
    say("segregation: done", 1.0)
    return out
