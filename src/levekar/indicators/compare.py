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


def labels(rel, scale: str = "share") -> np.ndarray:
    """`label` for a whole column at once (None where the difference is missing)."""
    rel = np.asarray(rel, dtype=float)
    ok = np.isfinite(rel)
    r = np.where(ok, np.round(rel), 0)
    band = np.searchsorted(np.asarray(BANDS), np.abs(r), side="right")
    up = r > 0
    table = np.array(
        [[w.format(dir=d, Dir=d.capitalize()) for d in ("lavere", "høyere")] for w in WORDS[scale]], dtype=object
    )
    out = table[band, up.astype(int)]
    out[~ok] = None
    return out


def significance(ci_low, ci_high, reference) -> np.ndarray:
    """'higher' / 'lower' when the 95 % interval lies wholly above / below the reference value, else 'ns'."""
    lo, hi, ref = (np.asarray(a, dtype=float) for a in (ci_low, ci_high, reference))
    out = np.full(lo.shape, "ns", dtype=object)
    out[lo > ref] = "higher"
    out[hi < ref] = "lower"
    out[~np.isfinite(ref) | ~np.isfinite(lo)] = None
    return out


def add_comparisons(values: pd.DataFrame, kommune_of: pd.DataFrame, min_reliable: int = 100) -> pd.DataFrame:
    """Add `kommune`, `value_kommune`, `value_country`, relative differences, labels, significance and
    reliability. `kommune_of` maps (level, area_code) to the kommune code containing the area (one row each).
    The references are found by integer keys and binary search (millions of rows: no table joins)."""
    keys = ["indicator_id", "year", "pooled_years", "breakdown", "breakdown_value"]
    t = values.reset_index(drop=True)
    value = t["value"].to_numpy(dtype=float).copy()
    value[t["suppressed"].to_numpy()] = np.nan  # never a reference
    level, levels = pd.factorize(t["level"])
    code, codes = pd.factorize(t["area_code"])
    area = level.astype(np.int64) * (len(codes) + 1) + code
    levels, codes = pd.Index(levels), pd.Index(codes)
    # the kommune of each row: its own code at the kommune level, else from `kommune_of`
    kl, kc = levels.get_indexer(kommune_of["level"]), codes.get_indexer(kommune_of["area_code"])
    ok = (kl >= 0) & (kc >= 0)
    row = _find(kl[ok].astype(np.int64) * (len(codes) + 1) + kc[ok], area)
    kommune = np.where(row >= 0, kommune_of["kommune"].to_numpy(dtype=object)[ok][np.maximum(row, 0)], None)
    is_kommune = t["level"].to_numpy() == "kommune"
    kommune[is_kommune] = t["area_code"].to_numpy(dtype=object)[is_kommune]
    series = np.zeros(len(t), dtype=np.int64)
    for k in keys:
        c, u = pd.factorize(t[k])
        series = series * (len(u) + 1) + c
    kcode = codes.get_indexer(pd.Series(kommune, dtype=object).fillna("").astype(str))
    ref = series * (len(codes) + 1) + kcode
    at_kommune = _find(ref[is_kommune], np.where(kcode >= 0, ref, -1))
    value_kommune = np.where(at_kommune >= 0, value[is_kommune][np.maximum(at_kommune, 0)], np.nan)
    is_country = t["level"].to_numpy() == "country"
    at_country = _find(series[is_country], series)
    value_country = np.where(at_country >= 0, value[is_country][np.maximum(at_country, 0)], np.nan)
    t = t.assign(value=np.where(t["suppressed"].to_numpy(), np.nan, t["value"].to_numpy(dtype=float)))
    t.loc[t["suppressed"].to_numpy(), ["ci_low", "ci_high"]] = np.nan
    t["kommune"] = pd.array(kommune, dtype=kommune_of["kommune"].dtype) if len(t) else kommune
    t["value_kommune"] = value_kommune
    t["value_country"] = value_country
    t["relative_difference_kommune"] = relative_difference(t["value"], t["value_kommune"])
    t["relative_difference_country"] = relative_difference(t["value"], t["value_country"])
    t["label"] = labels(t["relative_difference_country"].to_numpy())
    t["significance_kommune"] = significance(t["ci_low"], t["ci_high"], t["value_kommune"])
    t["significance_country"] = significance(t["ci_low"], t["ci_high"], t["value_country"])
    t["reliable"] = t["denominator"] >= min_reliable
    return t


def _find(table: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The position in `table` (distinct keys) of each query key; −1 where none."""
    if len(table) == 0:
        return np.full(len(query), -1, dtype=np.int64)
    order = np.argsort(table, kind="stable")
    pos = np.minimum(np.searchsorted(table[order], query), len(table) - 1)
    return np.where(table[order][pos] == query, order[pos], -1)
