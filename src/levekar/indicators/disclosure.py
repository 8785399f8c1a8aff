"""Secondary suppression: no suppressed count can be worked out from the published ones.

Every published cell of an indicator — a level, area, year or pooled window, and breakdown value — is a sum
of base cells (grunnkrets × single year × breakdown value). The cells are tied by additive relations:

- margins: a cell's total is the sum over the values of each breakdown;
- geography: an area is the sum of the areas of another level inside it plus the grunnkretser left over
  (an analysis area = its grunnkretser; a bydel = the analysis areas inside it + the rest; a kommune = its
  bydeler + the rest; the country = its kommuner) — how two nested geographies are subtracted; two areas
  that overlap without nesting (an analysis area and a zone) share their intersection;
- years: a pooled value is the sum of its single years, and two overlapping windows differ by their first
  and last years.

Denominators are treated as public (SSB publishes population counts by area, sex and age), so what is
protected is each numerator, and with it its complement. A cell over nobody reveals nothing and is published
as empty. Protection is per indicator: identities between different indicators' counts are not modelled.

Relations never mix indicators, so each indicator is its own problem, solved on its own (on worker processes
when there are many cells). Two passes, repeated until neither changes anything:
1. *rules per relation* (vectorised, looking only at relations that changed): a relation may not have exactly
   one suppressed member, and the suppressed members of a relation whose total is published may not add up
   to a small group (the primary rule on their sum) — otherwise one more member is suppressed: the one that
   starts the smallest cascade, then has the smallest denominator, children before the parent;
2. *an exact audit* (the attacker): the published cells as linear equations over the suppressed ones, solved
   modulo a 61-bit prime by peeling and sparse elimination; a suppressed cell is recoverable when it takes
   the same value in every solution. Each relation of a recoverable cell gets one more suppressed member.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from levekar.indicators import forks
from levekar.indicators.cells import categorical
from levekar.indicators.modular import first_of_pairs, group_order, null_vector

PRIME = (1 << 61) - 1
CELL_KEYS = ["indicator_id", "level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
TOTAL = "total"
RULE_COLUMNS = ("min_denominator", "lo", "hi", "clo", "chi", "mean")  # `rule_columns`' form
PARALLEL_CELLS = 200_000  # fewer cells than this are protected in this process: a worker costs more


# --- the relations -----------------------------------------------------------------------------------------


def membership(levels: dict[str, pd.DataFrame], grunnkretser: pd.Series) -> pd.DataFrame:
    """(level, area_code, grunnkrets) for every level, grunnkrets and country included."""
    g = pd.Series(sorted(set(grunnkretser)), dtype=str)
    parts = [pd.DataFrame({"level": "grunnkrets", "area_code": g, "grunnkrets": g})]
    for name, m in levels.items():
        parts.append(m[["area_code", "grunnkrets"]].astype(str).assign(level=name))
    parts.append(pd.DataFrame({"level": "country", "area_code": "0", "grunnkrets": g}))
    return pd.concat(parts, ignore_index=True)[["level", "area_code", "grunnkrets"]].drop_duplicates()


def area_relations(members: pd.DataFrame) -> pd.DataFrame:
    """Geographic relations between areas: (relation, parent level and code, child level and code).

    For each area and each other level, the areas of that level it contains plus its grunnkretser not
    covered by them; for each area also its grunnkretser. A kommune is the sum of its grunnkretser only when
    no other level lies inside it, and the country is the sum of its kommuner: those large relations follow
    from the others."""
    size = members.groupby(["level", "area_code"]).size().rename("size").reset_index()
    levels = sorted(set(members["level"]) - {"grunnkrets"})
    out = []
    for parent in levels:
        pm = members[members.level == parent][["area_code", "grunnkrets"]].rename(columns={"area_code": "parent"})
        if parent == "country":
            children = ["kommune" if "kommune" in levels else "grunnkrets"]
        else:
            children = [lv for lv in levels if lv not in (parent, "country")] + ["grunnkrets"]
        related: set[str] = set()  # parents with a relation already
        for child in children:
            cm = members[members.level == child][["area_code", "grunnkrets"]].rename(columns={"area_code": "child"})
            j = pm.merge(cm, on="grunnkrets")
            if child == "grunnkrets" and parent == "kommune":
                j = j[~j.parent.isin(related)]
            n = j.groupby(["parent", "child"]).size().rename("n").reset_index()
            n = n.merge(size[size.level == child].rename(columns={"area_code": "child"}), on="child")
            inside = n[n["n"] == n["size"]][["parent", "child"]]
            if inside.empty:
                continue
            rows = inside.assign(child_level=child)
            if child != "grunnkrets" and parent != "country":
                covered = j.merge(inside, on=["parent", "child"])["grunnkrets"]
                rest = pm[~pm.grunnkrets.isin(covered) & pm.parent.isin(inside.parent)]
                rows = pd.concat([rows, rest.rename(columns={"grunnkrets": "child"}).assign(child_level="grunnkrets")])
            rows = rows.assign(parent_level=parent, via=child)
            # a generating set (the rest follows from it), enough for the exact audit: every area as the sum
            # of its grunnkretser, a kommune through the first level inside it, the country through kommuner
            first = ~rows.parent.isin(related)
            rows["generating"] = (child == "grunnkrets") | (parent == "country") | ((parent == "kommune") & first)
            related |= set(inside.parent)
            out.append(rows)
    cols = ["relation", "parent_level", "parent", "child_level", "child", "generating", "identity"]
    if not out:
        return pd.DataFrame(columns=cols)
    rel = pd.concat(out, ignore_index=True)
    rel["relation"] = rel.groupby(["parent_level", "parent", "via"], sort=True).ngroup()
    # two areas of the same grunnkretser: the same cell, whatever the indicator
    sizes = size.set_index(["level", "area_code"])["size"]
    n_children = rel.groupby("relation")["child"].transform("size")
    same = (
        sizes.reindex(pd.MultiIndex.from_arrays([rel.parent_level, rel.parent])).to_numpy()
        == sizes.reindex(pd.MultiIndex.from_arrays([rel.child_level, rel.child])).to_numpy()
    )
    rel["identity"] = (n_children == 1).to_numpy() & same
    return rel[cols]


def crossing_relations(members: pd.DataFrame) -> pd.DataFrame:
    """Two areas of different levels that overlap without one containing the other share an
    intersection: a1 − (a1 \\ a2) = a2 − (a2 \\ a1). Long table (relation, level, area_code, coef)."""
    levels = sorted(set(members["level"]) - {"grunnkrets", "kommune", "country"})
    size = members.groupby(["level", "area_code"]).size()
    out = []
    for i, l1 in enumerate(levels):
        for l2 in levels[i + 1 :]:
            m1 = members[members.level == l1][["area_code", "grunnkrets"]].rename(columns={"area_code": "a1"})
            m2 = members[members.level == l2][["area_code", "grunnkrets"]].rename(columns={"area_code": "a2"})
            n = m1.merge(m2, on="grunnkrets").groupby(["a1", "a2"]).size().rename("n").reset_index()
            n = n[(n.n < size.loc[l1].reindex(n.a1).to_numpy()) & (n.n < size.loc[l2].reindex(n.a2).to_numpy())]
            if n.empty:
                continue
            pairs = n[["a1", "a2"]].assign(relation=np.arange(len(n)))
            only1 = pairs.merge(m1, on="a1").merge(m2, on=["a2", "grunnkrets"], how="left", indicator=True)
            only2 = pairs.merge(m2, on="a2").merge(m1, on=["a1", "grunnkrets"], how="left", indicator=True)
            parts = [
                pairs.assign(level=l1, area_code=pairs.a1, coef=1),
                pairs.assign(level=l2, area_code=pairs.a2, coef=-1),
                only1[only1._merge == "left_only"].assign(
                    level="grunnkrets", area_code=lambda d: d.grunnkrets, coef=-1
                ),
                only2[only2._merge == "left_only"].assign(level="grunnkrets", area_code=lambda d: d.grunnkrets, coef=1),
            ]
            rel = pd.concat([p[["relation", "level", "area_code", "coef"]] for p in parts], ignore_index=True)
            out.append(rel.assign(pair=f"{l1}|{l2}"))
    if not out:
        return pd.DataFrame(columns=["relation", "level", "area_code", "coef"])
    rel = pd.concat(out, ignore_index=True)
    rel["relation"] = rel.groupby(["pair", "relation"], sort=True).ngroup()
    return rel.drop(columns="pair")


class _Geography:
    """The relations between areas (`area_relations`, `crossing_relations`), found once for every block of
    cells; the crossing relations' keys in the cells' own types (categorical keys: on their codes)."""

    def __init__(self, members: pd.DataFrame, cells: pd.DataFrame):
        self.areas = area_relations(members)
        cross = crossing_relations(members)
        self.crossing = cross.assign(
            **{
                k: categorical(cross[k], cells[k].cat.categories)
                for k in ("level", "area_code")
                if isinstance(cells[k].dtype, pd.CategoricalDtype)
            }
        )


def cell_relations(
    cells: pd.DataFrame,
    members: pd.DataFrame | None,
    per_level: Collection[str] = frozenset(),
    geography: _Geography | None = None,
) -> dict:
    """Every additive relation among the cells in long form, as arrays (relation, cell, parent, coef,
    generating): the members times `coef` add up to 0; `parent` marks the total of a sum; `generating` marks
    a set of relations all others follow from. `cell` is the row position in `cells`. The counts of
    `per_level` indicators (moves across an area's boundary) do not add up across levels: for them only the
    margins, the years and areas of the same grunnkretser tie levels together. `geography`: the areas'
    relations if already found (else from `members`).

    Built on integer keys with sorts and binary searches (no table joins): the cells number in millions."""
    cells = cells.reset_index(drop=True)
    geography = geography or _Geography(members, cells)
    k = _CellKeys(cells)
    moving = cells["indicator_id"].isin(per_level).to_numpy()
    parts: list[tuple[np.ndarray, ...]] = []
    # margins: total = sum over the values of each breakdown
    total = k.breakdown == k.total_code
    kids = np.flatnonzero(~total)
    parent = _Lookup(k.margin[total], np.flatnonzero(total))(k.margin[kids])
    kids, parent = kids[parent >= 0], parent[parent >= 0]
    # for per-level indicators margins and pooled years are all that ties a level's cells: all generate
    base = (k.grunnkrets & (k.pooled == 1)) | moving
    parts.append(_sums(parent, kids, parent * (k.n_breakdowns + 1) + k.breakdown[kids], base[parent]))
    # pooled years: the pooled cell = the sum of its single years
    pooled = np.flatnonzero(k.pooled > 1)
    single = np.flatnonzero(k.pooled == 1)
    if len(pooled):
        singles = _Lookup(k.year_key[single], single)
        heads, members_ = [], []
        for back in range(int(k.pooled.max())):
            p = pooled[k.pooled[pooled] > back]
            s = singles(k.year_key[p] - back)
            heads.append(p[s >= 0])
            members_.append(s[s >= 0])
        p, s = np.concatenate(heads), np.concatenate(members_)
        parts.append(_sums(p, s, p, k.grunnkrets[p] | moving[p]))
        # two overlapping windows: pooled(y) − pooled(y−1) = single(y) − single(y−w), a classic difference
        prev = _Lookup(k.cell[pooled], pooled)(k.with_year(pooled, -1))
        new = singles(k.year_key[pooled])
        old = singles(k.year_key[pooled] - k.pooled[pooled])
        ok = (prev >= 0) & (new >= 0) & (old >= 0)
        quad = np.stack([pooled[ok], prev[ok], new[ok], old[ok]], axis=1)
        n = len(quad)
        parts.append(
            (
                np.repeat(np.arange(n), 4),
                quad.ravel(),
                np.zeros(4 * n, dtype=bool),
                np.tile(np.array([1, -1, -1, 1]), n),
                np.zeros(4 * n, dtype=bool),
            )
        )
    # geography: each relation of an area, for every cell of that area as the parent
    rel = geography.areas
    if len(rel):
        pa = k.area_id(rel["parent_level"], rel["parent"])
        ca = k.area_id(rel["child_level"], rel["child"])
        ok = (pa >= 0) & (ca >= 0)
        rel, pa, ca = rel[ok], pa[ok], ca[ok]
    if len(rel):
        order, starts = _index(k.area, k.n_areas)
        counts = starts[pa + 1] - starts[pa]
        which = np.repeat(np.arange(len(rel)), counts)  # the area relation of each (parent cell, child) pair
        par = _rows((order, starts), pa)
        child = _Lookup(k.cell, np.arange(len(k.cell)))(k.with_area(par, ca[which]))
        found = child >= 0
        which, par, child = which[found], par[found], child[found]
        identity = rel["identity"].to_numpy()[which]
        keep = identity | ~moving[par]
        which, par, child, identity = which[keep], par[keep], child[keep], identity[keep]
        generating = rel["generating"].to_numpy()[which] | (identity & moving[par])
        relation = rel["relation"].to_numpy()
        parts.append(_sums(par, child, par * (int(relation.max()) + 1) + relation[which], generating))
    cross = geography.crossing
    if len(cross):
        c = cells[CELL_KEYS].assign(cell=np.arange(len(cells)))
        key = ["indicator_id", "year", "pooled_years", "breakdown", "breakdown_value"]
        j = cross.merge(c[~moving], on=["level", "area_code"])
        j["relation"] = j.groupby(["relation", *key], sort=True).ngroup()
        n = len(j)
        parts.append(
            (
                j["relation"].to_numpy(),
                j["cell"].to_numpy(),
                np.zeros(n, dtype=bool),
                j["coef"].to_numpy(),
                np.zeros(n, dtype=bool),
            )
        )
    out = []
    offset = 0
    for relation, *rest in parts:
        out.append((relation + offset, *rest))
        offset += int(relation.max()) + 1 if len(relation) else 0
    relation, cell, is_parent, coef, generating = (np.concatenate(x) for x in zip(*out, strict=True))
    # a cell once per relation (the first time)
    first = first_of_pairs(relation, cell, offset, len(cells))
    return {
        "relation": relation[first],
        "cell": cell[first],
        "parent": is_parent[first],
        "coef": coef[first].astype(np.int64),
        "generating": generating[first],
    }


class _CellKeys:
    """Integer keys of the cells: each key column factorised, combined into int64 keys for the lookups."""

    def __init__(self, c: pd.DataFrame):
        codes = {}
        for col in ("indicator_id", "level", "area_code", "breakdown", "breakdown_value"):
            codes[col], uniques = pd.factorize(c[col], sort=True)
            setattr(self, f"_{col}", pd.Index(np.asarray(uniques, dtype=object)))
        self.breakdown = codes["breakdown"]
        self.n_breakdowns = len(self._breakdown)
        self.total_code = self._breakdown.get_indexer([TOTAL])[0]
        self.grunnkrets = codes["level"] == self._level.get_indexer(["grunnkrets"])[0]
        self._n_codes = len(self._area_code)
        self.area = codes["level"].astype(np.int64) * self._n_codes + codes["area_code"]
        self.n_areas = len(self._level) * self._n_codes
        year = c["year"].to_numpy(dtype=np.int64)
        self.pooled = c["pooled_years"].to_numpy(dtype=np.int64)
        # years shifted so that a window reaching before the first year stays ≥ 0 and distinct
        w = int(self.pooled.max())
        self._ny = int(year.max() - year.min()) + 2 * w + 2
        yr = year - year.min() + w + 1
        series = (codes["indicator_id"].astype(np.int64) * (self.n_breakdowns + 1) + codes["breakdown"]) * (
            len(self._breakdown_value) + 1
        ) + codes["breakdown_value"]
        self._np = w + 1
        self.year_key = (series * self.n_areas + self.area) * self._ny + yr  # a series at an area and year
        self.cell = self.year_key * self._np + self.pooled  # … and its window: the cell
        ind_area = codes["indicator_id"].astype(np.int64) * self.n_areas + self.area
        self.margin = (ind_area * self._ny + yr) * self._np + self.pooled  # the cell but its breakdown
        self._series = series
        self._yr = yr

    def area_id(self, level: pd.Series, code: pd.Series) -> np.ndarray:
        """The area number of (level, code) pairs; −1 for an area no cell is in."""
        lv = self._level.get_indexer(level.astype(str))
        ac = self._area_code.get_indexer(code.astype(str))
        return np.where((lv >= 0) & (ac >= 0), lv.astype(np.int64) * self._n_codes + ac, -1)

    def with_year(self, cells: np.ndarray, shift: int) -> np.ndarray:
        """The key of the same series, area and window as `cells`, `shift` years later."""
        return (self.year_key[cells] + shift) * self._np + self.pooled[cells]

    def with_area(self, cells: np.ndarray, area: np.ndarray) -> np.ndarray:
        """The key of the same series, year and window as `cells` at other areas."""
        return ((self._series[cells] * self.n_areas + area) * self._ny + self._yr[cells]) * self._np + self.pooled[
            cells
        ]


class _Lookup:
    """values[i] for the i with keys[i] == each query key (keys distinct); −1 where none. Sorted once."""

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]

    def __call__(self, query: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.full(len(query), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[pos] == query, self.values[pos], -1)


def _sums(parent: np.ndarray, child: np.ndarray, group: np.ndarray, generating: np.ndarray) -> tuple:
    """(parent, child) pairs grouped into relations by `group` → long arrays with the parent as a member."""
    uniq, relation = np.unique(group, return_inverse=True)
    head = np.zeros(len(uniq), dtype=np.int64)
    head_gen = np.zeros(len(uniq), dtype=bool)
    # the first pair of each relation gives its parent and flag (all pairs of a relation agree)
    head[relation[::-1]] = parent[::-1]
    head_gen[relation[::-1]] = generating[::-1]
    n, m = len(uniq), len(child)
    return (
        np.concatenate([np.arange(n), relation]),
        np.concatenate([head, child]),
        np.concatenate([np.ones(n, dtype=bool), np.zeros(m, dtype=bool)]),
        np.concatenate([np.ones(n, dtype=np.int64), -np.ones(m, dtype=np.int64)]),
        np.concatenate([head_gen, generating]),
    )


# --- the rules per relation ----------------------------------------------------------------------------------


def primary(num, den, rule: pd.DataFrame | dict) -> np.ndarray:
    """The primary rule, for a cell or a sum of cells an attacker can form: True where it may not be
    published — a denominator under the minimum, or a count or its complement within the small-count
    range. A cell over nobody (denominator 0) reveals nothing: it is published as empty ("..").
    `rule` is in the form of `rule_columns`, one for all cells or one row per cell; for means (`mean`) only
    the number of persons averaged counts."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    lo, hi, clo, chi, mind = (np.asarray(rule[k], dtype=float) for k in ("lo", "hi", "clo", "chi", "min_denominator"))
    comp = den - num
    small = ((num >= lo) & (num <= hi)) | ((comp >= clo) & (comp <= chi))
    return (den > 0) & ((den < mind) | (~np.asarray(rule["mean"], dtype=bool) & small))


def rule_columns(rule: dict, mean: bool = False) -> dict:
    """A catalogue disclosure rule in the flat form `primary` takes."""
    lo, hi = rule["small_counts"]
    clo, chi = rule["small_complements"]
    return {"min_denominator": rule["min_denominator"], "lo": lo, "hi": hi, "clo": clo, "chi": chi, "mean": mean}


def _index(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by key in [0, n) (key → rows in `order[starts[k]:starts[k + 1]]`, in row order): a
    counting sort."""
    return group_order(np.asarray(keys, dtype=np.int64), n)


def _distinct(x: np.ndarray, n: int) -> np.ndarray:
    """`np.unique` of integers in [0, n): a sort for a few, a mask over [0, n) for many (no sort)."""
    if len(x) * 16 < n:
        return np.unique(x)
    seen = np.zeros(n, dtype=bool)
    seen[x] = True
    return np.flatnonzero(seen)


def _rows(index: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> np.ndarray:
    """All rows of the given (distinct) keys."""
    order, starts = index
    lo, hi = starts[keys], starts[keys + 1]
    lengths = hi - lo
    offsets = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
    return order[offsets + np.arange(lengths.sum())]


class _Relations:
    """The relations as flat arrays, with the per-relation counts the rules need kept up to date as cells
    are suppressed (so that each round looks only at the relations that changed)."""

    def __init__(self, rel: dict, cells: pd.DataFrame, rules: pd.DataFrame, suppressed: np.ndarray):
        self.relation = rel["relation"]
        self.cell = rel["cell"]
        self.parent = rel["parent"]
        self.coef = rel["coef"]
        self.generating = rel["generating"]
        self.n = int(self.relation.max()) + 1 if len(self.relation) else 0
        self.den = cells["denominator"].to_numpy()
        self.num = cells["numerator"].to_numpy(dtype=float)
        self.rules = {k: rules[k].to_numpy() for k in RULE_COLUMNS}
        self.suppressed = suppressed
        self.is_sum = np.bincount(self.relation, weights=self.parent, minlength=self.n) > 0
        first = np.full(self.n, -1)
        first[self.relation[::-1]] = self.cell[::-1]
        self.first_cell = first
        self.protecting = np.zeros(self.n, dtype=np.int64)  # suppressed members with people in them
        self._count(np.arange(len(self.relation)))
        self._by_relation = _index(self.relation, self.n)
        self._by_cell = _index(self.cell, len(self.den))

    def _count(self, rows: np.ndarray) -> None:
        """Count newly protecting members (`rows` of cells suppressed just now, or all rows at the start)."""
        prot = self.suppressed[self.cell[rows]] & (self.den[self.cell[rows]] > 0)
        np.add.at(self.protecting, self.relation[rows][prot], 1)

    def suppress(self, cells: np.ndarray) -> np.ndarray:
        """Suppress `cells`; returns the relations they are in."""
        cells = _distinct(cells[~self.suppressed[cells]], len(self.den))
        self.suppressed[cells] = True
        rows = _rows(self._by_cell, cells)
        self._count(rows)
        return _distinct(self.relation[rows], self.n)

    def rule_pass(self, relations: np.ndarray) -> np.ndarray:
        """The cells the relation rules want suppressed, looking at `relations` only."""
        rows = _rows(self._by_relation, relations)
        rel, cell = self.relation[rows], self.cell[rows]
        child_prot = self.suppressed[cell] & (self.den[cell] > 0) & ~self.parent[rows]
        snum = np.bincount(rel, weights=np.where(child_prot, self.num[cell], 0), minlength=self.n)
        sden = np.bincount(rel, weights=np.where(child_prot, self.den[cell], 0), minlength=self.n)
        psup = np.zeros(self.n, dtype=bool)
        psup[rel[self.parent[rows] & self.suppressed[cell]]] = True
        first = self.first_cell[relations]
        fail = primary(snum[relations], sden[relations], {k: v[first] for k, v in self.rules.items()})
        need = relations[(self.protecting[relations] == 1) | (self.is_sum[relations] & ~psup[relations] & fail)]
        return self.cheapest(need)

    def protect(self, exposed: np.ndarray) -> np.ndarray:
        """Cells to suppress for recoverable ones: one more in every relation of an exposed cell (fewer
        rounds of the costly audit); where none of those has a published member left, the relations one step
        further out, and so on — the equations that pin a cell down end in published cells."""
        frontier, seen = _distinct(exposed, len(self.den)), np.zeros(self.n, dtype=bool)
        while len(frontier):
            relations = _distinct(self.relation[_rows(self._by_cell, frontier)], self.n)
            relations = relations[~seen[relations]]
            seen[relations] = True
            if len(found := self.cheapest(relations)):
                return found
            frontier = _distinct(self.cell[_rows(self._by_relation, relations)], len(self.den))
        raise RuntimeError(f"disclosure: no published cell left to protect cells {exposed[:5].tolist()}")

    def cheapest(self, relations: np.ndarray) -> np.ndarray:
        """For each relation, the published member with people in it that starts the smallest cascade (is
        the first protecting cell in the fewest of its other relations), then has the smallest
        denominator; children before the parent, so that a level above stays published where it can."""
        if len(relations) == 0:
            return np.array([], dtype=np.int64)
        rows = _rows(self._by_relation, _distinct(relations, self.n))
        cell = self.cell[rows]
        ok = ~self.suppressed[cell] & (self.den[cell] > 0)
        rows, cell = rows[ok], cell[ok]
        cand = _distinct(cell, len(self.den))
        of_cand = _rows(self._by_cell, cand)
        empty = self.protecting[self.relation[of_cand]] == 0
        new = np.bincount(self.cell[of_cand][empty], minlength=len(self.den))[cell]
        order = np.lexsort((cell, self.den[cell], new, self.parent[rows], self.relation[rows]))
        rel_sorted = self.relation[rows][order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = rel_sorted[1:] != rel_sorted[:-1]
        return _distinct(cell[order][first], len(self.den))


# --- the exact audit ---------------------------------------------------------------------------------------


def recoverable(rows: list[dict[int, int]], seed: int = 0) -> set[int]:
    """Unknowns whose value is the same in every solution of the homogeneous system `rows` (each row a
    sparse {unknown: coefficient}): exactly the unknowns a published total pins down."""
    entries = [(i, k, v) for i, r in enumerate(rows) for k, v in r.items()]
    if not entries:
        return set()
    row, col, coef = (np.array(x, dtype=np.int64) for x in zip(*entries, strict=True))
    return set(recoverable_entries(row, col, coef, seed).tolist())


def recoverable_entries(row: np.ndarray, col: np.ndarray, coef: np.ndarray, seed: int = 0) -> np.ndarray:
    """`recoverable` for a system given as entries (row id, unknown, coefficient; one entry per row and
    unknown); returns the unknowns.

    The test: one random vector z of the null space, modulo the prime p = 2⁶¹ − 1. An unknown with z = 0 is
    fixed by the equations, except with probability 2⁻⁶¹ per unknown (one cell suppressed too many). The rank
    modulo p equals the rational rank unless p divides a minor of the matrix — for these ±1 relation
    matrices, a practical impossibility (checked against rational arithmetic in the tests). z is built in three
    steps (compiled, `levekar.indicators.modular`):
    1. peeling, which settles most of the system: a row with one unknown fixes it (z = 0, and it leaves every
       other row); an unknown in only one row puts that row aside — it says nothing about the others, and its
       z follows from the row's other unknowns;
    2. sparse Gaussian elimination of the rest (shortest row first, pivot on its least-used column), free
       unknowns drawn at random, pivots by back-substitution;
    3. the rows put aside, last first."""
    if len(row) == 0:
        return np.array([], dtype=np.int64)
    row = np.unique(row, return_inverse=True)[1].astype(np.int64)
    cols, col = np.unique(col, return_inverse=True)
    coef = (np.asarray(coef, dtype=np.int64) % PRIME).astype(np.uint64)
    z, has = null_vector(row, col.astype(np.int64), coef, int(row.max()) + 1, len(cols), seed)
    return cols[has & (z == 0)]


def audit(rel: _Relations) -> np.ndarray:
    """Suppressed cells (with people in them) that the published cells determine exactly."""
    unknown = rel.suppressed & (rel.den > 0)
    rows = np.flatnonzero(unknown[rel.cell] & rel.generating)
    if len(rows) == 0:
        return np.array([], dtype=np.int64)
    coef = (rel.coef[rows] % PRIME).astype(np.uint64)
    z, has = null_vector(rel.relation[rows], rel.cell[rows], coef, rel.n, len(rel.den), 0)
    return np.flatnonzero(has & (z == 0))


def secondary_suppression(
    cells: pd.DataFrame,
    members: pd.DataFrame,
    rules: pd.DataFrame,
    progress: Callable[[str], None] | None = None,
    per_level: set[str] = frozenset(),
    workers: int | None = None,
) -> tuple[np.ndarray, dict]:
    """The final suppression flags for `cells` (with `suppressed` from the primary rule), and a summary.

    `rules` has one row per cell in the form of `rule_columns`; `per_level` names indicators whose counts do
    not add up across levels. Relations never mix indicators, so each indicator is its own problem: they are
    solved one by one, on `workers` processes (default: the cores this process may use) when the cells are
    many. The flags and the summary do not depend on how many: `rule_rounds` and `audits` are the most any
    indicator needed, `relations` the sum."""
    say = progress or (lambda s: None)
    cells = cells.reset_index(drop=True)
    rules = rules.reset_index(drop=True)
    code, names = pd.factorize(cells["indicator_id"], sort=True)
    order, starts = _index(code, len(names))
    suppressed = cells["suppressed"].to_numpy().copy()
    primary_count = int(suppressed.sum())
    cols = [*CELL_KEYS, "numerator", "denominator", "suppressed"]
    shared = _Shared(
        cells[cols], rules[list(RULE_COLUMNS)], order, starts, _Geography(members, cells), frozenset(per_level)
    )
    blocks = sorted(range(len(names)), key=lambda b: starts[b] - starts[b + 1])  # the largest first
    summary = {"primary": primary_count, "secondary": 0, "rule_rounds": 0, "audits": 0, "relations": 0}
    for done, (b, flags, stats) in enumerate(_map_blocks(shared, blocks, workers), start=1):
        suppressed[order[starts[b] : starts[b + 1]]] = flags
        summary["rule_rounds"] = max(summary["rule_rounds"], stats["rule_rounds"])
        summary["audits"] = max(summary["audits"], stats["audits"])
        summary["relations"] += stats["relations"]
        say(f"indicator {names[b]} protected ({done} of {len(names)})")
    summary["secondary"] = int(suppressed.sum()) - primary_count
    return suppressed, summary


class _Shared(NamedTuple):
    """What every block's protection reads: the cells and rules, grouped by indicator (block b is the rows
    order[starts[b]:starts[b + 1]], each block taken by the process that protects it), the geography's
    relations and the per-level indicators."""

    cells: pd.DataFrame
    rules: pd.DataFrame
    order: np.ndarray
    starts: np.ndarray
    geography: _Geography
    per_level: frozenset[str]


def _map_blocks(shared: _Shared, blocks: list[int], workers: int | None) -> Iterator[tuple[int, np.ndarray, dict]]:
    """(block, flags, stats) of each block, in this process or on worker processes forked from it (they
    inherit the cells: nothing large is sent, only each block's flags come back)."""
    workers = workers or len(os.sched_getaffinity(0))
    if len(shared.cells) < PARALLEL_CELLS:
        workers = 1
    if workers > 1:
        _warm_kernels()
    return forks.map(lambda b: _protect_block(shared, b), blocks, min(workers, len(blocks)))


def _warm_kernels() -> None:
    """Load the compiled kernels once here, before forking, instead of once in every worker."""
    none = np.zeros(0, dtype=np.int64)
    null_vector(none, none, none.astype(np.uint64), 0, 0, 0)
    first_of_pairs(none, none, 0, 0)


def _protect_block(shared: _Shared, block: int) -> tuple[int, np.ndarray, dict]:
    """Secondary suppression of one indicator's cells: rule passes and exact audits until neither changes
    anything. Returns (block, flags, stats)."""
    rows = shared.order[shared.starts[block] : shared.starts[block + 1]]
    cells = shared.cells.take(rows).reset_index(drop=True)
    suppressed = cells["suppressed"].to_numpy().copy()
    relations = cell_relations(cells, None, shared.per_level, shared.geography)
    rel = _Relations(relations, cells, shared.rules.take(rows).reset_index(drop=True), suppressed)
    rounds = audits = 0
    dirty = np.arange(rel.n)
    changed = True
    while changed:
        while len(more := rel.rule_pass(dirty)):
            dirty = rel.suppress(more)
            rounds += 1
        exposed = audit(rel)
        audits += 1
        changed = len(exposed) > 0
        if changed:
            dirty = rel.suppress(rel.protect(exposed))
    return block, suppressed, {"rule_rounds": rounds, "audits": audits, "relations": rel.n}
