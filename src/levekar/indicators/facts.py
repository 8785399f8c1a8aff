"""The person-year fact table every indicator is defined over, built with Ibis from a register extract.

Derived columns:
- `age`: completed years on 1 January (`year − birth_year − 1`);
- `immigrant_background` (B or C), `africa_asia` (and landbakgrunn "Afrika, Asia mv."), `neet`
  (neither employed nor in education), `low_education` (NUS 0–2 or unknown);
- moves: `next_grunnkrets` / `prev_grunnkrets` (residence a year later / before; null when not resident then),
  `has_next_year` / `has_prev_year` (the extract has that year), `moved_out` (lives elsewhere or abroad a
  year later, not by dying), `moved_in` (lived elsewhere or abroad a year before, not by being born); the
  move indicators are computed per level, so a move between two grunnkretser of one area is no move there;
- household: `hh_persons`, `hh_children` (0–17), `hh_small_children` (0–5), `household_head` (one member,
  the lowest person id, stands for the household in household-level indicators), `consumption_units` (EU
  scale: 1 for the first person 14+, 0.5 for other persons 14+, 0.3 under 14), `eq_income` (income after tax
  per consumption unit), `low_income_eu60` (eq_income under 60 % of the year's median of eq_income over
  persons, student households left out of the median; their own flag is null), `persistent_low_income` (the
  mean of the person's eq_income over the last three consecutive years under 60 % of the median of those
  means; null when the person was not resident all three years), `transfers_half` (transfers ≥ 50 % of
  total);
- dwelling: `renting` (leier or kommunal), `crowded` (SSB: rooms < persons, or one person in one room, and
  under 25 m² per person).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow.parquet as pq

DUCKDB_MEMORY = "5GB"
ENGINES = ("duckdb", "spark")
SPARK_MASTER = "local[2]"
# Spark settings the definitions depend on (set on every session levekår uses, also one it is handed):
# ANSI mode, so that an overflow or an invalid cast fails the query as in DuckDB instead of giving NULL or
# wrapping around (Spark 4's default, but a cluster may be configured otherwise)
SPARK_SQL_CONF = {"spark.sql.ansi.enabled": "true"}


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """The Spark session the indicator stage runs on: the process's active one if there is one (a test
    module's shared session, or one a cluster job made), else a new one on `master` (default `local[2]`;
    `spark://…`, `yarn`, `k8s://…` on a cluster). `conf` adds Spark settings (executor memory, …)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        session = active
    else:
        builder = (
            SparkSession.builder.master(master or SPARK_MASTER)
            .appName("levekar")
            .config("spark.ui.showConsoleProgress", "false")  # the CLI shows its own progress
        )
        for key, value in (conf or {}).items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
    for key, value in SPARK_SQL_CONF.items():
        session.conf.set(key, value)
    return session


def backend(engine: str = "duckdb", spark_master: str | None = None) -> ibis.BaseBackend:
    """A fresh Ibis backend for `engine`: DuckDB in this process, or PySpark (`spark_session`)."""
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql("SET enable_progress_bar = false")  # the CLI shows its own progress
        # DuckDB takes up to 80 % of the machine by default: cap it (it spills to disk beyond). The indicator
        # run closes DuckDB before its disclosure control, so the two never hold memory at once; 5 GB keeps
        # the norway fact table (≈ 3 GB) in memory and the run under 8 GiB
        con.raw_sql(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        spill = tempfile.mkdtemp(prefix="levekar-duckdb-")
        atexit.register(shutil.rmtree, spill, ignore_errors=True)
        con.raw_sql(f"SET temp_directory = '{spill}'")
        return con
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master))
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def connect(
    extract_dir: str | Path,
    con: ibis.BaseBackend | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> tuple[ibis.BaseBackend, dict]:
    """Register the extract's Parquet files as tables on an Ibis backend (`con`, or a new one for `engine`:
    DuckDB by default, or Spark on `spark_master`)."""
    if con is None:
        con = backend(engine, spark_master)
    extract_dir = Path(extract_dir)
    tables = {}
    for name in ("persons", "households", "dwellings", "geography", "zonings", "grunnkrets_changes"):
        path = extract_dir / f"{name}.parquet"
        if path.exists():
            if name == "geography":
                # statistics need no shapes (and Ibis 12 cannot type DuckDB 2's GEOMETRY with a CRS)
                cols = [c for c in pq.read_schema(path).names if c != "geometry"]
                tables[name] = ibis.memtable(pq.read_table(path, columns=cols))
            else:
                tables[name] = con.read_parquet(path, table_name=f"extract_{name}")
    return con, tables


def person_windows(p: ir.Table) -> ir.Table:
    """Each person's neighbouring years, in one window pass over a narrow table (person_id, year,
    grunnkrets, eq_income, student_household; partitioned by person, ordered by year) — the window sorts
    its rows, so it sees no more columns than it needs. Returns (person_id, year, and):

    - where the person lived a year before and lives a year after (`prev_grunnkrets`, `next_grunnkrets`;
      null: not resident then);
    - SSB's persistent low income: the mean of the person's equivalised income over three consecutive years
      under 60 % of the median of those three-year means (over persons not in a student household in the
      last year); null where the person is not in all three years, or is in a student household."""
    w = ibis.window(group_by="person_id", order_by="year")
    p = p.mutate(
        next_grunnkrets=ibis.ifelse(p.year.lead().over(w) == p.year + 1, p.grunnkrets.lead().over(w), None),
        prev_grunnkrets=ibis.ifelse(p.year.lag().over(w) == p.year - 1, p.grunnkrets.lag().over(w), None),
        # the mean written out in one order (not a windowed AVG, whose summation order is the engine's), so
        # DuckDB and Spark give the same double; a person has one row a year, so two rows back is two years
        # back exactly when the three years are consecutive
        eq3=(p.eq_income.lag(2).over(w) + p.eq_income.lag(1).over(w) + p.eq_income) / 3,
        three_years=(p.year - p.year.lag(2).over(w)).fill_null(0) == 2,
    )
    eligible = p.three_years & ~p.student_household
    median = p.filter(eligible).group_by("year").aggregate(median_eq3=p.eq3.median())
    p = p.left_join(median, "year").drop("year_right")
    return p.select(
        "person_id",
        "year",
        "next_grunnkrets",
        "prev_grunnkrets",
        persistent_low_income=ibis.ifelse(eligible, p.eq3 < 0.6 * p.median_eq3, ibis.null("boolean")),
    )


def moves(p: ir.Table, here: ir.Value, there_next: ir.Value, there_before: ir.Value) -> dict[str, ir.Value]:
    """`moved_out`: lives elsewhere (or abroad) a year later, not by dying; `moved_in`: lived elsewhere (or
    abroad) a year before, not by being born — each only where the extract has that year."""
    return {
        "moved_out": p.has_next_year & ~p.died_in_year & (there_next.isnull() | (there_next != here)),
        "moved_in": p.has_prev_year & (p.age >= 1) & (there_before.isnull() | (there_before != here)),
    }


def household_facts(tables: dict[str, ir.Table]) -> ir.Table:
    """One row per household and year: the extract's household table with its members counted from the
    persons, the EU consumption units and the equivalised income."""
    p = tables["persons"]
    age = p.year - p.birth_year - 1
    hh = p.group_by(["household_id", "year"]).aggregate(
        hh_persons=p.count(),
        hh_small_children=(age <= 5).sum(),
        hh_children=(age < 18).sum(),
        hh_14plus=(age >= 14).sum(),
        hh_under14=(age < 14).sum(),
        hh_first_person=p.person_id.min(),
    )
    h = tables["households"].join(hh, ["household_id", "year"])
    # in tenths, as whole numbers: exact, and one IEEE division to a double on every engine (written with 0.5
    # and 0.3, Spark would keep SQL's decimal literals and divide the income in decimal, rounded to 6 places)
    tenths = ibis.cases(
        (h.hh_14plus > 0, 10 + 5 * (h.hh_14plus - 1) + 3 * h.hh_under14),
        else_=10 + 3 * (h.hh_under14 - 1),
    )
    cu = tenths.cast("float64") / 10
    h = h.mutate(
        consumption_units=cu,
        eq_income=h.income_after_tax / cu,
        transfers_half=h.income_transfers >= 0.5 * h.income_total,
    )
    # the median over persons (student households left out): each household's value once per member
    persons = h.filter(~h.student_household).select("year", "eq_income", member=ibis.range(0, h.hh_persons).unnest())
    median = persons.group_by("year").aggregate(median_eq_income=persons.eq_income.median())
    h = h.join(median, "year")
    return h.mutate(
        low_income_eu60=ibis.ifelse(h.student_household, ibis.null("boolean"), h.eq_income < 0.6 * h.median_eq_income)
    )


def person_facts(tables: dict[str, ir.Table], stash: Callable[[ir.Table, str], ir.Table] | None = None) -> ir.Table:
    """The person-year facts. `stash(expr, name)` may compute an intermediate table once (the households,
    the person windows) where the engine would otherwise compute it again for each use (`Stash`)."""
    stash = stash or (lambda t, name: t)
    h = stash(household_facts(tables), "levekar_households")
    p = tables["persons"]
    p = p.mutate(
        age=(p.year - p.birth_year - 1).cast("int16"),
        immigrant_background=p.innvandringskategori.isin(["B", "C"]),
    )
    p = p.mutate(
        africa_asia=p.immigrant_background & (p.landbakgrunn == "afrika_asia_mv"),
        neet=~p.employed & ~p.in_education,
        low_education=p.education_nus.isnull() | (p.education_nus <= 2),
    )
    narrow = p.select("person_id", "year", "grunnkrets", "household_id").join(
        h.select("household_id", "year", "eq_income", "student_household"), ["household_id", "year"]
    )
    windows = stash(person_windows(narrow.drop("household_id")), "levekar_windows")
    facts = p.join(h, ["household_id", "year"]).join(windows, ["person_id", "year"])
    # one row stands for the household in household-level indicators
    facts = facts.mutate(household_head=facts.person_id == facts.hh_first_person)
    years = tables["persons"].select(y=tables["persons"].year).distinct()
    facts = facts.left_join(years.select(year=years.y - 1, has_next_year=True), "year").drop("year_right")
    facts = facts.left_join(years.select(year=years.y + 1, has_prev_year=True), "year").drop("year_right")
    facts = facts.mutate(
        has_next_year=facts.has_next_year.fill_null(False), has_prev_year=facts.has_prev_year.fill_null(False)
    )
    facts = facts.mutate(**moves(facts, facts.grunnkrets, facts.next_grunnkrets, facts.prev_grunnkrets))
    d = tables["dwellings"].select("dwelling_id", "year", "tenure", "rooms", "area_m2", "building_type", "sale_price")
    facts = facts.left_join(d, ["dwelling_id", "year"]).drop("dwelling_id_right", "year_right")
    facts = facts.mutate(
        renting=facts.tenure.isin(["leier", "kommunal"]),
        crowded=((facts.rooms < facts.hh_persons) | ((facts.hh_persons == 1) & (facts.rooms == 1)))
        & (facts.area_m2 / facts.hh_persons < 25),
    )
    return facts


def temp_table(con: ibis.BaseBackend, expr: ir.Table, name: str) -> ir.Table:
    """`expr` computed once as the DuckDB temporary table `name` (replacing one of that name). Ibis's
    `create_table` registers the in-memory tables the expression uses; its own DROP (also `overwrite`'s)
    fails to parse with our sqlglot, so the drop is raw SQL."""
    con.raw_sql(f"DROP TABLE IF EXISTS {name}")
    return con.create_table(name, expr, temp=True)


class Stash:
    """Intermediate tables computed once: DuckDB temporary tables (`temp_table`), dropped by `drop()` once
    what uses them is materialised. Elsewhere (Spark) they stay queries: Ibis's `cache()` there compiles an
    expression without the in-memory tables it uses."""

    def __init__(self, con: ibis.BaseBackend):
        self.con = con
        self.names: list[str] = []

    def __call__(self, expr: ir.Table, name: str) -> ir.Table:
        if self.con.name != "duckdb":
            return expr
        self.names.append(name)
        return temp_table(self.con, expr, name)

    def drop(self) -> None:
        for name in self.names:
            self.con.raw_sql(f"DROP TABLE IF EXISTS {name}")
        self.names = []
