"""Who moved in, who moved out, who stayed: the person-level accounting of an area between two years.

Everything runs in DuckDB on the person-year facts (`levekar.indicators.facts`); Python only loops over
levels. For a pair of extract years (t0, t1) every person resident in either year is one row of `fl_pp`
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
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from levekar.indicators.catalogue import Catalogue, Indicator
from levekar.indicators.engine import _as_column
from levekar.indicators.expr import compile_expr

OUT_GROUPS = ("out_within_kommune", "out_other_kommune", "emigrated", "left_unrecorded")
IN_GROUPS = ("in_within_kommune", "in_other_kommune", "immigrated", "arrived_unrecorded")
# base groups: every resident of either year is in exactly one per side
BASE_GROUPS = ("stayers", *OUT_GROUPS, "deaths", *IN_GROUPS, "births")
# groups made of others (computed from the persons too, for their medians)
SUPER_GROUPS = {
    "out_movers": OUT_GROUPS,
    "in_movers": IN_GROUPS,
}
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


class FlowsError(ValueError):
    """Bad input to the flows: an unknown year, level or area."""


def decomposable(catalogue: Catalogue) -> list[Indicator]:
    """The share indicators a change can be decomposed for: the counts of one year's residents (not the
    per-level move indicators, whose population is itself a flow)."""
    return [i for i in catalogue.indicators if i.kind == "share" and not i.per_level]


def default_pairs(years: list[int]) -> list[tuple[int, int]]:
    """The year pairs published: every two neighbouring years of the extract, and the first to the last."""
    ys = sorted(set(years))
    pairs = set(itertools.pairwise(ys)) | ({(ys[0], ys[-1])} if len(ys) > 1 else set())
    return sorted(pairs)


@dataclass
class FlowCounts:
    """Unprotected counts per (level, area_code, year_from, year_to)."""

    groups: pd.DataFrame  # one row per group: persons and the measures' numerators and denominators
    decomposition: pd.DataFrame  # one row per indicator and component: d0, n0, d1, n1


def load_person_years(
    con: ibis.BaseBackend, facts: ir.Table, indicators: list[Indicator], kommune_of: pd.DataFrame
) -> None:
    """Materialise `fl_py` (the measures' columns, narrow) and `fl_flags`: per decomposable indicator k,
    `p{k}` (in its population) and `n{k}` (in population and numerator), with the engine's null handling."""
    t = facts
    flags = {}
    for k, ind in enumerate(indicators):
        pop = _as_column(compile_expr(ind.population, t), t).fill_null(False)
        num = _as_column(compile_expr(ind.numerator or "FALSE", t), t).fill_null(False)
        flags[f"p{k}"] = pop
        flags[f"n{k}"] = pop & num
    db = con.con
    src = ibis.to_sql(t.select(*BASE_COLUMNS), dialect="duckdb")
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_py AS SELECT person_id, year, grunnkrets, birth_year, died_in_year,
            (age BETWEEN 20 AND 66) AS emp_pop, (age BETWEEN 20 AND 66 AND employed) AS emp,
            immigrant_background AS imm, (low_income_eu60 IS NOT NULL) AS low_pop,
            coalesce(low_income_eu60, FALSE) AS low, CASE WHEN NOT student_household THEN eq_income END AS inc,
            (age >= 5 AND year - residence_since >= 5) AS settled,
            coalesce(household_head AND hh_small_children > 0, FALSE) AS fam
        FROM ({src})"""
    )
    flag_sql = ibis.to_sql(t.select("person_id", "year", **flags), dialect="duckdb")
    db.execute(f"CREATE OR REPLACE TEMP TABLE fl_flags AS {flag_sql}")
    db.register("fl_kommune_df", kommune_of[["grunnkrets", "kommune"]].astype(str))
    db.execute("CREATE OR REPLACE TEMP TABLE fl_kommune AS SELECT DISTINCT grunnkrets, kommune FROM fl_kommune_df")
    db.unregister("fl_kommune_df")


ATTRS = ("emp_pop", "emp", "imm", "low_pop", "low", "inc", "settled", "fam")


def load_pairs(db: duckdb.DuckDBPyConnection, pairs: list[tuple[int, int]], migrations: pd.DataFrame | None) -> None:
    """Materialise `fl_pp`: one row per pair of years and person resident in either, with how they left
    (`exit_kind`, when gone from the extract at t1) or arrived (`entry_kind`, when not in it at t0)."""
    db.register("fl_pairs_df", pd.DataFrame(pairs, columns=["year_from", "year_to"]).astype("int32"))
    db.execute("CREATE OR REPLACE TEMP TABLE fl_pairs AS SELECT * FROM fl_pairs_df")
    db.unregister("fl_pairs_df")
    if migrations is None:
        migrations = pd.DataFrame({"person_id": [], "year": [], "direction": [], "scope": []})
    db.register("fl_mig_df", migrations[["person_id", "year", "direction", "scope"]])
    db.execute(
        "CREATE OR REPLACE TEMP TABLE fl_mig AS SELECT CAST(person_id AS BIGINT) AS person_id, CAST(year AS INTEGER) "
        "AS year, CAST(direction AS VARCHAR) AS direction, CAST(scope AS VARCHAR) AS scope FROM fl_mig_df"
    )
    db.unregister("fl_mig_df")
    side = ", ".join(f"a.{c} AS {c}0, b.{c} AS {c}1" for c in ATTRS)
    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fl_pp AS
        WITH a AS (SELECT pr.year_from, pr.year_to, f.* FROM fl_pairs pr JOIN fl_py f ON f.year = pr.year_from),
        b AS (SELECT pr.year_from, pr.year_to, f.* FROM fl_pairs pr JOIN fl_py f ON f.year = pr.year_to),
        d AS (SELECT person_id, min(year) AS death_year FROM fl_py WHERE died_in_year GROUP BY person_id),
        mig AS (
            SELECT pr.year_from, pr.year_to, m.person_id, m.direction, arg_max(m.scope, m.year) AS scope
            FROM fl_pairs pr JOIN fl_mig m ON m.year >= pr.year_from AND m.year < pr.year_to
            GROUP BY ALL
        ),
        j AS (
            SELECT coalesce(a.year_from, b.year_from) AS year_from, coalesce(a.year_to, b.year_to) AS year_to,
                coalesce(a.person_id, b.person_id) AS person_id,
                coalesce(a.birth_year, b.birth_year) AS birth_year,
                a.grunnkrets AS gk0, b.grunnkrets AS gk1, {side}
            FROM a FULL JOIN b ON a.person_id = b.person_id AND a.year_from = b.year_from AND a.year_to = b.year_to
        )
        SELECT j.*, k0.kommune AS k0, k1.kommune AS k1,
            CASE WHEN j.gk0 IS NULL OR j.gk1 IS NOT NULL THEN NULL
                WHEN d.death_year >= j.year_from AND d.death_year < j.year_to THEN 'deaths'
                WHEN mo.scope = 'international' THEN 'emigrated'
                WHEN mo.scope = 'domestic' THEN 'out_other_kommune'
                ELSE 'left_unrecorded' END AS exit_kind,
            CASE WHEN j.gk1 IS NULL OR j.gk0 IS NOT NULL THEN NULL
                WHEN j.birth_year >= j.year_from THEN 'births'
                WHEN mi.scope = 'international' THEN 'immigrated'
                WHEN mi.scope = 'domestic' THEN 'in_other_kommune'
                ELSE 'arrived_unrecorded' END AS entry_kind
        FROM j
        LEFT JOIN fl_kommune k0 ON k0.grunnkrets = j.gk0
        LEFT JOIN fl_kommune k1 ON k1.grunnkrets = j.gk1
        LEFT JOIN d ON d.person_id = j.person_id
        LEFT JOIN mig mo ON mo.person_id = j.person_id AND mo.direction = 'out'
            AND mo.year_from = j.year_from AND mo.year_to = j.year_to
        LEFT JOIN mig mi ON mi.person_id = j.person_id AND mi.direction = 'in'
            AND mi.year_from = j.year_from AND mi.year_to = j.year_to
        """
    )


def load_cells(db: duckdb.DuckDBPyConnection, n_ind: int) -> None:
    """`fl_cell`: the indicators' counts summed over persons with the same pair, grunnkrets then and now
    and way of leaving or arriving — the same for every level, so each level sums these few rows instead
    of the persons. Per indicator k: both_k (in the population both years), bothn0_k / bothn1_k (of them,
    in the numerator then / now), d0_k, n0_k (population and numerator at t0), d1_k, n1_k (at t1)."""
    sums = []
    for k in range(n_ind):
        p0, p1, n0, n1 = (
            f"coalesce(f0.p{k}, FALSE)",
            f"coalesce(f1.p{k}, FALSE)",
            f"coalesce(f0.n{k}, FALSE)",
            f"coalesce(f1.n{k}, FALSE)",
        )
        sums += [
            f"sum(({p0} AND {p1})::INT) AS both_{k}",
            f"sum(({p0} AND {p1} AND {n0})::INT) AS bothn0_{k}",
            f"sum(({p0} AND {p1} AND {n1})::INT) AS bothn1_{k}",
            f"sum({p0}::INT) AS d0_{k}",
            f"sum({n0}::INT) AS n0_{k}",
            f"sum({p1}::INT) AS d1_{k}",
            f"sum({n1}::INT) AS n1_{k}",
        ]
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE fl_cell AS
        SELECT x.year_from, x.year_to, x.gk0, x.gk1, x.k0, x.k1, x.exit_kind, x.entry_kind, {", ".join(sums)}
        FROM fl_pp x
        LEFT JOIN fl_flags f0 ON f0.person_id = x.person_id AND f0.year = x.year_from
        LEFT JOIN fl_flags f1 ON f1.person_id = x.person_id AND f1.year = x.year_to
        GROUP BY ALL"""
    )


def load_levels(db: duckdb.DuckDBPyConnection, levels: dict[str, pd.DataFrame], grunnkretser: list[str]) -> list[str]:
    """`fl_levels(level, grunnkrets, area_code)`: grunnkrets (itself), every mapped level, country ("0")."""
    g = pd.Series(sorted(set(grunnkretser)), dtype=str)
    parts = [pd.DataFrame({"level": "grunnkrets", "grunnkrets": g, "area_code": g})]
    for name, m in levels.items():
        parts.append(m[["grunnkrets", "area_code"]].astype(str).assign(level=name))
    parts.append(pd.DataFrame({"level": "country", "grunnkrets": g, "area_code": "0"}))
    lv = pd.concat(parts, ignore_index=True)[["level", "grunnkrets", "area_code"]].drop_duplicates()
    db.register("fl_levels_df", lv)
    db.execute("CREATE OR REPLACE TEMP TABLE fl_levels AS SELECT * FROM fl_levels_df")
    db.unregister("fl_levels_df")
    return ["grunnkrets", *levels, "country"]


def _group_rows_sql(level: str, source: str, columns: str) -> str:
    """Rows (area_code, `columns` of `source`, side, grp) of one level: every resident of t0 on the 'out'
    side of their t0 area (stayers included), every resident of t1 who was not in that area at t0 on the
    'in' side. `source` is `fl_pp` (persons) or `fl_cell` (persons summed by grunnkrets pair)."""
    lv = level.replace("'", "''")
    return f"""
        SELECT l0.area_code, {columns}, 'out' AS side,
            CASE WHEN l1.area_code = l0.area_code THEN 'stayers'
                 WHEN x.gk1 IS NOT NULL THEN
                    CASE WHEN x.k1 = x.k0 THEN 'out_within_kommune' ELSE 'out_other_kommune' END
                 ELSE x.exit_kind END AS grp
        FROM {source} x JOIN fl_levels l0 ON l0.level = '{lv}' AND l0.grunnkrets = x.gk0
        LEFT JOIN fl_levels l1 ON l1.level = '{lv}' AND l1.grunnkrets = x.gk1
        UNION ALL
        SELECT l1.area_code, {columns}, 'in' AS side,
            CASE WHEN x.gk0 IS NOT NULL THEN
                    CASE WHEN x.k0 = x.k1 THEN 'in_within_kommune' ELSE 'in_other_kommune' END
                 ELSE x.entry_kind END AS grp
        FROM {source} x JOIN fl_levels l1 ON l1.level = '{lv}' AND l1.grunnkrets = x.gk1
        LEFT JOIN fl_levels l0 ON l0.level = '{lv}' AND l0.grunnkrets = x.gk0
        WHERE l0.area_code IS DISTINCT FROM l1.area_code
    """


def _measure_sql(s: str) -> str:
    """Sums of the movers' measures at side s (0 = t0, 1 = t1)."""
    return (
        f"count(*) AS persons, sum(emp_pop{s}::INT) AS emp_den, sum(emp{s}::INT) AS emp_num, "
        f"sum(imm{s}::INT) AS imm_num, sum(low_pop{s}::INT) AS low_den, sum(low{s}::INT) AS low_num, "
        f"count(inc{s}) AS inc_den, median(inc{s}) AS inc_median"
    )


# (group, side measured, condition on a level's rows); the first block are the base groups
_LABELS = [
    ("grp", "0", "side = 'out' AND grp <> 'stayers'"),
    ("grp", "1", "side = 'in' OR grp = 'stayers'"),
    ("'out_movers'", "0", f"side = 'out' AND grp IN {OUT_GROUPS}"),
    ("'in_movers'", "1", f"side = 'in' AND grp IN {IN_GROUPS}"),
    ("'residents_from'", "0", "side = 'out'"),
    ("'residents_to'", "1", "side = 'in' OR grp = 'stayers'"),
    ("'settled_5_years'", "1", "(side = 'in' OR grp = 'stayers') AND settled1"),
    ("'cohort_followed'", "1", "side = 'out' AND gk1 IS NOT NULL"),
    ("'families_small_children'", "0", "side = 'out' AND fam0"),
    ("'families_small_children_out'", "0", f"side = 'out' AND fam0 AND grp IN {OUT_GROUPS}"),
]


def group_counts(db: duckdb.DuckDBPyConnection, level: str) -> pd.DataFrame:
    """Persons and measures per area, pair and group of one level. Out-groups and deaths are measured in
    t0 (their last year in the area), stayers, in-groups and births in t1; also `out_movers`, `in_movers`
    (the sums of their kinds), `residents_from` (everyone at t0, measured then), `residents_to` (everyone at
    t1), `settled_5_years` (residents at t1, 5 years or older, in their grunnkrets for 5 years or more),
    `cohort_followed` (residents at t0 still in the extract at t1, measured at t1, wherever they live),
    `families_small_children` (households with children 0–5 at t0, counted by their head) and
    `families_small_children_out` (those moving out)."""
    cols = "x.year_from, x.year_to, x.gk1, " + ", ".join(f"x.{c}0, x.{c}1" for c in ATTRS)
    db.execute(f"CREATE OR REPLACE TEMP TABLE fl_r AS {_group_rows_sql(level, 'fl_pp', cols)}")
    keys = "area_code, year_from, year_to"
    sql = " UNION ALL ".join(
        f"SELECT {keys}, {g} AS grp, {_measure_sql(s)} FROM fl_r WHERE {cond} GROUP BY ALL" for g, s, cond in _LABELS
    )
    out = db.execute(sql).df().assign(level=level)
    db.execute("DROP TABLE fl_r")
    return out


def decomposition_counts(db: duckdb.DuckDBPyConnection, level: str, indicators: list[Indicator]) -> pd.DataFrame:
    """Per area, pair, indicator and component: d0, n0 (population and numerator counts among the
    component's persons at t0) and d1, n1 (at t1). Components: `stayers` (in the population in both years:
    d0 = d1), `ageing_out` / `ageing_in` (in the area both years, in the population in one — by age, or by
    another change of the population's condition), the out-groups and deaths (t0 only), the in-groups and
    births (t1 only). Σ d0 = D0, Σ n0 = N0, Σ d1 = D1, Σ n1 = N1 of the area."""
    names = [f"{a}_{k}" for k in range(len(indicators)) for a in ("both", "bothn0", "bothn1", "d0", "n0", "d1", "n1")]
    cols = "x.year_from, x.year_to, " + ", ".join(f"x.{c}" for c in names)
    sums = ", ".join(f"sum({c}) AS {c}" for c in names)
    w = db.execute(
        f"SELECT area_code, year_from, year_to, grp, side, {sums} FROM ({_group_rows_sql(level, 'fl_cell', cols)}) "
        "GROUP BY ALL"
    ).df()
    out = []
    keys = ["area_code", "year_from", "year_to"]
    stay = w[w.grp == "stayers"]
    outs = w[(w.side == "out") & (w.grp != "stayers")]
    ins = w[w.side == "in"]
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
    return d.assign(level=level)


def flow_counts(
    con: ibis.BaseBackend,
    facts: ir.Table,
    kommune_of: pd.DataFrame,
    levels: dict[str, pd.DataFrame],
    catalogue: Catalogue,
    migrations: pd.DataFrame | None,
    pairs: list[tuple[int, int]] | None = None,
) -> FlowCounts:
    """The unprotected counts of every level, area and year pair (default: `default_pairs`)."""
    indicators = decomposable(catalogue)
    load_person_years(con, facts, indicators, kommune_of)
    db = con.con
    years = [int(y) for (y,) in db.execute("SELECT DISTINCT year FROM fl_py ORDER BY 1").fetchall()]
    pairs = default_pairs(years) if pairs is None else pairs
    for y0, y1 in pairs:
        if y0 not in years or y1 not in years or y0 >= y1:
            raise FlowsError(f"year pair {y0}→{y1}: both must be years of the extract ({years}), the first earlier")
    load_pairs(db, pairs, migrations)
    load_cells(db, len(indicators))
    names = load_levels(db, levels, kommune_of["grunnkrets"].astype(str).tolist())
    groups = pd.concat([group_counts(db, lv) for lv in names], ignore_index=True)
    decomposition = pd.concat([decomposition_counts(db, lv, indicators) for lv in names], ignore_index=True)
    for t in ("fl_pp", "fl_py", "fl_flags", "fl_cell"):
        db.execute(f"DROP TABLE IF EXISTS {t}")
    return FlowCounts(groups=groups, decomposition=decomposition)
