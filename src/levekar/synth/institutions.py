"""Schools with catchments and kindergartens, and who attends which in a given year."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from levekar.synth.geography import group_points
from levekar.synth.population import World, person_uniform, sigmoid

SCHOOL_SALT, KG_SALT, KG_ENROL_SALT = 21, 22, 23


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


def attendance(
    world: World, inst: Institutions, year: int, idx: np.ndarray, unit: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """School and kindergarten index (−1: none) for persons `idx` living in `unit` at (x, y)."""
    P = world.p
    pid = P["pid"][idx]
    age_end = year - P["by"][idx].astype(np.int64)  # age reached during the year (autumn term)
    ses = P["ses"][idx].astype(float)
    n = len(idx)
    school = np.full(n, -1)
    pupil = (age_end >= 6) & (age_end <= 15)
    catch = inst.school_of_unit[unit]
    # opting out of the catchment school: better-off families in deprived catchments
    u = person_uniform(pid, SCHOOL_SALT)
    p_out = sigmoid(-3.3 + 1.1 * np.clip(inst.school_z[catch], 0, None) * (ses > 0) + 0.3 * ses)
    tree = cKDTree(np.c_[inst.school_x, inst.school_y])
    _, near = tree.query(np.c_[x, y], k=min(2, len(inst.school_x)))
    near = near.reshape(n, -1)
    other = np.where(near[:, 0] == catch, near[:, -1], near[:, 0])
    school = np.where(pupil, np.where(u < p_out, other, catch), -1)

    kg = np.full(n, -1)
    child = (age_end >= 1) & (age_end <= 5)
    immigrant = np.isin(P["cat"][idx], (1, 2))
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
