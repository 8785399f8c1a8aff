"""Compile the catalogue into Ibis aggregations and roll the counts up through the geographic levels.

One pass over the person-year facts per breakdown dimension gives numerator and denominator of every
share indicator per grunnkrets, year and breakdown cell; higher levels (analysis area, zoning, bydel,
kommune, country) are sums of those counts, so they add up exactly. Then values, 95 % Wilson intervals and
primary disclosure control.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from levekar.indicators.catalogue import Catalogue
from levekar.indicators.disclosure import primary, rule_columns
from levekar.indicators.expr import compile_expr

Z95 = 1.959963984540054
TOTAL = "total"
SUMMED = ["numerator", "denominator", "sum_squares"]


def _as_column(expr: ir.Value, t: ir.Table) -> ir.Column:
    """A constant definition ("TRUE") as a column of the table."""
    return ibis.ifelse(t.year.notnull(), expr, expr) if isinstance(expr, ir.Scalar) else expr


def unit_counts(facts: ir.Table, catalogue: Catalogue) -> ir.Table:
    """Numerator and denominator of every indicator per grunnkrets, year and breakdown cell (long format:
    grunnkrets, year, breakdown, breakdown_value, indicator_id, numerator, denominator)."""
    parts = []
    for dim in [TOTAL, *catalogue.breakdowns]:
        inds = [i for i in catalogue.indicators if dim == TOTAL or dim in i.breakdowns]
        if not inds:
            continue
        value = ibis.literal(TOTAL) if dim == TOTAL else facts[catalogue.breakdowns[dim]["column"]].cast("string")
        t = facts.mutate(breakdown=ibis.literal(dim), breakdown_value=value)
        aggs = {}
        for i in inds:
            pop = _as_column(compile_expr(i.population, t), t).fill_null(False)
            if i.kind == "mean":
                # exact decimal sums: a parallel float sum changes in its last bits from run to run
                x = _as_column(compile_expr(i.value, t), t).cast("float64").round(4).cast("decimal(38, 4)")
                pop = pop & x.notnull()
                aggs[f"{i.id}__num"] = ibis.ifelse(pop, x, 0).sum()
                aggs[f"{i.id}__ss"] = ibis.ifelse(pop, (x * x).cast("decimal(38, 8)"), 0).sum()
            else:
                num = _as_column(compile_expr(i.numerator, t), t).fill_null(False)
                aggs[f"{i.id}__num"] = (pop & num).sum().cast("float64")
                aggs[f"{i.id}__ss"] = ibis.literal(0.0)
            aggs[f"{i.id}__den"] = pop.sum()
        wide = t.group_by(["grunnkrets", "year", "breakdown", "breakdown_value"]).aggregate(**aggs)
        for i in inds:
            parts.append(
                wide.select(
                    "grunnkrets",
                    "year",
                    "breakdown",
                    "breakdown_value",
                    indicator_id=ibis.literal(i.id),
                    numerator=wide[f"{i.id}__num"].cast("float64"),
                    denominator=wide[f"{i.id}__den"].cast("int64"),
                    sum_squares=wide[f"{i.id}__ss"].cast("float64"),
                )
            )
    return ibis.union(*parts)


def roll_up(counts: pd.DataFrame, levels: dict[str, pd.DataFrame], strict: bool = False) -> pd.DataFrame:
    """Sum unit counts to each level. `levels` maps a level name to a frame (grunnkrets, area_code); a level
    may leave codes out (bydel exists only in some kommuner) unless `strict`. The grunnkrets and country
    levels are added here."""
    keys = ["year", "breakdown", "breakdown_value", "indicator_id"]
    # a fixed order, so float sums (means) come out the same to the last bit on every run
    counts = counts.sort_values(["grunnkrets", *keys], kind="stable").reset_index(drop=True)
    out = [counts.rename(columns={"grunnkrets": "area_code"}).assign(level="grunnkrets")]
    for level, mapping in levels.items():
        m = counts.merge(mapping[["grunnkrets", "area_code"]], on="grunnkrets", how="left")
        missing = m["area_code"].isna()
        if missing.any() and strict:
            raise ValueError(f"level {level!r} has no area for grunnkrets {m.loc[missing, 'grunnkrets'].iloc[0]!r}")
        m = m[~missing]
        out.append(m.groupby(["area_code", *keys], as_index=False)[SUMMED].sum().assign(level=level))
    out.append(counts.groupby(keys, as_index=False)[SUMMED].sum().assign(level="country", area_code="0"))
    cols = ["indicator_id", "level", "area_code", "year", "breakdown", "breakdown_value", *SUMMED]
    return pd.concat(out, ignore_index=True)[cols]


def pool_years(rolled: pd.DataFrame, window: int = 3) -> pd.DataFrame:
    """Add pooled values for small areas: the counts of `window` consecutive years summed, labelled with
    the last year and `pooled_years = window` (single years have `pooled_years = 1`)."""
    keys = ["indicator_id", "level", "area_code", "breakdown", "breakdown_value"]
    out = [rolled.assign(pooled_years=1)]
    years = set(rolled["year"].unique().tolist())
    for end in sorted(years):
        if all(end - k in years for k in range(window)):
            part = rolled[rolled["year"].between(end - window + 1, end)]
            out.append(part.groupby(keys, as_index=False)[SUMMED].sum().assign(year=end, pooled_years=window))
    cols = [*keys[:3], "year", "pooled_years", *keys[3:], *SUMMED]
    return pd.concat(out, ignore_index=True)[cols]


def wilson(numerator: np.ndarray, denominator: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval of a proportion (NaN where the denominator is 0)."""
    n = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(numerator, dtype=float) / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def values(table: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Value, 95 % interval and primary suppression for rolled-up counts: shares in percent with Wilson
    intervals; means with normal intervals from the summed squares."""
    t = table.copy()
    kind = t["indicator_id"].map({i.id: i.kind for i in catalogue.indicators})
    n = t["denominator"].to_numpy(dtype=float)
    s = t["numerator"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s / n, np.nan)
        sd = np.sqrt(np.maximum(t["sum_squares"].to_numpy(dtype=float) - n * mean * mean, 0) / (n - 1))
        half = Z95 * sd / np.sqrt(n)
    lo, hi = wilson(s, n)
    share = (kind == "share").to_numpy()
    t["value"] = np.where(share, 100 * mean, mean)
    t["ci_low"] = np.where(share, 100 * lo, np.where(n > 1, mean - half, np.nan))
    t["ci_high"] = np.where(share, 100 * hi, np.where(n > 1, mean + half, np.nan))
    t["suppressed"] = primary(t["numerator"], t["denominator"], cell_rules(t["indicator_id"], catalogue))
    return t.drop(columns=["sum_squares"])


def cell_rules(indicator_ids: pd.Series, catalogue: Catalogue) -> pd.DataFrame:
    """The disclosure rule of each cell's indicator, one row per cell."""
    rules = pd.DataFrame(
        [
            {"indicator_id": i.id, **rule_columns(catalogue.disclosure_rules[i.disclosure], i.kind == "mean")}
            for i in catalogue.indicators
        ]
    )
    return (
        pd.DataFrame({"indicator_id": indicator_ids.to_numpy()}).merge(rules, how="left").drop(columns="indicator_id")
    )
