"""Who moved in, who moved out, who stayed: the person-level accounting of an area between two years.

Everything runs in DuckDB on the person-year facts (`levekar.indicators.facts`), every level in one query.
For a pair of extract years (t0, t1) every person resident in either year is one row of `fl_pp`
(grunnkrets then and now, attributes then and now, how they left or arrived). Seen from an area of a level:

- *stayers*: in the area in both years (a move inside the area is no move at its level);
- *out-movers* (residents at t0, not in the area at t1, alive): `out_within_kommune` (another area of the same
  kommune), `out_other_kommune` (another kommune, inside the extract or a domestic move out of it),
  `emigrated` (an international move out of the extract), `left_unrecorded` (gone from the extract with no
  death and no move recorded — a death in a year the extract does not hold, for one);
- `deaths`: died between 1 January t0 and 1 January t1 while in the extract;
- *in-movers* (residents at t1 not in the area at t0, born before t0): `in_within_kommune`,
  `in_other_kommune`, `immigrated`, `arrived_unrecorded`; `births`: born in t0 or later.

So residents(t0) = stayers + out-movers + deaths and residents(t1) = stayers + in-movers + births, in every
area, at every level — the identity the decomposition rests on.

Moves across the extract's border come from the `migrations` table (its last record in the period); the
`year` of a move is the calendar year, so a move in year t shows between 1 January t and t + 1.

How it stays fast: persons are summed once into *cells* (pair, grunnkrets then, grunnkrets now, way of
leaving or arriving); every level's counts are sums of cells, found in one query through the
grunnkrets → area membership. Only medians need the persons, and only for the groups that are not the
whole population of a year (the residents' medians are the catalogue's `median_equivalised_income`, the
same definition). The indicators' populations and numerators travel as bit masks (`pm*`, `nm*`).

Published year pairs (`default_pairs`): movers and the fixed cohort for every two neighbouring extract years
and first → last; the change decomposition for first → last and the last neighbouring pair only
(`decomposition_pairs`) — the person-level work grows with every pair, and these two answer "what changed
over the whole period" and "what changed last year". The medians of the two groups as large as the
population, stayers and the followed cohort, are computed for first → last only (`longest`): for one year
they are the residents' median all but exactly, and they cost most of the persons' work.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from levekar.indicators.catalogue import Catalogue, Indicator
from levekar.indicators.disclosure import membership
from levekar.indicators.engine import _as_column
from levekar.indicators.expr import compile_expr

OUT_GROUPS = ("out_within_kommune", "out_other_kommune", "emigrated", "left_unrecorded")
IN_GROUPS = ("in_within_kommune", "in_other_kommune", "immigrated", "arrived_unrecorded")
# base groups: every resident of either year is in exactly one per side
BASE_GROUPS = ("stayers", *OUT_GROUPS, "deaths", *IN_GROUPS, "births")
# groups made of others
SUPER_GROUPS = {
    "out_movers": OUT_GROUPS,
    "in_movers": IN_GROUPS,
}
# groups with a median of their own (residents_from / residents_to take the catalogue's median)
MEDIAN_GROUPS = (
    *BASE_GROUPS,
    "out_movers",
    "in_movers",
    "cohort_followed",
    "families_small_children",
    "families_small_children_out",
)
# columns of the facts the accounting needs
BASE_COLUMNS = (
    "person_id",
    "year",
    "grunnkrets",
    "birth_year",
    "age",
    "died_in_year",
    "employed",
    "immigrant_background",
    "low_income_eu60",
    "eq_income",
    "student_household",
    "residence_since",
    "household_head",
    "hh_small_children",
)
MEASURES = ("persons", "employment_20_66", "immigrant_background", "low_income_eu60", "median_eq_income")
ATTRS = ("emp_pop", "emp", "imm", "low_pop", "low", "inc")
# way of leaving / arriving, as codes in the persons' rows (0: present, or moved inside the extract)
EXIT_CODES = {1: "deaths", 2: "emigrated", 3: "out_other_kommune", 4: "left_unrecorded"}
ENTRY_CODES = {1: "births", 2: "immigrated", 3: "in_other_kommune", 4: "arrived_unrecorded"}
BITS = 62  # indicators per mask column


class FlowsError(ValueError):
    """Bad input to the flows: an unknown year, level or area."""


def decomposable(catalogue: Catalogue) -> list[Indicator]:
    """The share indicators a change can be decomposed for: the counts of one year's residents (not the
    per-level move indicators, whose population is itself a flow)."""
    return [i for i in catalogue.indicators if i.kind == "share" and not i.per_level]


def default_pairs(years: list[int]) -> list[tuple[int, int]]:
    """The year pairs of the movers and cohort tables: every two neighbouring years of the extract, and the
    first to the last."""
    ys = sorted(set(years))
    pairs = set(itertools.pairwise(ys)) | ({(ys[0], ys[-1])} if len(ys) > 1 else set())
    return sorted(pairs)


def decomposition_pairs(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pairs decomposed: of `pairs`, the longest from the first year to the last and the last
    neighbouring one (the pair ending last that starts latest)."""
    if not pairs:
        return []
    first, last = min(a for a, _ in pairs), max(b for _, b in pairs)
    ending = [p for p in pairs if p[1] == last]
    chosen = {max(ending)} | ({(first, last)} if (first, last) in pairs else set())
    return sorted(chosen)


def longest(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pair the large groups' medians (stayers, the followed cohort) are computed for: first → last."""
    return [max(pairs, key=lambda p: (p[1] - p[0], p))] if pairs else []


@dataclass
class FlowCounts:
    """Unprotected counts per (level, area_code, year_from, year_to)."""

    groups: pd.DataFrame  # one row per group: persons and the measures' numerators and denominators
    decomposition: pd.DataFrame  # one row per indicator and component: d0, n0, d1, n1
    members: pd.DataFrame | None = None  # (level, area_code, grunnkrets): the areas' grunnkretser


def _masks(flags: list[ir.Value]) -> dict[str, ir.Value]:
    """Boolean columns packed into int64 bit masks of BITS each: {"m0": …, "m1": …}."""
    out = {}
    for j in range(0, len(flags), BITS):
        terms = [f.ifelse(1 << b, 0).cast("int64") for b, f in enumerate(flags[j : j + BITS])]
        out[f"m{j // BITS}"] = sum(terms[1:], terms[0])
    return out


def load_person_years(
    con: ibis.BaseBackend, facts: ir.Table, indicators: list[Indicator], kommune_of: pd.DataFrame
) -> int:
    """Materialise `fl_gk` (grunnkrets → integer id, kommune) and `fl_py` (the measures' columns, narrow,
    grunnkrets as its id) with per decomposable indicator k the bit k of `pm*` (in its population) and of
    `nm*` (in population and numerator), with the engine's null handling. Returns the number of masks."""
    t = facts
    pops, nums = [], []
    for ind in indicators:
        pop = _as_column(compile_expr(ind.population, t), t).fill_null(False)
        num = _as_column(compile_expr(ind.numerator or "FALSE", t), t).fill_null(False)
        pops.append(pop)
        nums.append(pop & num)
    masks = {}
    if indicators:
        masks = {f"p{k}": v for k, v in _masks(pops).items()} | {f"n{k}": v for k, v in _masks(nums).items()}
    n_masks = len(masks) // 2
    db = con.con
    gk = kommune_of[["grunnkrets", "kommune"]].astype(str).drop_duplicates("grunnkrets")
    db.register("fl_kommune_df", gk)
    src = ibis.to_sql(t.select(*BASE_COLUMNS, **masks), dialect="duckdb")
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_gk AS
        WITH g AS (SELECT grunnkrets, kommune FROM fl_kommune_df
            UNION ALL SELECT DISTINCT grunnkrets, NULL FROM ({src}) WHERE grunnkrets NOT IN
                (SELECT grunnkrets FROM fl_kommune_df))
        SELECT (row_number() OVER (ORDER BY grunnkrets))::INTEGER AS gid, grunnkrets,
            dense_rank() OVER (ORDER BY kommune NULLS LAST)::INTEGER AS kid FROM g"""
    )
    db.unregister("fl_kommune_df")
    mask_cols = "".join(f", pm{k}, nm{k}" for k in range(n_masks))
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_py AS SELECT person_id, year::INTEGER AS year, g.gid, g.kid,
            birth_year, died_in_year,
            (age BETWEEN 20 AND 66) AS emp_pop, (age BETWEEN 20 AND 66 AND employed) AS emp,
            immigrant_background AS imm, (low_income_eu60 IS NOT NULL) AS low_pop,
            coalesce(low_income_eu60, FALSE) AS low, CASE WHEN NOT student_household THEN eq_income END AS inc,
            (age >= 5 AND year - residence_since >= 5) AS settled,
            coalesce(household_head AND hh_small_children > 0, FALSE) AS fam{mask_cols}
        FROM ({src}) f JOIN fl_gk g USING (grunnkrets)"""
    )
    return n_masks


def load_pairs(
    db: duckdb.DuckDBPyConnection, pairs: list[tuple[int, int]], migrations: pd.DataFrame | None, n_masks: int
) -> None:
    """Materialise `fl_pp`: one row per pair of years and person resident in either, with how they left
    (`exit`, when gone from the extract at t1) or arrived (`entry`, when not in it at t0), as codes."""
    db.register("fl_pairs_df", pd.DataFrame(pairs, columns=["year_from", "year_to"]).astype("int32"))
    db.execute(
        "CREATE OR REPLACE TEMP TABLE fl_pairs AS SELECT (row_number() OVER (ORDER BY year_from, year_to))::INTEGER "
        "AS pair, year_from, year_to FROM fl_pairs_df"
    )
    db.unregister("fl_pairs_df")
    if migrations is None:
        migrations = pd.DataFrame({"person_id": [], "year": [], "direction": [], "scope": []})
    db.register("fl_mig_df", migrations[["person_id", "year", "direction", "scope"]])
    db.execute(
        "CREATE OR REPLACE TEMP TABLE fl_mig AS SELECT CAST(person_id AS BIGINT) AS person_id, CAST(year AS INTEGER) "
        "AS year, CAST(direction AS VARCHAR) AS direction, CAST(scope AS VARCHAR) AS scope FROM fl_mig_df"
    )
    db.unregister("fl_mig_df")
    cols = ("gid", "kid", "settled", "fam", *ATTRS, *(f"{m}{k}" for k in range(n_masks) for m in ("pm", "nm")))
    side = ", ".join(f"a.{c} AS {c}0, b.{c} AS {c}1" for c in cols)
    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fl_pp AS
        WITH a AS (SELECT pr.pair, pr.year_from, f.* FROM fl_pairs pr JOIN fl_py f ON f.year = pr.year_from),
        b AS (SELECT pr.pair, pr.year_from, f.* FROM fl_pairs pr JOIN fl_py f ON f.year = pr.year_to),
        d AS (SELECT person_id, min(year) AS death_year FROM fl_py WHERE died_in_year GROUP BY person_id),
        mig AS (  -- the last record of the period; on a tie, international before domestic
            SELECT pr.pair, m.person_id, m.direction,
                arg_max(m.scope, m.year * 2 + (m.scope = 'international')::INTEGER) AS scope
            FROM fl_pairs pr JOIN fl_mig m ON m.year >= pr.year_from AND m.year < pr.year_to
            GROUP BY ALL
        ),
        j AS (
            SELECT coalesce(a.pair, b.pair) AS pair, coalesce(a.year_from, b.year_from) AS year_from,
                coalesce(a.person_id, b.person_id) AS person_id, coalesce(a.birth_year, b.birth_year) AS birth_year,
                {side}
            FROM a FULL JOIN b ON a.person_id = b.person_id AND a.pair = b.pair
        )
        SELECT j.* EXCLUDE (person_id, birth_year, year_from),
            (CASE WHEN j.gid0 IS NULL OR j.gid1 IS NOT NULL THEN 0
                WHEN d.death_year >= j.year_from AND d.death_year < p.year_to THEN 1
                WHEN mo.scope = 'international' THEN 2
                WHEN mo.scope = 'domestic' THEN 3
                ELSE 4 END)::TINYINT AS exit,
            (CASE WHEN j.gid1 IS NULL OR j.gid0 IS NOT NULL THEN 0
                WHEN j.birth_year >= j.year_from THEN 1
                WHEN mi.scope = 'international' THEN 2
                WHEN mi.scope = 'domestic' THEN 3
                ELSE 4 END)::TINYINT AS entry
        FROM j JOIN fl_pairs p ON p.pair = j.pair
        LEFT JOIN d ON d.person_id = j.person_id
        LEFT JOIN mig mo ON mo.person_id = j.person_id AND mo.direction = 'out' AND mo.pair = j.pair
        LEFT JOIN mig mi ON mi.person_id = j.person_id AND mi.direction = 'in' AND mi.pair = j.pair
        """
    )


def load_levels(db: duckdb.DuckDBPyConnection, levels: dict[str, pd.DataFrame]) -> list[str]:
    """`fl_lv(lvl, gid, aid)` and `fl_area(aid, level, area_code)`: grunnkrets (itself), every mapped level,
    country ("0"); `lvl` is the level's position in the returned names."""
    names = ["grunnkrets", *levels, "country"]
    gk = db.execute("SELECT gid, grunnkrets FROM fl_gk").df()
    parts = [pd.DataFrame({"level": "grunnkrets", "grunnkrets": gk.grunnkrets, "area_code": gk.grunnkrets})]
    for name, m in levels.items():
        parts.append(m[["grunnkrets", "area_code"]].astype(str).assign(level=name))
    parts.append(pd.DataFrame({"level": "country", "grunnkrets": gk.grunnkrets, "area_code": "0"}))
    lv = pd.concat(parts, ignore_index=True)[["level", "grunnkrets", "area_code"]].drop_duplicates()
    lv = lv.merge(gk, on="grunnkrets")
    lv["lvl"] = lv.level.map({n: i for i, n in enumerate(names)}).astype("int8")
    areas = lv[["lvl", "level", "area_code"]].drop_duplicates().sort_values(["lvl", "area_code"])
    areas["aid"] = range(len(areas))
    lv = lv.merge(areas, on=["lvl", "level", "area_code"])
    db.register("fl_lv_df", lv[["lvl", "gid", "aid"]].astype({"gid": "int32", "aid": "int32"}))
    db.execute("CREATE OR REPLACE TEMP TABLE fl_lv AS SELECT * FROM fl_lv_df")
    db.unregister("fl_lv_df")
    db.register("fl_area_df", areas[["aid", "level", "area_code"]].astype({"aid": "int32"}))
    db.execute("CREATE OR REPLACE TEMP TABLE fl_area AS SELECT * FROM fl_area_df")
    db.unregister("fl_area_df")
    return names


def _level_rows_sql(source: str, columns: str) -> str:
    """Rows (lvl, aid, `columns` of `source`, side, grp) of every level at once: every resident of t0 on the
    'out' side of their t0 area (stayers included), every resident of t1 who was not in that area at t0
    on the 'in' side (someone in the same grunnkrets both years is a stayer at every level: no 'in' row).
    `source` has gid0, gid1, kid0, kid1, exit, entry (persons or cells)."""
    exits = " ".join(f"WHEN {c} THEN '{g}'" for c, g in EXIT_CODES.items())
    entries = " ".join(f"WHEN {c} THEN '{g}'" for c, g in ENTRY_CODES.items())
    return f"""
        SELECT l0.lvl, l0.aid, {columns}, 'out' AS side,
            CASE WHEN l1.aid = l0.aid THEN 'stayers'
                 WHEN x.gid1 IS NOT NULL THEN
                    CASE WHEN x.kid1 = x.kid0 THEN 'out_within_kommune' ELSE 'out_other_kommune' END
                 ELSE CASE x.exit {exits} END END AS grp
        FROM {source} x JOIN fl_lv l0 ON l0.gid = x.gid0
        LEFT JOIN fl_lv l1 ON l1.lvl = l0.lvl AND l1.gid = x.gid1
        UNION ALL
        SELECT l1.lvl, l1.aid, {columns}, 'in' AS side,
            CASE WHEN x.gid0 IS NOT NULL THEN
                    CASE WHEN x.kid0 = x.kid1 THEN 'in_within_kommune' ELSE 'in_other_kommune' END
                 ELSE CASE x.entry {entries} END END AS grp
        FROM (SELECT * FROM {source} WHERE gid0 IS DISTINCT FROM gid1) x JOIN fl_lv l1 ON l1.gid = x.gid1
        LEFT JOIN fl_lv l0 ON l0.lvl = l1.lvl AND l0.gid = x.gid0
        WHERE l0.aid IS DISTINCT FROM l1.aid
    """


# (group, side measured, condition on a level's rows); sums of cells
_LABELS = [
    ("grp", "0", "side = 'out' AND grp <> 'stayers'"),
    ("grp", "1", "side = 'in' OR grp = 'stayers'"),
    ("'out_movers'", "0", f"side = 'out' AND grp IN {OUT_GROUPS}"),
    ("'in_movers'", "1", f"side = 'in' AND grp IN {IN_GROUPS}"),
    ("'residents_from'", "0", "side = 'out'"),
    ("'residents_to'", "1", "side = 'in' OR grp = 'stayers'"),
    ("'settled_5_years'", "1", "(side = 'in' OR grp = 'stayers') AND settled1"),
    ("'cohort_followed'", "1", "side = 'out' AND gid1 IS NOT NULL"),
    ("'families_small_children'", "0", "side = 'out' AND fam0"),
    ("'families_small_children_out'", "0", f"side = 'out' AND fam0 AND grp IN {OUT_GROUPS}"),
]
_SUMS = ("n", *(f"{a}{s}" for s in "01" for a in ATTRS))


def group_counts(db: duckdb.DuckDBPyConnection, names: list[str], full: list[tuple[int, int]]) -> pd.DataFrame:
    """Persons and measures per level, area, pair and group. Out-groups and deaths are measured in t0 (their
    last year in the area), stayers, in-groups and births in t1; also `out_movers`, `in_movers` (the sums of
    their kinds), `residents_from` (everyone at t0, measured then), `residents_to` (everyone at t1),
    `settled_5_years` (residents at t1, 5 years or older, in their grunnkrets for 5 years or more),
    `cohort_followed` (residents at t0 still in the extract at t1, measured at t1, wherever they live),
    `families_small_children` (households with children 0–5 at t0, counted by their head) and
    `families_small_children_out` (those moving out). Counts are sums of cells; medians (`inc_median`) come
    from the persons, for `MEDIAN_GROUPS` (stayers and the cohort for the pairs `full` only: `longest`)."""
    sums = ", ".join(
        ["count(*) AS n"]
        + [f"count({a}{s}) AS {a}{s}" if a == "inc" else f"sum({a}{s}::INT) AS {a}{s}" for s in "01" for a in ATTRS]
    )
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_cell AS SELECT pair, gid0, gid1, kid0, kid1, exit, entry, settled1, fam0,
            {sums} FROM fl_pp GROUP BY ALL"""
    )
    cols = "x.pair, x.gid1, x.settled1, x.fam0, " + ", ".join(f"x.{c}" for c in _SUMS)
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_r AS SELECT lvl, aid, pair, gid1 IS NOT NULL AS followed, settled1, fam0,
            side, grp, {", ".join(f"sum({c}) AS {c}" for c in _SUMS)}
        FROM ({_level_rows_sql("fl_cell", cols)}) GROUP BY ALL"""
    )

    def measure(s: str) -> str:
        return (
            f"sum(n) AS persons, sum(emp_pop{s}) AS emp_den, sum(emp{s}) AS emp_num, sum(imm{s}) AS imm_num, "
            f"sum(low_pop{s}) AS low_den, sum(low{s}) AS low_num, sum(inc{s}) AS inc_den"
        )

    keys = "lvl, aid, pair"
    sql = " UNION ALL ".join(
        f"SELECT {keys}, {g} AS grp, {measure(s)} FROM fl_r WHERE {cond.replace('gid1 IS NOT NULL', 'followed')} "
        "GROUP BY ALL"
        for g, s, cond in _LABELS
    )
    counts = db.execute(sql).df()
    med = medians(db, full)
    out = counts.merge(med, on=["lvl", "aid", "pair", "grp"], how="left")
    return _named(db, out, names)


def medians(db: duckdb.DuckDBPyConnection, full: list[tuple[int, int]]) -> pd.DataFrame:
    """The median equivalised income of `MEDIAN_GROUPS` per level, area and pair, from the persons (one
    pass over the persons of every level, then one grouped median per kind of group). The two large groups,
    `stayers` and `cohort_followed`, only for the pairs `full`: elsewhere the persons who stayed in their
    grunnkrets (and are not a family with small children) are left out before the levels are joined."""
    out_kinds = ", ".join(f"'{g}'" for g in OUT_GROUPS)
    in_kinds = ", ".join(f"'{g}'" for g in IN_GROUPS)
    chosen = ", ".join(f"({a}, {b})" for a, b in full) or "(NULL, NULL)"
    src = f"""(SELECT x.*, (p.year_from, p.year_to) IN ({chosen}) AS full_pair FROM fl_pp x JOIN fl_pairs p USING (pair)
        WHERE (inc0 IS NOT NULL OR inc1 IS NOT NULL)
            AND ((p.year_from, p.year_to) IN ({chosen}) OR gid0 IS DISTINCT FROM gid1 OR fam0))"""
    rows = _level_rows_sql(src, "x.pair, x.gid1, x.fam0, x.inc0, x.inc1, x.full_pair")
    later = ("stayers", *IN_GROUPS, "births")
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_m AS SELECT lvl, aid, pair, side, grp, fam0, full_pair,
            gid1 IS NOT NULL AS followed, inc0, inc1,
            CASE WHEN grp IN ({", ".join(f"'{g}'" for g in later)}) THEN inc1 ELSE inc0 END AS x
        FROM ({rows})"""
    )
    keys = "lvl, aid, pair"
    parts = [
        ("grp", "x", "grp <> 'stayers' OR full_pair"),
        ("'out_movers'", "inc0", f"side = 'out' AND grp IN ({out_kinds})"),
        ("'in_movers'", "inc1", f"side = 'in' AND grp IN ({in_kinds})"),
        ("'cohort_followed'", "inc1", "side = 'out' AND followed AND full_pair"),
        ("'families_small_children'", "inc0", "side = 'out' AND fam0"),
        ("'families_small_children_out'", "inc0", f"side = 'out' AND fam0 AND grp IN ({out_kinds})"),
    ]
    sql = " UNION ALL ".join(
        f"SELECT {keys}, {g} AS grp, median({v}) AS inc_median FROM fl_m WHERE ({cond}) AND {v} IS NOT NULL "
        "GROUP BY ALL"
        for g, v, cond in parts
    )
    out = db.execute(sql).df()
    db.execute("DROP TABLE fl_m")
    return out


def _named(db: duckdb.DuckDBPyConnection, df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """(lvl, aid, pair) → (level, area_code, year_from, year_to), sorted."""
    areas = db.execute("SELECT aid, level, area_code FROM fl_area").df()
    pairs = db.execute("SELECT pair, year_from, year_to FROM fl_pairs").df()
    out = df.merge(areas, on="aid").merge(pairs, on="pair").drop(columns=["lvl", "aid", "pair"])
    order = {n: i for i, n in enumerate(names)}
    out = out.assign(_o=out.level.map(order))
    keys = [c for c in ("indicator_id", "component", "grp") if c in out.columns]
    return out.sort_values(["_o", "area_code", "year_from", "year_to", *keys]).drop(columns="_o").reset_index(drop=True)


def decomposition_counts(
    db: duckdb.DuckDBPyConnection, names: list[str], indicators: list[Indicator], pairs: list[tuple[int, int]]
) -> pd.DataFrame:
    """Per level, area, pair, indicator and component: d0, n0 (population and numerator counts among the
    component's persons at t0) and d1, n1 (at t1). Components: `stayers` (in the population in both years:
    d0 = d1), `ageing_out` / `ageing_in` (in the area both years, in the population in one — by age, or by
    another change of the population's condition), the out-groups and deaths (t0 only), the in-groups and
    births (t1 only). Σ d0 = D0, Σ n0 = N0, Σ d1 = D1, Σ n1 = N1 of the area."""
    names_ = [f"{a}_{k}" for k in range(len(indicators)) for a in ("both", "bothn0", "bothn1", "d0", "n0", "d1", "n1")]
    if not indicators or not pairs:
        return pd.DataFrame(columns=["level", "area_code", "year_from", "year_to", "indicator_id", "component"])
    chosen = ", ".join(f"({a}, {b})" for a, b in pairs)
    n_masks = -(-len(indicators) // BITS)
    masks = ", ".join(
        f"coalesce({m}{j}{s}, 0) AS {m}{j}{s}" for j in range(n_masks) for m in ("pm", "nm") for s in "01"
    )
    keys = ["pair", "gid0", "gid1", "kid0", "kid1", "exit", "entry"]
    x = db.execute(
        f"""SELECT {", ".join(f"x.{k}" for k in keys)}, {masks} FROM fl_pp x JOIN fl_pairs p ON p.pair = x.pair
        AND (p.year_from, p.year_to) IN ({chosen})"""
    ).df()
    # the indicators' counts per cell: bits of the masks summed with numpy (one bincount per count)
    cell = x.groupby(keys, dropna=False, sort=True).ngroup().to_numpy()
    n_cells = int(cell.max()) + 1 if len(cell) else 0
    cells = x[keys].drop_duplicates().assign(_c=cell[~x[keys].duplicated().to_numpy()])
    cells = cells.sort_values("_c").drop(columns="_c").reset_index(drop=True)
    sums = {}
    for k in range(len(indicators)):
        j, b = k // BITS, k % BITS
        p0, p1, n0, n1 = (
            (x[f"{m}{j}{s}"].to_numpy() >> b) & 1 for m, s in (("pm", 0), ("pm", 1), ("nm", 0), ("nm", 1))
        )
        for name, v in (
            ("both", p0 & p1),
            ("bothn0", n0 & p1),
            ("bothn1", p0 & n1),
            ("d0", p0),
            ("n0", n0),
            ("d1", p1),
            ("n1", n1),
        ):
            sums[f"{name}_{k}"] = np.bincount(cell, weights=v, minlength=n_cells).astype("int64")
    dcell = pd.concat([cells, pd.DataFrame(sums)], axis=1)
    db.register("fl_dcell_df", dcell)
    db.execute("CREATE OR REPLACE TEMP TABLE fl_dcell AS SELECT * FROM fl_dcell_df")
    db.unregister("fl_dcell_df")
    cols = "x.pair, " + ", ".join(f"x.{c}" for c in names_)
    w = db.execute(
        f"SELECT lvl, aid, pair, grp, side, {', '.join(f'sum({c})::BIGINT AS {c}' for c in names_)} "
        f"FROM ({_level_rows_sql('fl_dcell', cols)}) GROUP BY ALL"
    ).df()
    keys = ["lvl", "aid", "pair"]
    stay = w[w.grp == "stayers"]
    outs = w[(w.side == "out") & (w.grp != "stayers")]
    ins = w[w.side == "in"]
    out = []
    for k, ind in enumerate(indicators):
        b, b0, b1 = stay[f"both_{k}"], stay[f"bothn0_{k}"], stay[f"bothn1_{k}"]
        parts = [
            stay[keys].assign(component="stayers", d0=b, n0=b0, d1=b, n1=b1),
            stay[keys].assign(component="ageing_out", d0=stay[f"d0_{k}"] - b, n0=stay[f"n0_{k}"] - b0, d1=0, n1=0),
            stay[keys].assign(component="ageing_in", d0=0, n0=0, d1=stay[f"d1_{k}"] - b, n1=stay[f"n1_{k}"] - b1),
            outs[keys].assign(component=outs.grp, d0=outs[f"d0_{k}"], n0=outs[f"n0_{k}"], d1=0, n1=0),
            ins[keys].assign(component=ins.grp, d0=0, n0=0, d1=ins[f"d1_{k}"], n1=ins[f"n1_{k}"]),
        ]
        out.append(pd.concat(parts, ignore_index=True).assign(indicator_id=ind.id))
    d = pd.concat(out, ignore_index=True)
    for c in ("d0", "n0", "d1", "n1"):
        d[c] = d[c].astype("int64")
    return _named(db, d, names)


def flow_counts(
    con: ibis.BaseBackend,
    facts: ir.Table,
    kommune_of: pd.DataFrame,
    levels: dict[str, pd.DataFrame],
    catalogue: Catalogue,
    migrations: pd.DataFrame | None,
    pairs: list[tuple[int, int]] | None = None,
    decompose: list[tuple[int, int]] | None = None,
) -> FlowCounts:
    """The unprotected counts of every level, area and year pair (default: `default_pairs`; decomposed:
    `decompose`, default `decomposition_pairs` of them)."""
    indicators = decomposable(catalogue)
    n_masks = load_person_years(con, facts, indicators, kommune_of)
    db = con.con
    years = [int(y) for (y,) in db.execute("SELECT DISTINCT year FROM fl_py ORDER BY 1").fetchall()]
    pairs = default_pairs(years) if pairs is None else sorted(set(pairs))
    for y0, y1 in pairs:
        if y0 not in years or y1 not in years or y0 >= y1:
            raise FlowsError(f"year pair {y0}→{y1}: both must be years of the extract ({years}), the first earlier")
    decompose = decomposition_pairs(pairs) if decompose is None else sorted(set(decompose))
    if not set(decompose) <= set(pairs):
        raise FlowsError(f"decomposed pairs {decompose} must be among the pairs {pairs}")
    load_pairs(db, pairs, migrations, n_masks)
    names = load_levels(db, levels)
    groups = group_counts(db, names, longest(pairs))
    decomposition = decomposition_counts(db, names, indicators, decompose)
    for t in ("fl_pp", "fl_py", "fl_cell", "fl_dcell", "fl_r", "fl_lv", "fl_area", "fl_gk", "fl_pairs", "fl_mig"):
        db.execute(f"DROP TABLE IF EXISTS {t}")
    gk = kommune_of["grunnkrets"].astype(str)
    return FlowCounts(groups=groups, decomposition=decomposition, members=membership(levels, gk))
