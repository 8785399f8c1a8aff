"""Bespoke K-nearest neighbourhoods (the EquiPop method behind NOU 2020:16 tables 3.1–3.2).

For every populated cell (the origin), walk the cells outward by distance — the origin's own cell first —
until K persons are reached, for all K in one walk. Cells at the same distance form a *ring* (consecutive
distances closer than 1e-6 m, equipop's `RING_TOL`); the ring that crosses K is taken

- `exact`: in proportion, so the neighbourhood holds exactly K persons: with `before` persons inside the
  earlier rings and `ring` in the crossing one, f = (K − before) / ring, N_K = before + f·ring and each group
  count G_K = G_before + f·G_ring (equipop's default `proportional` overshoot, origin included);
- `whole-cells`: whole (N_K ≥ K; equipop's `whole`).

An origin whose whole data set holds fewer than K persons gets everything (equipop's "partial").

How it stays fast without an N×M neighbour matrix: cells are bucketed into square blocks. For each block, a
KD-tree over block centres finds how far one must go for max K persons (blocks by centre distance, plus a
block diagonal for where the origin and the cells sit in their blocks) — an upper bound R on the radius every
origin in the block needs. A numba kernel (parallel over origins) then, on a regular grid where the disc of R
is mostly populated, walks lattice offsets pre-sorted by squared distance through a raster of cell numbers
(no sorting at all); otherwise it gathers the cells within R from the blocks, keeps those inside the distance
bin where max K is reached (a 64-bin population histogram over distance²), sorts only those and walks the
rings. Either way every K is read off one walk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numba as nb
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from levekar.segregation.indices import dissimilarity, entropy, isolation

RING_TOL = 1e-6  # metres; equipop.overshoot.RING_TOL
DEFAULT_K = tuple(200 * 2**j for j in range(9))  # 200 … 51 200
CONVENTIONS = ("exact", "whole-cells")
PERCENTILES = (10, 25, 50, 75, 90)
_HIST_BINS = 64


@nb.njit(cache=True, nogil=True, inline="always")
def _read_off(
    cum: float,
    before: float,
    ring: float,
    gcum: np.ndarray,
    gbefore: np.ndarray,
    ring_g: np.ndarray,
    ks: np.ndarray,
    kpos: int,
    whole: bool,
    out_n: np.ndarray,
    out_g: np.ndarray,
    row: int,
) -> int:
    """Every K the ring just closed crosses (before < K ≤ cum); returns the next K still to reach."""
    G = gcum.shape[0]
    nk = ks.shape[0]
    while kpos < nk and cum >= ks[kpos]:
        if whole or ring <= 0.0:
            out_n[row, kpos] = cum
            for g in range(G):
                out_g[row, kpos, g] = gcum[g]
        else:
            f = min(max((ks[kpos] - before) / ring, 0.0), 1.0)
            out_n[row, kpos] = before + f * ring
            for g in range(G):
                out_g[row, kpos, g] = gbefore[g] + f * ring_g[g]
        kpos += 1
    return kpos


@nb.njit(cache=True, nogil=True)
def _walk_lattice(
    i: int,
    lx: np.ndarray,
    ly: np.ndarray,
    raster: np.ndarray,
    pop: np.ndarray,
    grp: np.ndarray,
    off_x: np.ndarray,
    off_y: np.ndarray,
    off_d2: np.ndarray,
    ks: np.ndarray,
    whole: bool,
    out_n: np.ndarray,
    out_g: np.ndarray,
    row: int,
) -> bool:
    """The same walk on a regular grid without sorting: lattice offsets pre-sorted by squared distance (a ring
    is one value of it), cells looked up in a raster of cell numbers. False when the offsets ran out first."""
    G = grp.shape[1]
    nk = ks.shape[0]
    nx, ny = raster.shape
    ox, oy = lx[i], ly[i]
    cum = 0.0
    before = 0.0
    ring = 0.0
    gcum = np.zeros(G)
    gbefore = np.zeros(G)
    ring_g = np.zeros(G)
    kpos = 0
    n_off = off_x.shape[0]
    for q in range(n_off):
        if q > 0 and off_d2[q] != off_d2[q - 1]:
            kpos = _read_off(cum, before, ring, gcum, gbefore, ring_g, ks, kpos, whole, out_n, out_g, row)
            if kpos == nk:
                return True
            before = cum
            ring = 0.0
            for g in range(G):
                gbefore[g] = gcum[g]
                ring_g[g] = 0.0
        cx = ox + off_x[q]
        cy = oy + off_y[q]
        if cx < 0 or cy < 0 or cx >= nx or cy >= ny:
            continue
        c = raster[cx, cy]
        if c < 0:
            continue
        ring += pop[c]
        cum += pop[c]
        for g in range(G):
            ring_g[g] += grp[c, g]
            gcum[g] += grp[c, g]
    kpos = _read_off(cum, before, ring, gcum, gbefore, ring_g, ks, kpos, whole, out_n, out_g, row)
    return kpos == nk


@nb.njit(cache=True, nogil=True)
def _count_candidates(
    ox: float, oy: float, bstart: np.ndarray, bx0: float, by0: float, bsize: float, nbx: int, nby: int, radius: float
) -> tuple[int, int, int, int, int]:
    """Cells in the blocks that touch the disc of `radius` around (ox, oy) — a bound for the scratch arrays —
    and the range of blocks to scan."""
    if not math.isfinite(radius):
        return bstart[nbx * nby], 0, nbx - 1, 0, nby - 1
    r2 = radius * radius
    rb = math.ceil(radius / bsize) + 1
    cx = int((ox - bx0) // bsize)
    cy = int((oy - by0) // bsize)
    lox, hix = max(0, cx - rb), min(nbx - 1, cx + rb)
    loy, hiy = max(0, cy - rb), min(nby - 1, cy + rb)
    count = 0
    for bx in range(lox, hix + 1):
        x_lo = bx0 + bx * bsize
        ddx = max(x_lo - ox, 0.0, ox - (x_lo + bsize))
        for by in range(loy, hiy + 1):
            b = bx * nby + by
            if bstart[b + 1] == bstart[b]:
                continue
            y_lo = by0 + by * bsize
            ddy = max(y_lo - oy, 0.0, oy - (y_lo + bsize))
            if ddx * ddx + ddy * ddy <= r2:
                count += bstart[b + 1] - bstart[b]
    return count, lox, hix, loy, hiy


@nb.njit(cache=True, nogil=True)
def _solve_one(
    i: int,
    xs: np.ndarray,
    ys: np.ndarray,
    pop: np.ndarray,
    grp: np.ndarray,
    order: np.ndarray,
    bstart: np.ndarray,
    bx0: float,
    by0: float,
    bsize: float,
    nbx: int,
    nby: int,
    radius: float,
    ks: np.ndarray,
    whole: bool,
    out_n: np.ndarray,
    out_g: np.ndarray,
    row: int,
) -> None:
    ox, oy = xs[i], ys[i]
    G = grp.shape[1]
    nk = ks.shape[0]
    r2 = radius * radius if math.isfinite(radius) else math.inf
    count, lox, hix, loy, hiy = _count_candidates(ox, oy, bstart, bx0, by0, bsize, nbx, nby, radius)
    cand = np.empty(count, np.int64)
    d2 = np.empty(count, np.float64)
    m = 0
    for bx in range(lox, hix + 1):
        x_lo = bx0 + bx * bsize
        ddx = max(x_lo - ox, 0.0, ox - (x_lo + bsize))
        for by in range(loy, hiy + 1):
            b = bx * nby + by
            if bstart[b + 1] == bstart[b]:
                continue
            y_lo = by0 + by * bsize
            ddy = max(y_lo - oy, 0.0, oy - (y_lo + bsize))
            if ddx * ddx + ddy * ddy > r2:
                continue
            for q in range(bstart[b], bstart[b + 1]):
                c = order[q]
                dx = xs[c] - ox
                dy = ys[c] - oy
                dd = dx * dx + dy * dy
                if dd <= r2:
                    cand[m] = c
                    d2[m] = dd
                    m += 1
    # drop the far part of the gathered disc before sorting: a population histogram over distance² finds the
    # bin where max K is reached; everything beyond that bin (plus a margin far above RING_TOL) is not needed
    kmax = ks[nk - 1]
    if m > 256:
        top = 0.0
        for q in range(m):
            top = max(top, d2[q])
        if top > 0.0:
            hist = np.zeros(_HIST_BINS + 1)
            for q in range(m):
                hist[min(int(d2[q] / top * _HIST_BINS), _HIST_BINS)] += pop[cand[q]]
            acc = 0.0
            cut = -1
            for h in range(_HIST_BINS + 1):
                acc += hist[h]
                if acc >= kmax:
                    cut = h
                    break
            if cut >= 0 and cut < _HIST_BINS - 1:
                edge = math.sqrt((cut + 1) * top / _HIST_BINS) + 1e-3
                edge2 = edge * edge
                keep = 0
                for q in range(m):
                    if d2[q] <= edge2:
                        cand[keep] = cand[q]
                        d2[keep] = d2[q]
                        keep += 1
                m = keep
    srt = np.argsort(d2[:m])
    # walk the rings, cumulating in distance order as equipop's cumsum does
    cum = 0.0
    gcum = np.zeros(G)
    gbefore = np.zeros(G)
    ring_g = np.zeros(G)
    kpos = 0
    j = 0
    while j < m and kpos < nk:
        before = cum
        for g in range(G):
            gbefore[g] = gcum[g]
        c = cand[srt[j]]
        d_prev = math.sqrt(d2[srt[j]])
        ring = pop[c]
        cum += pop[c]
        for g in range(G):
            ring_g[g] = grp[c, g]
            gcum[g] += grp[c, g]
        hi = j
        while hi + 1 < m:
            d_next = math.sqrt(d2[srt[hi + 1]])
            if d_next - d_prev >= RING_TOL:
                break
            hi += 1
            d_prev = d_next
            c = cand[srt[hi]]
            ring += pop[c]
            cum += pop[c]
            for g in range(G):
                ring_g[g] += grp[c, g]
                gcum[g] += grp[c, g]
        kpos = _read_off(cum, before, ring, gcum, gbefore, ring_g, ks, kpos, whole, out_n, out_g, row)
        j = hi + 1
    while kpos < nk:  # the whole data set holds fewer than K persons
        out_n[row, kpos] = cum
        for g in range(G):
            out_g[row, kpos, g] = gcum[g]
        kpos += 1


@nb.njit(parallel=True, cache=True)
def _solve_chunk(
    origins: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    pop: np.ndarray,
    grp: np.ndarray,
    order: np.ndarray,
    bstart: np.ndarray,
    bx0: float,
    by0: float,
    bsize: float,
    nbx: int,
    nby: int,
    radius: np.ndarray,
    ks: np.ndarray,
    whole: bool,
    lx: np.ndarray,
    ly: np.ndarray,
    raster: np.ndarray,
    step: float,
    off_x: np.ndarray,
    off_y: np.ndarray,
    off_d2: np.ndarray,
    off_radius: float,
) -> tuple[np.ndarray, np.ndarray]:
    out_n = np.empty((origins.shape[0], ks.shape[0]))
    out_g = np.empty((origins.shape[0], ks.shape[0], grp.shape[1]))
    for r in nb.prange(origins.shape[0]):
        i = origins[r]
        rad = radius[i]
        done = False
        if off_x.shape[0] > 0 and math.isfinite(rad) and rad / step <= off_radius:
            # the lattice walk visits empty grid points too: worth it where most of the disc is populated
            count = _count_candidates(xs[i], ys[i], bstart, bx0, by0, bsize, nbx, nby, rad)[0]
            if math.pi * (rad / step) ** 2 <= 6.0 * count:
                done = _walk_lattice(i, lx, ly, raster, pop, grp, off_x, off_y, off_d2, ks, whole, out_n, out_g, r)
        if not done:
            _solve_one(i, xs, ys, pop, grp, order, bstart, bx0, by0, bsize, nbx, nby, rad, ks, whole,
                       out_n, out_g, r)  # fmt: skip
    return out_n, out_g


def _lattice(
    xs: np.ndarray, ys: np.ndarray, step: float, max_radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Grid positions, a raster of cell numbers and offsets sorted by squared distance when the cells lie on
    one regular grid of side `step` (one cell per grid point); empty arrays otherwise."""
    none = (np.zeros(0, np.int64),) * 2 + (np.full((1, 1), -1, np.int64),) + (np.zeros(0, np.int64),) * 3 + (0.0,)
    if step <= 0 or not max_radius > 0:
        return none
    fx, fy = (xs - xs.min()) / step, (ys - ys.min()) / step
    lx, ly = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
    if np.abs(fx - lx).max() > 1e-9 or np.abs(fy - ly).max() > 1e-9:
        return none
    nx, ny = int(lx.max()) + 1, int(ly.max()) + 1
    if nx * ny > 200_000_000:
        return none
    raster = np.full((nx, ny), -1, np.int64)
    raster[lx, ly] = np.arange(len(xs))
    if int((raster >= 0).sum()) != len(xs):  # two cells on one grid point: rings need the general path
        return none
    reach = min(math.ceil(max_radius / step) + 1, 300)
    g = np.arange(-reach, reach + 1)
    ox, oy = np.meshgrid(g, g, indexing="ij")
    d2 = (ox * ox + oy * oy).ravel()
    inside = d2 <= reach * reach
    srt = np.argsort(d2[inside], kind="stable")
    return (lx, ly, raster, ox.ravel()[inside][srt], oy.ravel()[inside][srt], d2[inside][srt], float(reach))


def _block_size(xs: np.ndarray, ys: np.ndarray) -> float:
    """Four times the median spacing to the nearest other cell: blocks of about 4×4 cells on a grid."""
    if len(xs) < 2:
        return 1.0
    d, _ = cKDTree(np.c_[xs, ys]).query(np.c_[xs, ys], k=2)
    spacing = float(np.median(d[:, 1]))
    if spacing <= 0:
        spacing = float(np.mean(d[:, 1])) or 1.0
    return 4.0 * spacing


def _block_radius(bcx: np.ndarray, bcy: np.ndarray, bpop: np.ndarray, kmax: float, bsize: float) -> np.ndarray:
    """For every block, a radius around any point inside it that surely holds kmax persons: walk blocks by
    centre distance until their population reaches kmax, and add a block diagonal (origin and cells may each
    sit half a diagonal from their block's centre). Infinite when all blocks together hold fewer."""
    nblk = len(bpop)
    pts = np.c_[bcx, bcy]
    tree = cKDTree(pts)
    out = np.full(nblk, np.inf)
    todo = np.arange(nblk)
    m = min(64, nblk)
    while len(todo):
        dist, idx = tree.query(pts[todo], k=m)
        dist, idx = dist.reshape(len(todo), m), idx.reshape(len(todo), m)
        cum = np.cumsum(bpop[idx], axis=1)
        reached = cum[:, -1] >= kmax
        pos = np.argmax(cum >= kmax, axis=1)
        done = reached | (m >= nblk)
        out[todo[reached]] = dist[reached, pos[reached]] + bsize * math.sqrt(2.0) * (1 + 1e-9) + 1e-6
        todo = todo[~done]
        m = min(nblk, m * 4)
    return out


def knn_counts(
    x: np.ndarray,
    y: np.ndarray,
    population: np.ndarray,
    groups: np.ndarray,
    ks: Sequence[int] = DEFAULT_K,
    convention: str = "exact",
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Persons (n × len(ks)) and group counts (n × len(ks) × G) among the K nearest persons of every cell.

    All cells given are origins and destinations (pass populated cells; empty ones only cost time).
    `groups` is n × G counts per cell.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    xs = np.ascontiguousarray(x, dtype=np.float64)
    ys = np.ascontiguousarray(y, dtype=np.float64)
    pop = np.ascontiguousarray(population, dtype=np.float64)
    grp = np.ascontiguousarray(np.asarray(groups, dtype=np.float64).reshape(len(xs), -1))
    kv = np.asarray(sorted(ks), dtype=np.float64)
    if len(kv) == 0 or kv[0] <= 0:
        raise ValueError("K must be positive numbers of persons")
    n = len(xs)
    if n == 0:
        return np.zeros((0, len(kv))), np.zeros((0, len(kv), grp.shape[1]))
    bsize = _block_size(xs, ys)
    bx0, by0 = float(xs.min()) - bsize / 2, float(ys.min()) - bsize / 2
    bxi = ((xs - bx0) // bsize).astype(np.int64)
    byi = ((ys - by0) // bsize).astype(np.int64)
    nbx, nby = int(bxi.max()) + 1, int(byi.max()) + 1
    block = bxi * nby + byi
    order = np.argsort(block, kind="stable")
    bstart = np.zeros(nbx * nby + 1, np.int64)
    np.cumsum(np.bincount(block, minlength=nbx * nby), out=bstart[1:])
    used, where = np.unique(block, return_inverse=True)
    bpop = np.bincount(where, weights=pop)
    bcx = bx0 + (used // nby + 0.5) * bsize
    bcy = by0 + (used % nby + 0.5) * bsize
    radius = _block_radius(bcx, bcy, bpop, float(kv[-1]), bsize)[where]
    finite = radius[np.isfinite(radius)]
    lattice = _lattice(xs, ys, bsize / 4, float(finite.max()) if len(finite) else 0.0)
    out_n = np.empty((n, len(kv)))
    out_g = np.empty((n, len(kv), grp.shape[1]))
    whole = convention == "whole-cells"
    # origins in block order (neighbouring origins share their candidate blocks in cache), in chunks for progress
    chunks = np.array_split(order, max(1, min(50, n // 2000)))
    done = 0
    for chunk in chunks:
        cn, cg = _solve_chunk(
            chunk,
            xs,
            ys,
            pop,
            grp,
            order,
            bstart,
            bx0,
            by0,
            bsize,
            nbx,
            nby,
            radius,
            kv,
            whole,
            *lattice[:3],
            bsize / 4,
            *lattice[3:],
        )
        out_n[chunk], out_g[chunk] = cn, cg
        done += len(chunk)
        if progress:
            progress(done / n)
    return out_n, out_g


def knn_table(
    cells: pd.DataFrame,
    x: str,
    y: str,
    population: str,
    groups: Sequence[str],
    ks: Sequence[int] = DEFAULT_K,
    convention: str = "exact",
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """The K-nearest counts as a table: x, y, n_local, <group>_local, then n_<K> and <group>_<K> per K (K
    ascending). Cells with no persons are left out (they are nobody's neighbour and weigh nothing)."""
    populated = cells[cells[population].to_numpy(dtype=np.float64) > 0]
    ks = sorted(int(k) for k in ks)
    n_k, g_k = knn_counts(
        populated[x].to_numpy(),
        populated[y].to_numpy(),
        populated[population].to_numpy(),
        populated[list(groups)].to_numpy(dtype=np.float64),
        ks,
        convention,
        progress,
    )
    cols: dict[str, np.ndarray] = {
        "x": populated[x].to_numpy(),
        "y": populated[y].to_numpy(),
        "n_local": populated[population].to_numpy(dtype=np.float64),
    }
    for g in groups:
        cols[f"{g}_local"] = populated[g].to_numpy(dtype=np.float64)
    for j, k in enumerate(ks):
        cols[f"n_{k}"] = n_k[:, j]
        for gi, g in enumerate(groups):
            cols[f"{g}_{k}"] = g_k[:, j, gi]
    return pd.DataFrame(cols)


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Inverted-CDF percentiles: the smallest value whose cumulative weight reaches q % of the total."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cw = np.cumsum(w)
    at = np.searchsorted(cw, np.asarray(percentiles, dtype=np.float64) / 100 * cw[-1], side="left")
    return v[np.minimum(at, len(v) - 1)]


def profile(table: pd.DataFrame, groups: Sequence[str], ks: Sequence[int] | None = None) -> pd.DataFrame:
    """D, H and isolation over K, one row per K and group.

    Each origin cell i is a unit of weight w_i = n_local_i (its own persons) with the neighbourhood share
    p_i = <group>_K / n_K: the indices are those of units with total w_i and group count w_i p_i — every
    person is placed in their own bespoke neighbourhood. Also the population-weighted mean share and the
    weighted percentiles p10 … p90 of the shares.
    """
    if ks is None:
        ks = sorted(int(c[2:]) for c in table.columns if c.startswith("n_") and c[2:].isdigit())
    w = table["n_local"].to_numpy(dtype=np.float64)
    rows = []
    for k in ks:
        n_k = table[f"n_{k}"].to_numpy(dtype=np.float64)
        for g in groups:
            share = np.divide(table[f"{g}_{k}"].to_numpy(dtype=np.float64), n_k, out=np.zeros(len(w)), where=n_k > 0)
            xg = w * share
            row = {
                "k": int(k),
                "group": g,
                "dissimilarity": dissimilarity(xg, w),
                "entropy": entropy(xg, w),
                "isolation": isolation(xg, w),
                "mean_share": float(xg.sum() / w.sum()),
            }
            for q, v in zip(PERCENTILES, weighted_percentiles(share, w, PERCENTILES), strict=True):
                row[f"p{q}"] = float(v)
            rows.append(row)
    return pd.DataFrame(rows)
