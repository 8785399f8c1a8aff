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

Two passes, repeated until neither changes anything:
1. *rules per relation* (vectorised, looking only at relations that changed): a relation may not have exactly
   one suppressed member, and the suppressed members of a relation whose total is published may not add up
   to a small group (the primary rule on their sum) — otherwise one more member is suppressed: the one that
   starts the smallest cascade, then has the smallest denominator, children before the parent;
2. *an exact audit* (the attacker): the published cells as linear equations over the suppressed ones, solved
   modulo a 61-bit prime by peeling and sparse elimination; a suppressed cell is recoverable when it takes
   the same value in every solution. Each relation of a recoverable cell gets one more suppressed member.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

import numpy as np
import pandas as pd

PRIME = (1 << 61) - 1
CELL_KEYS = ["indicator_id", "level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
TOTAL = "total"


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


def cell_relations(cells: pd.DataFrame, members: pd.DataFrame, per_level: set[str] = frozenset()) -> pd.DataFrame:
    """Every additive relation among the cells as a long table (relation, cell, parent, coef, generating):
    the members times `coef` add up to 0; `parent` marks the total of a sum; `generating` marks a set of
    relations all others follow from. `cell` is the row position in `cells`. The counts of `per_level`
    indicators (moves across an area's boundary) do not add up across levels: for them only the margins,
    the years and areas of the same grunnkretser tie levels together."""
    c = cells[CELL_KEYS].reset_index(drop=True).assign(cell=np.arange(len(cells)))
    parts = []
    # margins: total = sum over the values of each breakdown
    tot = c[c.breakdown == TOTAL].drop(columns=["breakdown", "breakdown_value"]).rename(columns={"cell": "parent"})
    br = c[c.breakdown != TOTAL].merge(tot, on=["indicator_id", "level", "area_code", "year", "pooled_years"])
    # for per-level indicators margins and pooled years are all that ties a level's cells: all generate
    moving = c.indicator_id.isin(per_level).to_numpy()
    base = ((c.level == "grunnkrets") & (c.pooled_years == 1)).to_numpy() | moving
    parts.append(_long(br.assign(generating=base[br.parent]), ["parent", "breakdown"]))
    # pooled years: the pooled cell = the sum of its single years
    pooled = c[c.pooled_years > 1]
    if len(pooled):
        same = ["indicator_id", "level", "area_code", "breakdown", "breakdown_value"]
        single = c[c.pooled_years == 1].drop(columns="pooled_years").rename(columns={"year": "y"})
        j = pooled.rename(columns={"cell": "parent"}).merge(single, on=same)
        j = j[(j.y <= j.year) & (j.y > j.year - j.pooled_years)]
        parts.append(_long(j.assign(generating=(j.level == "grunnkrets") | moving[j.parent]), ["parent"]))
        # two overlapping windows: pooled(y) − pooled(y−1) = single(y) − single(y−w), a classic difference
        prev = pooled.assign(year=pooled.year + 1).rename(columns={"cell": "prev"})
        d = pooled.merge(prev, on=[*same, "year", "pooled_years"])
        d = d.merge(single.rename(columns={"y": "year", "cell": "new"}), on=[*same, "year"])
        d["y"] = d.year - d.pooled_years
        d = d.merge(single.rename(columns={"cell": "old"}), on=[*same, "y"])
        if len(d):
            d = d.assign(relation=np.arange(len(d)))
            parts.append(
                pd.concat(
                    [
                        d[["relation", c]].rename(columns={c: "cell"}).assign(coef=k)
                        for c, k in (("cell", 1), ("prev", -1), ("new", -1), ("old", 1))
                    ],
                    ignore_index=True,
                ).assign(parent=False, generating=False)
            )
    # geography
    rel = area_relations(members)
    key = ["indicator_id", "year", "pooled_years", "breakdown", "breakdown_value"]
    par = c.rename(columns={"level": "parent_level", "area_code": "parent", "cell": "parent_cell"})
    ch = c.rename(columns={"level": "child_level", "area_code": "child"})
    j = rel.merge(par, on=["parent_level", "parent"]).merge(ch, on=["child_level", "child", *key])
    j = j[j.identity | ~j.indicator_id.isin(per_level)]
    j = j.assign(generating=j.generating | (j.identity & j.indicator_id.isin(per_level)))
    parts.append(_long(j.rename(columns={"parent": "parent_code", "parent_cell": "parent"}), ["parent", "relation"]))
    cross = crossing_relations(members)
    if len(cross):
        j = cross.merge(c[~c.indicator_id.isin(per_level)], on=["level", "area_code"])
        j["relation"] = j.groupby(["relation", *key], sort=True).ngroup()
        parts.append(j[["relation", "cell", "coef"]].assign(parent=False, generating=False))
    out = []
    offset = 0
    for p in parts:
        out.append(p.assign(relation=p.relation + offset))
        offset += int(p.relation.max()) + 1 if len(p) else 0
    return pd.concat(out, ignore_index=True).drop_duplicates(["relation", "cell"])


def _long(pairs: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """(parent, cell, generating) pairs grouped into relations → long table with the parent as a member."""
    pairs = pairs.assign(relation=pairs.groupby(group, sort=True).ngroup())
    kids = pairs[["relation", "cell", "generating"]].assign(parent=False, coef=-1)
    heads = pairs.drop_duplicates("relation")[["relation", "parent", "generating"]].rename(columns={"parent": "cell"})
    return pd.concat([heads.assign(parent=True, coef=1), kids], ignore_index=True)


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
    """Rows grouped by key (key → rows in `order[starts[k]:starts[k + 1]]`)."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(n + 1))


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

    def __init__(self, rel: pd.DataFrame, cells: pd.DataFrame, rules: pd.DataFrame, suppressed: np.ndarray):
        self.relation = rel["relation"].to_numpy()
        self.cell = rel["cell"].to_numpy()
        self.parent = rel["parent"].to_numpy()
        self.coef = rel["coef"].to_numpy()
        self.generating = rel["generating"].to_numpy(dtype=bool)
        self.n = int(self.relation.max()) + 1 if len(rel) else 0
        self.den = cells["denominator"].to_numpy()
        self.num = cells["numerator"].to_numpy(dtype=float)
        self.rules = {k: rules[k].to_numpy() for k in ("min_denominator", "lo", "hi", "clo", "chi", "mean")}
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
        cells = np.unique(cells[~self.suppressed[cells]])
        self.suppressed[cells] = True
        rows = _rows(self._by_cell, cells)
        self._count(rows)
        return np.unique(self.relation[rows])

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
        frontier, seen = np.unique(exposed), np.zeros(self.n, dtype=bool)
        while len(frontier):
            relations = np.unique(self.relation[_rows(self._by_cell, frontier)])
            relations = relations[~seen[relations]]
            seen[relations] = True
            if len(found := self.cheapest(relations)):
                return found
            frontier = np.unique(self.cell[_rows(self._by_relation, relations)])
        raise RuntimeError(f"disclosure: no published cell left to protect cells {exposed[:5].tolist()}")

    def cheapest(self, relations: np.ndarray) -> np.ndarray:
        """For each relation, the published member with people in it that starts the smallest cascade (is
        the first protecting cell in the fewest of its other relations), then has the smallest
        denominator; children before the parent, so that a level above stays published where it can."""
        if len(relations) == 0:
            return np.array([], dtype=np.int64)
        rows = _rows(self._by_relation, np.unique(relations))
        cell = self.cell[rows]
        ok = ~self.suppressed[cell] & (self.den[cell] > 0)
        rows, cell = rows[ok], cell[ok]
        cand = np.unique(cell)
        of_cand = _rows(self._by_cell, cand)
        empty = self.protecting[self.relation[of_cand]] == 0
        new = np.bincount(self.cell[of_cand][empty], minlength=len(self.den))[cell]
        order = np.lexsort((cell, self.den[cell], new, self.parent[rows], self.relation[rows]))
        rel_sorted = self.relation[rows][order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = rel_sorted[1:] != rel_sorted[:-1]
        return np.unique(cell[order][first])


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
    """`recoverable` for a system given as entries (row id, unknown, coefficient); returns the unknowns.

    The test: one random vector z of the null space, modulo the prime p = 2⁶¹ − 1. An unknown with z = 0 is
    fixed by the equations, except with probability 2⁻⁶¹ per unknown (one cell suppressed too many). The rank
    modulo p equals the rational rank unless p divides a minor of the matrix — for these ±1 relation
    matrices, a practical impossibility (checked against rational arithmetic in the tests). z is built in three steps:
    1. peeling (vectorised, in rounds), which settles most of the system: a row with one unknown fixes it
       (z = 0, and it leaves every other row); an unknown in only one row puts that row aside — it says
       nothing about the others, and its z follows from the row's other unknowns;
    2. sparse Gaussian elimination of the rest (shortest row first, pivot on its least-used column), free
       unknowns drawn at random, pivots by back-substitution;
    3. the rows put aside, last round first."""
    row = np.unique(row, return_inverse=True)[1]
    cols, col = np.unique(col, return_inverse=True)
    coef = np.asarray(coef, dtype=np.int64) % PRIME
    live = coef != 0
    n_rows, n_cols = int(row.max()) + 1, len(cols)
    fixed = np.zeros(n_cols, dtype=bool)
    aside: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    while True:
        length = np.bincount(row[live], minlength=n_rows)
        single = live & (length[row] == 1)
        if single.any():
            fixed[col[single]] = True
            live &= ~fixed[col]
            continue
        count = np.bincount(col[live], minlength=n_cols)
        lone = live & (count[col] == 1) & (length[row] >= 2)
        if not lone.any():
            break
        # one unknown per row is put aside (the smallest); its other lone unknowns are simply free
        k = np.full(n_rows, n_cols, dtype=np.int64)
        np.minimum.at(k, row[lone], col[lone])
        entries = live & (k[row] < n_cols)
        aside.append((row[entries], col[entries], coef[entries], k))
        live &= ~entries
    rng = random.Random(seed)
    core: dict[int, dict[int, int]] = {}
    for r, c, v in zip(row[live].tolist(), col[live].tolist(), coef[live].tolist(), strict=True):
        core.setdefault(r, {})[c] = v
    rows = list(core.values())
    col_rows: dict[int, set[int]] = {}
    for i, r in enumerate(rows):
        for c in r:
            col_rows.setdefault(c, set()).add(i)
    z = _eliminate(rows, col_rows, rng)
    z.update(dict.fromkeys(np.flatnonzero(fixed).tolist(), 0))
    for rr, cc, vv, k in reversed(aside):
        sums: dict[int, int] = {}
        own: dict[int, int] = {}
        for r, c, v in zip(rr.tolist(), cc.tolist(), vv.tolist(), strict=True):
            if c == k[r]:
                own[r] = v
            else:
                sums[r] = sums.get(r, 0) + v * z.setdefault(c, rng.randrange(1, PRIME))
        for r, v in own.items():
            z[int(k[r])] = -sums.get(r, 0) * pow(v, PRIME - 2, PRIME) % PRIME
    return cols[[c for c in range(n_cols) if z.get(c, 1) == 0]]


def _eliminate(rows: list[dict[int, int]], col_rows: dict[int, set[int]], rng: random.Random) -> dict[int, int]:
    """A random null vector of the rows (free unknowns random, pivots by back-substitution)."""
    heap = [(len(r), i) for i, r in enumerate(rows) if r]
    heapq.heapify(heap)
    done = [False] * len(rows)
    pivots: list[tuple[int, dict[int, int]]] = []
    while heap:
        n, i = heapq.heappop(heap)
        r = rows[i]
        if done[i] or n != len(r):
            continue
        done[i] = True
        if not r:
            continue
        col = min(r, key=lambda k: (len(col_rows[k]), k))
        inv = pow(r[col], PRIME - 2, PRIME)
        r = {k: v * inv % PRIME for k, v in r.items()}
        rows[i] = r
        for k in r:
            col_rows[k].discard(i)
        for j in list(col_rows[col]):
            other = rows[j]
            f = other[col]
            for k, v in r.items():
                w = (other.get(k, 0) - f * v) % PRIME
                if w:
                    if k not in other:
                        col_rows[k].add(j)
                    other[k] = w
                elif k in other:
                    del other[k]
                    col_rows[k].discard(j)
            heapq.heappush(heap, (len(other), j))
        pivots.append((col, r))
    z: dict[int, int] = {}
    for c, r in reversed(pivots):
        # later pivots are already set; any other unknown in the row is free
        z[c] = -sum(v * z.setdefault(k, rng.randrange(1, PRIME)) for k, v in r.items() if k != c) % PRIME
    return z


def audit(rel: _Relations, indicator: np.ndarray, which: set[int] | None = None) -> np.ndarray:
    """Suppressed cells (with people in them) that the published cells determine exactly; `indicator`
    gives each cell's indicator as an integer code, `which` limits the audit to some of them."""
    unknown = rel.suppressed & (rel.den > 0)
    keep = unknown[rel.cell] & rel.generating
    if which is not None:
        keep &= np.isin(indicator[rel.cell], list(which))
    rows = np.flatnonzero(keep)
    # relations never mix indicators, so each indicator is a separate system
    rows = rows[np.lexsort((rel.cell[rows], rel.relation[rows], indicator[rel.cell[rows]]))]
    ind = indicator[rel.cell[rows]]
    found: list[int] = []
    for code in np.unique(ind):
        part = rows[ind == code]
        found += recoverable_entries(rel.relation[part], rel.cell[part], rel.coef[part]).tolist()
    return np.array(sorted(found), dtype=np.int64)


def secondary_suppression(
    cells: pd.DataFrame,
    members: pd.DataFrame,
    rules: pd.DataFrame,
    progress: Callable[[str], None] | None = None,
    per_level: set[str] = frozenset(),
) -> tuple[np.ndarray, dict]:
    """The final suppression flags for `cells` (with `suppressed` from the primary rule), and a summary.

    `rules` has one row per cell in the form of `rule_columns`; `per_level` names indicators whose counts do
    not add up across levels."""
    say = progress or (lambda s: None)
    cells = cells.reset_index(drop=True)
    indicator = pd.factorize(cells["indicator_id"], sort=True)[0]
    suppressed = cells["suppressed"].to_numpy().copy()
    primary_count = int(suppressed.sum())
    rel = _Relations(cell_relations(cells, members, per_level), cells, rules.reset_index(drop=True), suppressed)
    rounds = audits = 0
    dirty = np.arange(rel.n)
    changed = set(np.unique(indicator).tolist())
    while True:
        while len(more := rel.rule_pass(dirty)):
            changed |= set(np.unique(indicator[more]).tolist())
            dirty = rel.suppress(more)
            rounds += 1
            say(f"rules round {rounds}: {len(more)} more")
        exposed = audit(rel, indicator, changed)
        audits += 1
        say(f"audit {audits}: {len(exposed)} recoverable")
        if len(exposed) == 0:
            break
        more = rel.protect(exposed)
        changed = set(np.unique(indicator[np.concatenate([more, exposed])]).tolist())
        dirty = rel.suppress(more)
    summary = {
        "primary": primary_count,
        "secondary": int(suppressed.sum()) - primary_count,
        "rule_rounds": rounds,
        "audits": audits,
        "relations": rel.n,
    }
    return suppressed, summary
