"""Outcomes of a statistics year: education, work, income, benefits, child welfare, voting, grade points.

Each outcome is a function of the person's latent socio-economic position, age, sex and background, with
person-fixed and yearly noise; intercepts are solved each year so the extract as a whole meets the
calibration targets (calibration.yaml), while who and where stays the model's.
"""

from __future__ import annotations

import numpy as np

from levekar.synth.population import PARTNER, World, bisect, eu_scale, person_uniform, sigmoid

CAT_B, CAT_C = 1, 2
AFR = 2
EDU_SALT, INEDU_SALT, VOTE_SALT, GP_SALT = 11, 12, 13, 14


def _final_level(world: World, e: np.ndarray, age_ok: np.ndarray) -> np.ndarray:
    """Final NUS level from the education propensity, with cut points fixed in the first year so that the
    30–59 shares meet the targets."""
    if "edu_cuts" not in world.calib:
        shares = world.params.targets["education_shares_30_59"]
        cum = (
            np.cumsum(
                [
                    shares["low"],
                    shares["upper_secondary_incomplete"],
                    shares["upper_secondary"],
                    shares["tertiary_short"],
                ]
            )
            / 100
        )
        world.calib["edu_cuts"] = np.quantile(e[age_ok], cum)
    cuts = world.calib["edu_cuts"]
    cls = np.searchsorted(cuts, e)  # 0 low, 1 VGS incomplete, 2 VGS, 3 short tertiary, 4 long tertiary
    return cls


def _earnings(deviation: np.ndarray, spread: float) -> np.ndarray:
    """Yearly earnings of a full-time employee: a common level, spread by the person's log deviation."""
    return np.exp(np.log(460_000) + spread * deviation)


def _tax(taxable: np.ndarray, earnings) -> np.ndarray:
    """A flat-rate tax on income above an allowance, and a step on high earnings."""
    return 0.22 * np.maximum(taxable - 75_000, 0) + 0.13 * np.maximum(earnings - 650_000, 0)


def year_outcomes(world: World, year: int, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Outcomes for the persons `idx` present on 1 January of `year` (events during the year)."""
    rng, P, t = world.rng, world.p, world.params.targets
    n = len(idx)
    pid = P["pid"][idx]
    by = P["by"][idx].astype(np.int64)
    age = year - 1 - by
    ses = P["ses"][idx].astype(float)
    sex = P["sex"][idx]
    cat = P["cat"][idx]
    imm_bg = (cat == CAT_B) | (cat == CAT_C)
    botid = np.where(cat == CAT_B, year - P["imm"][idx], -1)
    recent = (cat == CAT_B) & (botid < 5)

    # --- education ---------------------------------------------------------------------------------------------
    cohort = 0.012 * (60 - np.clip(age, 25, 80))
    e = 0.85 * ses + 0.5 * P["u_edu"][idx] + cohort
    cls = _final_level(world, e, (age >= 30) & (age <= 59))
    u = person_uniform(pid, EDU_SALT)
    final = np.select(
        [cls == 0, cls == 1, cls == 2, cls == 3],
        [np.where(u < 0.06, 0, np.where(u < 0.16, 1, 2)), 3, np.where(u < 0.06, 5, 4), 6],
        default=np.where(u < 0.06, 8, 7),
    )
    done_by_age = np.select([age < 16, age < 19, age < 22, age < 24, age < 29], [-1, 2, 4, 6, 7], default=8)
    nus = np.where(
        final <= 3, np.minimum(final, np.maximum(done_by_age, np.minimum(final, 2))), np.minimum(final, done_by_age)
    )
    nus = np.where(age < 16, -1, nus)
    nus = np.where(recent & (u > 0.7), -1, nus)  # unknown education of recent immigrants
    upper_secondary = nus >= 4
    uin = person_uniform(pid, INEDU_SALT)
    finish_age = np.select([final == 6, final == 7, final == 8], [23, 25, 30], default=19)
    age_end = year - by  # age reached during the year: pupils of the autumn term are 6–15
    in_edu = np.select(
        [age_end < 6, age_end <= 15, age < 19, age < 30, age < 60],
        [
            False,
            True,
            uin < np.where(final >= 4, 0.97, 0.80),
            (age < finish_age) & (uin < 0.88) | (uin > 0.95),
            uin > 0.965,
        ],
        default=False,
    )

    # --- employment: a probit with a person-fixed and a yearly part --------------------------------------------
    age_term = np.select(
        [age < 16, age < 20, age < 25, age < 30, age < 55, age < 62, age < 67, age < 75],
        [-9.0, -1.6, -0.4, 0.05, 0.2, -0.3, -1.2, -2.6],
        default=-9.0,
    )
    latent = (
        0.9 * ses
        + 0.25 * (np.maximum(final, 2) - 4) / 2
        + age_term
        + 0.8 * P["u_emp"][idx]
        + 0.6 * rng.standard_normal(n)
        - 0.8 * ((cat == CAT_B) & (botid < 3))
        - 0.8 * in_edu
    )
    group = (sex == 2) * 2 + imm_bg  # 0 men other, 1 men immigrant, 2 women other, 3 women immigrant
    targets = [t["neet_30_59"][k] for k in ("men_other", "men_immigrant", "women_other", "women_immigrant")]
    core = (age >= 30) & (age <= 59)
    cut = np.zeros(4)
    for g in range(4):
        sel = core & (group == g)
        if sel.any():
            cut[g] = bisect(lambda c, sel=sel: 100 * ((latent[sel] <= c) & ~in_edu[sel]).mean(), targets[g])
    employed = latent > cut[group]

    # --- income ---------------------------------------------------------------------------------------------
    hh_u, hh_i = np.unique(P["hh"][idx], return_inverse=True)
    n_h = len(hh_u)
    # log earnings deviate from a common level by position, education, age and luck; their spread is the
    # lever that sets the low-income share (calibrated below)
    earn_dev = 0.2 * ses + 0.06 * (np.maximum(final, 2) - 4) - 0.0006 * (age - 47) ** 2 + 0.22 * rng.standard_normal(n)
    part_time = np.where(in_edu, 0.3, 1.0)  # students work part time
    earnings = np.where(employed, part_time * _earnings(earn_dev, 1.0), 0.0)
    pension = np.where(age >= 67, 360_000 * np.exp(0.2 * ses + 0.08 * rng.standard_normal(n)), 0.0)
    working_age = (age >= 18) & (age <= 66)
    alone = np.bincount(hh_i, minlength=n_h)[hh_i] == 1
    gets_benefit = working_age & ~employed & ~in_edu & (alone | (rng.random(n) < 0.55))
    benefit = np.where(gets_benefit, 300_000 * np.exp(0.2 * rng.standard_normal(n)), 0.0)
    student = np.where(in_edu & (age >= 19) & ~employed, 45_000.0, 0.0)
    capital = np.where(age >= 25, 9_000 * np.exp(ses + 0.5 * rng.standard_normal(n)), 0.0)
    kid = age < 18
    n_kids = np.bincount(hh_i, weights=kid, minlength=n_h)
    n_14 = np.bincount(hh_i, weights=age >= 14, minlength=n_h)
    n_u14 = np.bincount(hh_i, weights=age < 14, minlength=n_h)
    cu = eu_scale(n_14, n_u14)
    size = np.bincount(hh_i, minlength=n_h)
    # main earner in education → student household (excluded from low-income figures, as SSB does)
    own = earnings + pension + student
    order = np.lexsort((-own, hh_i))
    main = order[np.r_[0, np.flatnonzero(np.diff(hh_i[order])) + 1]]
    student_hh = np.zeros(n_h, dtype=bool)
    student_hh[hh_i[main]] = in_edu[main] & (age[main] >= 18) & (age[main] <= 34)

    # parts that do not depend on the calibrated spread, summed per household once
    const = pension + benefit + capital
    const_tax = _tax(const, 0.0)
    e = np.flatnonzero(employed)
    ne = np.flatnonzero(~employed)
    hh_e = hh_i[e]
    h_const = np.bincount(hh_i[ne], weights=const[ne] + student[ne], minlength=n_h)
    h_const_tax = np.bincount(hh_i[ne], weights=const_tax[ne], minlength=n_h)
    h_transfers = np.bincount(hh_i, weights=pension + benefit, minlength=n_h)

    def incomes(spread: float, sa_hh: np.ndarray, per_child: float):
        earn = part_time[e] * _earnings(earn_dev[e], spread)
        taxable = earn + const[e]
        tax = _tax(taxable, earn)
        extra = per_child * n_kids + np.where(sa_hh, 60_000.0, 0.0)
        total = h_const + np.bincount(hh_e, weights=taxable + student[e], minlength=n_h) + extra
        after = total - h_const_tax - np.bincount(hh_e, weights=tax, minlength=n_h)
        return total, after, h_transfers + extra

    def low_income(after: np.ndarray) -> np.ndarray:
        eq = after / cu
        eq_p = eq[hh_i]
        ok = ~student_hh[hh_i]
        median = np.median(eq_p[ok])
        return eq < 0.6 * median

    no_sa = np.zeros(n_h, dtype=bool)
    nonstudent_p = ~student_hh[hh_i]
    child_p = nonstudent_p & kid

    def li_share(spread: float, sa_hh: np.ndarray, per_child: float, who: np.ndarray) -> float:
        return 100 * low_income(incomes(spread, sa_hh, per_child)[1])[hh_i][who].mean()

    def calibrate_income(sa_hh: np.ndarray, per_child: float, rounds: int = 1) -> tuple[float, float]:
        """Earnings spread for the persons' low-income share and family transfers per child for the
        children's, alternately."""
        for _ in range(rounds):
            spread = bisect(
                lambda s, c=per_child: li_share(s, sa_hh, c, nonstudent_p),
                t["persons_low_income_eu60"],
                0.05,
                3.0,
                steps=18,
            )
            per_child = bisect(
                lambda c, s=spread: -li_share(s, sa_hh, c, child_p),
                -t["children_low_income_eu60"],
                0.0,
                150_000.0,
                steps=18,
            )
        return spread, per_child

    spread, per_child = calibrate_income(no_sa, 12_000.0, rounds=2)
    li_pre = low_income(incomes(spread, no_sa, per_child)[1])
    ses_h = np.bincount(hh_i, weights=ses, minlength=n_h) / size
    adults_wa = np.bincount(hh_i, weights=working_age, minlength=n_h)
    no_work = np.bincount(hh_i, weights=working_age & employed, minlength=n_h) == 0
    u_sa = rng.random(n_h)
    sa_score = 2.2 * li_pre + 1.0 * (no_work & (adults_wa > 0)) - 0.5 * ses_h

    def sa_rate(c: float) -> float:
        sa_hh = (adults_wa > 0) & (u_sa < sigmoid(c + sa_score))
        return 100 * (sa_hh[hh_i] & working_age).sum() / max(working_age.sum(), 1)

    c_sa = bisect(sa_rate, t["social_assistance_18_66"])
    sa_hh = (adults_wa > 0) & (u_sa < sigmoid(c_sa + sa_score))
    # social assistance lifts some households: calibrate once more with it in place
    spread, per_child = calibrate_income(sa_hh, per_child)
    total, after, transfers = incomes(spread, sa_hh, per_child)
    li = low_income(after)
    social_assistance = sa_hh[hh_i] & working_age

    # --- child welfare ------------------------------------------------------------------------------------------
    role = P["role"][idx]
    has_partner = np.bincount(hh_i, weights=role == PARTNER, minlength=n_h) > 0
    single_parent = (n_kids > 0) & ~has_partner
    u_cw = rng.random(n)
    cw_score = 1.0 * li[hh_i] + 0.9 * single_parent[hh_i] + 0.5 * sa_hh[hh_i] - 0.3 * ses
    c_cw = bisect(lambda c: 100 * (u_cw[kid] < sigmoid(c + cw_score[kid])).mean(), t["child_welfare_0_17"])
    child_welfare = kid & (u_cw < sigmoid(c_cw + cw_score))

    # --- voting in election years (local: 2011, 2015, 2019 …; parliamentary: 2009, 2013, 2017 …) ------------
    voted = np.full(n, -1, dtype=np.int8)
    if year % 2 == 1:
        local = year % 4 == 3
        adult = year - by >= 18
        eligible = adult & ((cat != CAT_B) | (botid >= (3 if local else 7)))
        uv = person_uniform(pid, VOTE_SALT + year)
        score = 0.7 * ses + 0.25 * (sex == 2) + 0.02 * np.clip(age - 45, -25, 30) - 0.5 * imm_bg
        target = t["turnout_local"] if local else t["turnout_parliamentary"]
        c_v = bisect(lambda c: 100 * (uv[eligible] < sigmoid(c + score[eligible])).mean(), target)
        voted = np.where(eligible, (uv < sigmoid(c_v + score)).astype(np.int8), -1)

    # --- grade points at the end of 10th grade --------------------------------------------------------------
    gp_targets = {int(k): v for k, v in t["grade_points"].items()}
    y0, y1 = min(gp_targets), max(gp_targets)
    mean_gp = gp_targets[y0] + (gp_targets[y1] - gp_targets[y0]) * (year - y0) / (y1 - y0)
    tenth = (year - by) == 16
    gp_raw = 5.5 * ses - 1.5 * (sex == 1) + 7 * rng.standard_normal(n)
    shift = gp_raw[tenth].mean() if tenth.any() else 0.0
    grade_points = np.where(tenth, np.clip(mean_gp + gp_raw - shift, 10, 60), np.nan)

    return {
        "education_nus": nus,
        "in_education": in_edu,
        "employed": employed,
        "upper_secondary_completed": upper_secondary,
        "social_assistance": social_assistance,
        "child_welfare": child_welfare,
        "voted": voted,
        "grade_points": np.round(grade_points, 1),
        "hh_unique": hh_u,
        "income_total": np.rint(total).astype(np.int64),
        "income_after_tax": np.rint(after).astype(np.int64),
        "income_transfers": np.rint(transfers).astype(np.int64),
        "student_household": student_hh,
    }
