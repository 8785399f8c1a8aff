"""One year of life: deaths, births, leaving home, couples forming and splitting, moves, migration, and the
housing market that sorts movers into vacant dwellings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from levekar.synth.population import (
    ADULT_CHILD,
    CHILD,
    HEAD,
    PARTNER,
    TEMPLATE_SIZE,
    World,
    draw_members,
    sigmoid,
)
from levekar.synth.simulate import (
    AFR,
    BORETTSLAG,
    CAT_A,
    CAT_B,
    CAT_C,
    CAT_F,
    ENEBOLIG,
    EU,
    FORM_COOP,
    FORM_MUNICIPAL,
    KOMMUNAL,
    LEIER,
    NORGE,
    SELVEIER,
    crowded,
)


@dataclass
class Events:
    died: np.ndarray  # person indices dying during the year
    movers: np.ndarray  # household indices moving within the extract
    out_households: np.ndarray  # household indices leaving the extract
    out_scope_international: np.ndarray  # bool per out household
    leavers: np.ndarray  # person indices leaving their parents' home
    leaver_out: np.ndarray  # bool per leaver: leaves the extract
    splitters: np.ndarray  # person indices leaving a partner
    joiners: np.ndarray  # person indices moving in with a partner
    join_into: np.ndarray  # household index they join
    joiner_cell: np.ndarray  # cell the joiners lived in
    vacating: np.ndarray  # household indices leaving their dwelling
    vacated: np.ndarray  # dwelling indices left during the year
    sold: np.ndarray  # dwelling indices sold during the year


def present(world: World) -> np.ndarray:
    return np.flatnonzero(world.p["alive"])


def _age(world: World, idx: np.ndarray, year: int) -> np.ndarray:
    return year - 1 - world.p["by"][idx].astype(np.int64)


def decide_events(world: World, year: int) -> Events:
    rng, P, H, D = world.rng, world.p, world.h, world.d
    idx = present(world)
    age = _age(world, idx, year)
    ses = P["ses"][idx].astype(float)
    # deaths: Gompertz hazard with a social gradient
    q = np.clip(np.exp(-10.4 + 0.094 * age - 0.25 * ses), 0, 0.6) + np.where(age == 0, 0.002, 0)
    died = idx[rng.random(len(idx)) < q]
    dead = np.zeros(len(P["pid"]), dtype=bool)
    dead[died] = True

    hh = P["hh"][idx]
    n_h = len(H["hid"])
    alive_members = np.bincount(hh[~dead[idx]], minlength=n_h)
    active = H["active"] & (alive_members > 0)
    head_age = np.zeros(n_h)
    head_age[hh[P["role"][idx] == HEAD]] = age[P["role"][idx] == HEAD]
    tenure = np.where(H["dw"] >= 0, D["tenure"][np.maximum(H["dw"], 0)], -1)
    renter = np.isin(tenure, (LEIER, KOMMUNAL))
    recent_imm = np.zeros(n_h, dtype=bool)
    recent_imm[hh[(P["cat"][idx] == CAT_B) & (year - P["imm"][idx] < 5)]] = True

    # households leaving the extract, and moving within it
    u = rng.random(n_h)
    p_int = 0.004 + 0.05 * recent_imm
    p_dom = np.where(world.params.open_domestic, 0.03 + 0.05 * (head_age < 35), 0.0)
    out = active & (u < p_int + p_dom)
    international = u < p_int
    size_now = np.bincount(hh[~dead[idx]], minlength=n_h)
    dwi = np.maximum(H["dw"], 0)
    cramped = (H["dw"] >= 0) & crowded(size_now, D["rooms"][dwi], D["area"][dwi])
    p_move = sigmoid(-2.9 + 1.3 * renter + 0.9 * (head_age < 32) - 0.02 * np.clip(head_age - 45, 0, 40) + 2.5 * cramped)
    movers = active & ~out & (rng.random(n_h) < p_move)

    # persons leaving their parents' home; partners splitting up; singles moving in together
    role = P["role"][idx]
    alive_idx = ~dead[idx] & ~out[hh] & H["active"][hh]
    leave = alive_idx & np.isin(role, (CHILD, ADULT_CHILD)) & (age >= 19) & (rng.random(len(idx)) < 0.2)
    leavers = idx[leave]
    leaver_out = rng.random(len(leavers)) < (0.35 if world.params.open_domestic else 0.0)
    has_partner = np.zeros(n_h, dtype=bool)
    has_partner[hh[alive_idx & (role == PARTNER)]] = True
    split_h = has_partner & ~movers & (head_age < 60) & (rng.random(n_h) < 0.015)
    # the man leaves (the head if male, else the partner)
    adult2 = alive_idx & np.isin(role, (HEAD, PARTNER)) & split_h[hh] & (P["sex"][idx] == 1)
    first = np.unique(hh[adult2], return_index=True)[1]
    splitters = idx[np.flatnonzero(adult2)[first]]

    size_alive = np.bincount(hh[alive_idx & ~leave], minlength=n_h)
    single = alive_idx & (role == HEAD) & (size_alive[hh] == 1) & (age >= 22) & (age <= 45) & ~movers[hh]
    cand = idx[single & (rng.random(len(idx)) < 0.07)]
    kom = world.kommune_of_cell[D["cell"][H["dw"][P["hh"][cand]]]]
    joiners, into = _pair_up(rng, cand, P["sex"][cand], kom)
    join_into = P["hh"][into]

    # dwellings left: by households moving or leaving, by those whose last member dies or joins a partner
    leaving_h = movers | out
    emptied = H["active"] & ~leaving_h & (alive_members == 0)
    joined_h = np.zeros(n_h, dtype=bool)
    joined_h[P["hh"][joiners]] = True
    vac_h = leaving_h | emptied | joined_h
    vacated = H["dw"][vac_h & (H["dw"] >= 0)]
    sold = vacated[np.isin(D["tenure"][vacated], (SELVEIER, BORETTSLAG))]
    D["sold"][sold] = year
    return Events(
        died,
        np.flatnonzero(movers),
        np.flatnonzero(out),
        international[out],
        leavers,
        leaver_out,
        splitters,
        joiners,
        join_into,
        D["cell"][H["dw"][P["hh"][joiners]]],
        np.flatnonzero(vac_h & (H["dw"] >= 0)),
        vacated,
        sold,
    )


def _pair_up(rng, cand: np.ndarray, sex: np.ndarray, kommune: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair men and women at random within each kommune; returns (joiners, partners they move in with)."""
    men, women = cand[sex == 1], cand[sex == 2]
    km, kw = kommune[sex == 1], kommune[sex == 2]
    om = np.lexsort((rng.random(len(men)), km))
    ow = np.lexsort((rng.random(len(women)), kw))
    men, km, women, kw = men[om], km[om], women[ow], kw[ow]
    rank_m = np.arange(len(men)) - np.searchsorted(km, km)
    rank_w = np.arange(len(women)) - np.searchsorted(kw, kw)
    key_m = km.astype(np.int64) * 10_000_000 + rank_m
    key_w = kw.astype(np.int64) * 10_000_000 + rank_w
    _common, im, iw = np.intersect1d(key_m, key_w, return_indices=True)
    a, b = men[im], women[iw]
    flip = rng.random(len(a)) < 0.5  # who moves in with whom
    return np.where(flip, a, b), np.where(flip, b, a)


def apply_events(world: World, year: int, ev: Events, probs_global: np.ndarray) -> None:
    rng, P, H, D = world.rng, world.p, world.h, world.d
    # deaths and out-migration
    P["alive"][ev.died] = False
    P["died"][ev.died] = year
    out_persons = np.flatnonzero(P["alive"] & np.isin(P["hh"], ev.out_households))
    scope_h = np.zeros(len(H["hid"]), dtype=bool)
    scope_h[ev.out_households] = ev.out_scope_international
    _record(world, out_persons, year, "out", scope_h[P["hh"][out_persons]])
    P["alive"][out_persons] = False
    H["active"][ev.out_households] = False
    D["occ"][ev.vacated] = -1
    H["dw"][ev.vacating] = -1

    # singles moving in with a partner (a new grunnkrets means a new residence_since)
    unit = world.cell_unit_final
    to_unit = unit[D["cell"][H["dw"][ev.join_into]]]
    P["res"][ev.joiners[unit[ev.joiner_cell] != to_unit]] = year
    H["active"][P["hh"][ev.joiners]] = False
    P["hh"][ev.joiners] = ev.join_into
    P["role"][ev.joiners] = PARTNER

    # births: to women 18–45, more often with a partner
    idx = present(world)
    age = _age(world, idx, year)
    hh = P["hh"][idx]
    n_h = len(H["hid"])
    has_partner = np.bincount(hh[P["role"][idx] == PARTNER], minlength=n_h) > 0
    women = (P["sex"][idx] == 2) & (age >= 18) & (age <= 45) & np.isin(P["role"][idx], (HEAD, PARTNER))
    rate = np.where(has_partner[hh], 0.19, 0.03) * np.exp(-(((age - 31) / 5.5) ** 2))
    rate *= np.where(P["bg"][idx] == AFR, 1.35, 1.0)
    mothers = idx[women & (rng.random(len(idx)) < rate)]
    mh = P["hh"][mothers]
    other_parent_b = np.zeros(n_h, dtype=bool)
    other_parent_b[
        P["hh"][idx[(P["cat"][idx] == CAT_B) & (P["sex"][idx] == 1) & np.isin(P["role"][idx], (HEAD, PARTNER))]]
    ] = True
    m_imm = np.isin(P["cat"][mothers], (CAT_B, CAT_C))
    cat = np.where(
        m_imm, np.where(has_partner[mh] & ~other_parent_b[mh], CAT_F, CAT_C), np.where(other_parent_b[mh], CAT_F, CAT_A)
    )
    bg = np.where(cat == CAT_C, P["bg"][mothers], NORGE)
    nb = len(mothers)
    world.add_persons(
        {
            "hh": mh,
            "role": np.full(nb, CHILD),
            "by": np.full(nb, year),
            "sex": np.where(rng.random(nb) < 0.512, 1, 2),
            "cat": cat,
            "bg": bg,
            "imm": np.zeros(nb),
            "ses": 0.7 * P["ses"][mothers] + 0.6 * rng.standard_normal(nb),
            "res": np.full(nb, year),
        }
    )

    # new households: leavers who stay, splitters; joiners move in with their partner
    stay = ev.leavers[~ev.leaver_out]
    gone = ev.leavers[ev.leaver_out]
    _record(world, gone, year, "out", np.zeros(len(gone), dtype=bool))
    P["alive"][gone] = False
    new_single = np.concatenate([stay, ev.splitters])
    new_h = world.add_households(
        len(new_single),
        np.full(len(new_single), -1),
        P["ses"][new_single],
        P["bg"][new_single],
        H["kom"][P["hh"][new_single]],
    )
    P["hh"][new_single] = new_h
    P["role"][new_single] = HEAD
    _fix_heads(world)
    # households whose members are all gone
    alive_members = np.bincount(P["hh"][P["alive"]], minlength=len(H["hid"]))
    H["active"] &= alive_members > 0
    freed = H["dw"][~H["active"] & (H["dw"] >= 0)]
    D["occ"][freed] = -1
    H["dw"][~H["active"]] = -1

    # the housing market, kommune by kommune
    kom_of_h = H["kom"]
    seekers = np.concatenate([ev.movers[H["active"][ev.movers]], new_h])
    vacant = np.flatnonzero(D["occ"] < 0)
    v_kom = world.kommune_of_cell[D["cell"][vacant]]
    s_kom = kom_of_h[seekers]
    n_kom = int(world.kommune_of_cell.max()) + 1
    excess = np.bincount(s_kom, minlength=n_kom) - np.bincount(v_kom, minlength=n_kom)
    # too many seekers: the newest households leave the extract
    drop = _take_per_group(rng, new_h, kom_of_h[new_h], np.maximum(excess, 0))
    dropped_p = np.flatnonzero(P["alive"] & np.isin(P["hh"], drop))
    _record(world, dropped_p, year, "out", np.zeros(len(dropped_p), dtype=bool))
    P["alive"][dropped_p] = False
    H["active"][drop] = False
    seekers = seekers[~np.isin(seekers, drop)]
    # too few: in-migrants fill the rest
    deficit = np.maximum(-excess, 0)
    in_h = _in_migrants(world, year, deficit, probs_global)
    seekers = np.concatenate([seekers, in_h])
    _match(world, year, seekers, vacant)
    _fix_heads(world)


def _take_per_group(rng, items: np.ndarray, group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if len(items) == 0 or counts.sum() == 0:
        return items[:0]
    order = np.lexsort((rng.random(len(items)), group))
    items, group = items[order], group[order]
    rank = np.arange(len(items)) - np.searchsorted(group, group)
    return items[rank < counts[group]]


def _fix_heads(world: World) -> None:
    """Every household with members has exactly one head: the oldest member when the head is gone."""
    P = world.p
    idx = present(world)
    hh = P["hh"][idx]
    has_head = np.zeros(len(world.h["hid"]), dtype=bool)
    has_head[hh[P["role"][idx] == HEAD]] = True
    need = idx[~has_head[hh]]
    if len(need) == 0:
        return
    order = np.lexsort((P["by"][need], P["hh"][need]))
    need = need[order]
    first = np.r_[0, np.flatnonzero(np.diff(P["hh"][need])) + 1]
    P["role"][need[first]] = HEAD


def _record(world: World, persons: np.ndarray, year: int, direction: str, international: np.ndarray) -> None:
    if len(persons):
        world.migrations.append((world.p["pid"][persons].copy(), year, direction, international.copy()))


def _in_migrants(world: World, year: int, deficit: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Households moving into the extract, kommune by kommune, to fill the remaining vacancies."""
    rng = world.rng
    n = int(deficit.sum())
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    kom = np.repeat(np.arange(len(deficit)), deficit)
    tm = rng.choice(len(probs), size=n, p=probs)
    size = TEMPLATE_SIZE[tm]
    hidx, role, by, sex = draw_members(rng, tm, size, year + 1, young=np.ones(n, dtype=bool))
    international = rng.random(n) < 0.35
    afr = international & (rng.random(n) < 0.55)
    bg_h = np.where(afr, AFR, np.where(international, EU, NORGE))
    ses_h = np.where(afr, -0.9, np.where(international, 0.0, -0.1)) + 0.85 * rng.standard_normal(n)
    h = world.add_households(n, np.full(n, -1), ses_h, bg_h, kom)
    imm_member = international[hidx]
    cat = np.where(imm_member, CAT_B, CAT_A)
    bg = np.where(imm_member, bg_h[hidx], NORGE)
    by = np.minimum(by, year)
    world.add_persons(
        {
            "hh": h[hidx],
            "role": role,
            "by": by,
            "sex": sex,
            "cat": cat,
            "bg": bg,
            "imm": np.where(imm_member, year, 0),
            "ses": ses_h[hidx] + 0.45 * rng.standard_normal(len(hidx)),
            "res": np.full(len(hidx), year),
        }
    )
    new_p = np.arange(len(world.p["pid"]) - len(hidx), len(world.p["pid"]))
    _record(world, new_p, year, "in", imm_member)
    return h


def _zscore(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    s = a.std()
    return (a - a.mean()) / (s if s > 0 else 1.0)


def _match(world: World, year: int, seekers: np.ndarray, vacant: np.ndarray) -> None:
    """Sort seekers and vacant dwellings on one score within each kommune and pair them in order: better-off
    households get the more desirable dwellings, larger households the larger ones, and households of
    "Afrika, Asia mv." background lean towards areas where others of that background live."""
    rng, P, H, D = world.rng, world.p, world.h, world.d
    kom_h = H["kom"][seekers]
    kom_d = world.kommune_of_cell[D["cell"][vacant]]
    alive = P["alive"]
    size = np.bincount(P["hh"][alive], minlength=len(H["hid"]))[seekers].astype(float)
    afr_cell = _afr_share_of_cells(world)
    # where: position and background against desirability and neighbours; then, among dwellings of about
    # the same desirability (bins of 40), larger households get the larger dwellings
    loc_h = _zscore(H["ses"][seekers]) - 0.6 * (H["bg"][seekers] == AFR) + 0.35 * rng.standard_normal(len(seekers))
    loc_d = (
        _zscore(D["desir"][vacant])
        - 0.6 * _zscore(afr_cell[D["cell"][vacant]])
        + 0.35 * rng.standard_normal(len(vacant))
    )
    oh = _binned_order(kom_h, loc_h, size + 0.1 * rng.random(len(seekers)))
    od = _binned_order(kom_d, loc_d, D["rooms"][vacant] + 0.1 * rng.random(len(vacant)))
    assert np.array_equal(kom_h[oh], kom_d[od]), "housing market out of balance"
    h, d = seekers[oh], vacant[od]
    old_cell = np.full(len(h), -1)
    had = H["dw"][h] >= 0
    old_cell[had] = D["cell"][H["dw"][h][had]]
    H["dw"][h] = d
    D["occ"][d] = h
    # tenure of the new occupants of private dwellings
    pm = np.flatnonzero(alive & np.isin(P["hh"], h))
    head = pm[P["role"][pm] == HEAD]
    head_age = np.zeros(len(H["hid"]))
    head_age[P["hh"][head]] = year - P["by"][head]
    zone = world.cells.zone[D["cell"][d]]
    shift = world.zone_rent_shift[zone] if world.zone_rent_shift is not None else 0.0
    p_rent = sigmoid(
        world.calib["a_rent"]
        + shift
        - 1.2 * H["ses"][h]
        - 0.045 * (head_age[h] - 35)
        - 0.7 * (D["btype"][d] == ENEBOLIG)
    )
    rent = rng.random(len(h)) < p_rent
    D["tenure"][d] = np.where(
        D["form"][d] == FORM_MUNICIPAL,
        KOMMUNAL,
        np.where(D["form"][d] == FORM_COOP, BORETTSLAG, np.where(rent, LEIER, SELVEIER)),
    )
    # residence in a new grunnkrets starts this year
    new_cell_of_h = np.full(len(H["hid"]), -1)
    new_cell_of_h[h] = D["cell"][d]
    moved_unit = np.zeros(len(H["hid"]), dtype=bool)
    unit = world.cell_unit_final
    moved_unit[h] = (old_cell < 0) | (unit[np.maximum(old_cell, 0)] != unit[D["cell"][d]])
    P["res"][pm[moved_unit[P["hh"][pm]]]] = year


def _binned_order(group: np.ndarray, primary: np.ndarray, secondary: np.ndarray, bin_size: int = 40):
    """Order by group, then by bins of `bin_size` consecutive ranks of `primary`, then by `secondary`."""
    o = np.lexsort((primary, group))
    rank = np.empty(len(o), dtype=np.int64)
    g = group[o]
    rank[o] = np.arange(len(o)) - np.searchsorted(g, g)
    return np.lexsort((secondary, rank // bin_size, group))


def _afr_share_of_cells(world: World) -> np.ndarray:
    P, H, D = world.p, world.h, world.d
    alive = np.flatnonzero(P["alive"])
    dw = H["dw"][P["hh"][alive]]
    ok = dw >= 0
    cell = D["cell"][dw[ok]]
    unit = world.cell_unit_final[cell]
    n_u = int(world.cell_unit_final.max()) + 1
    tot = np.bincount(unit, minlength=n_u)
    afr = np.bincount(
        unit, weights=np.isin(P["cat"][alive[ok]], (CAT_B, CAT_C)) & (P["bg"][alive[ok]] == AFR), minlength=n_u
    )
    share = afr / np.maximum(tot, 1)
    return share[world.cell_unit_final]
