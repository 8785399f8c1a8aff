"""Compiled kernels of the medians: order statistics per cell from values sorted once.

The persons' values are sorted once; a cell's k-th smallest value is then the value at which the cell's
running count reaches k in one scan in that order — no per-cell sort and no regrouping of millions of rows
per level. A person counts in every area of the level its grunnkrets lies in (usually one).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cell_counts(unit, year, bv, first, areas_of, n_years, n_bv, n_keys):
    """Persons per cell key (area · n_years + year) · n_bv + breakdown value; `unit` −1: outside every grunnkrets."""
    count = np.zeros(n_keys, dtype=np.int64)
    for i in range(len(unit)):
        u = unit[i]
        if u < 0:
            continue
        for j in range(first[u], first[u + 1]):
            count[(areas_of[j] * n_years + year[i]) * n_bv + bv[i]] += 1
    return count


@njit(cache=True, nogil=True)
def order_statistics(x, unit, year, bv, first, areas_of, n_years, n_bv, ranks):
    """For each cell key and each of its wanted ranks (`ranks[key]`, from 1; −1: none), the value of that rank
    among the cell's values; `x` sorted ascending, the other arrays in the same order."""
    seen = np.zeros(len(ranks), dtype=np.int64)
    out = np.full(ranks.shape, np.nan)
    for i in range(len(x)):
        u = unit[i]
        if u < 0:
            continue
        for j in range(first[u], first[u + 1]):
            k = (areas_of[j] * n_years + year[i]) * n_bv + bv[i]
            seen[k] += 1
            for r in range(ranks.shape[1]):
                if ranks[k, r] == seen[k]:
                    out[k, r] = x[i]
    return out
