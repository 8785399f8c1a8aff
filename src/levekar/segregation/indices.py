"""Aspatial segregation indices over units (areas), single-group and multigroup, on PySAL `segregation`'s scale.

Every function takes counts with the units on the last axis (single group: `x` group and `t` total, shape
(..., n); multigroup: `counts` of shape (..., n, G)) and reduces that axis, so the same code computes one value
or a whole batch of randomised replications at once. No N×N matrix anywhere: the Gini is sort-based.

Definitions (PySAL 2.5.4, Massey & Denton 1988; Sakoda 1981; Reardon & Firebaugh 2002), with p_i = x_i / t_i
(0 where t_i = 0), T = Σ t_i, P = Σ x_i / T:

- dissimilarity  D = Σ t_i |p_i − P| / (2 T P (1 − P))
- gini           G = Σ_i Σ_j t_i t_j |p_i − p_j| / (2 T² P (1 − P))
- entropy        H = Σ t_i (E − E_i) / (E T), E = −P ln P − (1 − P) ln(1 − P), E_i the same of p_i
- atkinson(b)    A = 1 − P/(1 − P) · |Σ (1 − p_i)^(1−b) p_i^b t_i / (P T)|^(1/(1−b))
- isolation      xPx = Σ (x_i / X) p_i;  interaction xPy = Σ (x_i / X)(1 − p_i)
- multigroup D   Σ_k Σ_i t_i |p_ik − P_k| / (2 T Σ_k P_k (1 − P_k))
- multigroup H   Σ_i Σ_k t_i p_ik ln(p_ik / P_k) / (T E), E = −Σ_k P_k ln P_k
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ATKINSON_B = (0.1, 0.5, 0.9)
SINGLE_GROUP = ("dissimilarity", "gini", "entropy", "atkinson_0.1", "atkinson_0.5", "atkinson_0.9", "isolation",
                "interaction")  # fmt: skip
MULTIGROUP = ("multigroup_dissimilarity", "multigroup_information_theory")


def _f(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _share(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.divide(x, t, out=np.zeros(np.broadcast_shapes(x.shape, t.shape)), where=t > 0)


def _totals(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t = _f(x), _f(t)
    T = t.sum(axis=-1, keepdims=True)
    return x, t, x.sum(axis=-1, keepdims=True) / T


def _squeeze(v: np.ndarray) -> np.ndarray | float:
    v = np.squeeze(v, axis=-1) if v.ndim and v.shape[-1] == 1 else v
    return float(v) if np.ndim(v) == 0 else v


def dissimilarity(x: np.ndarray, t: np.ndarray) -> np.ndarray | float:
    x, t, P = _totals(x, t)
    T = t.sum(axis=-1, keepdims=True)
    num = (t * np.abs(_share(x, t) - P)).sum(axis=-1, keepdims=True)
    return _squeeze(num / (2 * T * P * (1 - P)))


def gini(x: np.ndarray, t: np.ndarray) -> np.ndarray | float:
    """Σ_i<j t_i t_j (p_j − p_i) over units sorted by p: with C_j = Σ_{i<j} t_i and S_j = Σ_{i<j} t_i p_i
    the pair sum is Σ_j t_j (p_j C_j − S_j) — O(n log n) instead of PySAL's O(n²) pair loop."""
    x, t, P = _totals(x, t)
    p = _share(x, t)
    order = np.argsort(p, axis=-1, kind="stable")
    p, w = np.take_along_axis(p, order, -1), np.take_along_axis(t, order, -1)
    # centring on P keeps the differences p_j C_j − S_j free of cancellation when all p are large
    q = p - P
    C = np.cumsum(w, axis=-1) - w
    S = np.cumsum(w * q, axis=-1) - w * q
    num = 2 * (w * (q * C - S)).sum(axis=-1, keepdims=True)
    T = t.sum(axis=-1, keepdims=True)
    return _squeeze(num / (2 * T * T * P * (1 - P)))


def _xlogx(p: np.ndarray) -> np.ndarray:
    """p ln p with 0 ln 0 = 0 (PySAL's nan_to_num)."""
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -_xlogx(p) - _xlogx(1 - p)


def entropy(x: np.ndarray, t: np.ndarray) -> np.ndarray | float:
    x, t, P = _totals(x, t)
    T = t.sum(axis=-1, keepdims=True)
    E = _binary_entropy(P)
    Ei = _binary_entropy(_share(x, t))
    return _squeeze((t * (E - Ei)).sum(axis=-1, keepdims=True) / (E * T))


def atkinson(x: np.ndarray, t: np.ndarray, b: float = 0.5) -> np.ndarray | float:
    if not 0 <= b < 1:
        raise ValueError(f"Atkinson's b must lie in [0, 1), got {b}")
    x, t, P = _totals(x, t)
    T = t.sum(axis=-1, keepdims=True)
    p = _share(x, t)
    inner = ((1 - p) ** (1 - b) * p**b * t).sum(axis=-1, keepdims=True) / (P * T)
    return _squeeze(1 - (P / (1 - P)) * np.abs(inner) ** (1 / (1 - b)))


def isolation(x: np.ndarray, t: np.ndarray) -> np.ndarray | float:
    x, t, _ = _totals(x, t)
    X = x.sum(axis=-1, keepdims=True)
    return _squeeze((x / X * _share(x, t)).sum(axis=-1, keepdims=True))


def interaction(x: np.ndarray, t: np.ndarray) -> np.ndarray | float:
    x, t, _ = _totals(x, t)
    X = x.sum(axis=-1, keepdims=True)
    return _squeeze((x / X * _share(t - x, t)).sum(axis=-1, keepdims=True))


def multigroup_dissimilarity(counts: np.ndarray) -> np.ndarray | float:
    """Sakoda's D over exhaustive groups (the unit total is the sum of the groups, as in PySAL)."""
    c = _f(counts)
    ti = c.sum(axis=-1, keepdims=True)
    T = ti.sum(axis=-2, keepdims=True)
    Pk = c.sum(axis=-2, keepdims=True) / T
    spread = (Pk * (1 - Pk)).sum(axis=-1, keepdims=True)
    num = (ti * np.abs(_share(c, ti) - Pk)).sum(axis=(-2, -1), keepdims=True)
    return _squeeze(_squeeze(num / (2 * T * spread)))


def multigroup_information_theory(counts: np.ndarray) -> np.ndarray | float:
    """Theil's information-theory index H over exhaustive groups (natural logarithm, as PySAL)."""
    c = _f(counts)
    ti = c.sum(axis=-1, keepdims=True)
    T = ti.sum(axis=-2, keepdims=True)
    Pk = c.sum(axis=-2, keepdims=True) / T
    E = -_xlogx(Pk).sum(axis=-1, keepdims=True)
    p = _share(c, ti)
    ratio = np.divide(p, Pk, out=np.ones_like(p), where=(p > 0) & (Pk > 0))
    num = (ti * p * np.log(ratio)).sum(axis=(-2, -1), keepdims=True)
    return _squeeze(_squeeze(num / (T * E)))


def single_group(x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray | float]:
    """All single-group indices, keyed as in SINGLE_GROUP."""
    out: dict[str, np.ndarray | float] = {
        "dissimilarity": dissimilarity(x, t),
        "gini": gini(x, t),
        "entropy": entropy(x, t),
    }
    for b in ATKINSON_B:
        out[f"atkinson_{b}"] = atkinson(x, t, b)
    out["isolation"] = isolation(x, t)
    out["interaction"] = interaction(x, t)
    return out


def multigroup(counts: np.ndarray) -> dict[str, np.ndarray | float]:
    return {
        "multigroup_dissimilarity": multigroup_dissimilarity(counts),
        "multigroup_information_theory": multigroup_information_theory(counts),
    }


# --- decomposition of H -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decomposition:
    """H = between + within, within = Σ_r (T_r E_r)/(T E) · H_r (Theil; Reardon & Firebaugh 2002)."""

    total: float
    between: float
    within: float
    regions: pd.DataFrame  # region, population, entropy (E_r), weight (T_r E_r / T E), h (H_r)


def decompose_information_theory(counts: np.ndarray, region: np.ndarray) -> Decomposition:
    """Split multigroup H over units into the part between regions (the regions taken as units) and the
    weighted H within each region. A single group is counts = [[x, t − x]]."""
    c = _f(counts)
    region = np.asarray(region)
    codes, inv = np.unique(region, return_inverse=True)
    T = c.sum()
    E = -_xlogx(c.sum(axis=0) / T).sum()
    agg = np.zeros((len(codes), c.shape[1]))
    np.add.at(agg, inv, c)
    rows = []
    within = 0.0
    for r, code in enumerate(codes):
        sub = c[inv == r]
        Tr = sub.sum()
        Er = -_xlogx(sub.sum(axis=0) / Tr).sum() if Tr > 0 else 0.0
        # a region holding one group only has E_r = 0 and no segregation inside it
        hr = float(multigroup_information_theory(sub)) if Er > 0 else 0.0
        weight = Tr * Er / (T * E)
        within += weight * hr
        rows.append({"region": code, "population": Tr, "entropy": Er, "weight": weight, "h": hr})
    return Decomposition(
        total=float(multigroup_information_theory(c)),
        between=float(multigroup_information_theory(agg)),
        within=float(within),
        regions=pd.DataFrame(rows),
    )


# --- randomisation inference --------------------------------------------------------------------------------


def _all(counts: np.ndarray) -> dict[str, np.ndarray | float]:
    """Single-group indices for the first column against the rest when G = 2, plus the multigroup ones."""
    out = multigroup(counts)
    if counts.shape[-1] == 2:
        x, t = counts[..., 0], counts.sum(axis=-1)
        out = {**single_group(x, t), **out}
    return out


def _draw_multinomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray, reps: int) -> np.ndarray:
    return rng.multinomial(n.astype(np.int64), p, size=(reps, *n.shape)).astype(np.float64)


def _draw_permuted_years(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, reps: int) -> np.ndarray:
    """Year-1 counts after randomly relabelling which persons of each unit belong to which year: per unit
    and group a multivariate hypergeometric draw, done as a chain of univariate ones."""
    pooled = (a + b).astype(np.int64)
    sample = np.broadcast_to(a.sum(axis=1).astype(np.int64), (reps, a.shape[0])).copy()
    left = np.broadcast_to(pooled.sum(axis=1), (reps, a.shape[0])).copy()
    out = np.zeros((reps, *a.shape))
    for k in range(a.shape[1] - 1):
        good = np.broadcast_to(pooled[:, k], left.shape)
        draw = rng.hypergeometric(good, left - good, sample) if good.size else np.zeros(left.shape, np.int64)
        out[..., k] = draw
        sample -= draw
        left -= good
    out[..., -1] = sample
    return out


def _quantiles(v: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def infer(
    counts: np.ndarray, replications: int = 999, seed: int = 2020, level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Randomisation inference for every index of `counts` (n units × G groups; G = 2 adds the single-group
    indices of the first group).

    - Confidence interval: parametric bootstrap. Each unit's composition is redrawn from a multinomial with
      its own size and observed shares (persons as a random draw from the unit's population process, Allen
      et al. 2015). Indices like D are biased upwards in small units, so the replications sit above the
      estimate; the interval is the basic (reverse-percentile) bootstrap interval [2v − q_hi, 2v − q_lo],
      and `bias_corrected` is 2v − mean(replications).
    - Null of no segregation ("evenness"): each unit's persons redrawn with the overall shares P_k; the
      p-value is the share of null replications at least as large as the observed value (with +1 smoothing),
      and `null_mean` the index's expected value from chance alone (its small-unit bias).
    """
    c = _f(counts)
    rng = np.random.default_rng(seed)
    n = c.sum(axis=1)
    observed = _all(c)
    boot = _all(_draw_multinomial(rng, n, _share(c, n[:, None]), replications))
    null = _all(_draw_multinomial(rng, n, np.broadcast_to(c.sum(axis=0) / c.sum(), c.shape), replications))
    out = {}
    for key, value in observed.items():
        lo, hi = _quantiles(boot[key], level)
        v = float(value)
        out[key] = {
            "value": v,
            "bias_corrected": 2 * v - float(np.mean(boot[key])),
            "ci_low": 2 * v - hi,
            "ci_high": 2 * v - lo,
            "null_mean": float(np.mean(null[key])),
            "p_value": float((1 + np.sum(null[key] >= value)) / (replications + 1)),
        }
    return out


def compare(
    first: np.ndarray, second: np.ndarray, replications: int = 999, seed: int = 2020, level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Test of a difference between two years over the same units (rows aligned; a unit missing in one year
    has zero counts there).

    Null: within each unit, which of its persons belong to which year is exchangeable — the two years are
    draws from one segregation process. Each replication relabels the pooled persons of every unit to the
    years at random (keeping each year's unit totals) and recomputes the difference; the two-sided p-value is
    the share of |difference| at least as large as observed. The interval of the difference is the basic
    bootstrap interval from the parametric bootstrap of each year, as in `infer`.
    """
    a, b = _f(first), _f(second)
    rng = np.random.default_rng(seed)
    va, vb = _all(a), _all(b)
    na, nb = a.sum(axis=1), b.sum(axis=1)
    ba = _all(_draw_multinomial(rng, na, _share(a, na[:, None]), replications))
    bb = _all(_draw_multinomial(rng, nb, _share(b, nb[:, None]), replications))
    pa = _draw_permuted_years(rng, a, b, replications)
    perm_a, perm_b = _all(pa), _all(a + b - pa)
    out = {}
    for key in va:
        diff = float(vb[key]) - float(va[key])
        lo, hi = _quantiles(bb[key] - ba[key], level)
        lo, hi = 2 * diff - hi, 2 * diff - lo
        extreme = np.abs(perm_b[key] - perm_a[key]) >= abs(diff) - 1e-12
        out[key] = {
            "first": float(va[key]),
            "second": float(vb[key]),
            "difference": diff,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": float((1 + np.sum(extreme)) / (replications + 1)),
        }
    return out


INFERENCE_FIELDS = ("bias_corrected", "ci_low", "ci_high", "null_mean", "p_value")


def _usable(counts: np.ndarray) -> np.ndarray | None:
    """The units with anyone in them, or None when no index is defined: fewer than two units, or a single
    group that is nobody or everybody (fewer than two groups present, multigroup)."""
    c = np.asarray(counts, dtype=float)
    c = c[c.sum(axis=1) > 0]
    tot = c.sum(axis=0)
    enough = (tot > 0).all() if c.shape[1] == 2 else (tot > 0).sum() >= 2
    return c if len(c) >= 2 and enough else None


def interval_rows(counts: np.ndarray, replications: int = 999, seed: int = 2020, level: float = 0.95) -> list[dict]:
    """Rows {index, value, ci_low, ci_high}: `infer`'s value and basic bootstrap interval without its null
    test — the same seed gives the same draws, so the same interval — at half the cost (for many small
    scopes). Same indices and emptiness as `index_rows`."""
    c = _usable(counts)
    if c is None:
        return []
    if c.shape[1] == 2:
        keys, family = SINGLE_GROUP, lambda m: single_group(m[..., 0], m.sum(axis=-1))
    else:
        keys, family = MULTIGROUP, multigroup
    observed = family(c)
    if not replications:
        return [{"index": k, "value": float(observed[k]), "ci_low": np.nan, "ci_high": np.nan} for k in keys]
    rng = np.random.default_rng(seed)
    n = c.sum(axis=1)
    boot = family(_draw_multinomial(rng, n, _share(c, n[:, None]), replications))
    lo, hi = np.quantile(np.stack([boot[k] for k in keys]), [(1 - level) / 2, (1 + level) / 2], axis=1)
    out = []
    for k, q_lo, q_hi in zip(keys, lo, hi, strict=True):
        v = float(observed[k])
        out.append({"index": k, "value": v, "ci_low": 2 * v - float(q_hi), "ci_high": 2 * v - float(q_lo)})
    return out


def index_rows(counts: np.ndarray, replications: int = 0, seed: int = 2020, level: float = 0.95) -> list[dict]:
    """Rows {index, value, bias_corrected, ci_low, ci_high, null_mean, p_value} for n units × G exhaustive
    groups: G = 2 gives the single-group indices of the first group, G > 2 the multigroup ones. The inference
    fields come from `infer` with `replications` (NaN when 0). Empty when the group is nobody or everybody,
    or there are fewer than two units."""
    c = _usable(counts)
    if c is None:
        return []
    keys = SINGLE_GROUP if c.shape[1] == 2 else MULTIGROUP
    if replications:
        inf = infer(c, replications, seed, level)
        return [{"index": k, "value": inf[k]["value"], **{f: inf[k][f] for f in INFERENCE_FIELDS}} for k in keys]
    vals = single_group(c[:, 0], c.sum(axis=1)) if c.shape[1] == 2 else multigroup(c)
    return [{"index": k, "value": float(vals[k]), **dict.fromkeys(INFERENCE_FIELDS, np.nan)} for k in keys]
