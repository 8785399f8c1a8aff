"""Schools with catchments and kindergartens, and who attends which in a given year."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import ndtri

from levekar.synth.geography import group_points
from levekar.synth.population import World, person_uniform, sigmoid

SCHOOL_SALT, KG_SALT, KG_ENROL_SALT, SCHOOL_APPEAL_SALT, SCHOOL_CHOICE_SALT = 21, 22, 23, 24, 25
# Opting out of the catchment school (docs/synthetic.md), calibrated on NOU 2020:16 for Oslo: 94 % of pupils
# attend their local school, uptake 41–158 % across schools. Logit of opting out: INTERCEPT + MIXED × 4s(1 − s)
# (s: the catchment's share of pupils with immigrant background — mixed catchments lose most) − IMMIGRANT for
# immigrant-background pupils − APPEAL × the school's appeal (a fixed normal per school) + the older terms for
# better-off families in deprived catchments. The other school: one of the NEAREST nearest in the kommune,
# weighted by exp(−distance / DISTANCE_M + PULL_APPEAL × appeal − PULL_SHARE × its catchment share).
OPT_OUT = {"intercept": -5.5, "mixed": 3.5, "immigrant": 1.5, "appeal": 1.5}
CHOICE = {"nearest": 5, "distance_m": 1000.0, "pull_appeal": 2.0, "pull_share": 4.0}


@dataclass
class Institutions:
    school_x: np.ndarray
    school_y: np.ndarray
    school_kommune: np.ndarray
    school_of_unit: np.ndarray  # catchment school per (final) unit
    school_z: np.ndarray  # deprivation of the catchment
    kg_x: np.ndarray
    kg_y: np.ndarray
    kg_kommune: np.ndarray
    kg_profile: np.ndarray  # pedagogical/private profile that attracts better-off families
    kg_private: np.ndarray
    school_id: np.ndarray
    kg_id: np.ndarray


def build_institutions(
    world: World,
    unit_x,
    unit_y,
    unit_kommune,
    unit_children,
    unit_z,
    kommune_codes,
    children_per_school: float,
    children_per_kg: float,
) -> Institutions:
    rng = world.rng
    cells = world.cells
    # catchments: contiguous groups of units within the kommune
    school_of_unit = group_points(
        unit_x, unit_y, unit_children + 1e-3, unit_kommune, children_per_school, children_per_school * 0.35
    )
    n_s = int(school_of_unit.max()) + 1
    w = unit_children + 1e-3
    sx = np.bincount(school_of_unit, weights=unit_x * w) / np.bincount(school_of_unit, weights=w)
    sy = np.bincount(school_of_unit, weights=unit_y * w) / np.bincount(school_of_unit, weights=w)
    skom = np.zeros(n_s, dtype=np.int64)
    skom[school_of_unit] = unit_kommune
    sz = np.bincount(school_of_unit, weights=unit_z * w) / np.bincount(school_of_unit, weights=w)
    # the school stands in the populated cell nearest the catchment's centre of children
    tree = cKDTree(np.c_[cells.cx, cells.cy])
    _, ci = tree.query(np.c_[sx, sy])
    sx, sy = cells.cx[ci] + rng.uniform(-30, 30, n_s), cells.cy[ci] + rng.uniform(-30, 30, n_s)

    # kindergartens where children live
    n_kg = max(1, round(unit_children.sum() * 0.5 / children_per_kg))
    p = cells.population * (1 + 0.3 * np.clip(world.z_cell, -1, 2))
    kc = rng.choice(len(cells), size=n_kg, p=p / p.sum())
    kx = cells.x[kc] + rng.random(n_kg) * cells.size
    ky = cells.y[kc] + rng.random(n_kg) * cells.size
    private = rng.random(n_kg) < 0.5
    profile = np.where(private, rng.standard_normal(n_kg), 0.0)
    kkom = world.kommune_of_cell[kc]
    order_s = np.lexsort((sx, skom))
    school_id = np.empty(n_s, dtype=object)
    rank = np.arange(n_s) - np.searchsorted(skom[order_s], skom[order_s])
    school_id[order_s] = [f"{kommune_codes[k]}S{r + 1:04d}" for k, r in zip(skom[order_s], rank, strict=True)]
    order_k = np.lexsort((kx, kkom))
    kg_id = np.empty(n_kg, dtype=object)
    rank = np.arange(n_kg) - np.searchsorted(kkom[order_k], kkom[order_k])
    kg_id[order_k] = [f"{kommune_codes[k]}B{r + 1:04d}" for k, r in zip(kkom[order_k], rank, strict=True)]
    return Institutions(
        sx, sy, skom, school_of_unit, sz, kx, ky, kkom, profile, private, school_id.astype(str), kg_id.astype(str)
    )


def _school_choice(
    inst: Institutions,
    pid: np.ndarray,
    ses: np.ndarray,
    immigrant: np.ndarray,
    pupil: np.ndarray,
    catch: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """The school of every person given (meaningful for pupils): the catchment school, or for those who opt
    out another one nearby (OPT_OUT, CHOICE). Per-person uniforms keep a family's choice over the years unless
    the catchment's composition or the family changes."""
    n_s = len(inst.school_x)
    resident = np.bincount(catch[pupil], minlength=n_s).astype(float)
    share = np.bincount(catch[pupil], weights=immigrant[pupil], minlength=n_s) / np.maximum(resident, 1)
    appeal = ndtri(np.clip(person_uniform(np.arange(n_s), SCHOOL_APPEAL_SALT), 1e-9, 1 - 1e-9))
    logit = (
        OPT_OUT["intercept"]
        + OPT_OUT["mixed"] * 4 * share[catch] * (1 - share[catch])
        - OPT_OUT["immigrant"] * immigrant
        - OPT_OUT["appeal"] * appeal[catch]
        + 1.1 * np.clip(inst.school_z[catch], 0, None) * (ses > 0)
        + 0.3 * ses
    )
    out = person_uniform(pid, SCHOOL_SALT) < sigmoid(logit)
    k = min(CHOICE["nearest"] + 1, n_s)
    if k < 2:
        return catch
    dist, near = cKDTree(np.c_[inst.school_x, inst.school_y]).query(np.c_[x, y], k=k)
    dist, near = dist.reshape(len(x), -1), near.reshape(len(x), -1)
    weight = np.exp(
        -dist / CHOICE["distance_m"] + CHOICE["pull_appeal"] * appeal[near] - CHOICE["pull_share"] * share[near]
    )
    weight *= (near != catch[:, None]) & (inst.school_kommune[near] == inst.school_kommune[catch][:, None])
    total = weight.sum(axis=1)
    out &= total > 0  # no other school of the kommune nearby: stay
    cum = np.cumsum(weight, axis=1) / np.where(total > 0, total, 1.0)[:, None]
    cum = np.where(cum >= 1 - 1e-12, 1.0, cum)  # rounding may not pass u to a zero-weight column at the end
    pick = np.minimum((cum < person_uniform(pid, SCHOOL_CHOICE_SALT)[:, None]).sum(axis=1), k - 1)
    return np.where(out, near[np.arange(len(x)), pick], catch)


def attendance(
    world: World, inst: Institutions, year: int, idx: np.ndarray, unit: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """School and kindergarten index (−1: none) for persons `idx` living in `unit` at (x, y)."""
    P = world.p
    pid = P["pid"][idx]
    age_end = year - P["by"][idx].astype(np.int64)  # age reached during the year (autumn term)
    ses = P["ses"][idx].astype(float)
    n = len(idx)
    immigrant = np.isin(P["cat"][idx], (1, 2))
    pupil = (age_end >= 6) & (age_end <= 15)
    catch = inst.school_of_unit[unit]
    school = np.where(pupil, _school_choice(inst, pid, ses, immigrant, pupil, catch, x, y), -1)

    child = (age_end >= 1) & (age_end <= 5)
    enrol = person_uniform(pid, KG_ENROL_SALT) < sigmoid(2.6 + 0.4 * ses - 0.9 * immigrant)
    k = min(4, len(inst.kg_x))
    ktree = cKDTree(np.c_[inst.kg_x, inst.kg_y])
    dist, cand = ktree.query(np.c_[x, y], k=k)
    dist, cand = dist.reshape(n, -1), cand.reshape(n, -1)
    weight = np.exp(-dist / 400.0) * np.exp(1.2 * inst.kg_profile[cand] * ses[:, None])
    cum = np.cumsum(weight, axis=1)
    cum /= cum[:, -1:]
    pick = (cum < person_uniform(pid, KG_SALT)[:, None]).sum(axis=1)
    kg = np.where(child & enrol, cand[np.arange(n), np.minimum(pick, k - 1)], -1)
    return school, kg
