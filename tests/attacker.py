"""The attacker of the disclosure tests, written apart from levekar.indicators.disclosure.

It knows what anyone can download: the published cells (counts where not suppressed) and which grunnkretser
make up each area. It writes every cell as a sum of base cells (grunnkrets × single year × breakdown value),
adds the margins of the base cells (a total is the sum over each breakdown's values), and asks for each
suppressed cell whether the published cells pin it down.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from levekar.indicators.disclosure import recoverable

KEY = ["level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]


def exact_rank(rows: list[list[Fraction]]) -> int:
    """Rank over the rationals by plain Gaussian elimination."""
    m = [r[:] for r in rows]
    rank = 0
    cols = len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((i for i in range(rank, len(m)) if m[i][c] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][c] != 0:
                f = m[i][c] / m[rank][c]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def attack_store(values: pd.DataFrame, members: pd.DataFrame, per_level: set[str] = frozenset()) -> pd.DataFrame:
    """The suppressed cells of a published table that the published ones determine (should be none).

    `values` is the published `indicator_values` table, `members` its `area_grunnkrets` table; `per_level`
    names the indicators whose counts are not sums of grunnkrets counts (moves across an area's boundary):
    for them only margins, years and areas of the same grunnkretser tie cells together. The attacker does
    not know which suppressed cells are empty (the store hides their denominators)."""
    found = []
    for name, v in values.groupby("indicator_id", sort=True):
        v = v.reset_index(drop=True).assign(col=lambda d: np.arange(len(d)))
        eqs = _per_level_equations(v, members) if name in per_level else _sum_equations(v, members)
        # published cells are known: substitute them away
        known = set(v.col[~v.suppressed.to_numpy()].tolist())
        system = [e for e in ({c: x for c, x in e.items() if c not in known} for e in eqs) if e]
        for c in sorted(recoverable(system)):
            found.append(tuple(v.loc[c, ["indicator_id", *KEY]]))
    return pd.DataFrame(found, columns=["indicator_id", *KEY])


def _per_level_equations(v: pd.DataFrame, members: pd.DataFrame) -> list[dict[int, int]]:
    eqs: list[dict[int, int]] = []
    cell = ["level", "area_code", "year", "pooled_years"]
    tot = v[v.breakdown == "total"][[*cell, "col"]].rename(columns={"col": "t"})
    for (t, _), part in v[v.breakdown != "total"].merge(tot, on=cell).groupby(["t", "breakdown"]):
        eqs.append({int(t): 1, **{int(c): -1 for c in part.col}})
    single = v[v.pooled_years == 1].rename(columns={"year": "y", "col": "s"})[
        ["level", "area_code", "breakdown", "breakdown_value", "y", "s"]
    ]
    j = v[v.pooled_years > 1].merge(single, on=["level", "area_code", "breakdown", "breakdown_value"])
    for c, part in j[(j.y <= j.year) & (j.y > j.year - j.pooled_years)].groupby("col"):
        eqs.append({int(c): 1, **{int(x): -1 for x in part.s}})
    # areas of the same grunnkretser are the same cell
    sig = members.groupby(["level", "area_code"])["grunnkrets"].agg(lambda g: ",".join(sorted(g))).rename("sig")
    w = v.merge(sig.reset_index(), on=["level", "area_code"])
    for _, part in w.groupby(["sig", "year", "pooled_years", "breakdown", "breakdown_value"]):
        cols = part.col.tolist()
        eqs += [{int(cols[0]): 1, int(c): -1} for c in cols[1:]]
    return eqs


def _sum_equations(v: pd.DataFrame, members: pd.DataFrame) -> list[dict[int, int]]:
    is_base = ((v.level == "grunnkrets") & (v.pooled_years == 1)).to_numpy()
    base = v[is_base]
    eqs: list[dict[int, int]] = []
    # margins of the base cells: total = sum of each breakdown's values
    tot = base[base.breakdown == "total"][["area_code", "year", "col"]].rename(columns={"col": "t"})
    parts = base[base.breakdown != "total"].merge(tot, on=["area_code", "year"])
    for (t, _), part in parts.groupby(["t", "breakdown"]):
        eqs.append({int(t): 1, **{int(c): -1 for c in part.col}})
    # every other cell as the sum of its base cells
    other = v[~is_base].merge(members, on=["level", "area_code"])
    b = base[["area_code", "year", "breakdown", "breakdown_value", "col"]].rename(
        columns={"area_code": "grunnkrets", "year": "y", "col": "b"}
    )
    j = other.merge(b, on=["grunnkrets", "breakdown", "breakdown_value"])
    j = j[(j.y <= j.year) & (j.y > j.year - j.pooled_years)]
    for c, part in j.groupby("col"):
        eqs.append({int(c): 1, **{int(x): -1 for x in part.b}})
    return eqs
