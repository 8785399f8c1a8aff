"""Contiguity of unit polygons: rook or queen, inside groups, with islands joined to their nearest unit."""

from __future__ import annotations

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def polygon_adjacency(
    geoms: np.ndarray, group: np.ndarray, kind: str = "rook", tolerance: float = 0.5
) -> sparse.csr_matrix:
    """Symmetric adjacency of polygons in the same group. Rook: they share a stretch of border; queen: they
    touch at all. `tolerance` (metres) bridges slivers between digitised neighbours."""
    if kind not in ("rook", "queen"):
        raise ValueError("adjacency must be 'rook' or 'queen'")
    geoms = np.asarray(geoms, dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(shapely.buffer(geoms, tolerance), predicate="intersects")
    keep = (a < b) & (group[a] == group[b])
    a, b = a[keep], b[keep]
    if kind == "rook" and len(a):
        shared = shapely.length(shapely.intersection(shapely.buffer(geoms[a], tolerance), shapely.boundary(geoms[b])))
        ok = shared > 4 * tolerance
        a, b = a[ok], b[ok]
    n = len(geoms)
    m = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return (m + m.T).tocsr()


def join_islands(adj: sparse.csr_matrix, geoms: np.ndarray, group: np.ndarray) -> tuple[sparse.csr_matrix, list]:
    """Link every connected component of a group to its nearest other component in the same group (islands
    and enclaves attached to their nearest neighbour), until each group is connected. Returns the new
    adjacency and the added links (i, j, distance)."""
    adj = adj.tolil()
    added = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        while True:
            sub = adj[idx][:, idx].tocsr()
            n_comp, comp = connected_components(sub, directed=False)
            if n_comp <= 1:
                break
            # the smallest component (then lowest id) joins its nearest unit outside it
            sizes = np.bincount(comp)
            c = min(range(n_comp), key=lambda k: (sizes[k], idx[comp == k].min()))
            inside, outside = idx[comp == c], idx[comp != c]
            tree = shapely.STRtree(geoms[outside])
            best = None
            for i in inside:
                j = tree.nearest(geoms[i])
                d = float(shapely.distance(geoms[i], geoms[outside[j]]))
                key = (d, int(i), int(outside[j]))
                if best is None or key < best:
                    best = key
            d, i, j = best
            adj[i, j] = 1
            adj[j, i] = 1
            added.append((i, j, d))
    return adj.tocsr(), added
