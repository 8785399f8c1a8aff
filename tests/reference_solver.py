"""The audit's first solver in plain Python (dictionaries, `random`), kept as a reference for the compiled
one in `levekar.indicators.modular`: both must find the same recoverable unknowns."""

from __future__ import annotations

import heapq
import random

import numpy as np

PRIME = (1 << 61) - 1


def reference_recoverable(row: np.ndarray, col: np.ndarray, coef: np.ndarray, seed: int = 0) -> np.ndarray:
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
