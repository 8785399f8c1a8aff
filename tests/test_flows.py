"""Moves and change: hand-built cases for every component, the exact identity (hand-built, generated
populations, every area of the published store), disclosure (the obvious attacks), the CLI's errors."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.flows.core import BASE_COLUMNS, BASE_GROUPS, FlowsError, flow_counts
from levekar.flows.protect import COMPONENTS, PER_LEVEL, PROTECTED, contributions, protect_groups
from levekar.flows.query import read_flows
from levekar.flows.run import flow_tables
from levekar.indicators.catalogue import parse_catalogue
from levekar.indicators.disclosure import area_relations, membership
from levekar.indicators.run import level_mappings
from levekar.publish.run import run

CATALOGUE = parse_catalogue(
    {
        "version": "t",
        "breakdowns": {},
        "disclosure_rules": {"default": {"min_denominator": 20, "small_counts": [1, 4], "small_complements": [1, 4]}},
        "indicators": [
            {
                "id": "employment_20_66",
                "title": {"nb": "s", "en": "e"},
                "theme": "t",
                "kind": "share",
                "direction": "higher_is_better",
                "population": "age BETWEEN 20 AND 66",
                "numerator": "employed",
                "breakdowns": [],
            }
        ],
    }
)
GEO = pd.DataFrame({"grunnkrets": ["03010101", "03010102", "46010101"], "kommune": ["0301", "0301", "4601"]})


def person(pid: int, year: int, gk: str, age: int, employed: bool = True, died: bool = False) -> dict:
    return {
        "person_id": pid,
        "year": year,
        "grunnkrets": gk,
        "birth_year": year - age - 1,
        "age": age,
        "died_in_year": died,
        "employed": employed,
        "immigrant_background": False,
        "low_income_eu60": False,
        "eq_income": 300000.0,
        "student_household": False,
        "residence_since": year,
        "household_head": True,
        "hh_small_children": 0,
    }


def counts(rows: list[dict], migrations: pd.DataFrame | None = None, pairs=((2018, 2019),)):
    con = ibis.duckdb.connect()
    con.con.register("facts_df", pd.DataFrame(rows)[list(BASE_COLUMNS)])
    con.raw_sql("CREATE TABLE facts AS SELECT * FROM facts_df")
    levels = {"kommune": GEO.rename(columns={"kommune": "area_code"})}
    return flow_counts(con, con.table("facts"), GEO, levels, CATALOGUE, migrations, list(pairs))


def component(fc, area: str = "03010101", level: str = "grunnkrets") -> pd.DataFrame:
    d = contributions(fc.decomposition)
    c = d[(d.level == level) & (d.area_code == area)].set_index("component")[["d0", "n0", "d1", "n1"]]
    return c.reindex(list(COMPONENTS)).fillna(0).astype(int)


A, B, OTHER = "03010101", "03010102", "46010101"


@pytest.fixture()
def base_rows() -> list[dict]:
    """Ten employed 30-year-olds who stay in A both years, so every area has a population."""
    return [person(100 + i, y, A, 30 + (y - 2018)) for i in range(10) for y in (2018, 2019)]


def test_in_mover_who_ages_into_the_population_is_an_in_mover(base_rows):
    # 19 in 2018 in B, 20 in 2019 in A and employed: an in-mover (within the kommune), not ageing in
    rows = [*base_rows, person(1, 2018, B, 19), person(1, 2019, A, 20)]
    c = component(counts(rows))
    assert c.loc["in_within_kommune", ["d1", "n1"]].tolist() == [1, 1]
    assert c.loc["ageing_in", "d1"] == 0
    assert c.loc["out_within_kommune", "d0"] == 0  # B's, not A's
    # at kommune level the same person is a stayer who aged in
    k = component(counts(rows), "0301", "kommune")
    assert k.loc["ageing_in", ["d1", "n1"]].tolist() == [1, 1]


def test_ageing_in_and_out_among_stayers(base_rows):
    rows = [*base_rows, person(2, 2018, A, 19), person(2, 2019, A, 20, employed=False)]
    rows += [person(3, 2018, A, 66), person(3, 2019, A, 67)]
    c = component(counts(rows))
    assert c.loc["ageing_in", ["d1", "n1"]].tolist() == [1, 0]
    assert c.loc["ageing_out", ["d0", "n0"]].tolist() == [1, 1]
    assert c.loc["stayers", ["d0", "d1", "n0", "n1"]].tolist() == [10, 10, 10, 10]


def test_death_emigrant_birth_and_other_kommune(base_rows):
    rows = [*base_rows, person(4, 2018, A, 50, died=True)]  # dies in 2018
    rows += [person(5, 2018, A, 40)]  # emigrates in 2018
    rows += [person(6, 2019, A, 0)]  # born in 2018
    rows += [person(7, 2018, A, 35), person(7, 2019, OTHER, 36)]  # to another kommune in the extract
    rows += [person(8, 2018, A, 45, employed=False)]  # leaves, nothing recorded
    rows += [person(9, 2019, A, 25)]  # arrives from another kommune outside the extract
    mig = pd.DataFrame(
        {"person_id": [5, 9], "year": [2018, 2018], "direction": ["out", "in"], "scope": ["international", "domestic"]}
    )
    c = component(counts(rows, mig))
    assert c.loc["deaths", ["d0", "n0"]].tolist() == [1, 1]
    assert c.loc["emigrated", ["d0", "n0"]].tolist() == [1, 1]
    assert c.loc["births", "d1"] == 0  # a newborn is not in the 20–66 population …
    assert c.loc["out_other_kommune", ["d0", "n0"]].tolist() == [1, 1]
    assert c.loc["left_unrecorded", ["d0", "n0"]].tolist() == [1, 0]
    assert c.loc["in_other_kommune", ["d1", "n1"]].tolist() == [1, 1]
    g = counts(rows, mig).groups
    g = g[(g.level == "grunnkrets") & (g.area_code == A)].set_index("grp").persons
    assert g["births"] == 1 and g["deaths"] == 1 and g["emigrated"] == 1  # … but it is a birth
    assert g["residents_from"] == g["stayers"] + g["out_movers"] + g["deaths"]
    assert g["residents_to"] == g["stayers"] + g["in_movers"] + g["births"]


def test_components_add_up_exactly(base_rows):
    rows = [*base_rows, person(4, 2018, A, 50, died=True), person(6, 2019, A, 0), person(9, 2019, A, 25, False)]
    d = contributions(counts(rows).decomposition)
    s = d.groupby(["level", "area_code"]).agg(c=("contribution_num", "sum"), t=("change_num", "first"))
    assert (s.c == s.t).all()
    a = d[(d.level == "grunnkrets") & (d.area_code == A)].set_index("component")
    # 11 of 11 employed → 10 of 11: the death of an employed person does not move the share (its group had
    # the area's share), the arrival of a non-employed one takes all of the change
    assert a.contribution_num["deaths"] == 0
    assert a.contribution_num["arrived_unrecorded"] == a.change_num.iloc[0] < 0


@st.composite
def populations(draw) -> list[dict]:
    n = draw(st.integers(5, 40))
    rows = []
    gks = [A, B, OTHER]
    for pid in range(n):
        age = draw(st.integers(0, 80))
        there0 = draw(st.sampled_from([*gks, None]))
        there1 = draw(st.sampled_from([*gks, None]))
        died = there0 is not None and there1 is None and draw(st.booleans())
        if there0:
            rows.append(person(pid, 2018, there0, age, draw(st.booleans()), died))
        if there1:
            rows.append(person(pid, 2019, there1, age + 1, draw(st.booleans())))
    return rows


@settings(max_examples=40, deadline=None)
@given(populations())
def test_identity_on_generated_populations(rows):
    if not rows:
        return
    fc = counts(rows)
    d = contributions(fc.decomposition)
    s = d.groupby(["level", "area_code", "year_from", "year_to"]).agg(
        c=("contribution_num", "sum"), t=("change_num", "first"), D0=("d0", "sum"), D1=("d1", "sum")
    )
    assert (s.c == s.t).all()
    g = fc.groups.set_index(["level", "area_code", "year_from", "year_to", "grp"]).persons
    for key in g.index.droplevel("grp").unique():
        get = lambda name, key=key: g.get((*key, name), 0)  # noqa: E731
        assert get("residents_from") == get("stayers") + get("out_movers") + get("deaths")
        assert get("residents_to") == get("stayers") + get("in_movers") + get("births")


def test_unknown_pair_is_an_error(base_rows):
    with pytest.raises(FlowsError, match="years of the extract"):
        counts(base_rows, pairs=[(2017, 2019)])


# --- on a real run ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tiny_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flows") / "published"
    run(tiny_dir, out)
    return out


def published(store: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(store / f"{name}.parquet")


def check_store(store: Path) -> None:
    """The identity on every published decomposition, and the disclosure rules on every published number."""
    d = published(store, "flows_decomposition")
    pub = d[~d.suppressed]
    comps = [c for c in d.columns if c not in ("indicator_id", "level", "area_code", "year_from", "year_to")]
    comps = comps[comps.index("stayers") : comps.index("small_groups") + 1]
    total = pub[comps].fillna(0).sum(axis=1)
    assert np.allclose(total, pub["change"], atol=1e-9)
    assert np.allclose(pub["change"], pub["value_to"] - pub["value_from"], atol=1e-9)
    assert d[d.suppressed][[*comps, "change", "value_from"]].isna().all().all()
    # the obvious attack: a published decomposition next to the indicator store gives N1 = (s0 + Δ)·D1 —
    # so both years' indicator cells must be published wherever a decomposition is
    v = published(store, "indicator_values")
    v = v[(v.breakdown == "total") & (v.pooled_years == 1)]
    for col in ("year_from", "year_to"):
        m = pub.merge(v.rename(columns={"year": col}), on=["indicator_id", "level", "area_code", col], how="left")
        assert not m.suppressed_y.fillna(True).any()
    # movers: no published count of 1–4, every row whole, the identities hold
    m = published(store, "flows_movers")
    counts_ = m.persons.dropna()
    assert not counts_.between(1, 4).any()
    whole = m[m.group.isin([*BASE_GROUPS, "in_movers", "out_movers", "residents_from", "residents_to"])]
    mixed = whole.groupby(["level", "area_code", "year_from", "year_to"]).persons.agg(lambda s: s.isna().nunique())
    assert (mixed == 1).all()
    w = m[~m.suppressed].pivot_table(
        index=["level", "area_code", "year_from", "year_to"], columns="group", values="persons", aggfunc="first"
    )
    assert (w.residents_from == w.stayers + w.out_movers + w.deaths).all()
    assert (w.residents_to == w.stayers + w.in_movers + w.births).all()
    # a published in-mover count for neighbouring years never stands beside a suppressed catalogue cell
    ind = v[v.indicator_id == "in_movers"][["level", "area_code", "year", "suppressed"]]
    x = m[(m.group == "in_movers") & m.persons.notna() & (m.year_to == m.year_from + 1)].merge(
        ind.rename(columns={"year": "year_to"}), on=["level", "area_code", "year_to"], how="left"
    )
    assert not x.suppressed_y.fillna(False).any()


def parent_minus_children(movers: pd.DataFrame, members: pd.DataFrame) -> list[tuple]:
    """The attack the cross-level identities allow: for every additive group, pair and relation (an area =
    the areas of another level inside it + its grunnkretser left over), a published total with exactly one
    suppressed member, or suppressed children that add up to a small group (1–4). Returns what it found."""
    rel = area_relations(members)
    found = []
    additive = [g for g in PROTECTED if g not in PER_LEVEL]
    m = movers[movers.group.isin(additive)]
    for (grp, y0, y1), part in m.groupby(["group", "year_from", "year_to"]):
        v = part.set_index(["level", "area_code"]).persons.astype(float)
        # an area with no row has nobody in it: a known 0
        parent = v.reindex(pd.MultiIndex.from_arrays([rel.parent_level, rel.parent]), fill_value=0).to_numpy()
        child = v.reindex(pd.MultiIndex.from_arrays([rel.child_level, rel.child]), fill_value=0).to_numpy()
        r = rel.assign(parent_v=parent, child_v=child, unknown=np.isnan(child))
        for key, x in r.groupby("relation"):
            p = x.parent_v.iloc[0]
            unknown = int(x.unknown.sum())
            if np.isnan(p):
                if unknown == 0:
                    found.append((grp, y0, y1, "parent", x.parent.iloc[0]))
                continue
            rest = p - x.child_v.sum(skipna=True)
            if unknown == 1 or (unknown > 1 and 1 <= rest <= 4):
                found.append((grp, y0, y1, key, x.parent.iloc[0], rest))
    return found


def test_parent_minus_children_recovers_nothing_hand_built():
    # kommune K of three grunnkretser; 2 emigrants from g1 (a small count: its row is suppressed). Without
    # secondary suppression K − g2 − g3 gives the 2; with it one more row goes and the attack fails
    geo = pd.DataFrame({"grunnkrets": ["g1", "g2", "g3"], "area_code": "K"})
    members = membership({"kommune": geo}, geo.grunnkrets)
    rows = []
    sizes = {"g1": 2, "g2": 30, "g3": 40}
    for level, area, em in [
        *(("grunnkrets", g, n) for g, n in sizes.items()),
        ("kommune", "K", 72),
        ("country", "0", 72),
    ]:
        scale = 1 if level == "grunnkrets" else 3
        for grp, n in [
            ("residents_from", 500 * scale),
            ("residents_to", 500 * scale),
            ("stayers", 400 * scale),
            ("out_movers", 100 * scale - em),
            ("emigrated", em),
            ("deaths", 0),
            ("births", 0),
            ("in_movers", 100 * scale),
            ("in_within_kommune", 100 * scale),
            ("out_within_kommune", 100 * scale - em),
        ]:
            rows.append(
                {
                    "level": level,
                    "area_code": area,
                    "year_from": 2018,
                    "year_to": 2019,
                    "grp": grp,
                    "persons": n,
                    "emp_den": 0,
                    "emp_num": 0,
                    "imm_num": 0,
                    "low_den": 0,
                    "low_num": 0,
                    "inc_den": 0,
                    "inc_median": np.nan,
                }
            )
    groups = pd.DataFrame(rows)

    def published(members_):
        g = protect_groups(groups, pd.DataFrame(), CATALOGUE, members_)
        return g.rename(columns={"grp": "group"}).assign(persons=g.persons.where(~g.suppressed))

    naive = published(None)
    assert parent_minus_children(naive, members)  # the gap the secondary suppression closes
    safe = published(members)
    assert not parent_minus_children(safe, members)
    assert safe[(safe.group == "emigrated") & (safe.level == "kommune")].persons.notna().all()


def test_store_tables_on_tiny(tiny_store, tiny_dir):
    check_store(tiny_store)
    geography = pd.read_parquet(tiny_dir / "geography.parquet")
    members = membership(level_mappings(geography), geography.grunnkrets)
    assert parent_minus_children(published(tiny_store, "flows_movers"), members) == []
    assert published(tiny_store, "flows_cohort").view.isin(["fixed_cohort", "current_population"]).all()


def test_identity_on_every_area_of_the_embedded_default(demo_dir):
    store = demo_dir.parent / "published"
    check_store(store)
    geography = pd.read_parquet(demo_dir / "geography.parquet")
    areas = pd.read_parquet(demo_dir.parent / "areas" / "analysis_areas.parquet")
    zonings = pd.read_parquet(demo_dir / "zonings.parquet") if (demo_dir / "zonings.parquet").exists() else None
    members = membership(level_mappings(geography, areas, zonings), geography.grunnkrets)
    assert parent_minus_children(published(store, "flows_movers"), members) == []


def test_tables_are_deterministic(tiny_dir, tiny_store, tmp_path):
    again = tmp_path / "again"
    run(tiny_dir, again)
    for name in ("flows_movers", "flows_decomposition", "flows_cohort"):
        assert (again / f"{name}.parquet").read_bytes() == (tiny_store / f"{name}.parquet").read_bytes()


def test_cli(tiny_store):
    r = CliRunner().invoke(app, ["flows", str(tiny_store), "--from", "2016", "--to", "2017", "--area", "0301"])
    assert r.exit_code == 0, r.output
    assert "fixed cohort" in r.output
    r = CliRunner().invoke(app, ["flows", str(tiny_store), "--from", "2012", "--to", "2017"])
    assert r.exit_code == 2 and "unknown year 2012" in r.output
    r = CliRunner().invoke(app, ["flows", str(tiny_store), "--from", "2016", "--to", "2017", "--area", "nowhere"])
    assert r.exit_code == 2 and "valid codes are e.g." in r.output
    with pytest.raises(FlowsError, match="published pairs"):
        read_flows(tiny_store, 2017, 2016)


def test_flow_tables_reject_missing_counts():
    from levekar.flows.run import FlowsStage

    with pytest.raises(RuntimeError):
        FlowsStage(".", CATALOGUE).tables(pd.DataFrame())
    assert callable(flow_tables)
