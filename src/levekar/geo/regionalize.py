"""Contiguous regionalisation with a population floor *and* ceiling, as many regions as possible.

For each group (kommune, bydel …) and each connected component of its contiguity graph:

1. units heavier than the ceiling are regions of their own;
2. construction: a spanning tree (random, or a minimum spanning tree of attribute distances for homogeneous
   regions, as in SKATER) is cut bottom-up: a subtree is cut off as a region as soon as it reaches the floor,
   choosing among a node's open child subtrees so the region stays under the ceiling;
3. repair on the full contiguity graph: fragments under the floor merge with a neighbouring fragment (when
   together they reach the band), into a neighbouring region with room, or — if none has room — into the
   smallest neighbour, which is then re-cut in two within the band;
4. more regions: a region of at least twice the floor is split in two when both parts fit the band;
5. with attributes, boundary units move between neighbouring regions when that lowers the within-region
   sum of squares and keeps both regions contiguous and in band.

Several restarts with fixed seeds; the best solution has the fewest units in out-of-band regions, then the
most regions, then the lowest within-region sum of squares. Deterministic for the same input and seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree


@dataclass
class Solution:
    labels: np.ndarray  # region per unit, 0..k-1
    reasons: dict[int, str]  # regions out of band and why


def _neighbours(adj: sparse.csr_matrix, i: int) -> np.ndarray:
    return adj.indices[adj.indptr[i] : adj.indptr[i + 1]]


def _is_connected(nodes: np.ndarray, adj: sparse.csr_matrix) -> bool:
    if len(nodes) <= 1:
        return True
    sub = adj[nodes][:, nodes]
    return connected_components(sub, directed=False)[0] == 1


def _spanning_tree(adj: sparse.csr_matrix, attrs: np.ndarray | None, rng) -> sparse.csr_matrix:
    coo = sparse.triu(adj, k=1).tocoo()
    if attrs is not None:
        d = np.linalg.norm(attrs[coo.row] - attrs[coo.col], axis=1)
        w = d * (1 + 0.25 * rng.random(len(d))) + 1e-6
    else:
        w = rng.random(len(coo.row)) + 1e-6
    tree = minimum_spanning_tree(sparse.coo_matrix((w, (coo.row, coo.col)), shape=adj.shape).tocsr())
    return (tree + tree.T).tocsr()


def _tree_cut(w: np.ndarray, tree: sparse.csr_matrix, root: int, lo: float, hi: float) -> np.ndarray:
    """Bottom-up cut of a spanning tree; fragments (under the floor) get their own labels too."""
    n = len(w)
    order, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    children: list[list[int]] = [[] for _ in range(n)]
    for v in order[1:]:
        children[pred[v]].append(int(v))
    acc = np.zeros(n)
    is_open = np.zeros(n, dtype=bool)  # subtree still waiting to join a region above it
    pending: list[list[int]] = [[] for _ in range(n)]
    label = np.full(n, -1, dtype=np.int64)
    nxt = 0

    def emit(nodes: list[int]) -> None:
        nonlocal nxt
        label[nodes] = nxt
        nxt += 1

    for v in order[::-1]:
        open_kids = sorted((c for c in children[v] if is_open[c]), key=lambda c: (-acc[c], c))
        total = w[v] + sum(acc[c] for c in open_kids)
        if total < lo:
            acc[v] = total
            is_open[v] = True
            pending[v] = [int(v)] + [u for c in open_kids for u in pending[c]]
        elif total <= hi:
            emit([int(v)] + [u for c in open_kids for u in pending[c]])
        else:
            chosen, s = [], w[v]
            for c in open_kids:  # largest first, while it fits under the ceiling
                if s + acc[c] <= hi:
                    chosen.append(c)
                    s += acc[c]
            if s < lo:  # cannot reach the floor under the ceiling: take the smallest until the floor
                for c in sorted(set(open_kids) - set(chosen), key=lambda c: (acc[c], c)):
                    chosen.append(c)
                    s += acc[c]
                    if s >= lo:
                        break
            emit([int(v)] + [u for c in chosen for u in pending[c]])
            for c in open_kids:
                if c not in chosen:
                    emit(pending[c])
        for c in children[v]:
            pending[c] = []
    if is_open[root]:
        emit(pending[root])
    return label


def _grow(w: np.ndarray, adj: sparse.csr_matrix, lo: float, hi: float, rng) -> np.ndarray:
    """Seeded region growing (as max-p's construction): from units in random order, add neighbours until the
    floor is reached — the one that lands closest above the floor if any does, else a random one. Units of
    regions that cannot reach the floor become one-unit fragments for the repair."""
    n = len(w)
    label = np.full(n, -1, dtype=np.int64)
    nxt = 0
    for seed in rng.permutation(n):
        if label[seed] != -1:
            continue
        region, total = [int(seed)], float(w[seed])
        label[seed] = nxt
        frontier = {int(u) for u in _neighbours(adj, seed) if label[u] == -1}
        while total < lo and frontier:
            cand = sorted(frontier)
            landing = [u for u in cand if lo <= total + w[u] <= hi]
            u = min(landing, key=lambda u: (w[u], u)) if landing else cand[int(rng.integers(len(cand)))]
            frontier.discard(u)
            region.append(u)
            total += w[u]
            label[u] = nxt
            frontier |= {int(v) for v in _neighbours(adj, u) if label[v] == -1}
        nxt += 1
        if total < lo:  # an enclave: leave its units as single fragments
            for u in region[1:]:
                label[u] = nxt
                nxt += 1
    return label


def _peel(
    nodes: np.ndarray, w: np.ndarray, adj: sparse.csr_matrix, lo: float, hi: float, rng, tries: int = 8
) -> list[np.ndarray] | None:
    """Cut a connected set into connected parts all within [lo, hi] by peeling subtrees of spanning trees;
    None if no such cut was found."""
    total = w[nodes].sum()
    if lo <= total <= hi:
        return [nodes]
    if total < 2 * lo:
        return None
    sub = adj[nodes][:, nodes].tocsr()
    for _ in range(tries):
        tree = _spanning_tree(sub, None, rng)
        root = int(rng.integers(len(nodes)))
        order, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
        subtotal = w[nodes].astype(float).copy()
        for v in order[::-1][:-1]:
            subtotal[pred[v]] += subtotal[v]
        # candidate cut edges (v, parent): subtree in band and the rest at least the floor
        ok = [v for v in order[1:] if lo <= subtotal[v] <= hi and total - subtotal[v] >= lo]
        if not ok:
            continue
        # most balanced for two parts; otherwise the one leaving the most even remainder
        v = min(ok, key=lambda v: (abs(total - 2 * subtotal[v]) if total <= 2 * hi else -subtotal[v], v))
        mark = np.zeros(len(nodes), dtype=bool)
        stack = [v]
        kids: list[list[int]] = [[] for _ in range(len(nodes))]
        for u in order[1:]:
            kids[pred[u]].append(int(u))
        while stack:
            u = stack.pop()
            mark[u] = True
            stack.extend(kids[u])
        rest = _peel(nodes[~mark], w, adj, lo, hi, rng, tries)
        if rest is not None:
            return [nodes[mark], *rest]
    return None


class _State:
    """Labels with region weights, kept consistent under merges and splits."""

    def __init__(self, labels: np.ndarray, w: np.ndarray):
        self.labels = labels.copy()
        self.w = w
        self.weight = dict(enumerate(np.bincount(labels, weights=w)))

    def members(self, r: int) -> np.ndarray:
        return np.flatnonzero(self.labels == r)

    def neighbour_regions(self, r: int, adj: sparse.csr_matrix) -> set[int]:
        nodes = self.members(r)
        nb = np.unique(np.concatenate([_neighbours(adj, i) for i in nodes])) if len(nodes) else np.zeros(0, int)
        return set(self.labels[nb].tolist()) - {r}

    def merge(self, a: int, b: int) -> int:
        """Merge b into a."""
        self.labels[self.labels == b] = a
        self.weight[a] += self.weight.pop(b)
        return a

    def replace(self, r: int, parts: list[np.ndarray]) -> None:
        nxt = max(self.weight) + 1
        self.weight.pop(r)
        for k, p in enumerate(parts):
            lab = r if k == 0 else nxt + k - 1
            self.labels[p] = lab
            self.weight[lab] = float(self.w[p].sum())


def _repair(st: _State, adj, lo: float, hi: float, rng) -> None:
    stuck: set[int] = set()
    for _ in range(10 * len(st.w) + 10):
        frags = sorted((r for r, x in st.weight.items() if x < lo and r not in stuck), key=lambda r: (st.weight[r], r))
        if not frags:
            return
        f = frags[0]
        nbrs = sorted(st.neighbour_regions(f, adj))
        if not nbrs:
            stuck.add(f)
            continue
        wf = st.weight[f]
        pairs = [g for g in nbrs if st.weight[g] < lo and lo <= wf + st.weight[g] <= hi]
        roomy = [g for g in nbrs if st.weight[g] >= lo and wf + st.weight[g] <= hi]
        small = [g for g in nbrs if st.weight[g] < lo and wf + st.weight[g] < lo]
        if pairs:
            st.merge(min(pairs, key=lambda g: (wf + st.weight[g], g)), f)
        elif roomy:
            st.merge(min(roomy, key=lambda g: (st.weight[g], g)), f)
        elif small:
            st.merge(min(small, key=lambda g: (st.weight[g], g)), f)
        else:
            g = min(nbrs, key=lambda g: (st.weight[g], g))
            merged = st.merge(g, f)
            parts = _peel(st.members(merged), st.w, adj, lo, hi, rng)
            if parts is not None:
                st.replace(merged, parts)


def _split_more(st: _State, adj, lo: float, hi: float, rng) -> None:
    """Split regions out of band above the ceiling, and any region big enough to give two in band."""
    changed = True
    while changed:
        changed = False
        for r in sorted(st.weight):
            if st.weight[r] >= 2 * lo:
                nodes = st.members(r)
                if len(nodes) < 2:
                    continue
                parts = _peel(nodes, st.w, adj, lo, hi, rng)
                if parts is not None and len(parts) > 1:
                    st.replace(r, parts)
                    changed = True


def _ssd(labels: np.ndarray, attrs: np.ndarray | None) -> float:
    if attrs is None:
        return 0.0
    k = labels.max() + 1
    n = np.bincount(labels, minlength=k).astype(float)
    s = np.stack([np.bincount(labels, weights=attrs[:, j], minlength=k) for j in range(attrs.shape[1])], 1)
    q = np.bincount(labels, weights=(attrs**2).sum(1), minlength=k)
    return float((q - (s**2).sum(1) / np.maximum(n, 1)).sum())


def _improve(st: _State, adj, attrs: np.ndarray, lo: float, hi: float, passes: int = 4) -> None:
    """Move boundary units to the neighbouring region whose mean they are closer to, keeping contiguity and
    the band."""
    for _ in range(passes):
        moved = False
        means = {r: attrs[st.members(r)].mean(0) for r in st.weight}
        for u in range(len(st.w)):
            a = int(st.labels[u])
            if st.weight[a] - st.w[u] < lo:
                continue
            for b in sorted(set(st.labels[_neighbours(adj, u)].tolist()) - {a}):
                if st.weight[b] + st.w[u] > hi:
                    continue
                if np.sum((attrs[u] - means[b]) ** 2) + 1e-12 >= np.sum((attrs[u] - means[a]) ** 2):
                    continue
                rest = st.members(a)
                rest = rest[rest != u]
                if not _is_connected(rest, adj):
                    continue
                st.labels[u] = b
                st.weight[a] -= st.w[u]
                st.weight[b] += st.w[u]
                means[a] = attrs[rest].mean(0)
                means[b] = attrs[st.members(b)].mean(0)
                moved = True
                break
        if not moved:
            return


def _solve_component(w, adj, attrs, lo, hi, seed: int, restarts: int) -> np.ndarray:
    best, best_key = None, None
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        if r % 2 == 1:
            labels = _grow(w, adj, lo, hi, rng)
        else:
            tree = _spanning_tree(adj, attrs if (attrs is not None and r % 4 == 0) else None, rng)
            labels = _tree_cut(w, tree, int(rng.integers(len(w))), lo, hi)
        st = _State(labels, w)
        _repair(st, adj, lo, hi, rng)
        _split_more(st, adj, lo, hi, rng)
        _repair(st, adj, lo, hi, rng)
        if attrs is not None:
            _improve(st, adj, attrs, lo, hi)
        _, lab = np.unique(st.labels, return_inverse=True)
        weights = np.bincount(lab, weights=w)
        out = (weights < lo) | (weights > hi)
        key = (int(out[lab].sum()), -len(weights), _ssd(lab, attrs))
        if best_key is None or key < best_key:
            best, best_key = lab, key
    return best


def regionalize(
    weights, adj: sparse.csr_matrix, group, lo: float, hi: float, attributes=None, seed: int = 2020, restarts: int = 8
) -> Solution:
    """Regions of contiguous units within each group, with weights in [lo, hi] where feasible."""
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < min <= max (got min={lo}, max={hi})")
    w = np.asarray(weights, dtype=float)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    group = np.asarray(group)
    attrs = None
    if attributes is not None:
        a = np.asarray(attributes, dtype=float).reshape(len(w), -1)
        sd = a.std(0)
        attrs = (a - a.mean(0)) / np.where(sd > 0, sd, 1)
    labels = np.full(len(w), -1, dtype=np.int64)
    reasons: dict[int, str] = {}
    nxt = 0
    for g in sorted(set(group.tolist()), key=str):
        idx = np.flatnonzero(group == g)
        big = idx[w[idx] > hi]
        for u in big:
            labels[u] = nxt
            reasons[nxt] = f"a single unit above the ceiling ({w[u]:,.0f} > {hi:,.0f})"
            nxt += 1
        rest = idx[w[idx] <= hi]
        if not len(rest):
            continue
        sub = adj[rest][:, rest].tocsr()
        n_comp, comp = connected_components(sub, directed=False)
        for c in range(n_comp):
            nodes = rest[comp == c]
            total = w[nodes].sum()
            if total < lo:
                labels[nodes] = nxt
                why = "the whole group" if len(nodes) == len(idx) else "a part cut off by units above the ceiling"
                reasons[nxt] = f"{why} has only {total:,.0f} (< {lo:,.0f})"
                nxt += 1
                continue
            local = _solve_component(
                w[nodes], adj[nodes][:, nodes].tocsr(), None if attrs is None else attrs[nodes], lo, hi, seed, restarts
            )
            weights_local = np.bincount(local, weights=w[nodes])
            for k, wk in enumerate(weights_local):
                if wk < lo or wk > hi:
                    reasons[nxt + k] = (
                        f"no contiguous partition within the band was found ({wk:,.0f} is "
                        f"{'under the floor' if wk < lo else 'over the ceiling'})"
                    )
            labels[nodes] = local + nxt
            nxt += len(weights_local)
    return Solution(labels, reasons)
