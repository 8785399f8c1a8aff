"""Disclosure control: the attacker must fail.

- the exact solver against rational arithmetic on random systems;
- generated populations over crossing geographies, pooled and overlapping windows and breakdowns: after
  suppression, an independent attacker over the finest cells (rational rank) pins down no suppressed count;
- named attacks by hand (the difference of two areas, of two pooled windows, a breakdown complement);
- the attacker on the published store of the embedded default.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import duckdb
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attacker import _per_level_equations, attack_store, exact_rank
from levekar.indicators.disclosure import (
    membership,
    primary,
    recoverable,
    recoverable_entries,
    rule_columns,
    secondary_suppression,
)
from levekar.indicators.engine import pool_years, roll_up
from levekar.indicators.modular import P, _mulmod, null_vector
from reference_solver import reference_recoverable

RULE = rule_columns({"min_denominator": 20, "small_counts": [1, 4], "small_complements": [1, 4]})


# --- the solver ------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.integers(0, 5), st.sampled_from([-2, -1, 1, 1, 1, 3]), min_size=1, max_size=4),
        min_size=1,
        max_size=7,
    )
)
# an unknown in one row only, fixed through a combination of the others' (found on the embedded default)
@example([{0: 1, 1: 1, 2: 1}, {1: 1, 2: 1}])
def test_recoverable_agrees_with_rational_rank(rows):
    n = 6
    dense = [[Fraction(r.get(c, 0)) for c in range(n)] for r in rows]
    rank = exact_rank(dense)
    fixed = recoverable(rows)
    used = {c for r in rows for c in r}
    for c in used:
        unit = [Fraction(int(c == k)) for k in range(n)]
        # c is fixed by the homogeneous system exactly when its unit vector lies in the row space
        assert (c in fixed) == (exact_rank([*dense, unit]) == rank), (rows, c)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.integers(0, 40), st.sampled_from([-2, -1, -1, 1, 1, 1, 3]), min_size=1, max_size=7),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 3),
)
def test_compiled_solver_agrees_with_the_python_reference(rows, seed):
    # larger systems than the rational check affords, so that the elimination (not only peeling) runs
    entries = [(i, k, v) for i, r in enumerate(rows) for k, v in r.items()]
    row, col, coef = (np.array(x, dtype=np.int64) for x in zip(*entries, strict=True))
    expected = set(reference_recoverable(row, col, coef, seed).tolist())
    assert set(recoverable_entries(row, col, coef, seed).tolist()) == expected
    # each connected part on its own (how large systems are solved, in batches of parts)
    z, has = null_vector(row, col, (coef % int(P)).astype(np.uint64), len(rows), 41, seed, 1)
    assert set(np.flatnonzero(has & (z == 0)).tolist()) == expected


@settings(deadline=None)  # the first call compiles
@given(st.integers(0, int(P) - 1), st.integers(0, int(P) - 1))
@example(int(P) - 1, int(P) - 1)
@example((1 << 32) - 1, (1 << 61) - 2)
def test_mulmod_is_exact(a, b):
    assert int(_mulmod(np.uint64(a), np.uint64(b))) == a * b % int(P)


# --- generated cases -----------------------------------------------------------------------------------


def _cells(atoms: pd.DataFrame, levels: dict[str, pd.DataFrame], dims: list[str]) -> pd.DataFrame:
    """The published table of one indicator from atom counts (grunnkrets, year, dims…, numerator,
    denominator), as the engine rolls it up, with the primary rule applied."""
    parts = []
    for dim in ["total", *dims]:
        value = "total" if dim == "total" else atoms[dim].astype(str)
        g = atoms.assign(breakdown=dim, breakdown_value=value)
        parts.append(
            g.groupby(["grunnkrets", "year", "breakdown", "breakdown_value"], as_index=False)[
                ["numerator", "denominator"]
            ].sum()
        )
    counts = pd.concat(parts, ignore_index=True).assign(indicator_id="x", sum_squares=0.0)
    counts["numerator"] = counts["numerator"].astype(float)
    rolled = pool_years(roll_up(counts, levels))
    rolled["suppressed"] = primary(rolled["numerator"], rolled["denominator"], RULE)
    return rolled.reset_index(drop=True)


def _vector(cell, atoms: pd.DataFrame, members: pd.DataFrame) -> np.ndarray:
    gks = set(members[(members.level == cell.level) & (members.area_code == cell.area_code)].grunnkrets)
    inside = atoms.grunnkrets.isin(gks) & (atoms.year <= cell.year) & (atoms.year > cell.year - cell.pooled_years)
    if cell.breakdown != "total":
        inside &= atoms[cell.breakdown].astype(str) == cell.breakdown_value
    return inside.to_numpy().astype(int)


def _attack(cells: pd.DataFrame, suppressed: np.ndarray, atoms: pd.DataFrame, members: pd.DataFrame) -> list:
    """Suppressed cells with people in them that the published cells and the empty cells determine, over
    the atoms, in rational arithmetic."""
    vec = np.array([_vector(c, atoms, members) for c in cells.itertuples(index=False)])
    known = ~suppressed | (cells["denominator"].to_numpy() == 0)
    basis = [[Fraction(int(x)) for x in v] for v in vec[known]]
    rank = exact_rank(basis) if basis else 0
    out = []
    for i in np.flatnonzero(~known):
        if exact_rank([*basis, [Fraction(int(x)) for x in vec[i]]]) == rank:
            out.append(cells.iloc[i][["level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]])
    return out


@st.composite
def populations(draw):
    n = draw(st.integers(3, 5))
    gks = [f"g{i}" for i in range(n)]
    two_dims = draw(st.booleans())
    years = [2016, 2017] if two_dims else [2016, 2017, 2018, 2019]
    dims = ["sex", "immigrant_background"] if two_dims else ["sex"]
    values = [[1, 2], [False, True]][: len(dims)]
    rows = []
    for g, y, *v in itertools.product(gks, years, *values):
        den = draw(st.integers(0, 14))
        rows.append(
            {
                "grunnkrets": g,
                "year": y,
                **dict(zip(dims, v, strict=True)),
                "denominator": den,
                "numerator": draw(st.integers(0, den)),
            }
        )
    atoms = pd.DataFrame(rows)
    cut_a = draw(st.integers(1, n - 1))
    cut_z = draw(st.integers(1, n - 1))
    cut_k = draw(st.integers(1, n))
    order = draw(st.permutations(gks))
    levels = {
        "area": pd.DataFrame({"grunnkrets": gks, "area_code": ["A1" if i < cut_a else "A2" for i in range(n)]}),
        "zone": pd.DataFrame({"grunnkrets": order, "area_code": ["Z1" if i < cut_z else "Z2" for i in range(n)]}),
        # one kommune, or two: the country is then more than any kommune (country − zone attacks)
        "kommune": pd.DataFrame({"grunnkrets": gks, "area_code": ["K1" if i < cut_k else "K2" for i in range(n)]}),
    }
    return atoms, levels, dims


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_no_suppressed_count_can_be_recovered_in_generated_cases(case):
    atoms, levels, dims = case
    cells = _cells(atoms, levels, dims)
    members = membership(levels, atoms.grunnkrets)
    rules = pd.DataFrame([RULE] * len(cells))
    suppressed, _ = secondary_suppression(cells, members, rules)
    assert (suppressed >= cells["suppressed"].to_numpy()).all()  # nothing primary is ever released
    assert _attack(cells, suppressed, atoms, members) == []


# --- named attacks ---------------------------------------------------------------------------------------


def _one_year(gk_counts: dict[str, tuple[int, int]], years=(2018,)) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"grunnkrets": g, "year": y, "numerator": n, "denominator": d}
            for g, (n, d) in gk_counts.items()
            for y in years
        ]
    )


def _protect(atoms, levels, dims=()):
    cells = _cells(atoms, levels, list(dims))
    members = membership(levels, atoms.grunnkrets)
    suppressed, _ = secondary_suppression(cells, members, pd.DataFrame([RULE] * len(cells)))
    return cells, suppressed, members


def test_an_area_minus_a_zone_inside_it_is_protected():
    # A = g1 + g2 + g3 and the zone Z = g2 + g3: A − Z would give g1's 2 persons
    atoms = _one_year({"g1": (2, 30), "g2": (40, 200), "g3": (50, 210)})
    levels = {
        "area": pd.DataFrame({"grunnkrets": ["g1", "g2", "g3"], "area_code": "A"}),
        "zone": pd.DataFrame({"grunnkrets": ["g1", "g2", "g3"], "area_code": ["Z0", "Z", "Z"]}),
    }
    cells, suppressed, members = _protect(atoms, levels)
    g1 = ((cells.level == "grunnkrets") & (cells.area_code == "g1")).to_numpy()
    assert suppressed[g1].all() and suppressed.sum() > g1.sum()
    assert _attack(cells, suppressed, atoms, members) == []


def test_two_overlapping_pooled_windows_do_not_reveal_a_year():
    # (2017–2019) − (2016–2018) = 2019 − 2016: with 2016 published, 2019's small count would follow
    atoms = pd.DataFrame(
        [
            {"grunnkrets": "g1", "year": y, "numerator": n, "denominator": 60}
            for y, n in [(2016, 20), (2017, 21), (2018, 22), (2019, 3)]
        ]
    )
    cells, suppressed, members = _protect(atoms, {})
    gk = (cells.level == "grunnkrets").to_numpy()
    y2019 = gk & (cells.year == 2019).to_numpy() & (cells.pooled_years == 1).to_numpy()
    assert suppressed[y2019].all()
    assert suppressed[gk & (cells.pooled_years == 3).to_numpy()].any()
    assert _attack(cells, suppressed, atoms, members) == []


def test_a_breakdown_complement_is_suppressed():
    atoms = pd.DataFrame(
        [{"grunnkrets": "g1", "year": 2018, "sex": s, "numerator": n, "denominator": 50} for s, n in [(1, 3), (2, 25)]]
    )
    cells, suppressed, members = _protect(atoms, {}, ["sex"])
    gk = cells[cells.level == "grunnkrets"]
    assert suppressed[gk.index[gk.breakdown == "sex"]].all()
    assert _attack(cells, suppressed, atoms, members) == []


def test_per_level_cells_are_tied_by_margins_and_years_at_every_level():
    # a pattern found in review: 12 kommune cells of a per-level indicator, no relation with a lone
    # suppressed member, yet all 12 pinned down by margins and pooled years
    cells = pd.DataFrame(
        [
            {
                "indicator_id": "mv",
                "level": "kommune",
                "area_code": "K",
                "year": y,
                "pooled_years": p,
                "breakdown": b,
                "breakdown_value": v,
                "numerator": 50.0,
                "denominator": 200,
            }
            for y in range(2015, 2020)
            for p in (1, 3)
            if p == 1 or y >= 2017
            for b, v in (("total", "total"), ("imm", "false"), ("imm", "true"))
        ]
    )
    pattern = {(2016, 1, "total"), (2016, 1, "false"), (2017, 1, "false"), (2017, 1, "true"), (2017, 3, "total"),
               (2017, 3, "true"), (2018, 1, "total"), (2018, 1, "false"), (2018, 3, "false"), (2018, 3, "true"),
               (2019, 3, "total"), (2019, 3, "true")}  # fmt: skip
    cells["suppressed"] = [
        (y, p, v) in pattern for y, p, v in cells[["year", "pooled_years", "breakdown_value"]].values
    ]
    members = membership(
        {"kommune": pd.DataFrame({"grunnkrets": ["g1", "g2"], "area_code": "K"})}, pd.Series(["g1", "g2"])
    )
    members = members[members.level != "country"]
    suppressed, summary = secondary_suppression(cells, members, pd.DataFrame([RULE] * len(cells)), per_level={"mv"})
    assert summary["audits"] > 1 and suppressed.sum() > len(pattern)
    # the attacker's own equations for a per-level indicator, solved in rational arithmetic
    v = cells.assign(suppressed=suppressed, col=np.arange(len(cells)))
    eqs = _per_level_equations(v, members)
    known = [[Fraction(int(c == k)) for c in range(len(cells))] for k in np.flatnonzero(~suppressed)]
    rows = known + [[Fraction(e.get(c, 0)) for c in range(len(cells))] for e in eqs]
    rank = exact_rank(rows)
    for k in np.flatnonzero(suppressed):
        assert exact_rank([*rows, [Fraction(int(c == k)) for c in range(len(cells))]]) > rank


# --- the embedded default ----------------------------------------------------------------------------------


def test_attacker_fails_on_the_embedded_default(demo_dir):
    published = demo_dir.parent / "published"
    values = pd.read_parquet(published / "indicator_values.parquet")
    con = duckdb.connect(str(published / "barometer.duckdb"), read_only=True)
    members = con.execute("SELECT level, area_code, grunnkrets FROM area_grunnkrets").df()
    # a median is not a sum of anything published: nothing to solve for (its count of persons is public)
    medians = {r[0] for r in con.execute("SELECT indicator_id FROM catalogue WHERE kind = 'median'").fetchall()}
    values = values[~values.indicator_id.isin(medians)]
    assert values["suppressed"].sum() > 1000 and len(medians) == 1
    per_level = {r[0] for r in con.execute("SELECT indicator_id FROM catalogue WHERE per_level").fetchall()}
    found = attack_store(values, members, per_level)
    assert found.empty, found.head(20)


# --- one problem per indicator ---------------------------------------------------------------------------


def test_indicators_are_protected_alone_and_on_worker_processes_alike(monkeypatch):
    """Relations never mix indicators: each indicator's flags are those it gets when protected alone, and
    worker processes give the same flags and summary as this process."""
    import levekar.indicators.disclosure as disclosure

    rng = np.random.default_rng(7)
    gks = [f"g{i}" for i in range(8)]
    levels = {
        "area": pd.DataFrame({"grunnkrets": gks, "area_code": [f"A{i // 3}" for i in range(8)]}),
        "zone": pd.DataFrame({"grunnkrets": gks, "area_code": [f"Z{(i + 1) // 4}" for i in range(8)]}),
        "kommune": pd.DataFrame({"grunnkrets": gks, "area_code": "K"}),
    }
    members = membership(levels, pd.Series(gks))
    parts = []
    for ind in ("a", "b", "c"):
        den = rng.integers(0, 30, size=(8, 4, 2))
        atoms = pd.DataFrame(
            [
                {"grunnkrets": g, "year": 2015 + y, "sex": s + 1, "denominator": den[i, y, s]}
                for i, g in enumerate(gks)
                for y in range(4)
                for s in range(2)
            ]
        )
        atoms["numerator"] = rng.integers(0, atoms["denominator"] + 1)
        parts.append(_cells(atoms, levels, ["sex"]).assign(indicator_id=ind))
    cells = pd.concat(parts, ignore_index=True).sample(frac=1, random_state=1).reset_index(drop=True)
    rules = pd.DataFrame([RULE] * len(cells))
    alone, summary = secondary_suppression(cells, members, rules, workers=1)
    assert alone.sum() > cells["suppressed"].sum()  # there is secondary suppression to compare
    for ind in ("a", "b", "c"):
        mine = (cells["indicator_id"] == ind).to_numpy()
        own, _ = secondary_suppression(cells[mine], members, rules[mine], workers=1)
        assert (own == alone[mine]).all()
    monkeypatch.setattr(disclosure, "PARALLEL_CELLS", 0)
    forked, forked_summary = secondary_suppression(cells, members, rules, workers=2)
    assert (forked == alone).all() and forked_summary == summary
