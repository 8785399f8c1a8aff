"""Compile the catalogue into Ibis aggregations and roll the counts up through the geographic levels.

One pass over the person-year facts per breakdown dimension gives numerator and denominator of every
share indicator per grunnkrets, year and breakdown cell; higher levels (analysis area, zoning, bydel,
kommune, country) are sums of those counts, so they add up exactly. Then values, 95 % Wilson intervals and
primary disclosure control.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from levekar.indicators.catalogue import Catalogue, Indicator
from levekar.indicators.cells import as_categories, categorical, codes, concat, sorted_index
from levekar.indicators.disclosure import primary, rule_columns
from levekar.indicators.expr import columns_of, compile_expr
from levekar.indicators.facts import Stash, moves
from levekar.indicators.ranks import cell_counts, order_statistics

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


def _cross_counts(facts: ir.Table, catalogue: Catalogue) -> tuple[ir.Table, list[tuple[str, str, str]]]:
    """Every additive count in one grouped pass over the facts by grunnkrets, year and every breakdown column
    together — a cross table with `{col}__num`, `{col}__den` (and for means `{col}__ss`) per count — and the
    counts as (indicator id, count id, column prefix). Each breakdown's cells are sums over it (`_wide_counts`),
    not more passes over the persons; the sums are integers and exact decimals, so they do not depend on the
    order of addition."""
    inds = [i for i in catalogue.indicators if i.kind != "median"]
    if not inds:
        raise ValueError("the catalogue has no additive indicator")
    used = {dim for i in inds for dim in i.breakdowns}
    by = ["grunnkrets", "year", *dict.fromkeys(b["column"] for d, b in catalogue.breakdowns.items() if d in used)]
    aggs = {}
    counts = []
    for i in inds:
        for n, (cid, population, numerator) in enumerate(_count_specs(i)):
            col = f"{i.id}__{n}"
            counts.append((i.id, cid, col))
            pop = _as_column(compile_expr(population, facts), facts).fill_null(False)
            if i.kind == "mean":
                # exact sums of the values in whole units of 1e-4 (decimals): a parallel float sum changes
                # in its last bits from run to run. Rounding x·10⁴ to a whole number is the same on every
                # engine (DuckDB rounds the double, Spark its shortest decimal form, which never differ at
                # .5), unlike rounding to 4 places, which Spark does on the decimal form and DuckDB on x·10⁴
                units = (_as_column(compile_expr(i.value, facts), facts).cast("float64") * UNITS).round()
                units = units.cast("decimal(38, 0)")
                pop = pop & units.notnull()
                aggs[f"{col}__num"] = ibis.ifelse(pop, units, 0).sum()
                aggs[f"{col}__ss"] = ibis.ifelse(pop, units * units, 0).cast("decimal(38, 0)").sum()
            else:
                num = _as_column(compile_expr(numerator, facts), facts).fill_null(False)
                aggs[f"{col}__num"] = (pop & num).sum()
            aggs[f"{col}__den"] = pop.sum()
    return facts.group_by(by).aggregate(**aggs), counts


def _wide_counts(
    cross: ir.Table, counts: list[tuple[str, str, str]], catalogue: Catalogue
) -> list[tuple[ir.Table, list[tuple[str, str]]]]:
    """One wide table per breakdown dimension (KEYS, then `{col}__num`, `{col}__den`, `{col}__ss` per count),
    summed from the cross table, and its counts as (count id, column prefix)."""
    means = {i.id for i in catalogue.indicators if i.kind == "mean"}
    allowed = {i.id: set(i.breakdowns) for i in catalogue.indicators}
    out = []
    for dim in [TOTAL, *catalogue.breakdowns]:
        ids = [(cid, col, iid in means) for iid, cid, col in counts if dim == TOTAL or dim in allowed[iid]]
        if not ids:
            continue
        value = ibis.literal(TOTAL) if dim == TOTAL else cross[catalogue.breakdowns[dim]["column"]].cast("string")
        t = cross.mutate(breakdown=ibis.literal(dim), breakdown_value=value)
        sums = {
            f"{col}__{part}": t[f"{col}__{part}"].sum()
            for _, col, mean in ids
            for part in (("num", "den", "ss") if mean else ("num", "den"))
        }
        wide = t.group_by(KEYS).aggregate(**sums)
        converted = {}
        for _, col, mean in ids:
            if mean:
                converted[f"{col}__num"] = _from_units(wide[f"{col}__num"], UNITS)
                converted[f"{col}__ss"] = _from_units(wide[f"{col}__ss"], UNITS * UNITS)
            else:
                converted[f"{col}__num"] = wide[f"{col}__num"].cast("float64")
                converted[f"{col}__ss"] = ibis.literal(0.0)
            converted[f"{col}__den"] = wide[f"{col}__den"].cast("int64")
        out.append((wide.select(*KEYS, **converted), [(cid, col) for cid, col, _ in ids]))
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
        for wide, ids in _wide_counts(*_cross_counts(facts, catalogue), catalogue)
        for cid, col in ids
    ]
    return ibis.union(*parts)


@contextmanager
def _materialised(con: ibis.BaseBackend, expr: ir.Table, name: str) -> Iterator[ir.Table]:
    """`expr` computed once for the queries inside the block, then dropped (`levekar.indicators.facts.Stash`:
    on Spark it stays a query)."""
    stash = Stash(con)
    try:
        yield stash(expr, name)
    finally:
        stash.drop()


def count_units(con: ibis.BaseBackend, facts: ir.Table, catalogue: Catalogue) -> pd.DataFrame:
    """`unit_counts` executed: the cross table (materialised once on DuckDB), then one wide result per
    breakdown dimension, made long here, with categorical keys (`levekar.indicators.cells`). (As one union
    of a hundred projections Spark plans and runs the aggregate once per projection: minutes on the tiny
    preset.)"""
    cross, counts = _cross_counts(facts, catalogue)
    out = []
    with _materialised(con, cross, "levekar_cross") as cached:
        for wide_expr, ids in _wide_counts(cached, counts, catalogue):
            wide = con.to_pyarrow(wide_expr)  # (Ibis's own conversion to pandas takes seconds here)
            n = len(wide)
            rows = np.tile(np.arange(n), len(ids))  # one block of the wide rows per count
            ids_index = sorted_index(cid for cid, _ in ids)
            key = {k: wide[k].to_numpy() if k == "year" else categorical(wide[k].to_pandas()) for k in KEYS}
            out.append(
                pd.DataFrame(
                    {
                        **{k: v[rows] for k, v in key.items()},
                        "indicator_id": pd.Categorical.from_codes(
                            np.repeat(ids_index.get_indexer([cid for cid, _ in ids]), n), categories=ids_index
                        ),
                        **{
                            name: np.concatenate([wide[f"{col}__{part}"].to_numpy().astype(dtype) for _, col in ids])
                            for name, part, dtype in (
                                ("numerator", "num", "float64"),
                                ("denominator", "den", "int64"),
                                ("sum_squares", "ss", "float64"),
                            )
                        },
                    }
                )
            )
    return concat(out)


def medians(facts: ir.Table, catalogue: Catalogue, members: pd.DataFrame) -> pd.DataFrame:
    """Medians per area at every level, year and breakdown cell (not sums, so computed per level from the
    persons), for every level's (level, area_code, grunnkrets) as `levekar.indicators.disclosure.membership`
    gives them: `median_values` fetched by the engine, `medians_of` them here."""
    return medians_of(median_values(facts, catalogue), catalogue, members)


def median_values(facts: ir.Table, catalogue: Catalogue) -> list[tuple[Indicator, pa.Table]]:
    """For each median indicator, the values of its population (grunnkrets, year, x and a column per
    breakdown), fetched from the engine once."""
    out = []
    for i in (i for i in catalogue.indicators if i.kind == "median"):
        f = facts.filter(
            _as_column(compile_expr(i.population, facts), facts).fill_null(False)
            & compile_expr(i.value, facts).notnull()
        )
        dims = {dim: f[catalogue.breakdowns[dim]["column"]].cast("string") for dim in i.breakdowns}
        out.append((i, f.select("grunnkrets", "year", x=compile_expr(i.value, f).cast("float64"), **dims).to_pyarrow()))
    return out


def medians_of(fetched: list[tuple[Indicator, pa.Table]], catalogue: Catalogue, members: pd.DataFrame) -> pd.DataFrame:
    """`medians` from `median_values` (no engine needed: it may be closed).

    The persons' values are sorted once; a cell's k-th value is where its running count reaches k in that
    order, one scan per level (`levekar.indicators.ranks`). The 95 % interval is the distribution-free one
    from order statistics: the values of rank n/2 − 1.96·√n/2 and 1 + n/2 + 1.96·√n/2 among the n sorted
    values. Primary rule: the number of persons."""
    if not fetched:
        return pd.DataFrame()
    members = members[["level", "area_code", "grunnkrets"]].astype(str)
    units = pd.Index(members["grunnkrets"].unique())
    out = []
    for i, t in fetched:
        x = t["x"].to_numpy()
        order = np.argsort(x)  # ties are equal values: their order changes no order statistic
        x = x[order]
        # codes by Arrow's hash kernels: millions of strings are slow to hash in pandas
        unit = pc.fill_null(pc.index_in(t["grunnkrets"], value_set=pa.array(units, pa.string())), -1)
        unit = unit.to_numpy().astype(np.int32)[order]
        year = t["year"].to_numpy()[order]
        first_year = year.min() if len(year) else 0
        year_code = (year - first_year).astype(np.int32)  # a year without persons gets no cell
        years = np.arange(first_year, first_year + year_code.max(initial=0) + 1, dtype=year.dtype)
        for dim in [TOTAL, *i.breakdowns]:
            if dim == TOTAL:
                bv_code, bvs = np.zeros(len(x), dtype=np.int32), pd.Index([TOTAL])
            else:
                coded = t[dim].combine_chunks().dictionary_encode(null_encoding="encode")
                bv_code = coded.indices.to_numpy(zero_copy_only=False).astype(np.int32)[order]
                bvs = pd.Index(coded.dictionary.to_pylist())
            for level, m in members.groupby("level", sort=True):
                out.append(
                    _level_medians(x, unit, year_code, bv_code, units.get_indexer(m["grunnkrets"]), m["area_code"])
                    .assign(level=level, indicator_id=i.id, breakdown=dim)
                    .pipe(lambda d, ys=years, bs=bvs: d.assign(year=ys[d.year], breakdown_value=bs[d.breakdown_value]))
                )
    m = concat(out).assign(pooled_years=1, numerator=np.nan)
    m["suppressed"] = primary(0, m["denominator"], cell_rules(m["indicator_id"], catalogue))
    return m


def _level_medians(
    x: np.ndarray,
    unit: np.ndarray,
    year_code: np.ndarray,
    bv_code: np.ndarray,
    member_unit: np.ndarray,
    member_area: pd.Series,
) -> pd.DataFrame:
    """Median and interval per (area, year, breakdown value) of one level: `x` sorted, with each value's
    grunnkrets, year and breakdown codes; the level's areas given as (grunnkrets index, area code) pairs (a
    grunnkrets may lie in more than one area of a level)."""
    area_code, areas = pd.factorize(member_area)
    keep = member_unit >= 0
    m_unit, m_area = member_unit[keep], area_code[keep].astype(np.int64)
    n_units = int(max(unit.max(initial=-1), m_unit.max(initial=-1))) + 1
    # each grunnkrets' areas (usually one): areas_of[first[u]:first[u + 1]]
    by_unit = np.argsort(m_unit, kind="stable")
    areas_of = m_area[by_unit]
    first = np.searchsorted(m_unit[by_unit], np.arange(n_units + 1))
    n_years, n_bv = int(year_code.max(initial=0)) + 1, int(bv_code.max(initial=0)) + 1
    n_keys = len(areas) * n_years * n_bv
    n = cell_counts(unit, year_code, bv_code, first, areas_of, n_years, n_bv, n_keys)
    g = np.flatnonzero(n)
    n = n[g]
    half = Z95 * np.sqrt(n) / 2
    # ranks (from 1) rounded half up, as SQL's round does: the interval's ends and the two middle values
    lo = np.maximum(np.floor(n / 2 - half + 0.5).astype(np.int64), 1)
    hi = np.minimum(np.floor(1 + n / 2 + half + 0.5).astype(np.int64), n)
    ranks = np.full((n_keys, 4), -1, dtype=np.int64)
    ranks[g] = np.stack([lo, (n - 1) // 2 + 1, n // 2 + 1, hi], axis=1)
    at = order_statistics(x, unit, year_code, bv_code, first, areas_of, n_years, n_bv, ranks)[g]
    return pd.DataFrame(
        {
            "area_code": np.asarray(areas, dtype=object)[g // (n_years * n_bv)],
            "year": (g // n_bv) % n_years,
            "breakdown_value": g % n_bv,
            "denominator": n,
            "value": (at[:, 1] + at[:, 2]) / 2,
            "ci_low": at[:, 0],
            "ci_high": at[:, 3],
        }
    )


def standardise(rolled: pd.DataFrame | list[pd.DataFrame], catalogue: Catalogue) -> pd.DataFrame:
    """Directly age-standardised rates from the per-age-group counts: the country's population (same year
    or window, all breakdowns together) is the standard, w_g = its share in age group g, and

        rate = per × Σ_g w_g · d_g / n_g,   var = per² × Σ_g w_g² · d_g / n_g²  (Poisson counts)

    with d_g deaths (numerator) and n_g persons; an age group nobody in the cell belongs to adds 0. The
    internal rows are replaced by one row per cell with numerator Σ d_g, denominator Σ n_g, `rate` and
    `rate_var`. `rolled` may come in parts (`pooled_parts`; each a whole set of years or windows), joined
    here in one copy."""
    keys = ["level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
    parts = [rolled] if isinstance(rolled, pd.DataFrame) else rolled
    rates = [i for i in catalogue.indicators if i.kind == "standardised"]
    internal = [gid for i in rates for gid, _, _ in i.age_group_ids()]
    masks = [part.indicator_id.isin(internal).to_numpy() for part in parts]
    out = [part[~mask] if mask.any() else part for part, mask in zip(parts, masks, strict=True)]
    for i in rates:
        ids = [gid for gid, _, _ in i.age_group_ids()]
        aggs = []
        for part, mask in zip(parts, masks, strict=True):
            g = part[mask]
            g = g[g.indicator_id.isin(ids)]
            std = g[(g.level == "country") & (g.breakdown == TOTAL)][
                ["indicator_id", "year", "pooled_years", "denominator"]
            ]
            std = std.assign(w=std.denominator / std.groupby(["year", "pooled_years"]).denominator.transform("sum"))
            g = g.merge(std.drop(columns="denominator"), on=["indicator_id", "year", "pooled_years"], how="left")
            n = g.denominator.to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                g["r"] = np.where(n > 0, g.w * g.numerator / n, 0.0) * i.per
                g["v"] = np.where(n > 0, g.w**2 * g.numerator / n**2, 0.0) * i.per**2
            aggs.append(
                g.groupby(keys, observed=True, as_index=False).agg(
                    numerator=("numerator", "sum"),
                    denominator=("denominator", "sum"),
                    rate=("r", "sum"),
                    rate_var=("v", "sum"),
                )
            )
        # in key order across the parts, as one group-by over them all would give
        agg = concat(aggs).sort_values(keys, kind="stable")
        out.append(agg.assign(indicator_id=i.id, sum_squares=0.0))
    return concat(out)


def needed_columns(catalogue: Catalogue) -> set[str]:
    """The fact columns a catalogue's definitions read (for per-level indicators also those their moves are
    measured from again at each level)."""
    cols = {"grunnkrets", "year"} | {b["column"] for b in catalogue.breakdowns.values()}
    for i in catalogue.indicators:
        for text in (i.population, i.numerator, i.value):
            if text:
                cols |= columns_of(text)
        if i.per_level:  # moves are measured again across each level's boundary
            cols |= {"next_grunnkrets", "prev_grunnkrets", "has_next_year", "has_prev_year", "died_in_year", "age"}
    return cols


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
    """Counts of per-level indicators (moves across the boundary) at every level, in `roll_up`'s layout.

    A person-year that crosses no grunnkrets boundary crosses no boundary at any level, and the level
    changes a per-level indicator only through its moves: those person-years are counted once per
    grunnkrets and rolled up like any count. Only the movers (a tenth or so) are seen again from each level."""
    facts = level_facts(facts, "grunnkrets", None)
    mover = facts.moved_in | facts.moved_out
    out = [roll_up(count_units(con, facts.filter(~mover), catalogue), levels)]
    # found once (with the columns these indicators use), seen from each level
    cols = sorted(needed_columns(catalogue) & set(facts.columns))
    with _materialised(con, facts.filter(mover).select(*cols), "levekar_movers") as movers:
        for level, mapping in [("grunnkrets", None), *levels.items(), ("country", None)]:
            c = count_units(con, level_facts(movers, level, mapping), catalogue)
            out.append(c.rename(columns={"grunnkrets": "area_code"}).assign(level=level))
    keys = ["indicator_id", "level", "area_code", "year", "breakdown", "breakdown_value"]
    # sorted by key: the cells' order (which secondary suppression breaks ties by) must not depend on the order
    # an engine returns its groups in
    return concat(out).groupby(keys, observed=True, as_index=False)[SUMMED].sum()[keys + SUMMED]


def roll_up(counts: pd.DataFrame, levels: dict[str, pd.DataFrame], strict: bool = False) -> pd.DataFrame:
    """Sum unit counts to each level. `levels` maps a level name to a frame (grunnkrets, area_code); a level
    may leave codes out (bydel exists only in some kommuner) unless `strict`. The grunnkrets and country
    levels are added here."""
    keys = ["year", "breakdown", "breakdown_value", "indicator_id"]
    # a fixed order, so float sums (means) come out the same to the last bit on every run
    counts = as_categories(counts).sort_values(["grunnkrets", *keys], kind="stable").reset_index(drop=True)
    unit, units = codes(counts["grunnkrets"])
    out = [counts.rename(columns={"grunnkrets": "area_code"}).assign(level="grunnkrets")]
    for level, mapping in levels.items():
        # joined on the grunnkrets' codes (a grunnkrets may be in more than one area of a level)
        at = units.get_indexer(pd.Index(mapping["grunnkrets"].astype(str), dtype=object))
        if strict and (missing := ~np.isin(unit, at)).any():
            raise ValueError(f"level {level!r} has no area for grunnkrets {counts['grunnkrets'][missing].iloc[0]!r}")
        m = pd.DataFrame({"_unit": at, "area_code": categorical(mapping["area_code"].astype(str))})[at >= 0]
        m = counts.drop(columns="grunnkrets").assign(_unit=unit).merge(m, on="_unit")
        out.append(m.groupby(["area_code", *keys], observed=True, as_index=False)[SUMMED].sum().assign(level=level))
    out.append(counts.groupby(keys, observed=True, as_index=False)[SUMMED].sum().assign(level="country", area_code="0"))
    cols = ["indicator_id", "level", "area_code", "year", "breakdown", "breakdown_value", *SUMMED]
    return concat(out)[cols]


def pool_years(rolled: pd.DataFrame, window: int = 3) -> pd.DataFrame:
    """Add pooled values for small areas: the counts of `window` consecutive years summed, labelled with
    the last year and `pooled_years = window` (single years have `pooled_years = 1`)."""
    return concat(pooled_parts(rolled, window))


def pooled_parts(rolled: pd.DataFrame, window: int = 3) -> list[pd.DataFrame]:
    """`pool_years` in parts (the single years, then each window), not yet joined."""
    keys = ["indicator_id", "level", "area_code", "breakdown", "breakdown_value"]
    out = [rolled.assign(pooled_years=1)]
    years = set(rolled["year"].unique().tolist())
    for end in sorted(years):
        if all(end - k in years for k in range(window)):
            part = rolled[rolled["year"].between(end - window + 1, end)]
            out.append(
                part.groupby(keys, observed=True, as_index=False)[SUMMED].sum().assign(year=end, pooled_years=window)
            )
    cols = [*keys[:3], "year", "pooled_years", *keys[3:], *SUMMED]
    return [part[cols] for part in out]


def wilson(numerator: np.ndarray, denominator: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval of a proportion (NaN where the denominator is 0)."""
    n = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(numerator, dtype=float) / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def values(table: pd.DataFrame, catalogue: Catalogue, rules: pd.DataFrame | None = None) -> pd.DataFrame:
    """Value, 95 % interval and primary suppression for rolled-up counts: shares in percent with Wilson
    intervals; means with normal intervals from the summed squares. `rules`: `cell_rules` of the table, if
    the caller has them."""
    t = table.copy(deep=False)  # new columns only: the counts themselves are not changed
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
    rules = cell_rules(t["indicator_id"], catalogue) if rules is None else rules
    t["suppressed"] = primary(t["numerator"], t["denominator"], rules)
    return t.drop(columns=["sum_squares"])


def cell_rules(indicator_ids: pd.Series, catalogue: Catalogue) -> pd.DataFrame:
    """The disclosure rule of each cell's indicator, one row per cell (empty for an id not in the catalogue)."""
    rules = pd.DataFrame(
        [
            {
                "indicator_id": i.id,
                **rule_columns(catalogue.disclosure_rules[i.disclosure], i.kind in ("mean", "median")),
            }
            for i in catalogue.indicators
        ]
    ).set_index("indicator_id")
    code, ids = codes(indicator_ids)
    return rules.reindex(ids).iloc[code].reset_index(drop=True)
