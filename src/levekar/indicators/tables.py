"""Aggregate-table mode: the indicator set from numerators and denominators per grunnkrets and year — the
tables a municipality orders from SSB — instead of microdata.

The ordered delivery is one long table (layout in docs/sources.md):

    grunnkrets, year, indicator_id, [breakdown, breakdown_value,] numerator, denominator[, sum_squares]

Shares and means add up exactly from grunnkretser to every level, so the published store is the same as the
microdata run's for them (same roll-up, intervals, comparisons and disclosure control: `finish_values`).
Age-standardised rates need one row per age group of the standard (`indicator_id` = `<id>@<lower age>`).
Medians and move indicators (measured across each level's own boundary) cannot be built from grunnkrets
counts and are refused. A count SSB suppressed (`:` or another table symbol) is unknown: every published cell
that sums over it is suppressed and published without value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from levekar.geo.inputs import InputError
from levekar.indicators.catalogue import Catalogue
from levekar.indicators.cells import as_strings
from levekar.indicators.engine import TOTAL, count_units, roll_up
from levekar.indicators.run import finish_values, level_mappings, materialise_facts, needed_columns
from levekar.schema.validate import Problem
from levekar.sources.symbols import parse_numbers

KEYS = ["grunnkrets", "year", "indicator_id", "breakdown", "breakdown_value"]
REQUIRED = ["grunnkrets", "year", "indicator_id", "numerator", "denominator"]
GRUNNKRETS = re.compile(r"^\d{8}$")


def aggregable(catalogue: Catalogue) -> dict[str, str]:
    """Internal count id → indicator id of every count a table may carry (standardised rates: one per age
    group)."""
    out = {}
    for i in catalogue.indicators:
        if i.kind == "median" or i.per_level:
            continue
        if i.kind == "standardised":
            out |= {gid: i.id for gid, _, _ in i.age_group_ids()}
        else:
            out[i.id] = i.id
    return out


def _problem(path: Path, column: str, check: str, mask: pd.Series, frame: pd.DataFrame, message: str) -> Problem:
    """A located problem: the first offending row's line (CSV: header is line 1) and its key."""
    i = int(np.flatnonzero(mask.to_numpy())[0])
    row = frame.iloc[i]
    where = f"row {i + 2 if path.suffix.lower() == '.csv' else i + 1}"
    key = ", ".join(f"{k}={row[k]!r}" for k in ("grunnkrets", "year", "indicator_id") if k in frame.columns)
    value = f", {column}={row[column]!r}" if column in frame.columns else ""
    return Problem(path.name, column, check, int(mask.sum()), f"{where}: {key}{value}", message)


def read_tables(
    path: str | Path, catalogue: Catalogue, grunnkretser: set[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check an ordered delivery (Parquet or CSV, SSB symbols allowed in the counts) against the catalogue
    and the geography. Returns (counts in `unit_counts`' layout, unknown cells in the same layout with
    numerator 1). Every problem is reported with file, column, rows and an example; nothing is computed."""
    path = Path(path)
    if not path.is_file():
        raise InputError([Problem(path.name, "*", "missing_file", 0, str(path), "file not found")])
    if path.suffix.lower() == ".parquet":
        df = pq.read_table(path).to_pandas()
    elif path.suffix.lower() == ".csv":
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
        sep = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        raise InputError([Problem(path.name, "*", "format", 0, path.suffix, "tables must be Parquet or CSV")])
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(
            [
                Problem(path.name, c, "missing_column", 0, f"columns: {', '.join(map(str, df.columns))}", "required")
                for c in missing
            ]
        )
    df = df.reset_index(drop=True)
    for c in ("breakdown", "breakdown_value"):
        df[c] = df[c].astype(str) if c in df.columns else TOTAL
    df["grunnkrets"] = df["grunnkrets"].astype(str)
    df["indicator_id"] = df["indicator_id"].astype(str)
    problems: list[Problem] = []
    bad = ~df["grunnkrets"].str.match(GRUNNKRETS)
    if bad.any():
        problems.append(_problem(path, "grunnkrets", "format", bad, df, "not an 8-digit grunnkrets code (KKKKGGGG)"))
    elif grunnkretser is not None and (bad := ~df["grunnkrets"].isin(grunnkretser)).any():
        problems.append(_problem(path, "grunnkrets", "reference", bad, df, "grunnkrets not in the geography"))
    year = pd.to_numeric(df["year"], errors="coerce")
    bad = year.isna() | (year != year.round())
    if bad.any():
        problems.append(_problem(path, "year", "type", bad, df, "year is not a whole number"))
    ids = aggregable(catalogue)
    known = {i.id for i in catalogue.indicators}
    bad = ~df["indicator_id"].isin(ids)
    if bad.any():
        first = df["indicator_id"][bad].iloc[0]
        why = (
            "a median or a move indicator cannot be aggregated from grunnkrets counts"
            if first in known
            else f"not in the catalogue (one of: {', '.join(sorted(ids)[:6])}, …)"
        )
        problems.append(_problem(path, "indicator_id", "reference", bad, df, why))
    else:
        allowed = {c: {TOTAL, *catalogue.get(i).breakdowns} for c, i in ids.items()}
        bad = ~pd.Series(
            [b in allowed[i] for i, b in zip(df["indicator_id"], df["breakdown"], strict=True)], index=df.index
        )
        if bad.any():
            problems.append(
                _problem(path, "breakdown", "reference", bad, df, "breakdown not allowed for the indicator")
            )
        bad = (df["breakdown"] == TOTAL) & (df["breakdown_value"] != TOTAL)
        if bad.any():
            problems.append(_problem(path, "breakdown_value", "format", bad, df, "the total row's value is 'total'"))
    counts = {}
    for c in ("numerator", "denominator", "sum_squares"):
        if c not in df.columns:
            continue
        try:
            counts[c], _ = parse_numbers(df[c], source=path.name, column=c, first_line=2)
        except ValueError as e:
            problems.append(Problem(path.name, c, "type", 0, str(e), "not a number or an SSB table symbol"))
    if problems:
        raise InputError(problems)
    num, den = counts["numerator"], counts["denominator"]
    for c, v in counts.items():
        bad = pd.Series(v < 0, index=df.index)
        if bad.any():
            problems.append(_problem(path, c, "range", bad, df, "negative count"))
    bad = pd.Series((den != np.round(den)) & ~np.isnan(den), index=df.index)
    if bad.any():
        problems.append(_problem(path, "denominator", "type", bad, df, "the denominator counts persons"))
    share = df["indicator_id"].map(lambda c: catalogue.get(ids[c]).kind != "mean").to_numpy()
    bad = pd.Series(share & (num > den), index=df.index)
    if bad.any():
        problems.append(_problem(path, "numerator", "range", bad, df, "numerator larger than the denominator"))
    dup = df.duplicated(KEYS, keep=False)
    if dup.any():
        problems.append(_problem(path, "indicator_id", "unique_key", dup, df, "more than one row for a cell"))
    if problems:
        raise InputError(problems)
    out = df[KEYS].assign(year=year.astype("int64"))
    mean_ids = {c for c, i in ids.items() if catalogue.get(i).kind == "mean"}
    is_mean = out["indicator_id"].isin(mean_ids).to_numpy()
    ss = counts.get("sum_squares", np.full(len(df), np.nan))
    # a mean without its sum of squares has no interval (NaN), rather than a zero-width one
    out = out.assign(numerator=num, denominator=den, sum_squares=np.where(is_mean, ss, 0.0))
    unknown = np.isnan(num) | np.isnan(den)
    flags = out[unknown].assign(numerator=1.0, denominator=0.0, sum_squares=0.0)
    out.loc[unknown, ["numerator", "denominator"]] = 0.0
    out["denominator"] = out["denominator"].astype("int64")
    return out, flags


def compute_from_tables(
    tables: pd.DataFrame,
    unknown: pd.DataFrame,
    geography: pd.DataFrame,
    catalogue: Catalogue,
    areas: pd.DataFrame | None = None,
    zonings: pd.DataFrame | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> tuple[pd.DataFrame, dict, dict, Catalogue]:
    """The microdata run's values from grunnkrets counts: roll-up to every level, then `finish_values`.
    `geography` has grunnkrets, kommune and (optionally) bydel. Returns (values, levels, disclosure, the
    catalogue restricted to the indicators the tables carry)."""
    say = progress or (lambda step, frac: None)
    ids = aggregable(catalogue)
    present = {ids[c] for c in tables["indicator_id"].unique()}
    used = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if i.id in present))
    geography = geography.assign(bydel=geography.get("bydel", None))
    levels = level_mappings(geography, areas, zonings)
    say("rolling up", 0.3)
    rolled = roll_up(tables, levels)
    flags = roll_up(unknown, levels) if len(unknown) else None
    if flags is not None:  # an unknown age-group count makes the whole standardised rate unknown
        flags["indicator_id"] = flags["indicator_id"].str.split("@").str[0]
    values, disclosure = finish_values(
        rolled, used, levels, geography[["grunnkrets", "kommune"]], unknown=flags, progress=say
    )
    return values, levels, disclosure, used


def tables_from_extract(extract_dir: str | Path, catalogue: Catalogue) -> pd.DataFrame:
    """The ordered delivery a register extract gives (what SSB computes for a municipality's order): every
    aggregable indicator's counts per grunnkrets, year and breakdown cell, in `read_tables`' layout."""
    from levekar.indicators.facts import Stash, connect, person_facts

    con, tables = connect(extract_dir)
    stash = Stash(con)
    facts = person_facts(tables, stash)
    keep = set(aggregable(catalogue).values())
    used = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if i.id in keep))
    needed = facts.select(*sorted(needed_columns(used) & set(facts.columns)))
    facts = materialise_facts(con, needed, "duckdb", Path())
    stash.drop()
    counts = count_units(con, facts, used)
    cols = [*KEYS, "numerator", "denominator", "sum_squares"]
    return as_strings(counts[cols].sort_values(KEYS, kind="stable").reset_index(drop=True))


def read_geography(path: str | Path, id_column: str = "grunnkrets", bydel_column: str | None = "bydel"):
    """Grunnkrets polygons for a table run (GeoParquet — e.g. an extract's geography.parquet —, GeoJSON,
    GeoPackage or GML; any CRS): grunnkrets, kommune (the column, or the code's first four digits), bydel
    (the column when there is one) and geometry in EPSG:25833."""
    from levekar.geo.inputs import read_units

    g = read_units(path, id_column)
    g = g.rename(columns={id_column: "grunnkrets"})
    bad = ~g["grunnkrets"].str.match(GRUNNKRETS)
    if bad.any():
        raise InputError(
            [
                Problem(
                    Path(path).name,
                    id_column,
                    "format",
                    int(bad.sum()),
                    f"{id_column}={g['grunnkrets'][bad].iloc[0]!r}",
                    "not an 8-digit grunnkrets code (KKKKGGGG)",
                )
            ]
        )
    kommune = g["kommune"].astype(str) if "kommune" in g.columns else g["grunnkrets"].str[:4]
    bydel = g[bydel_column].astype("string") if bydel_column and bydel_column in g.columns else None
    return g[["grunnkrets", "geometry"]].assign(kommune=kommune.to_numpy(), bydel=bydel)
