"""Compile the catalogue into Ibis aggregations and roll the counts up through the geographic levels.

One pass over the person-year facts per breakdown dimension gives numerator and denominator of every
share indicator per grunnkrets, year and breakdown cell; higher levels (analysis area, zoning, bydel,
kommune, country) are sums of those counts, so they add up exactly. Then values, 95 % Wilson intervals and
primary disclosure control.
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from levekar.indicators.catalogue import Catalogue, Indicator
from levekar.indicators.disclosure import primary, rule_columns
from levekar.indicators.expr import compile_expr
from levekar.indicators.facts import moves

Z95 = 1.959963984540054
TOTAL = "total"
SUMMED = ["numerator", "denominator", "sum_squares"]
UNITS = 10_000  # a mean's values are summed exactly in units of 1/UNITS


def _from_units(total: ir.Value, scale: int) -> ir.Value:
    """An exact decimal sum of whole units as a double, the same on every engine: its whole part and its
    remainder by `scale`, each exact in decimal (multiplied by the decimal 1/scale: DuckDB would divide
    decimals as doubles), each cast to a double, then one IEEE division and one addition. Both engines cast
    the whole part to the nearest double while it is below 2⁶⁴ (and, negative, above −2⁵³: DuckDB rounds
    twice beyond; docs/scale.md)."""
    rest = total % scale
    inverse = ibis.literal(Decimal(1) / scale, f"decimal(38, {len(str(scale)) - 1})")
    whole = ((total - rest) * inverse).cast("decimal(38, 0)")
    return whole.cast("float64") + rest.cast("float64") / scale


def _as_column(expr: ir.Value, t: ir.Table) -> ir.Column:
    """A constant definition ("TRUE") as a column of the table."""
    return ibis.ifelse(t.year.notnull(), expr, expr) if isinstance(expr, ir.Scalar) else expr


def _count_specs(i: Indicator) -> list[tuple[str, str, str]]:
    """(internal id, population, numerator) of the counts an indicator is made of: itself, or for a
    standardised rate one count per age group of the standard."""
    if i.kind == "standardised":
        return [
            (gid, f"({i.population}) AND age >= {lo}" + (f" AND age < {hi}" if hi is not None else ""), i.numerator)
            for gid, lo, hi in i.age_group_ids()
        ]
    return [(i.id, i.population, i.numerator or "")]


KEYS = ["grunnkrets", "year", "breakdown", "breakdown_value"]


def _wide_counts(facts: ir.Table, catalogue: Catalogue) -> list[tuple[ir.Table, list[tuple[str, str]]]]:
    """One grouped pass per breakdown dimension: a wide table (KEYS, then `{col}__num`, `{col}__den`,
    `{col}__ss` per count) and its counts as (indicator id, column prefix)."""
    out = []
    for dim in [TOTAL, *catalogue.breakdowns]:
        inds = [i for i in catalogue.indicators if (dim == TOTAL or dim in i.breakdowns) and i.kind != "median"]
        if not inds:
            continue
        value = ibis.literal(TOTAL) if dim == TOTAL else facts[catalogue.breakdowns[dim]["column"]].cast("string")
        t = facts.mutate(breakdown=ibis.literal(dim), breakdown_value=value)
        aggs = {}
        ids = []
        means = set()
        for i in inds:
            for n, (cid, population, numerator) in enumerate(_count_specs(i)):
                col = f"{i.id}__{n}"
                ids.append((cid, col))
                pop = _as_column(compile_expr(population, t), t).fill_null(False)
                if i.kind == "mean":
                    means.add(col)
                    # exact sums of the values in whole units of 1e-4 (decimals): a parallel float sum changes
                    # in its last bits from run to run. Rounding x·10⁴ to a whole number is the same on every
                    # engine (DuckDB rounds the double, Spark its shortest decimal form, which never differ at
                    # .5), unlike rounding to 4 places, which Spark does on the decimal form and DuckDB on x·10⁴
                    units = (_as_column(compile_expr(i.value, t), t).cast("float64") * UNITS).round()
                    units = units.cast("decimal(38, 0)")
                    pop = pop & units.notnull()
                    aggs[f"{col}__num"] = ibis.ifelse(pop, units, 0).sum()
                    aggs[f"{col}__ss"] = ibis.ifelse(pop, units * units, 0).cast("decimal(38, 0)").sum()
                else:
                    num = _as_column(compile_expr(numerator, t), t).fill_null(False)
                    aggs[f"{col}__num"] = (pop & num).sum().cast("float64")
                aggs[f"{col}__den"] = pop.sum()
        wide = t.group_by(KEYS).aggregate(**aggs)
        converted = {}
        for _, col in ids:
            if col in means:
                converted[f"{col}__num"] = _from_units(wide[f"{col}__num"], UNITS)
                converted[f"{col}__ss"] = _from_units(wide[f"{col}__ss"], UNITS * UNITS)
            else:
                converted[f"{col}__num"] = wide[f"{col}__num"]
                converted[f"{col}__ss"] = ibis.literal(0.0)
            converted[f"{col}__den"] = wide[f"{col}__den"].cast("int64")
        out.append((wide.select(*KEYS, **converted), ids))
    return out


def unit_counts(facts: ir.Table, catalogue: Catalogue) -> ir.Table:
    """Numerator and denominator of every additive indicator per grunnkrets, year and breakdown cell (long
    format: grunnkrets, year, breakdown, breakdown_value, indicator_id, numerator, denominator, sum_squares),
    as one Ibis expression. Medians are not sums; they are computed per level (`medians`). `count_units`
    gives the same rows, faster."""
    parts = [
        wide.select(
            *KEYS,
            indicator_id=ibis.literal(cid),
            numerator=wide[f"{col}__num"],
            denominator=wide[f"{col}__den"],
            sum_squares=wide[f"{col}__ss"],
        )
        for wide, ids in _wide_counts(facts, catalogue)
        for cid, col in ids
    ]
    return ibis.union(*parts)


def count_units(con: ibis.BaseBackend, facts: ir.Table, catalogue: Catalogue) -> pd.DataFrame:
    """`unit_counts` executed: one wide result per breakdown dimension, made long here. (As one union of a
    hundred projections Spark plans and runs the aggregate once per projection: minutes on the tiny preset.)"""
    out = []
    for wide_expr, ids in _wide_counts(facts, catalogue):
        wide = con.execute(wide_expr)
        for cid, col in ids:
            out.append(
                pd.DataFrame(
                    {
                        **{k: wide[k] for k in KEYS},
                        "indicator_id": cid,
                        "numerator": wide[f"{col}__num"].astype("float64"),
                        "denominator": wide[f"{col}__den"].astype("int64"),
                        "sum_squares": wide[f"{col}__ss"].astype("float64"),
                    }
                )
            )
    return pd.concat(out, ignore_index=True)


def medians(facts: ir.Table, catalogue: Catalogue, members: pd.DataFrame) -> pd.DataFrame:
    """Medians per area at every level, year and breakdown cell (not sums, so computed per level from the
    persons: one grouped pass per breakdown over the facts joined to `members`, every level's
    (level, area_code, grunnkrets) as `levekar.indicators.disclosure.membership` gives them).

    The 95 % interval is the distribution-free one from order statistics: the values of rank
    n/2 − 1.96·√n/2 and 1 + n/2 + 1.96·√n/2 among the n sorted values. Primary rule: the number of persons."""
    inds = [i for i in catalogue.indicators if i.kind == "median"]
    if not inds:
        return pd.DataFrame()
    area = ibis.memtable(members[["level", "area_code", "grunnkrets"]].astype(str).reset_index(drop=True))
    out = []
    for i in inds:
        for dim in [TOTAL, *i.breakdowns]:
            f = facts.filter(
                _as_column(compile_expr(i.population, facts), facts).fill_null(False)
                & compile_expr(i.value, facts).notnull()
            )
            bv = ibis.literal(TOTAL) if dim == TOTAL else f[catalogue.breakdowns[dim]["column"]].cast("string")
            t = f.select("grunnkrets", "year", breakdown_value=bv, x=compile_expr(i.value, f).cast("float64"))
            t = t.join(area, "grunnkrets")
            # sorting the collected list (not an ordered aggregate, which Spark's SQL lacks) runs everywhere
            a = t.group_by(["level", "area_code", "year", "breakdown_value"]).aggregate(
                denominator=t.x.count(), xs=t.x.collect().sort()
            )
            half = Z95 * a.denominator.cast("float64").sqrt() / 2
            lo = (a.denominator / 2 - half).round().cast("int64").clip(lower=1)
            hi = (1 + a.denominator / 2 + half).round().cast("int64").clip(upper=a.denominator)
            # positions as int32: Spark indexes arrays with INT only (no list has 2³¹ values)
            mid_lo, mid_hi = ((a.denominator - 1) // 2).cast("int32"), (a.denominator // 2).cast("int32")
            a = a.select(
                "level",
                "area_code",
                "year",
                "breakdown_value",
                "denominator",
                value=(a.xs[mid_lo] + a.xs[mid_hi]) / 2,
                ci_low=a.xs[(lo - 1).cast("int32")],
                ci_high=a.xs[(hi - 1).cast("int32")],
            )
            out.append(a.execute().assign(indicator_id=i.id, breakdown=dim))
    m = pd.concat(out, ignore_index=True).assign(pooled_years=1, numerator=np.nan)
    m["suppressed"] = primary(0, m["denominator"], cell_rules(m["indicator_id"], catalogue))
    return m


def standardise(rolled: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Directly age-standardised rates from the per-age-group counts: the country's population (same year
    or window, all breakdowns together) is the standard, w_g = its share in age group g, and

        rate = per × Σ_g w_g · d_g / n_g,   var = per² × Σ_g w_g² · d_g / n_g²  (Poisson counts)

    with d_g deaths (numerator) and n_g persons; an age group nobody in the cell belongs to adds 0. The
    internal rows are replaced by one row per cell with numerator Σ d_g, denominator Σ n_g, `rate` and
    `rate_var`."""
    keys = ["level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
    out = [rolled[~rolled.indicator_id.str.contains("@", regex=False)]]
    for i in (i for i in catalogue.indicators if i.kind == "standardised"):
        ids = [gid for gid, _, _ in i.age_group_ids()]
        g = rolled[rolled.indicator_id.isin(ids)]
        std = g[(g.level == "country") & (g.breakdown == TOTAL)][
            ["indicator_id", "year", "pooled_years", "denominator"]
        ]
        std = std.assign(w=std.denominator / std.groupby(["year", "pooled_years"]).denominator.transform("sum"))
        g = g.merge(std.drop(columns="denominator"), on=["indicator_id", "year", "pooled_years"], how="left")
        n = g.denominator.to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            g["r"] = np.where(n > 0, g.w * g.numerator / n, 0.0) * i.per
            g["v"] = np.where(n > 0, g.w**2 * g.numerator / n**2, 0.0) * i.per**2
        agg = g.groupby(keys, as_index=False).agg(
            numerator=("numerator", "sum"), denominator=("denominator", "sum"), rate=("r", "sum"), rate_var=("v", "sum")
        )
        out.append(agg.assign(indicator_id=i.id, sum_squares=0.0))
    return pd.concat(out, ignore_index=True)


def level_facts(facts: ir.Table, level: str, mapping: pd.DataFrame | None) -> ir.Table:
    """The facts seen from one level: `grunnkrets` holds the area code (grunnkrets → area from `mapping`;
    None for the country), and the moves are measured across the area's boundary, so that a move between
    two grunnkretser of one area is no move at this level. `unit_counts` of this table are the level's
    counts of a per-level indicator."""
    if level == "grunnkrets":
        return facts.mutate(**moves(facts, facts.grunnkrets, facts.next_grunnkrets, facts.prev_grunnkrets))
    if mapping is None:  # the country: only moves abroad cross its boundary
        here = ibis.literal("0")
        t = facts.mutate(
            area=here,
            next_area=ibis.ifelse(facts.next_grunnkrets.isnull(), ibis.null("string"), here),
            prev_area=ibis.ifelse(facts.prev_grunnkrets.isnull(), ibis.null("string"), here),
        )
    else:
        m = ibis.memtable(mapping[["grunnkrets", "area_code"]].astype(str))
        t = facts.left_join(m.rename(area="area_code"), "grunnkrets").drop("grunnkrets_right")
        nxt = m.rename(next_grunnkrets="grunnkrets", next_area="area_code")
        t = t.left_join(nxt, "next_grunnkrets").drop("next_grunnkrets_right")
        prv = m.rename(prev_grunnkrets="grunnkrets", prev_area="area_code")
        t = t.left_join(prv, "prev_grunnkrets").drop("prev_grunnkrets_right")
        # a grunnkrets outside every area of the level (a bydel-less part of a kommune) is elsewhere
        t = t.mutate(
            next_area=ibis.ifelse(t.next_grunnkrets.notnull() & t.next_area.isnull(), "·", t.next_area),
            prev_area=ibis.ifelse(t.prev_grunnkrets.notnull() & t.prev_area.isnull(), "·", t.prev_area),
        )
        t = t.filter(t.area.notnull())
    t = t.mutate(**moves(t, t.area, t.next_area, t.prev_area))
    return t.mutate(grunnkrets=t.area).drop("area", "next_area", "prev_area")


def per_level_counts(
    con: ibis.BaseBackend, facts: ir.Table, catalogue: Catalogue, levels: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """Counts of per-level indicators (moves across the boundary) at every level, in `roll_up`'s layout:
    one grouped pass over the facts seen from each level."""
    out = []
    for level, mapping in [("grunnkrets", None), *levels.items(), ("country", None)]:
        c = count_units(con, level_facts(facts, level, mapping), catalogue)
        out.append(c.rename(columns={"grunnkrets": "area_code"}).assign(level=level))
    cols = ["indicator_id", "level", "area_code", "year", "breakdown", "breakdown_value", *SUMMED]
    return pd.concat(out, ignore_index=True)[cols]


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
    if "rate" in t:  # standardised rates: normal interval on the Poisson variance, not below 0
        std = (kind == "standardised").to_numpy() & (n > 0)
        rate, sd = t["rate"].to_numpy(dtype=float), np.sqrt(t["rate_var"].to_numpy(dtype=float))
        t.loc[std, "value"] = rate[std]
        t.loc[std, "ci_low"] = np.maximum(rate - Z95 * sd, 0)[std]
        t.loc[std, "ci_high"] = (rate + Z95 * sd)[std]
        t = t.drop(columns=["rate", "rate_var"])
    t["suppressed"] = primary(t["numerator"], t["denominator"], cell_rules(t["indicator_id"], catalogue))
    return t.drop(columns=["sum_squares"])


def cell_rules(indicator_ids: pd.Series, catalogue: Catalogue) -> pd.DataFrame:
    """The disclosure rule of each cell's indicator, one row per cell."""
    rules = pd.DataFrame(
        [
            {
                "indicator_id": i.id,
                **rule_columns(catalogue.disclosure_rules[i.disclosure], i.kind in ("mean", "median")),
            }
            for i in catalogue.indicators
        ]
    )
    return (
        pd.DataFrame({"indicator_id": indicator_ids.to_numpy()}).merge(rules, how="left").drop(columns="indicator_id")
    )
