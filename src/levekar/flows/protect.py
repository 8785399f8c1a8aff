"""Disclosure control of the flows tables, and the tables as published.

The flows are counts of people who did something (moved, died, were born), so every number obeys the
catalogue's primary rule (`levekar.indicators.disclosure.primary`). On top of that, the identities between
the numbers are closed, so that no suppressed count can be worked out by subtraction:

- *movers*: in an area and year pair, residents(t0) = stayers + out-movers + deaths and residents(t1) =
  stayers + in-movers + births, and out-/in-movers are the sums of their kinds. A row (level, area, pair)
  is published whole or not at all: one small group (a count or its complement of 1–4, a base under 20)
  suppresses every count, share and median of the row.
- *the indicator store*: for neighbouring calendar years the in-movers, out-movers, deaths and small-children
  families moving out of a row are the very numerators of the catalogue's `in_movers`, `out_movers`,
  `mortality_age_standardised` and `small_children_families_moving_out` cells; when such a cell is
  suppressed in `indicator_values` (primary or secondary), the row is suppressed too.
- *shares of groups*: the immigrant-background count of a group is its share × its published size, and
  residents(t1)'s count is published in `indicator_values`; so within a family of groups that add up
  (stayers + in-movers + births; in-movers = its kinds; out-movers = its kinds) a measure is published for
  all members or for none. Medians are not sums; the minimum denominator is all they need.
- *across areas* (the cross-level gap: a parent area minus its published children): the flows' counts go
  through the catalogue's own secondary suppression (`levekar.indicators.disclosure.secondary_suppression`,
  rules per relation and the exact audit), one "indicator" per group and year pair. Groups whose persons do
  not depend on the level's boundaries — deaths, births, emigrants, immigrants, the unrecorded, settled
  residents, the followed cohort, families with small children — add up from grunnkretser to every level
  and are protected through every geographic relation (nesting, overlapping zonings); the others (stayers,
  moves within or between kommuner, in- and out-movers, families moving out) are `per_level`, tied only
  between areas of the same grunnkretser, as the catalogue treats its own move indicators. The residents of
  each year are public denominators (the catalogue publishes them). A count suppressed here takes its whole
  row along (or, for the families, both family counts), so every group of a row has the same suppressed
  areas and no combination of groups is recoverable either. Identities between different year pairs are
  not exact (a person is counted in the area of each pair's own years) and are not modelled.
- *decomposition*: a component is a difference of counts among its persons (d0, n0 at t0; d1, n1 at t1);
  each must pass the primary rule on both sides. Components that do not are pooled into `small_groups`,
  which must pass it too; else the decomposition is suppressed. A decomposition is published only where
  both years' indicator cells are published (with the change it would otherwise reveal the suppressed one)
  and where the row's movers counts are published (the components' group sizes are those counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from levekar.flows.core import BASE_GROUPS, IN_GROUPS, OUT_GROUPS, FlowCounts
from levekar.indicators.catalogue import Catalogue
from levekar.indicators.disclosure import TOTAL, primary, rule_columns, secondary_suppression

ROW = ["level", "area_code", "year_from", "year_to"]
IN_SIDE = ("stayers", *IN_GROUPS, "births", "in_movers", "settled_5_years")
OUT_SIDE = (*OUT_GROUPS, "deaths", "out_movers", "cohort_followed")
# catalogue cells equal to a row's counts for neighbouring years: (group, indicator, year of the cell)
SAME_AS_INDICATOR = [
    ("in_movers", "in_movers", "year_to"),
    ("out_movers", "out_movers", "year_from"),
    ("deaths", "mortality_age_standardised", "year_from"),
    ("families_small_children_out", "small_children_families_moving_out", "year_from"),
]
FAMILIES = {
    "arrivals": ("stayers", "in_movers", "births", *IN_GROUPS),
    "departures": ("out_movers", *OUT_GROUPS),
}
SHARES = {  # published measure: (numerator, denominator) columns of the counts
    "employment_20_66": ("emp_num", "emp_den"),
    "immigrant_background": ("imm_num", "persons"),
    "low_income_eu60": ("low_num", "low_den"),
}
WHOLE_ROW = (*BASE_GROUPS, "in_movers", "out_movers", "residents_from", "residents_to")
FAMILY_CELLS = ("families_small_children", "families_small_children_out")
# counts given secondary suppression (the residents are the catalogue's public denominators)
PROTECTED = (*BASE_GROUPS, "in_movers", "out_movers", "settled_5_years", "cohort_followed", *FAMILY_CELLS)
# of them, those whose persons depend on the level's boundaries: they do not add up from one level to another
PER_LEVEL = (
    "stayers",
    "out_within_kommune",
    "out_other_kommune",
    "in_within_kommune",
    "in_other_kommune",
    "in_movers",
    "out_movers",
    "families_small_children_out",
)
MEDIAN_INDICATOR = "median_equivalised_income"
COMPONENTS = ("stayers", "ageing_in", "ageing_out", *IN_GROUPS, "births", *OUT_GROUPS, "deaths")


def default_rule(catalogue: Catalogue) -> dict:
    return rule_columns(catalogue.disclosure_rules["default"])


def _indicator_suppressed(values: pd.DataFrame, indicator_id: str) -> pd.DataFrame:
    cols = ["level", "area_code", "year", "suppressed", "numerator", "denominator", "value"]
    if values.empty:
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "suppressed" else object) for c in cols})
    v = values[(values.indicator_id == indicator_id) & (values.breakdown == "total") & (values.pooled_years == 1)]
    return v[["level", "area_code", "year", "suppressed", "numerator", "denominator", "value"]]


def _cells(g: pd.DataFrame, den: np.ndarray) -> pd.DataFrame:
    """The flows' counts as cells of `levekar.indicators.disclosure` (one 'indicator' per group and year
    pair, so that only areas are tied together), for the groups in `PROTECTED`."""
    keep = g.grp.isin(list(PROTECTED)).to_numpy()
    c = g.loc[keep, [*ROW, "grp"]].copy()
    c["indicator_id"] = c.grp + "|" + c.year_from.astype(str) + "-" + c.year_to.astype(str)
    c["year"] = c.year_to.astype("int64")
    c["pooled_years"] = 1
    c["breakdown"] = TOTAL
    c["breakdown_value"] = TOTAL
    c["numerator"] = g.persons.to_numpy()[keep].astype(float)
    c["denominator"] = den[keep].astype(float)
    c["suppressed"] = g.suppressed.to_numpy()[keep]
    c["row"] = np.flatnonzero(keep)
    return c.reset_index(drop=True)


def secondary(g: pd.DataFrame, den: np.ndarray, members: pd.DataFrame, rule: dict) -> tuple[np.ndarray, dict]:
    """The cells of `g` to suppress so that no suppressed count of an additive group can be worked out from
    other areas (a parent minus its published children, two overlapping areas, …): the catalogue's secondary
    suppression on the flows' counts. Groups whose persons depend on the level's boundaries (stayers, moves
    within the kommune, in- and out-movers) add up only between areas of the same grunnkretser (`per_level`)."""
    cells = _cells(g, den)
    if cells.empty:
        return g.suppressed.to_numpy(), {}
    rules = pd.DataFrame([rule] * len(cells))
    per_level = {i for i in cells.indicator_id.unique() if i.split("|")[0] in PER_LEVEL}
    flags, summary = secondary_suppression(cells, members, rules, per_level=per_level)
    out = g.suppressed.to_numpy().copy()
    out[cells.row.to_numpy()[flags]] = True
    return out, summary


def protect_groups(
    groups: pd.DataFrame, values: pd.DataFrame, catalogue: Catalogue, members: pd.DataFrame | None = None
) -> pd.DataFrame:
    """`groups` with `suppressed` (the row's counts), and per measure a `<measure>_hidden` flag. With
    `members` (the areas' grunnkretser) the additive counts also get secondary suppression."""
    rule = default_rule(catalogue)
    # every group in every row, an empty group as 0 persons (a known zero is published: "-")
    labels = sorted(set(groups.grp))
    full = groups[ROW].drop_duplicates().merge(pd.DataFrame({"grp": labels}), how="cross")
    g = full.merge(groups, on=[*ROW, "grp"], how="left")
    for c in ("persons", "emp_den", "emp_num", "imm_num", "low_den", "low_num", "inc_den"):
        g[c] = g[c].fillna(0).astype("int64")
    base = g[g.grp.isin(["residents_from", "residents_to"])].pivot_table(
        index=ROW, columns="grp", values="persons", aggfunc="sum", fill_value=0
    )
    g = g.merge(base.reset_index(), on=ROW, how="left")
    for c in ("residents_from", "residents_to"):
        g[c] = g[c].fillna(0)
    fam = g[g.grp == "families_small_children"][[*ROW, "persons"]].rename(columns={"persons": "fam_base"})
    g = g.merge(fam, on=ROW, how="left")
    den = np.select(
        [g.grp.isin(IN_SIDE), g.grp.isin(OUT_SIDE), g.grp == "families_small_children_out"],
        [g.residents_to, g.residents_from, g.fam_base.fillna(0)],
        default=g.persons,
    )
    g["cell_small"] = primary(g.persons, den, rule)
    # the whole row of counts goes when one of its groups is small
    in_row = g.grp.isin(list(WHOLE_ROW)).to_numpy()
    small_row = g[in_row & g.cell_small].groupby(ROW).size().rename("n_small").reset_index()
    g = g.merge(small_row, on=ROW, how="left")
    row_hidden = g.n_small.fillna(0).to_numpy() > 0
    # the same counts in the indicator store
    for _grp, ind, year_col in SAME_AS_INDICATOR:
        s = _indicator_suppressed(values, ind)
        s = s[s.suppressed][["level", "area_code", "year"]].assign(hit=True)
        m = g[[*ROW]].assign(year=g[year_col]).merge(s, on=["level", "area_code", "year"], how="left")
        hit = m.hit.fillna(False).to_numpy(dtype=bool) & (g.year_to == g.year_from + 1).to_numpy()
        row_hidden |= _spread(g, hit)
    fam_cells = g.grp.isin(list(FAMILY_CELLS)).to_numpy()
    fs = _spread(g, fam_cells & g.cell_small.to_numpy())
    g["suppressed"] = np.where(fam_cells, fs | row_hidden, row_hidden | (g.cell_small.to_numpy() & ~in_row))
    if members is not None:
        # secondary suppression across areas; a newly suppressed count takes its row (or its family pair) along
        flags, _ = secondary(g, np.where(fam_cells, g.residents_from, den), members, rule)
        new = flags & ~g.suppressed.to_numpy()
        row_hidden |= _spread(g, new & in_row)
        fs |= _spread(g, new & fam_cells)
        g["suppressed"] = np.where(fam_cells, fs | row_hidden, row_hidden | flags)
    # the measures
    for m, (num, d) in SHARES.items():
        g[f"{m}_hidden"] = g.suppressed | primary(g[num], g[d], rule)
        for family in FAMILIES.values():
            fam_rows = g.grp.isin(family)
            bad = g[fam_rows & g[f"{m}_hidden"] & (g[d] > 0)][ROW].drop_duplicates().assign(b=True)
            hit = g[ROW].merge(bad, on=ROW, how="left").b.fillna(False).to_numpy(dtype=bool)
            g.loc[fam_rows & hit, f"{m}_hidden"] = True
    # the residents' medians are the catalogue's median income of each year (the same persons, the same
    # definition), published or suppressed as it is there
    med = _indicator_suppressed(values, MEDIAN_INDICATOR)
    for grp, year_col in (("residents_from", "year_from"), ("residents_to", "year_to")):
        at = (g.grp == grp).to_numpy()
        m = (
            g.loc[at, ["level", "area_code", year_col]]
            .rename(columns={year_col: "year"})
            .merge(med, on=["level", "area_code", "year"], how="left")
        )
        value = pd.to_numeric(m.value, errors="coerce").astype(float)
        g.loc[at, "inc_median"] = value.where(~m.suppressed.fillna(True).astype(bool)).to_numpy(dtype=float)
    g["median_eq_income_hidden"] = g.suppressed | (g.inc_den < rule["min_denominator"]) | g.inc_median.isna()
    return g.drop(columns=["residents_from", "residents_to", "fam_base", "n_small", "cell_small"])


def _spread(g: pd.DataFrame, hit: np.ndarray) -> np.ndarray:
    """True on every row (level, area, pair) of `g` where `hit` is True somewhere."""
    rows = g.loc[hit, ROW].drop_duplicates().assign(_hit=True)
    return g[ROW].merge(rows, on=ROW, how="left")._hit.fillna(False).to_numpy(dtype=bool)


def movers_table(g: pd.DataFrame) -> pd.DataFrame:
    """The published movers table: one row per level, area, pair and group; shares in percent; nothing
    suppressed has a number (empty: suppressed or nobody to measure)."""
    out = g[[*ROW, "grp"]].rename(columns={"grp": "group"}).copy()
    out["persons"] = g.persons.astype("Int64").mask(g.suppressed.to_numpy())
    for m, (num, d) in SHARES.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            v = 100 * g[num].to_numpy(dtype=float) / g[d].to_numpy(dtype=float)
        out[m] = np.where(g[f"{m}_hidden"] | (g[d] == 0), np.nan, v)
    out["median_eq_income"] = np.where(g.median_eq_income_hidden | (g.inc_den == 0), np.nan, g.inc_median)
    out["suppressed"] = g.suppressed.to_numpy()
    return out.sort_values([*ROW, "group"]).reset_index(drop=True)


def cohort_table(movers: pd.DataFrame) -> pd.DataFrame:
    """Fixed cohort beside current population: the residents of `year_from` followed wherever they live in
    `year_to` (`fixed_cohort`), and the area's residents in each year (`current_population`); with where the
    cohort is in `year_to` (counts, as in the movers table)."""
    p = movers.set_index([*ROW, "group"])
    measures = ["persons", *SHARES, "median_eq_income"]
    frm = p.xs("residents_from", level="group")[measures]
    to_current = p.xs("residents_to", level="group")[measures]
    to_cohort = p.xs("cohort_followed", level="group")[measures]
    rows = []
    for view, to in (("fixed_cohort", to_cohort), ("current_population", to_current)):
        t = frm.add_suffix("_from").join(to.add_suffix("_to"), how="outer")
        rows.append(t.assign(view=view))
    out = pd.concat(rows).reset_index()
    where = {
        "stayers": "in_area",
        "out_within_kommune": "elsewhere_in_kommune",
        "out_other_kommune": "other_kommune",
        "emigrated": "emigrated",
        "deaths": "died",
        "left_unrecorded": "unrecorded",
    }
    w = movers[movers.group.isin(list(where))].pivot_table(
        index=ROW, columns="group", values="persons", aggfunc="first"
    )
    w = w.rename(columns=where).reindex(columns=list(where.values())).reset_index()
    out = out.merge(w, on=ROW, how="left")
    for c in where.values():
        out[c] = out[c].astype("Int64").where(out.view == "fixed_cohort")
    cols = [*ROW, "view", *[f"{m}_{s}" for m in measures for s in ("from", "to")], *where.values()]
    out["persons_from"] = out["persons_from"].astype("Int64")
    out["persons_to"] = out["persons_to"].astype("Int64")
    return out[cols].sort_values([*ROW, "view"]).reset_index(drop=True)


def contributions(d: pd.DataFrame) -> pd.DataFrame:
    """Exact contributions from the components' counts. With D0, N0, D1, N1 the area's population and
    numerator counts in the two years (Σ over components) and s0 = N0/D0, component g adds

        c_g = (Δn_g − s0 · Δd_g) / D1 = (D0 · Δn_g − N0 · Δd_g) / (D0 · D1),   Δn_g = n1_g − n0_g, Δd_g = d1_g − d0_g

    and Σ_g c_g = (D0 · N1 − N0 · D1) / (D0 · D1) = N1/D1 − N0/D0 exactly: the integer numerators
    `contribution_num` add up to `change_num` over the common denominator `scale` = D0 · D1."""
    keys = ["indicator_id", *ROW]
    tot = d.groupby(keys, as_index=False)[["d0", "n0", "d1", "n1"]].sum()
    tot = tot.rename(columns={"d0": "D0", "n0": "N0", "d1": "D1", "n1": "N1"})
    d = d.merge(tot, on=keys)
    d["contribution_num"] = d.D0 * (d.n1 - d.n0) - d.N0 * (d.d1 - d.d0)
    d["change_num"] = d.D0 * d.N1 - d.N0 * d.D1
    d["scale"] = d.D0 * d.D1
    return d


LABELS = {
    "stayers": "change among those who stayed",
    "ageing_in": "residents entering the population (ageing in)",
    "ageing_out": "residents leaving the population (ageing out)",
    "in_within_kommune": "in-movers from elsewhere in the kommune",
    "in_other_kommune": "in-movers from other kommuner",
    "immigrated": "immigrants",
    "arrived_unrecorded": "arrivals without a recorded move",
    "births": "births",
    "out_within_kommune": "out-movers to elsewhere in the kommune",
    "out_other_kommune": "out-movers to other kommuner",
    "emigrated": "emigrants",
    "left_unrecorded": "departures without a recorded move or death",
    "deaths": "deaths",
    "small_groups": "small groups together",
}


def _reading(change: float, v0: float, v1: float, parts: dict[str, float], shares: dict[str, float]) -> str:
    """'The share fell 3.1 points (20.0 → 16.9 %); 2.4 of them because …' — the two largest parts."""
    if abs(change) < 0.05:
        text = f"The share barely changed ({v0:.1f} → {v1:.1f} %)"
    else:
        text = f"The share {'rose' if change > 0 else 'fell'} {abs(change):.1f} points ({v0:.1f} → {v1:.1f} %)"
    top = sorted(((k, c) for k, c in parts.items() if np.isfinite(c)), key=lambda kc: (-abs(kc[1]), kc[0]))[:2]
    bits = []
    for k, c in top:
        if abs(c) < 0.05:
            continue
        direction = "up" if c > 0 else "down"
        why = ""
        if k in shares and np.isfinite(shares[k]) and k not in ("stayers", "small_groups"):
            rel = "higher" if shares[k] > v0 else "lower"
            why = f" ({shares[k]:.1f} %, {rel} than the area's {v0:.1f} %)"
        bits.append(f"{abs(c):.1f} {direction} from {LABELS[k]}{why}")
    return text + ("; " + "; ".join(bits) if bits else "") + "."


def decomposition_table(
    counts: FlowCounts, movers: pd.DataFrame, values: pd.DataFrame, catalogue: Catalogue
) -> pd.DataFrame:
    """The published decomposition: one row per indicator, level, area and pair with the observed values,
    the change (percentage points) and the contribution of each component; pooled components are empty and
    their sum is `small_groups`; `suppressed` rows carry no numbers."""
    rule = default_rule(catalogue)
    keys = ["indicator_id", *ROW]
    d = contributions(counts.decomposition)
    d = d[d.D0.gt(0) & d.D1.gt(0)]
    d["small"] = primary(d.n0, d.d0, rule) | primary(d.n1, d.d1, rule)
    pooled = d[d.small].groupby(keys, as_index=False)[["d0", "n0", "d1", "n1"]].sum()
    pooled["pool_small"] = primary(pooled.n0, pooled.d0, rule) | primary(pooled.n1, pooled.d1, rule)
    names = d[d.small].groupby(keys)["component"].apply(lambda s: ",".join(sorted(s))).rename("pooled")
    d["pp"] = 100 * d.contribution_num / d.scale
    # the component's own share (t1 for arrivals, t0 for departures) for the reading
    with np.errstate(divide="ignore", invalid="ignore"):
        d["own"] = np.where(d.d1 > 0, 100 * d.n1 / d.d1, 100 * d.n0 / d.d0)
    # a component nobody belongs to adds 0; a pooled one is empty (its part is in small_groups)
    wide = d.pivot_table(index=keys, columns="component", values="pp", aggfunc="first")
    wide = wide.reindex(columns=list(COMPONENTS)).fillna(0.0)
    pooled_mask = d.pivot_table(index=keys, columns="component", values="small", aggfunc="first")
    pooled_mask = pooled_mask.reindex(index=wide.index, columns=list(COMPONENTS)).eq(True)
    wide = wide.mask(pooled_mask)
    own = d.pivot_table(index=keys, columns="component", values="own", aggfunc="first")
    # summed as integers over the common denominator: exact, so independent of the rows' order
    small_num = d[d.small].groupby(keys)["contribution_num"].sum()
    scale = d[d.small].groupby(keys)["scale"].first()
    small_pp = (100 * small_num / scale).rename("small_groups")
    head = d.groupby(keys).agg(
        D0=("D0", "first"),
        N0=("N0", "first"),
        D1=("D1", "first"),
        N1=("N1", "first"),
        change_num=("change_num", "first"),
        scale=("scale", "first"),
    )
    out = head.join(wide).join(small_pp).join(names).reset_index()
    out = out.merge(pooled[[*keys, "pool_small"]], on=keys, how="left")
    out["small_groups"] = out.small_groups.fillna(0.0)
    out["value_from"] = 100 * out.N0 / out.D0
    out["value_to"] = 100 * out.N1 / out.D1
    out["change"] = 100 * out.change_num / out.scale
    # suppression: small pooled groups, an endpoint suppressed in the indicator store, the movers row hidden
    hidden = out.pool_small.fillna(False).to_numpy(dtype=bool)
    v = values[(values.breakdown == "total") & (values.pooled_years == 1)][
        ["indicator_id", "level", "area_code", "year", "suppressed"]
    ]
    for col in ("year_from", "year_to"):
        m = out[keys].merge(v.rename(columns={"year": col}), on=["indicator_id", "level", "area_code", col], how="left")
        hidden |= m.suppressed.fillna(True).to_numpy(dtype=bool)
    rows = movers[movers.group == "residents_from"][[*ROW, "suppressed"]]
    hidden |= out[ROW].merge(rows, on=ROW, how="left").suppressed.fillna(True).to_numpy(dtype=bool)
    out["suppressed"] = hidden
    readings = []
    for r, o in zip(
        out.itertuples(index=False), own.reindex(out.set_index(keys).index).itertuples(index=False), strict=True
    ):
        if r.suppressed:
            readings.append("")
            continue
        parts = {c: getattr(r, c) for c in COMPONENTS}
        parts["small_groups"] = r.small_groups
        readings.append(_reading(r.change, r.value_from, r.value_to, parts, dict(zip(own.columns, o, strict=True))))
    out["reading"] = readings
    numeric = ["value_from", "value_to", "change", *COMPONENTS, "small_groups"]
    out.loc[hidden, numeric] = np.nan
    out["pooled"] = out.pooled.fillna("").where(~hidden, "")
    cols = [*keys, "value_from", "value_to", "change", *COMPONENTS, "small_groups", "pooled", "suppressed", "reading"]
    return out[cols].sort_values(keys).reset_index(drop=True)
