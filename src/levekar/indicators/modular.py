"""Compiled kernels of the exact audit: a random null vector of a sparse system modulo p = 2⁶¹ − 1.

Numbers are uint64 below p; a product of two needs 122 bits, so `_mulmod` splits the factors into 32-bit
halves and folds the high bits back with 2⁶¹ ≡ 1 (mod p). `null_vector` takes the system as entries
(row, column, coefficient) and returns one random z with A z = 0: peeling (a row with one unknown fixes it;
an unknown in one row only puts that row aside), sparse elimination of the rest (shortest row first, pivot on
its least-used column), back-substitution, and the rows put aside, last first. Unknowns no row constrains
draw a random value, so z = 0 marks exactly the unknowns the system fixes (but with probability 2⁻⁶¹ each).
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit, types
from numba.typed import List

P = np.uint64((1 << 61) - 1)
_M32 = np.uint64(0xFFFFFFFF)
_M29 = np.uint64((1 << 29) - 1)
_S = (np.uint64(3), np.uint64(29), np.uint64(32), np.uint64(61))


@njit(cache=True, inline="always")
def _fold(r: np.uint64) -> np.uint64:
    r = (r >> _S[3]) + (r & P)
    return r - P if r >= P else r


@njit(cache=True, inline="always")
def _mulmod(a: np.uint64, b: np.uint64) -> np.uint64:
    """a·b mod p for a, b < p: a·b = hi·2⁶⁴ + mid·2³² + lo with 2⁶⁴ ≡ 8 and 2⁶¹ ≡ 1."""
    a_hi, a_lo = a >> _S[2], a & _M32
    b_hi, b_lo = b >> _S[2], b & _M32
    lo = a_lo * b_lo  # < 2⁶⁴
    mid = a_hi * b_lo + a_lo * b_hi  # < 2⁶²
    hi = a_hi * b_hi  # < 2⁵⁸
    # every term < 2⁶¹ (the small ones < 2³⁴): the sum fits in 63 bits
    r = (hi << _S[0]) + (mid >> _S[1]) + ((mid & _M29) << _S[2]) + (lo >> _S[3]) + (lo & P)
    return _fold(r)


@njit(cache=True, inline="always")
def _sub(a: np.uint64, b: np.uint64) -> np.uint64:
    return a - b if a >= b else a + (P - b)


@njit(cache=True)
def _inverse(a: np.uint64) -> np.uint64:
    """a^(p − 2) mod p."""
    if a == np.uint64(1) or a == P - np.uint64(1):
        return a  # ±1, most pivots of these relations
    e = P - np.uint64(2)
    r = np.uint64(1)
    while e:
        if e & np.uint64(1):
            r = _mulmod(r, a)
        a = _mulmod(a, a)
        e >>= np.uint64(1)
    return r


@njit(cache=True)
def _random(z: np.ndarray, has: np.ndarray, k: int) -> np.uint64:
    """z[k], drawn at random in 1 … p − 1 the first time (a free unknown)."""
    if not has[k]:
        z[k] = np.uint64(np.random.randint(1, (1 << 61) - 1))
        has[k] = True
    return z[k]


@njit(cache=True)
def group_order(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A stable counting sort of integer keys in [0, n): the indices of `keys` in key order (in their own
    order within a key) and each key's start offset (n + 1 of them) — O(len(keys) + n), no comparison sort."""
    starts = np.zeros(n + 1, dtype=np.int64)
    for k in keys:
        starts[k + 1] += 1
    for i in range(n):
        starts[i + 1] += starts[i]
    fill = starts[:-1].copy()
    order = np.empty(len(keys), dtype=np.int64)
    for e in range(len(keys)):
        order[fill[keys[e]]] = e
        fill[keys[e]] += 1
    return order, starts


@njit(cache=True)
def first_of_pairs(group: np.ndarray, item: np.ndarray, n_groups: int, n_items: int) -> np.ndarray:
    """Whether each entry is the first of its (group, item) pair, in entry order — `np.unique` of the pairs
    without sorting them (groups in [0, n_groups), items in [0, n_items))."""
    order, starts = group_order(group, n_groups)
    seen = np.full(n_items, -1, dtype=np.int64)
    keep = np.zeros(len(group), dtype=np.bool_)
    for g in range(n_groups):
        for q in range(starts[g], starts[g + 1]):
            e = order[q]
            if seen[item[e]] != g:
                seen[item[e]] = g
                keep[e] = True
    return keep


@njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True)
def null_vector(
    row: np.ndarray, col: np.ndarray, coef: np.ndarray, n_rows: int, n_cols: int, seed: int, batch: int = 50_000
):
    """A random z with Σ coef·z[col] = 0 in every row (entries: distinct (row, col), coef in 0 … p − 1),
    and whether each z was set (unknowns in no row are left out).

    The system is split into its connected parts, solved in batches of whole parts of about `batch` entries:
    the same result as solving it whole, with the memory of one batch at a time in cache."""
    np.random.seed(seed)
    z = np.zeros(n_cols, dtype=np.uint64)
    has = np.zeros(n_cols, dtype=np.bool_)
    n = len(row)
    parent = np.arange(n_rows + n_cols)
    for e in range(n):
        a, b = _find(parent, row[e]), _find(parent, n_rows + col[e])
        if a != b:
            parent[max(a, b)] = min(a, b)
    part = np.empty(n, dtype=np.int64)
    for e in range(n):
        part[e] = _find(parent, row[e])
    order = np.argsort(part, kind="mergesort")
    row_id = np.full(n_rows, -1, dtype=np.int64)
    col_id = np.full(n_cols, -1, dtype=np.int64)
    start = 0
    while start < n:
        end = start + 1
        while end < n and (end - start < batch or part[order[end]] == part[order[end - 1]]):
            end += 1
        m = end - start
        br = np.empty(m, dtype=np.int64)
        bc = np.empty(m, dtype=np.int64)
        bv = np.empty(m, dtype=np.uint64)
        cols = np.empty(m, dtype=np.int64)
        nr = nc = 0
        for q in range(m):
            e = order[start + q]
            if row_id[row[e]] < 0:
                row_id[row[e]] = nr
                nr += 1
            if col_id[col[e]] < 0:
                col_id[col[e]] = nc
                cols[nc] = col[e]
                nc += 1
            br[q], bc[q], bv[q] = row_id[row[e]], col_id[col[e]], coef[e]
        bz, bhas = _solve(br, bc, bv, nr, nc)
        for q in range(nc):
            z[cols[q]], has[cols[q]] = bz[q], bhas[q]
            col_id[cols[q]] = -1
        for q in range(m):
            row_id[row[order[start + q]]] = -1
        start = end
    return z, has


@njit(cache=True)
def _solve(row: np.ndarray, col: np.ndarray, coef: np.ndarray, n_rows: int, n_cols: int):
    """`null_vector` of one batch (rows and unknowns numbered from 0)."""
    z = np.zeros(n_cols, dtype=np.uint64)
    has = np.zeros(n_cols, dtype=np.bool_)
    n = len(row)
    live = np.zeros(n, dtype=np.bool_)
    length = np.zeros(n_rows, dtype=np.int64)  # live unknowns per row
    count = np.zeros(n_cols, dtype=np.int64)  # live rows per unknown
    for e in range(n):
        if coef[e] != 0:
            live[e] = True
            length[row[e]] += 1
            count[col[e]] += 1
    by_row, row_start = group_order(row, n_rows)
    by_col, col_start = group_order(col, n_cols)
    row_out = np.zeros(n_rows, dtype=np.bool_)  # put aside (or empty)
    col_out = np.zeros(n_cols, dtype=np.bool_)  # fixed
    aside = np.empty(n_rows, dtype=np.int64)
    aside_col = np.empty(n_rows, dtype=np.int64)
    n_aside = 0
    # 1. peeling with a work list of rows and unknowns to look at again
    stack_r = List.empty_list(types.int64)
    stack_c = List.empty_list(types.int64)
    for r in range(n_rows):
        stack_r.append(r)
    for c in range(n_cols):
        stack_c.append(c)
    while len(stack_r) or len(stack_c):
        while len(stack_r):
            r = stack_r.pop()
            if row_out[r] or length[r] != 1:
                continue
            c = -1
            # the one live unknown of the row is fixed: z = 0, out of every row
            for q in range(row_start[r], row_start[r + 1]):
                e = by_row[q]
                if live[e]:
                    c = col[e]
            col_out[c] = True
            z[c] = np.uint64(0)
            has[c] = True
            for q in range(col_start[c], col_start[c + 1]):
                e = by_col[q]
                if live[e]:
                    live[e] = False
                    length[row[e]] -= 1
                    stack_r.append(row[e])
            count[c] = 0
        while len(stack_c) and not len(stack_r):
            c = stack_c.pop()
            if col_out[c] or count[c] != 1:
                continue
            r = -1
            for q in range(col_start[c], col_start[c + 1]):
                e = by_col[q]
                if live[e]:
                    r = row[e]
            if length[r] < 2:
                continue
            # c is in row r only: r says nothing about the other unknowns; z[c] follows from them
            row_out[r] = True
            aside[n_aside] = r
            aside_col[n_aside] = c
            n_aside += 1
            for q in range(row_start[r], row_start[r + 1]):
                e = by_row[q]
                if live[e]:
                    live[e] = False
                    k = col[e]
                    count[k] -= 1
                    stack_c.append(k)
            length[r] = 0
    # 2. what is left: rows of two unknowns tie one to the other (x_a = w·x_b) and are merged by a weighted
    # union-find (`_contract`); elimination of the rest; every unknown of the core from its root
    rows_c = List.empty_list(types.int64[:])
    rows_v = List.empty_list(types.uint64[:])
    in_core = np.zeros(n_cols, dtype=np.bool_)
    for r in range(n_rows):
        if not row_out[r] and length[r] > 0:
            cs = np.empty(length[r], dtype=np.int64)
            vs = np.empty(length[r], dtype=np.uint64)
            m = 0
            for q in range(row_start[r], row_start[r + 1]):
                e = by_row[q]
                if live[e]:
                    cs[m] = col[e]
                    vs[m] = coef[e]
                    in_core[col[e]] = True
                    m += 1
            o = np.argsort(cs)
            rows_c.append(cs[o])
            rows_v.append(vs[o])
    parent, weight, fixed, alive = _contract(rows_c, rows_v, n_cols)
    kept_c = List.empty_list(types.int64[:])
    kept_v = List.empty_list(types.uint64[:])
    count = np.zeros(n_cols, dtype=np.int64)
    for i in range(len(rows_c)):
        if alive[i]:
            kept_c.append(rows_c[i])
            kept_v.append(rows_v[i])
            for k in rows_c[i]:
                count[k] += 1
    order, pivot_col = _eliminate(kept_c, kept_v, count, n_cols)
    for t in range(len(order) - 1, -1, -1):
        # later pivots first: an earlier pivot row may hold them, never the other way round
        i = order[t]
        c = pivot_col[i]
        cs, vs = kept_c[i], kept_v[i]
        s = np.uint64(0)
        for q in range(len(cs)):
            if cs[q] != c:
                s = _fold(s + _mulmod(vs[q], _random(z, has, cs[q])))
        z[c] = _sub(np.uint64(0), s)  # the pivot row is normalised: coefficient 1
        has[c] = True
    path = np.empty(n_cols, dtype=np.int64)
    for c in range(n_cols):
        if in_core[c]:
            root, w = _root(parent, weight, c, path)
            if fixed[root]:
                z[root] = np.uint64(0)
                has[root] = True
            z[c] = _mulmod(w, _random(z, has, root))
            has[c] = True
    # 3. the rows put aside, last first
    for a in range(n_aside - 1, -1, -1):
        r, c = aside[a], aside_col[a]
        s = np.uint64(0)
        own = np.uint64(0)
        for q in range(row_start[r], row_start[r + 1]):
            e = by_row[q]
            if coef[e] == 0:
                continue
            if col[e] == c:
                own = coef[e]
            else:
                s = _fold(s + _mulmod(coef[e], _random(z, has, col[e])))
        z[c] = _mulmod(_sub(np.uint64(0), s), _inverse(own))
        has[c] = True
    return z, has


@njit(cache=True)
def _root(parent: np.ndarray, weight: np.ndarray, c: int, path: np.ndarray):
    """The root of unknown c and w with x_c = w·x_root; compresses the path (`path`: scratch space)."""
    n = 0
    r = c
    while parent[r] != r:
        path[n] = r
        n += 1
        r = parent[r]
    w = np.uint64(1)
    for t in range(n - 1, -1, -1):  # from the node nearest the root: each weight relative to the root
        node = path[t]
        w = _mulmod(weight[node], w)
        weight[node] = w
        parent[node] = r
    return r, w


@njit(cache=True)
def _normalise(cs, vs, parent, weight, fixed, path):
    """A row over roots: each unknown replaced by w·root, fixed roots (0) left out, repeated roots summed,
    zero coefficients dropped; columns sorted."""
    same = True
    for k in cs:
        if parent[k] != k or fixed[k]:
            same = False
            break
    if same:
        return cs, vs
    rc = np.empty(len(cs), dtype=np.int64)
    rv = np.empty(len(cs), dtype=np.uint64)
    m = 0
    for q in range(len(cs)):
        r, w = _root(parent, weight, cs[q], path)
        if not fixed[r]:
            rc[m] = r
            rv[m] = _mulmod(vs[q], w)
            m += 1
    o = np.argsort(rc[:m])
    oc = np.empty(m, dtype=np.int64)
    ov = np.empty(m, dtype=np.uint64)
    n = 0
    for q in range(m):
        k, v = rc[o[q]], rv[o[q]]
        if n > 0 and oc[n - 1] == k:
            ov[n - 1] = _fold(ov[n - 1] + v)
        else:
            oc[n], ov[n] = k, v
            n += 1
    keep = 0
    for q in range(n):
        if ov[q] != 0:
            oc[keep], ov[keep] = oc[q], ov[q]
            keep += 1
    return oc[:keep].copy(), ov[:keep].copy()


@njit(cache=True)
def _contract(rows_c, rows_v, n_cols: int):
    """Merge the unknowns rows of two unknowns tie together (a·x_a + b·x_b = 0: x_a = −b/a·x_b), with a
    weighted union-find, until no row of one or two unknowns is left; a row of one unknown fixes it (0).
    The rows are rewritten over the roots in place. Returns (parent, weight, fixed, alive): the unknowns'
    union-find, whether a root is fixed, and the rows still to eliminate. Exactly what elimination would
    do with those rows as pivots, without rewriting every longer row that holds them again and again."""
    parent = np.arange(n_cols)
    weight = np.ones(n_cols, dtype=np.uint64)
    fixed = np.zeros(n_cols, dtype=np.bool_)
    path = np.empty(n_cols, dtype=np.int64)
    alive = np.ones(len(rows_c), dtype=np.bool_)
    changed = True
    while changed:
        changed = False
        for i in range(len(rows_c)):
            if not alive[i]:
                continue
            cs, vs = _normalise(rows_c[i], rows_v[i], parent, weight, fixed, path)
            rows_c[i], rows_v[i] = cs, vs
            if len(cs) > 2:
                continue
            alive[i] = False
            if len(cs) == 1:
                fixed[_root(parent, weight, cs[0], path)[0]] = True
                changed = True
            elif len(cs) == 2:
                ra, wa = _root(parent, weight, cs[0], path)
                rb, wb = _root(parent, weight, cs[1], path)
                alpha, beta = _mulmod(vs[0], wa), _mulmod(vs[1], wb)  # alpha·x_ra + beta·x_rb = 0
                if fixed[ra] or fixed[rb]:
                    fixed[ra] = fixed[rb] = True
                elif ra == rb:
                    if _fold(alpha + beta) != 0:
                        fixed[ra] = True
                else:
                    parent[ra] = rb
                    weight[ra] = _mulmod(_sub(np.uint64(0), beta), _inverse(alpha))
                changed = True
    return parent, weight, fixed, alive


@njit(cache=True)
def _merge(ac, av, bc, bv, f, col_count, col_rows, col_len, j):
    """Row a − f·row b (sorted columns), keeping each unknown's count of rows (`j` is row a's index)."""
    oc = np.empty(len(ac) + len(bc), dtype=np.int64)
    ov = np.empty(len(ac) + len(bc), dtype=np.uint64)
    x = y = m = 0
    while x < len(ac) or y < len(bc):
        if y == len(bc) or (x < len(ac) and ac[x] < bc[y]):
            oc[m], ov[m] = ac[x], av[x]
            m += 1
            x += 1
        elif x == len(ac) or bc[y] < ac[x]:
            k = bc[y]
            oc[m], ov[m] = k, _sub(np.uint64(0), _mulmod(f, bv[y]))
            m += 1
            y += 1
            col_count[k] += 1
            _push(col_rows, col_len, k, j)
        else:
            w = _sub(av[x], _mulmod(f, bv[y]))
            if w:
                oc[m], ov[m] = ac[x], w
                m += 1
            else:
                col_count[ac[x]] -= 1
            x += 1
            y += 1
    return oc[:m].copy(), ov[:m].copy()


@njit(cache=True)
def _push(col_rows, col_len, k, j):
    a = col_rows[k]
    if col_len[k] == len(a):
        b = np.empty(max(4, 2 * len(a)), dtype=np.int64)
        b[: len(a)] = a
        col_rows[k] = b
        a = b
    a[col_len[k]] = j
    col_len[k] += 1


@njit(cache=True)
def _has(cs, k):
    q = np.searchsorted(cs, k)
    return q < len(cs) and cs[q] == k


@njit(cache=True)
def _eliminate(rows_c, rows_v, col_count, n_cols):
    """Gaussian elimination in place, shortest row first, pivot on its least-used unknown (ties: the
    lowest); returns the pivot rows in order and each row's pivot (−1: none). `col_count` counts the live
    rows of each unknown; an unknown's list of rows may hold rows that have since lost it (checked on use)."""
    n = len(rows_c)
    col_rows = List.empty_list(types.int64[:])
    col_len = np.zeros(n_cols, dtype=np.int64)
    for _ in range(n_cols):
        col_rows.append(np.empty(0, dtype=np.int64))
    heap = [(np.int64(0), np.int64(0))]
    heap.pop()
    for i in range(n):
        for k in rows_c[i]:
            _push(col_rows, col_len, k, i)
        if len(rows_c[i]):
            heap.append((np.int64(len(rows_c[i])), np.int64(i)))
    heapq.heapify(heap)
    done = np.zeros(n, dtype=np.bool_)
    pivot_col = np.full(n, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    n_pivots = 0
    while len(heap):
        length, i = heapq.heappop(heap)
        if done[i] or length != len(rows_c[i]):
            continue
        done[i] = True
        cs, vs = rows_c[i], rows_v[i]
        if len(cs) == 0:
            continue
        best = 0
        for q in range(1, len(cs)):
            if col_count[cs[q]] < col_count[cs[best]]:
                best = q
        c = cs[best]
        inv = _inverse(vs[best])
        vs = vs.copy()
        for q in range(len(vs)):
            vs[q] = _mulmod(vs[q], inv)
        rows_v[i] = vs
        for k in cs:
            col_count[k] -= 1
        pivot_col[i] = c
        order[n_pivots] = i
        n_pivots += 1
        lst = col_rows[c]
        for t in range(col_len[c]):
            j = lst[t]
            if done[j] or not _has(rows_c[j], c):
                continue
            q = np.searchsorted(rows_c[j], c)
            f = rows_v[j][q]
            oc, ov = _merge(rows_c[j], rows_v[j], cs, vs, f, col_count, col_rows, col_len, j)
            rows_c[j], rows_v[j] = oc, ov
            heapq.heappush(heap, (np.int64(len(oc)), np.int64(j)))
        col_len[c] = 0
    return order[:n_pivots], pivot_col
