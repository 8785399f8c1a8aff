"""The area table the schemes read: one row per published area and year, columns taken from the indicator
values (total population, single years).

Column names: `<indicator>` is the value; `<indicator>__num`, `__den`, `__low`, `__high`, `__se` the
numerator, denominator, 95 % interval and the standard error read off it; `__kommune`, `__country` the
reference values; `__trend` the change per year over the last years (weighted least squares, the sign turned
so that positive is worse for indicators with a direction), `__trend_z` that slope over its standard error,
`__change` the fitted change across the window; `__prev` and `__prev_se` the value and standard error of
the year before (a move between two years is counted as an out-move in the first and an in-move in the
second). Only published numbers are used: a suppressed cell is
missing here, so a classification can never reveal what suppression hides.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from levekar.classify.rules import SchemeError
from levekar.indicators.catalogue import Catalogue

KEYS = ["level", "area_code"]
FIELDS = {
    "": "value",
    "__num": "numerator",
    "__den": "denominator",
    "__low": "ci_low",
    "__high": "ci_high",
    "__kommune": "value_kommune",
    "__country": "value_country",
}
TRENDS = ("__trend", "__trend_z", "__change", "__se")
PREVIOUS = ("__prev", "__prev_se")
Z95 = 1.959963984540054


def split_column(column: str) -> tuple[str, str]:
    for suffix in sorted([*FIELDS, *TRENDS, *PREVIOUS], key=len, reverse=True):
        if suffix and column.endswith(suffix):
            return column[: -len(suffix)], suffix
    return column, ""


def directions_of(catalogue: Catalogue) -> dict[str, str]:
    """What classification needs of a catalogue: each indicator's direction."""
    return {i.id: i.direction for i in catalogue.indicators}


def trends(wide_value: pd.DataFrame, wide_se: pd.DataFrame, years: int) -> tuple[pd.DataFrame, ...]:
    """Slope per year over the window ending in each year, its z and the fitted change across the window.

    `wide_*` are (area × year) tables on a full grid of years. Each year's estimate is weighted by 1/se²;
    the standard error of the slope treats the years as independent (they are not quite: many residents
    are counted in several years, which makes the test conservative for levels and slightly liberal for
    slopes). At least three years with a value and a positive standard error are needed."""
    v = wide_value.to_numpy(float)
    se = wide_se.to_numpy(float)
    cols = list(wide_value.columns)
    slope = np.full(v.shape, np.nan)
    z = np.full(v.shape, np.nan)
    for end in range(v.shape[1]):
        lo = max(0, end - years + 1)
        x = np.asarray(cols[lo : end + 1], dtype=float)
        y, s = v[:, lo : end + 1], se[:, lo : end + 1]
        ok = np.isfinite(y) & np.isfinite(s) & (s > 0)
        w = np.where(ok, 1.0 / np.where(ok, s, 1.0) ** 2, 0.0)
        sw = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = (w * x).sum(axis=1) / sw
            dx = x[None, :] - xm[:, None]
            sxx = (w * dx**2).sum(axis=1)
            b = (w * dx * np.where(ok, y, 0)).sum(axis=1) / sxx
            enough = (ok.sum(axis=1) >= 3) & (sxx > 0)
            slope[:, end] = np.where(enough, b, np.nan)
            z[:, end] = np.where(enough, b * np.sqrt(sxx), np.nan)
    index, columns = wide_value.index, wide_value.columns
    return (
        pd.DataFrame(slope, index=index, columns=columns),
        pd.DataFrame(z, index=index, columns=columns),
        pd.DataFrame(slope * (years - 1), index=index, columns=columns),
    )


def area_table(
    values: pd.DataFrame, directions: Mapping[str, str], columns: set[str], trend_years: int = 5
) -> pd.DataFrame:
    """The columns `columns` for every area (all levels but the country) and year in `values`; `directions`
    maps each indicator to its direction (higher_is_worse, higher_is_better, neutral)."""
    wanted: dict[str, set[str]] = {}
    for c in sorted(columns):
        ind, suffix = split_column(c)
        if ind not in directions:
            raise SchemeError(f"column {c!r}: no indicator {ind!r} in the catalogue")
        wanted.setdefault(ind, set()).add(suffix)
    v = values[
        (values["breakdown"] == "total")
        & (values["pooled_years"] == 1)
        & (values["level"] != "country")
        & values["indicator_id"].isin(list(wanted))
    ].copy()
    hidden = v["suppressed"].to_numpy(bool)
    for col in ("value", "numerator", "denominator", "ci_low", "ci_high"):
        v[col] = v[col].astype(float)
        v.loc[hidden, col] = np.nan  # as published
    v["se"] = (v["ci_high"] - v["ci_low"]) / (2 * Z95)
    frame = (
        values.loc[values["level"] != "country", [*KEYS, "year"]]
        .drop_duplicates()
        .sort_values([*KEYS, "year"])
        .reset_index(drop=True)
    )
    out = {}
    for ind, suffixes in wanted.items():
        rows = v[v["indicator_id"] == ind].set_index([*KEYS, "year"])
        for suffix in suffixes & set(FIELDS):
            out[ind + suffix] = rows[FIELDS[suffix]]
        if suffixes & set(TRENDS):
            out[ind + "__se"] = rows["se"]
            span = list(range(int(frame["year"].min()), int(frame["year"].max()) + 1))
            wide_v = rows["value"].unstack("year").reindex(columns=span)
            wide_se = rows["se"].unstack("year").reindex(columns=span)
            slope, z, change = trends(wide_v, wide_se, trend_years)
            sign = -1.0 if directions[ind] == "higher_is_better" else 1.0
            for suffix, wide in (("__trend", slope * sign), ("__trend_z", z * sign), ("__change", change * sign)):
                out[ind + suffix] = wide.stack(future_stack=True)
        if suffixes & set(PREVIOUS):
            before = rows.reset_index().assign(year=lambda f: f["year"] + 1).set_index([*KEYS, "year"])
            out[ind + "__prev"] = before["value"]
            out[ind + "__prev_se"] = before["se"]
    idx = pd.MultiIndex.from_frame(frame)
    for name, series in out.items():
        frame[name] = series.reindex(idx).to_numpy(float)
    return frame
