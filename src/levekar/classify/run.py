"""Classify every published area with every packaged scheme that Norwegian indicator data can feed; the
overlap matrix of the screening flags; the Danish schemes on an external table."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from levekar.classify.engine import evaluate
from levekar.classify.inputs import KEYS, area_table, split_column
from levekar.classify.rules import Scheme, SchemeError, load_scheme

# the schemes `levekar run` evaluates on the indicator values (the Danish ones need Danish inputs)
PUBLISHED_SCHEMES = (
    "nou_screening",
    "tiers",
    "early_warning",
    "settlement",
    "grant",
    "denmark_proxy_nou",
    "sweden_2012",
    "delmos_types",
)
SCREENING_FLAGS = (
    "children_low_income_high",
    "children_low_income",
    "neet_30_59",
    "neet_20_29",
    "no_upper_secondary_21_29",
    "low_education_30_59",
)


def usable_schemes(
    directions: Mapping[str, str], schemes: Sequence[str | Path | Scheme] = PUBLISHED_SCHEMES
) -> tuple[list[Scheme], dict[str, str]]:
    """The schemes the catalogue can feed, and for the others the indicators they lack (a municipality's
    own catalogue need not carry them all)."""
    usable, skipped = [], {}
    ids = set(directions)
    for s in schemes:
        scheme = s if isinstance(s, Scheme) else load_scheme(s)
        lacking = sorted({split_column(c)[0] for c in scheme.columns()} - ids)
        if lacking:
            skipped[scheme.id] = "the catalogue has no " + ", ".join(lacking)
        else:
            usable.append(scheme)
    return usable, skipped


def classify_values(
    values: pd.DataFrame,
    directions: Mapping[str, str],
    schemes: Sequence[str | Path | Scheme] = PUBLISHED_SCHEMES,
    trend_years: int = 5,
    progress: Callable[[str, float], None] | None = None,
) -> pd.DataFrame:
    """The `classification` table: one row per scheme, level, area and year, with category and reasons."""
    say = progress or (lambda step, frac: None)
    loaded = [s if isinstance(s, Scheme) else load_scheme(s) for s in schemes]
    table = area_table(values, directions, set().union(*(s.columns() for s in loaded)), trend_years)
    results = []
    # the area table is sorted by level, area and year, and so is each scheme's result: order by scheme only
    for k, s in enumerate(sorted(loaded, key=lambda s: s.id)):
        say(s.id, k / len(loaded))
        results.append(evaluate(table if not s.levels else table[table["level"].isin(s.levels)], s, KEYS)[0])
    return pd.concat(results, ignore_index=True)


def explain(
    values: pd.DataFrame, directions: Mapping[str, str], scheme: str | Path | Scheme, level: str, area_code: str
) -> pd.DataFrame:
    """Every criterion of `scheme` for one area and each of its years: input value, comparison, threshold,
    met or not (missing: unknown) — the numbers behind the reasons, recomputed from the published values
    (the area's own rows carry its history and its kommune and country references)."""
    s = scheme if isinstance(scheme, Scheme) else load_scheme(scheme)
    rows = values[(values["level"] == level) & (values["area_code"] == area_code)]
    if rows.empty:
        raise SchemeError(f"no area {area_code!r} at level {level!r}")
    return evaluate(area_table(rows, directions, s.columns()), s, KEYS, with_details=True)[1]


def overlap_matrix(screening: pd.DataFrame, flags: Sequence[str] = SCREENING_FLAGS) -> pd.DataFrame:
    """As the report's figure 3.1: for the given areas (rows of the `nou_screening` result), how many meet
    flag i and flag j (the diagonal: flag i alone)."""
    met = np.array([[f in row.split(",") for f in flags] for row in screening["criteria_met"].fillna("")], dtype=int)
    m = met.T @ met if len(met) else np.zeros((len(flags), len(flags)), dtype=int)
    return pd.DataFrame(m, index=list(flags), columns=list(flags))


DANISH_COLUMNS = [
    "area_id",
    "year",
    "residents",
    "non_western",
    "neet_18_64",
    "convicted",
    "basic_education_30_59",
    "income_ratio_regional",
]


def read_danish_input(path: str | Path) -> pd.DataFrame:
    """The external table for `levekar classify danish`: CSV with DANISH_COLUMNS (percent; blank = not
    available). Every problem names the file, the column and an example row."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SchemeError(f"{path}: cannot read as CSV: {e}") from e
    problems = []
    missing = [c for c in DANISH_COLUMNS if c not in raw.columns]
    if missing:
        raise SchemeError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(raw.columns)})")
    out = pd.DataFrame({"area_id": raw["area_id"].str.strip()})
    if (out["area_id"] == "").any():
        row = int(np.flatnonzero(out["area_id"] == "")[0]) + 2
        problems.append(f"{path}: column area_id: empty (line {row})")
    for col in DANISH_COLUMNS[1:]:
        text = raw[col].str.strip()
        num = pd.to_numeric(text.where(text != ""), errors="coerce")
        bad = (text != "") & num.isna()
        if col == "year":
            bad |= (text == "") | (num.notna() & (num != num.round()))
        # income_ratio_regional is a ratio in percent and may exceed 100
        share = col not in ("year", "residents", "income_ratio_regional")
        out_of_range = num.notna() & ((num < 0) | (share & (num > 100)))
        for mask, what in ((bad, "not a number"), (~bad & out_of_range, "outside 0–100" if share else "negative")):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                example = raw[col].iloc[i]
                problems.append(
                    f"{path}: column {col}: {int(mask.sum())} value(s) {what}, e.g. {example!r} (line {i + 2})"
                )
        out[col] = num
    if not problems:
        dup = out.duplicated(["area_id", "year"])
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            problems.append(
                f"{path}: columns area_id, year: {int(dup.sum())} duplicate row(s), e.g. "
                f"{out['area_id'].iloc[i]!r} {int(out['year'].iloc[i])} (line {i + 2})"
            )
    if problems:
        raise SchemeError("\n".join(problems))
    out["year"] = out["year"].astype(int)
    return out


def classify_danish(table: pd.DataFrame, version: str, national_convicted: float | None = None) -> pd.DataFrame:
    """A Danish scheme version on an external table: `area_id, year, category, criteria_met, reasons`."""
    scheme = load_scheme(f"denmark_{version}")
    params = {"national_convicted": national_convicted} if "national_convicted" in scheme.parameters else {}
    if national_convicted is not None and not params:
        raise SchemeError(f"denmark_{version}: the {version} criteria use no national conviction share")
    res, _ = evaluate(table.sort_values(["area_id", "year"]), scheme, ["area_id"], params)
    return res[["area_id", "year", "category", "criteria_met", "reasons"]].reset_index(drop=True)
