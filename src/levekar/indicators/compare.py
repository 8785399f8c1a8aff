"""Every value beside its kommune and country value: relative difference, a worded label, significance
against the reference, and a reliability flag for small denominators.

The label rule (the project's own; the report gives its labels but not the rule) reproduces every row of
the report's comparison tables 3.3, 4.2 and 4.3 (tests/test_compare.py):

| |relative difference| (percent) | shares                        | prices              |
|---|---|---|
| under 5                      | Om lag samme andel            | Om lag samme prisnivå |
| 5 to under 10                | Svakt høyere/lavere andel     | Svakt høyere/lavere prisnivå |
| 10 to under 20               | Høyere/Lavere andel           | Litt høyere/lavere prisnivå |
| 20 to under 100              | Betydelig høyere/lavere andel | Høyere/Lavere prisnivå |
| 100 and over                 | Svært mye høyere/lavere andel | Betydelig høyere/lavere prisnivå |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from levekar.indicators.cells import codes, sorted_index

BANDS = (5, 10, 20, 100)
WORDS = {
    "share": (
        "Om lag samme andel",
        "Svakt {dir} andel",
        "{Dir} andel",
        "Betydelig {dir} andel",
        "Svært mye {dir} andel",
    ),
    "price": (
        "Om lag samme prisnivå",
        "Svakt {dir} prisnivå",
        "Litt {dir} prisnivå",
        "{Dir} prisnivå",
        "Betydelig {dir} prisnivå",
    ),
}


def relative_difference(value, reference):
    """(value / reference − 1) × 100; NaN where the reference is 0 or missing."""
    value = np.asarray(value, dtype=float)
    reference = np.asarray(reference, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference > 0, (value / reference - 1) * 100, np.nan)


def label(rel: float, scale: str = "share") -> str | None:
    """The worded comparison for a relative difference (rounded to whole percent, as the report shows)."""
    if rel is None or not np.isfinite(rel):
        return None
    r = round(rel)
    band = int(np.searchsorted(BANDS, abs(r), side="right"))
    word = WORDS[scale][band]
    d = "høyere" if r > 0 else "lavere"
    return word.format(dir=d, Dir=d.capitalize())


def _label_index(rel, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Each difference's position in the table of words (−1: missing), and the table."""
    rel = np.asarray(rel, dtype=float)
    ok = np.isfinite(rel)
    r = np.where(ok, np.round(rel), 0)
    band = np.searchsorted(np.asarray(BANDS), np.abs(r), side="right")
    table = np.array(
        [w.format(dir=d, Dir=d.capitalize()) for w in WORDS[scale] for d in ("lavere", "høyere")], dtype=object
    )
    return np.where(ok, 2 * band + (r > 0), -1), table


def _significance_index(ci_low, ci_high, reference) -> tuple[np.ndarray, np.ndarray]:
    lo, hi, ref = (np.asarray(a, dtype=float) for a in (ci_low, ci_high, reference))
    index = np.where(hi < ref, 2, np.where(lo > ref, 1, 0))
    return np.where(~np.isfinite(ref) | ~np.isfinite(lo), -1, index), np.array(["ns", "higher", "lower"], dtype=object)


def _words(index: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.append(table, None)[index]


def _categorical(index: np.ndarray, table: np.ndarray) -> pd.Categorical:
    """The words as a categorical (millions of rows: no strings per row until the end)."""
    words, code = np.unique(table, return_inverse=True)
    return pd.Categorical.from_codes(np.append(code, -1)[index], categories=pd.Index(words, dtype=object))


def labels(rel, scale: str = "share") -> np.ndarray:
    """`label` for a whole column at once (None where the difference is missing)."""
    return _words(*_label_index(rel, scale))


def significance(ci_low, ci_high, reference) -> np.ndarray:
    """'higher' / 'lower' when the 95 % interval lies wholly above / below the reference value, else 'ns'."""
    return _words(*_significance_index(ci_low, ci_high, reference))


def add_comparisons(values: pd.DataFrame, kommune_of: pd.DataFrame, min_reliable: int = 100) -> pd.DataFrame:
    """Add `kommune`, `value_kommune`, `value_country`, relative differences, labels, significance and
    reliability (the words and the kommune as categoricals). `kommune_of` maps (level, area_code) to the
    kommune code containing the area (one row each). The references are found by integer keys and binary
    search (millions of rows: no table joins)."""
    keys = ["indicator_id", "year", "pooled_years", "breakdown", "breakdown_value"]
    t = values.reset_index(drop=True)
    suppressed = t["suppressed"].to_numpy()
    value = t["value"].to_numpy(dtype=float).copy()
    value[suppressed] = np.nan  # never a reference
    level, levels = codes(t["level"])
    code, area_codes = codes(t["area_code"])
    n_codes = len(area_codes) + 1
    area = level.astype(np.int64) * n_codes + code
    # the kommune of each row (as a code among the area codes, −1 for none): its own code at the kommune
    # level, else from `kommune_of`
    kl, kc = levels.get_indexer(kommune_of["level"]), area_codes.get_indexer(kommune_of["area_code"])
    ok = (kl >= 0) & (kc >= 0)
    row = _find(kl[ok].astype(np.int64) * n_codes + kc[ok], area)
    is_kommune = level == levels.get_indexer(["kommune"])[0]
    kommune_codes = sorted_index([*kommune_of["kommune"].dropna(), *area_codes[np.unique(code[is_kommune])]])
    of = kommune_codes.get_indexer(kommune_of["kommune"].to_numpy(dtype=object)[ok])
    kommune = np.where(row >= 0, np.append(of, -1)[row], -1)
    kommune[is_kommune] = kommune_codes.get_indexer(area_codes)[code[is_kommune]]
    series = np.zeros(len(t), dtype=np.int64)
    for k in keys:
        c, u = codes(t[k])
        series = series * (len(u) + 1) + c
    ref = series * (len(kommune_codes) + 1) + kommune
    at_kommune = _find(ref[is_kommune], np.where(kommune >= 0, ref, -1))
    value_kommune = np.where(at_kommune >= 0, value[is_kommune][np.maximum(at_kommune, 0)], np.nan)
    is_country = level == levels.get_indexer(["country"])[0]
    at_country = _find(series[is_country], series)
    value_country = np.where(at_country >= 0, value[is_country][np.maximum(at_country, 0)], np.nan)
    t = t.assign(value=value)
    t.loc[suppressed, ["ci_low", "ci_high"]] = np.nan
    t["kommune"] = pd.Categorical.from_codes(kommune, categories=kommune_codes)
    t["value_kommune"] = value_kommune
    t["value_country"] = value_country
    t["relative_difference_kommune"] = relative_difference(t["value"], t["value_kommune"])
    t["relative_difference_country"] = relative_difference(t["value"], t["value_country"])
    # words as categoricals (`levekar.indicators.cells.as_strings` turns them into strings)
    t["label"] = _categorical(*_label_index(t["relative_difference_country"].to_numpy(), "share"))
    t["significance_kommune"] = _categorical(*_significance_index(t["ci_low"], t["ci_high"], t["value_kommune"]))
    t["significance_country"] = _categorical(*_significance_index(t["ci_low"], t["ci_high"], t["value_country"]))
    t["reliable"] = t["denominator"] >= min_reliable
    return t


def _find(table: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The position in `table` (distinct keys) of each query key; −1 where none. Keys in a range not much
    larger than the arrays are looked up in a dense array, others by binary search."""
    if len(table) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    lo, hi = min(table.min(), query.min(initial=0)), max(table.max(), query.max(initial=0))
    if lo >= -1 and hi < 4 * (len(table) + len(query)):
        dense = np.full(hi + 2, -1, dtype=np.int64)  # a key −1 (none) looks up the last slot: −1
        dense[table] = np.arange(len(table))
        return dense[query]
    order = np.argsort(table, kind="stable")
    pos = np.minimum(np.searchsorted(table[order], query), len(table) - 1)
    return np.where(table[order][pos] == query, order[pos], -1)
