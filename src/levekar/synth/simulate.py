"""Base population, yearly outcomes and the year-to-year life course of the synthetic register."""

from __future__ import annotations

import numpy as np

from levekar.synth.geography import Cells
from levekar.synth.population import (
    ADULT_CHILD,
    CHILD,
    HEAD,
    OTHER,
    PARTNER,
    Params,
    World,
    bisect,
    draw_members,
    fill_cells,
    sigmoid,
)

CATS = np.array(["A", "B", "C", "E", "F", "G"])
CAT_A, CAT_B, CAT_C, CAT_E, CAT_F, CAT_G = range(6)
BG = np.array(["norge", "eu_eos_mv", "afrika_asia_mv"])
NORGE, EU, AFR = 0, 1, 2
BTYPES = np.array(["enebolig", "smahus", "blokk", "annet"])
ENEBOLIG, SMAHUS, BLOKK, ANNET = range(4)
TENURES = np.array(["selveier", "borettslag", "leier", "kommunal"])
SELVEIER, BORETTSLAG, LEIER, KOMMUNAL = range(4)
FORM_PRIVATE, FORM_COOP, FORM_MUNICIPAL = range(3)


def interpolate(series: dict, year: int) -> float:
    """Linear interpolation (and extrapolation) of a {year: value} series."""
    xs = sorted(int(k) for k in series)
    ys = [series[k] for k in sorted(series, key=int)]
    if len(xs) == 1:
        return float(ys[0])
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    return float(ys[0] + slope * (year - xs[0]))


# ----------------------------------------------------------------------------------------------------------------
# base year
# ----------------------------------------------------------------------------------------------------------------
def _background(rng, hidx, role, by, year, z_h, n_kids_h, targets):
    """Immigrant category, landbakgrunn and immigration year per member, calibrated to the targets."""
    n_h = len(z_h)
    m = len(hidx)
    u_imm, u_afr = rng.random(n_h), rng.random(n_h)
    u_partner = rng.random(m)
    botid_h = rng.exponential(1.0, n_h)
    mix = rng.random(m)
    age = year - 1 - by
    head_age = np.zeros(n_h)
    head_age[hidx[role == HEAD]] = age[role == HEAD]

    def assign(a_imm: float, a_afr: float):
        imm_h = u_imm < sigmoid(a_imm + 1.3 * z_h + 0.25 * n_kids_h)
        afr_h = imm_h & (u_afr < sigmoid(a_afr + 0.9 * z_h + 0.2 * n_kids_h))
        bg_h = np.where(afr_h, AFR, np.where(imm_h, EU, NORGE))
        mean_botid = np.where(afr_h, 11.0, 7.0)
        bot_h = np.minimum(np.floor(botid_h * mean_botid), np.maximum(head_age - 16, 0))
        imm_year_h = year - 1 - bot_h
        in_imm = imm_h[hidx]
        partner_norwegian = (role == PARTNER) & (u_partner < 0.15)
        adult = (role == HEAD) | (role == PARTNER) | (role == OTHER)
        born_abroad = by < imm_year_h[hidx]
        cat = np.full(m, CAT_A)
        cat = np.where(in_imm & adult & ~partner_norwegian, CAT_B, cat)
        kid = (role == CHILD) | (role == ADULT_CHILD)
        mixed_h = np.zeros(n_h, dtype=bool)
        mixed_h[hidx[partner_norwegian & in_imm]] = True
        cat = np.where(in_imm & kid, np.where(mixed_h[hidx], CAT_F, np.where(born_abroad, CAT_B, CAT_C)), cat)
        # a few persons of the other categories among households without immigrants
        cat = np.where(
            ~in_imm, np.where(mix < 0.03, CAT_F, np.where(mix < 0.035, CAT_E, np.where(mix < 0.038, CAT_G, CAT_A))), cat
        )
        bg = np.where((cat == CAT_B) | (cat == CAT_C), bg_h[hidx], NORGE)
        imm = np.where(cat == CAT_B, np.maximum(imm_year_h[hidx], by), 0)
        return cat, bg, imm, bg_h

    def share(cat, bg, which):
        ib = (cat == CAT_B) | (cat == CAT_C)
        return 100 * (ib if which == "imm" else ib & (bg == AFR)).mean()

    a_imm = bisect(lambda a: share(*assign(a, 0.0)[:2], "imm"), interpolate(targets["immigrant_background"], year))
    a_afr = bisect(lambda a: share(*assign(a_imm, a)[:2], "afr"), interpolate(targets["africa_asia_background"], year))
    return assign(a_imm, a_afr)


def _dwellings(
    world: World,
    cell: np.ndarray,
    size: np.ndarray,
    ses_h: np.ndarray,
    kids_h: np.ndarray,
    head_age: np.ndarray,
    renter_target_zone: np.ndarray | None,
    coop_share_zone: np.ndarray | None,
):
    """One dwelling per base-year household, with building type, rooms, floor area, form and tenure."""
    rng, cells, t = world.rng, world.cells, world.params.targets
    n = len(cell)
    z = world.z_cell[cell]
    density = cells.population[cell] / (cells.size**2 / 1e4)  # persons per hectare
    u = rng.random(n)
    blokk = u < sigmoid(-2.6 + 0.035 * density + 0.3 * z)
    enebolig = ~blokk & (rng.random(n) < sigmoid(1.4 - 0.045 * density))
    btype = np.where(blokk, BLOKK, np.where(enebolig, ENEBOLIG, SMAHUS))
    btype = np.where(rng.random(n) < 0.01, ANNET, btype)
    # inside the cell, clear of its edges so rounding never moves a dwelling to the next cell
    x = cells.x[cell] + 0.5 + rng.random(n) * (cells.size - 1)
    y = cells.y[cell] + 0.5 + rng.random(n) * (cells.size - 1)
    noise_r, noise_a = rng.standard_normal(n), rng.standard_normal(n)

    def rooms_for(a: float) -> np.ndarray:
        r = np.rint(a + 0.75 * size + 0.6 * ses_h + 0.6 * noise_r + 0.8 * (btype == ENEBOLIG))
        return np.clip(r, 1, np.where(btype == BLOKK, 6, 10))

    def area_for(rooms: np.ndarray) -> np.ndarray:
        return np.clip(rooms * (21 + 3.5 * ses_h + 2.5 * noise_a) + 12, 15, 600)

    def crowded_share(a: float) -> float:
        rooms = rooms_for(a)
        c = crowded(size, rooms, area_for(rooms))
        return 100 * c[kids_h > 0].mean()

    a_rooms = bisect(lambda a: -crowded_share(a), -t["crowded_families_with_children"], -5, 5)
    rooms = rooms_for(a_rooms)
    area = area_for(rooms)

    # form of ownership of the building, then the tenure of the household living there
    zone = cells.zone[cell]
    coop_p = coop_share_zone[zone] if coop_share_zone is not None else sigmoid(-1.4 + 0.5 * z)
    coop = (btype != ENEBOLIG) & (rng.random(n) < np.clip(coop_p * np.where(btype == BLOKK, 1.3, 0.6), 0, 1))
    municipal = (btype == BLOKK) & ~coop & (rng.random(n) < sigmoid(-3.4 + 1.1 * z - 0.5 * ses_h))
    form = np.where(municipal, FORM_MUNICIPAL, np.where(coop, FORM_COOP, FORM_PRIVATE))
    u_rent = rng.random(n)
    base = -1.2 * ses_h - 0.045 * (head_age - 35) - 0.7 * (btype == ENEBOLIG)
    zone_shift = np.zeros(int(zone.max()) + 1)
    if renter_target_zone is not None:
        # per-zone intercepts so the zones' renter shares follow the real pattern
        zone_shift = _zone_intercepts(u_rent, base, zone, form, renter_target_zone)

    def tenure_for(a: float) -> np.ndarray:
        rent = (form == FORM_PRIVATE) & (u_rent < sigmoid(a + zone_shift[zone] + base))
        return np.where(
            form == FORM_MUNICIPAL, KOMMUNAL, np.where(form == FORM_COOP, BORETTSLAG, np.where(rent, LEIER, SELVEIER))
        )

    def renting_families(a: float) -> float:
        ten = tenure_for(a)
        return 100 * np.isin(ten[kids_h > 0], (LEIER, KOMMUNAL)).mean()

    a_rent = bisect(renting_families, t["families_with_children_renting"])
    world.calib.update(a_rooms=a_rooms, a_rent=a_rent)
    world.zone_rent_shift = zone_shift
    tenure = tenure_for(a_rent)
    desir = -z + 0.3 * (btype == ENEBOLIG) - 1.2 * (form == FORM_MUNICIPAL) + 0.25 * rng.standard_normal(n)
    world.d = {
        "did": np.arange(1, n + 1, dtype=np.int64),
        "cell": cell.astype(np.int64),
        "x": np.round(x, 1),
        "y": np.round(y, 1),
        "btype": btype.astype(np.int8),
        "rooms": rooms.astype(np.int8),
        "area": np.round(area).astype(np.float32),
        "form": form.astype(np.int8),
        "tenure": tenure.astype(np.int8),
        "desir": desir.astype(np.float32),
        "sold": np.zeros(n, dtype=np.int16),
        "price_u": rng.standard_normal(n).astype(np.float32),
    }


def _zone_intercepts(u, base, zone, form, target_pct) -> np.ndarray:
    """Per-zone intercepts (vectorised bisection) so each zone's share of renting households (private and
    municipal) is proportional to `target_pct`; the overall level is set afterwards."""
    nz = len(target_pct)
    lo, hi = np.full(nz, -8.0), np.full(nz, 8.0)
    n_z = np.bincount(zone, minlength=nz).astype(float)
    muni = np.bincount(zone, weights=(form == FORM_MUNICIPAL), minlength=nz)
    for _ in range(40):
        mid = (lo + hi) / 2
        rent = (form == FORM_PRIVATE) & (u < sigmoid(mid[zone] + base))
        share = 100 * (np.bincount(zone, weights=rent, minlength=nz) + muni) / np.maximum(n_z, 1)
        low = share < target_pct
        lo = np.where(low, mid, lo)
        hi = np.where(low, hi, mid)
    shift = (lo + hi) / 2
    return shift - np.average(shift, weights=np.maximum(n_z, 1e-9))


def crowded(persons, rooms, area) -> np.ndarray:
    """SSB trangboddhet: (fewer rooms than persons, or one person in a one-room dwelling) and under 25 m² per
    person."""
    persons = np.asarray(persons, dtype=float)
    few_rooms = (rooms < persons) | ((persons == 1) & (rooms == 1))
    return few_rooms & (area / np.maximum(persons, 1) < 25)


def build_base(
    rng,
    cells: Cells,
    z_cell,
    kommune_of_cell,
    probs_by_zone,
    params: Params,
    renter_target_zone=None,
    coop_share_zone=None,
) -> World:
    world = World(
        rng=rng, cells=cells, z_cell=np.asarray(z_cell, dtype=float), kommune_of_cell=kommune_of_cell, params=params
    )
    year = params.base_year
    tmpl, size, cell = fill_cells(rng, cells, probs_by_zone)
    hidx, role, by, sex = draw_members(rng, tmpl, size, year)
    n_h = len(tmpl)
    z_h = world.z_cell[cell]
    n_kids_h = np.bincount(hidx, weights=(role == CHILD), minlength=n_h)
    cat, bg, imm, bg_h = _background(rng, hidx, role, by, year, z_h, n_kids_h, params.targets)
    # latent socio-economic position: place, background, recent arrival, plus household and personal noise
    recent_h = np.zeros(n_h, dtype=bool)
    recent_h[hidx[(cat == CAT_B) & (year - imm < 5)]] = True
    ses_h = -0.9 * z_h - 0.55 * (bg_h == AFR) - 0.15 * (bg_h == EU) - 0.3 * recent_h + 0.75 * rng.standard_normal(n_h)
    adult = (role == HEAD) | (role == PARTNER) | (role == OTHER)
    ses = ses_h[hidx] + np.where(adult, 0.45, 0.6) * rng.standard_normal(len(hidx))
    head_age = np.zeros(n_h)
    head_age[hidx[role == HEAD]] = (year - 1 - by)[role == HEAD]
    _dwellings(world, cell, size, ses_h, n_kids_h, head_age, renter_target_zone, coop_share_zone)
    world.add_households(n_h, np.arange(n_h), ses_h, bg_h, kommune_of_cell[cell])
    res = np.maximum(by, year - 1 - np.floor(rng.exponential(7.0, len(hidx)))).astype(np.int16)
    res = np.maximum(res, np.where(cat == CAT_B, imm, res))
    world.add_persons(
        {"hh": hidx, "role": role, "by": by, "sex": sex, "cat": cat, "bg": bg, "imm": imm, "ses": ses, "res": res}
    )
    world.d["occ"] = np.arange(n_h, dtype=np.int64)
    return world
