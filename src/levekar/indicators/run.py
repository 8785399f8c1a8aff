"""Compute the whole catalogue for an extract at every level: the values the published store holds."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from levekar.indicators import forks
from levekar.indicators.catalogue import Catalogue, load_catalogue
from levekar.indicators.cells import as_categories, as_strings, concat
from levekar.indicators.compare import add_comparisons
from levekar.indicators.disclosure import CELL_KEYS, membership, secondary_suppression
from levekar.indicators.engine import (
    cell_rules,
    count_units,
    median_values,
    medians_of,
    needed_columns,
    per_level_counts,
    pool_years,
    pooled_parts,
    roll_up,
    standardise,
    values,
)
from levekar.indicators.facts import Stash, backend, connect, person_facts, temp_table


def level_mappings(
    geography: pd.DataFrame, areas: pd.DataFrame | None = None, zonings: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """grunnkrets → area code for each level above grunnkrets (country is added by the roll-up)."""
    levels: dict[str, pd.DataFrame] = {}
    if areas is not None:
        levels["analysis_area"] = areas.rename(columns={"unit_id": "grunnkrets", "area_id": "area_code"})[
            ["grunnkrets", "area_code"]
        ]
    if zonings is not None:
        for name, z in zonings.groupby("zoning"):
            levels[str(name)] = z.rename(columns={"zone": "area_code"})[["grunnkrets", "area_code"]]
    if geography["bydel"].notna().any():
        levels["bydel"] = geography[geography["bydel"].notna()].rename(columns={"bydel": "area_code"})[
            ["grunnkrets", "area_code"]
        ]
    levels["kommune"] = geography.rename(columns={"kommune": "area_code"})[["grunnkrets", "area_code"]]
    return levels


def compute_indicators(
    extract_dir: str | Path,
    areas: pd.DataFrame | None = None,
    catalogue: Catalogue | None = None,
    progress: Callable[[str, float], None] | None = None,
    extra_columns: Collection[str] = (),
    on_facts: Callable[[ibis.BaseBackend, ibis.Table, dict[str, ibis.Table], dict[str, pd.DataFrame]], None]
    | None = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
    spark_workdir: str | Path | None = None,
) -> tuple[pd.DataFrame, dict, dict]:
    """Every indicator × level × area × year × breakdown cell, with counts, value, interval, suppression
    and comparisons. Returns (values, levels, disclosure summary).

    `engine` is where the person-year facts are built and counted: "duckdb" (in this process) or "spark"
    (`levekar.indicators.facts.spark_session`: the active session, else a new one on `spark_master`). What
    follows the counting (roll-up, intervals, disclosure control, comparisons) is pandas either way.

    A later stage that needs the person-year facts too names its `extra_columns` and gets `on_facts(con,
    facts, extract tables, levels)` once they are materialised, so the facts are built only once. `con` is
    always DuckDB: on Spark the facts are written to Parquet under `spark_workdir` (default: a temporary
    folder, which only suits local mode — on a cluster, a folder the driver and the executors share) and
    DuckDB reads them there."""
    with tempfile.TemporaryDirectory(prefix="levekar-spark-") as tmp:
        return _compute(
            extract_dir,
            areas,
            catalogue,
            progress,
            extra_columns,
            on_facts,
            engine,
            spark_master,
            Path(spark_workdir or tmp),
        )


def materialise_facts(con: ibis.BaseBackend, needed: ibis.Table, engine: str, workdir: Path) -> ibis.Table:
    """The facts the catalogue (and later stages) use, computed once: a DuckDB temporary table, or on
    Spark a Parquet folder under `workdir` read back as a table."""
    if engine == "duckdb":
        return temp_table(con, needed, "levekar_facts")
    path = str(workdir / "facts.parquet")
    con.to_parquet(needed, path, mode="overwrite")
    return con.read_parquet(path, table_name="levekar_facts")


def _compute(
    extract_dir: str | Path,
    areas: pd.DataFrame | None,
    catalogue: Catalogue | None,
    progress: Callable[[str, float], None] | None,
    extra_columns: Collection[str],
    on_facts: Callable[[ibis.BaseBackend, ibis.Table, dict[str, ibis.Table], dict[str, pd.DataFrame]], None] | None,
    engine: str,
    spark_master: str | None,
    workdir: Path,
) -> tuple[pd.DataFrame, dict, dict]:
    say = progress or (lambda step, frac: None)
    con, tables = connect(extract_dir, engine=engine, spark_master=spark_master)
    say("counting", 0.1)
    stash = Stash(con)
    facts = person_facts(tables, stash)
    catalogue = catalogue or load_catalogue(columns=set(facts.columns))
    # materialise only the columns the catalogue uses, once, instead of once per breakdown pass
    needed = facts.select(*sorted((needed_columns(catalogue) | set(extra_columns)) & set(facts.columns)))
    facts = materialise_facts(con, needed, engine, workdir)
    stash.drop()
    additive = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if not i.per_level))
    counts = count_units(con, facts, additive)
    geography = tables["geography"].execute()
    zonings = tables["zonings"].execute() if "zonings" in tables else None
    levels = level_mappings(geography, areas, zonings)
    if on_facts is not None:
        if engine == "duckdb":
            on_facts(con, facts, tables, levels)
        else:  # the later stages count with DuckDB: they read the facts Spark wrote
            local = backend("duckdb")
            on_facts(
                local,
                local.read_parquet(workdir / "facts.parquet" / "*.parquet", table_name="levekar_facts"),
                tables,
                levels,
            )
    moving = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if i.per_level))
    # the roll-up (pandas) runs on a thread beside the engine's per-level counts and median fetch
    with ThreadPoolExecutor(1) as pool:
        rolled = pool.submit(roll_up, counts, levels)
        say("moves per level", 0.45)
        parts = [per_level_counts(con, facts, moving, levels)] if moving.indicators else []
        say("medians", 0.5)
        fetched = median_values(facts, catalogue)
        counts = concat([rolled.result(), *parts])
    if engine == "duckdb":
        con.disconnect()  # its memory back before the disclosure control, where the run peaks
    say("protecting", 0.6)
    # medians are not sums: nothing can be subtracted from them, so the primary rule is all they need. They
    # are computed in a forked process beside the single-threaded pooling and values
    members = membership(levels, geography["grunnkrets"])
    out, disclosure = finish_values(
        counts,
        catalogue,
        levels,
        geography[["grunnkrets", "kommune"]],
        per_level={i.id for i in moving.indicators},
        extra=forks.start(lambda: medians_of(fetched, catalogue, members)),
        progress=say,
    )
    return out, levels, disclosure


def finish_values(
    rolled: pd.DataFrame,
    catalogue: Catalogue,
    levels: dict[str, pd.DataFrame],
    geography: pd.DataFrame,
    per_level: set[str] = frozenset(),
    extra: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    unknown: pd.DataFrame | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """From counts at every level (`roll_up`'s layout) to the published values: pooled years, standardised
    rates, values and intervals, primary and secondary suppression, comparisons. Shared by the microdata run
    and the aggregate-table run, so both publish the same thing the same way.

    `geography` maps grunnkrets → kommune; `extra` are cells that take no part in secondary suppression
    (medians), added after it (or a function giving them, called then: not a thread still running when the
    disclosure control forks its workers — `levekar.indicators.forks`); `unknown`
    (same layout, numerator = the number of unknown input cells summed into the cell) marks cells built on
    suppressed input: they are suppressed and published without counts."""
    say = progress or (lambda step, frac: None)
    rolled = standardise(pooled_parts(as_categories(rolled)), catalogue)
    rules = cell_rules(rolled["indicator_id"], catalogue)
    vals = values(rolled, catalogue, rules)
    members = membership(levels, geography["grunnkrets"])
    blind = np.zeros(len(vals), dtype=bool)
    if unknown is not None and len(unknown):
        u = pool_years(as_categories(unknown))
        u = u[u["numerator"] > 0][CELL_KEYS].drop_duplicates().assign(_unknown=True)
        both = concat([vals[CELL_KEYS], u])  # the same categories on both sides
        blind = (
            both[: len(vals)][CELL_KEYS]
            .merge(both[len(vals) :], on=CELL_KEYS, how="left")["_unknown"]
            .fillna(False)
            .to_numpy(dtype=bool)
        )
        vals["suppressed"] = vals["suppressed"].to_numpy() | blind
    vals["suppressed"], disclosure = secondary_suppression(vals, members, rules, per_level=per_level)
    if blind.any():  # the known part of a sum is no value of it
        vals.loc[blind, ["numerator", "value", "ci_low", "ci_high"]] = np.nan
        disclosure["unknown_input"] = int(blind.sum())
    if callable(extra):
        extra = extra()
    if extra is not None and len(extra):
        vals = concat([vals, extra])
    kommune_of = pd.concat(
        [
            m.merge(geography[["grunnkrets", "kommune"]], on="grunnkrets")[["area_code", "kommune"]]
            .drop_duplicates("area_code")
            .assign(level=name)
            for name, m in {
                **levels,
                "grunnkrets": geography[["grunnkrets"]].assign(area_code=geography["grunnkrets"]),
            }.items()
            if name != "kommune"
        ],
        ignore_index=True,
    )
    say("comparing", 0.8)
    # sorted before the comparisons add their columns (fewer to move; the comparisons find their references
    # by key, in any order)
    vals = vals.sort_values(CELL_KEYS).reset_index(drop=True)
    return as_strings(add_comparisons(vals, kommune_of)), disclosure
