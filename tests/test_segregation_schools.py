"""Schools and kindergartens (issue 6 item 3) and the store's segregation tables (item 4): hand-built cases at
the edges of table 3.5, uptake, contrast and kindergarten pairs; indices equal to PySAL's; the primary
disclosure rule on every published school cell; determinism; bad input; the demo's K-profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.indicators.catalogue import load_catalogue
from levekar.indicators.disclosure import primary, rule_columns
from levekar.indicators.facts import connect, person_facts
from levekar.indicators.run import level_mappings
from levekar.segregation.inputs import InputError, grunnkrets_counts, persons_where, register_groups
from levekar.segregation.results import residential_indices, store_tables
from levekar.segregation.schools import (
    Settings,
    contrast_pairs,
    differs,
    kindergarten_pairs,
    school_raw,
    school_tables,
    share_classes,
)

runner = CliRunner()
RULE = load_catalogue().disclosure_rules["default"]
TABLE_3_2_NORWAY = {200: 42.9, 1600: 35.9, 12800: 29.2, 51200: 26.2}


# --- hand-built cases -----------------------------------------------------------------------------------------


def test_table_3_5_classes_at_the_edges():
    # the report: «50 prosent eller mer», «mer enn 90 prosent», «mindre enn 10 prosent»
    count = np.array([50, 49, 91, 90, 9, 10, 9, 0, 3])
    total = np.array([100, 100, 100, 100, 10, 100, 100, 0, 30])
    c = share_classes(count, total)
    # ≥ 50: 50/100, 91/100, 90/100, 9/10; > 90: 91/100 only (90/100 and 9/10 are exactly 90);
    # < 10: 9/100, 0 of 0 is no school; 3/30 is exactly 10 % and not under it
    assert c == {"at_least_50": 4, "over_90": 1, "under_10": 1}
    assert share_classes(np.array([1]), np.array([3]), at_least=100 / 3) == {
        "at_least_50": 1,
        "over_90": 0,
        "under_10": 0,
    }


def test_differs_is_exact_at_the_threshold():
    # 20 % and 50 %: exactly 30 points apart — not "more than 30"; 1/3 against 2/3 by counts, no rounding
    assert not differs(20, 100, 50, 100, 30.0)[()]
    assert differs(20, 100, 51, 100, 30.0)[()]
    assert not differs(1, 3, 2, 3, 100 / 3 + 1e-12)[()]
    assert differs(7, 10, 2, 5, 29.999)[()] and not differs(7, 10, 2, 5, 30.0)[()]


def test_contrast_pairs_only_published_and_ordered():
    pairs = pd.DataFrame({"a": ["A", "A", "B", "C"], "b": ["B", "C", "C", "D"]})
    shares = pd.DataFrame(
        {"institution_id": ["A", "B", "C"], "count": [10, 45, 40], "total": [100, 100, 100]}
    )  # D is suppressed: not in the published shares
    out = contrast_pairs(pairs, shares, 30.0)
    # A–B: 35 points (B higher, so B comes first); A–C exactly 30: no; B–C 5: no; C–D: D unpublished
    assert out[["institution_a", "institution_b"]].values.tolist() == [["B", "A"]]
    assert out["difference"].iloc[0] == pytest.approx(35.0)
    assert out["share_a"].iloc[0] == pytest.approx(45.0) and out["share_b"].iloc[0] == pytest.approx(10.0)


def test_kindergarten_pairs_at_distance_and_difference_edges():
    kgs = pd.DataFrame(
        {
            "institution_id": ["K1", "K2", "K3", "K4", "K5", "K6"],
            "kommune": ["0301", "0301", "0301", "0301", "0301", "1103"],
            "x": [0.0, 1000.0, 0.0, 5000.0, 5000.0, 0.0],
            "y": [0.0, 0.0, 1000.01, 0.0, 600.0, 10.0],
            "count": [5, 40, 40, 10, 40, 40],
            "total": [50, 50, 50, 50, 100, 50],
        }
    )
    out = kindergarten_pairs(kgs, distance=1000.0, difference=30.0)
    got = {(r.institution_a, r.institution_b): r for r in out.itertuples()}
    # K1–K2 exactly 1000 m, 10 % vs 80 %: in; K1–K3 1000.01 m: out; K1–K6 10 m but another kommune: out;
    # K4–K5 600 m, 20 % vs 40 %: 20 points, out
    assert set(got) == {("K2", "K1")}
    assert got["K2", "K1"].distance_m == 1000.0 and got["K2", "K1"].difference == pytest.approx(70.0)
    # exactly the difference: not more than it
    assert kindergarten_pairs(kgs, 1000.0, 70.0).empty
    assert len(kindergarten_pairs(kgs, 1000.0, 69.999)) == 1


def _pupils(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["grunnkrets", "age_autumn", "school_id", "immigrant_background", "n"])
    df = df.loc[df.index.repeat(df.pop("n"))].reset_index(drop=True)
    df["year"] = 2019
    df["person_id"] = np.arange(1, len(df) + 1)
    return df


def test_uptake_local_and_catchment_grades_hand_built():
    inst = pd.DataFrame(
        {
            "institution_id": ["S1", "S2", "B1", "U1", "P1"],
            "type": ["grunnskole", "grunnskole", "barneskole", "ungdomsskole", "grunnskole"],
            "kommune": "0301",
        }
    )
    catch = pd.DataFrame(
        {
            "institution_id": ["S1", "S2", "B1", "U1", "S1", "S2"],
            "grunnkrets": ["G1", "G2", "G3", "G3", "G4", "G4"],
        }
    )
    persons = _pupils(
        [
            ("G1", 8, "S1", True, 6),
            ("G1", 8, "S1", False, 2),
            ("G1", 8, "S2", False, 2),  # opted out
            ("G2", 10, "S2", True, 5),
            ("G3", 9, "B1", False, 4),
            ("G3", 14, "U1", False, 3),
            ("G3", 14, "P1", False, 1),  # a private school without a catchment
            ("G4", 7, "S1", False, 4),  # in two catchments of the same grades: half in each
            ("G1", 3, None, False, 9),  # kindergarten age: no pupil
        ]
    )
    raw = school_raw(persons, inst, catch, ["immigrant_background"]).set_index("institution_id")
    assert raw.loc["S1", "total"] == 12 and raw.loc["S1", "resident_total"] == 10 + 2
    assert raw.loc["S1", "local"] == 12 and raw.loc["S1", "uptake"] == pytest.approx(100.0)
    assert raw.loc["S2", "total"] == 7 and raw.loc["S2", "resident_total"] == 5 + 2
    assert raw.loc["S2", "local"] == 5 and raw.loc["S2", "uptake"] == pytest.approx(100.0)
    assert raw.loc["S2", "local_share"] == pytest.approx(100 * 5 / 7)
    # a barneskole counts grades 1–7 (age 6–12), an ungdomsskole 8–10 (13–15) of the same grunnkrets
    assert raw.loc["B1", "resident_total"] == 4 and raw.loc["U1", "resident_total"] == 4
    assert raw.loc["U1", "uptake"] == pytest.approx(75.0)
    assert np.isnan(raw.loc["P1", "uptake"]) and raw.loc["P1", "total"] == 1
    assert raw.loc["S1", "immigrant_background"] == 6 and raw.loc["S1", "resident_immigrant_background"] == 6


# --- the tiny preset: oracles, disclosure, determinism --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tables(tiny_dir) -> dict[str, pd.DataFrame]:
    return school_tables(tiny_dir)


def test_register_groups_equal_the_indicator_facts(tiny_dir):
    con = register_groups(tiny_dir)
    ours = persons_where(con, "TRUE")
    _, tables = connect(tiny_dir)
    facts = person_facts(tables).select("person_id", "year", "low_income_eu60", "immigrant_background").execute()
    m = ours.merge(facts, on=["person_id", "year"], suffixes=("", "_facts"), validate="one_to_one")
    assert len(m) == len(ours) == len(facts)
    for c in ("low_income_eu60", "immigrant_background"):
        a, b = m[c].astype("boolean"), m[f"{c}_facts"].astype("boolean")
        assert (a.isna() == b.isna()).all() and (a[a.notna()] == b[b.notna()]).all(), c


def test_institution_indices_equal_pysal(tiny_dir, tiny_tables):
    from segregation.singlegroup import Dissim, Entropy, Isolation

    con = register_groups(tiny_dir)
    persons = persons_where(con, "school_id IS NOT NULL AND year = 2018")
    schools = persons.groupby("school_id").agg(g=("immigrant_background", "sum"), t=("person_id", "size"))
    kommune = schools.index.str[:4]
    got = tiny_tables["segregation_institution_indices"]
    for k in sorted(set(kommune)):
        df = schools[kommune == k].astype(float)
        row = got[
            (got["year"] == 2018) & (got["kind"] == "school") & (got["scope_code"] == k)
            & (got["group"] == "immigrant_background") & (got["basis"] == "enrolled")
        ].set_index("index")["value"]  # fmt: skip
        assert row["dissimilarity"] == pytest.approx(Dissim(df, "g", "t").statistic, rel=1e-9)
        assert row["entropy"] == pytest.approx(Entropy(df, "g", "t").statistic, rel=1e-9)
        assert row["isolation"] == pytest.approx(Isolation(df, "g", "t").statistic, rel=1e-9)


def test_residential_indices_equal_pysal(tiny_dir):
    from segregation.multigroup import MultiDissim
    from segregation.singlegroup import Dissim, Gini

    geo = gpd.read_parquet(tiny_dir / "geography.parquet")
    levels = level_mappings(geo.drop(columns="geometry"), None, None)
    counts = grunnkrets_counts(register_groups(tiny_dir))
    out = residential_indices(counts, levels, RULE, replications=0)
    c = counts[counts["year"] == 2017].assign(kommune=lambda d: d["grunnkrets"].str[:4])
    for k, f in c.groupby("kommune"):
        f = f.astype({"immigrant_background": float, "population": float, "low_income_eu60": float})
        sel = out[(out["year"] == 2017) & (out["unit_level"] == "grunnkrets") & (out["scope_code"] == k)]
        v = sel.set_index(["group", "index"])["value"]
        assert v["immigrant_background", "dissimilarity"] == pytest.approx(
            Dissim(f, "immigrant_background", "population").statistic, rel=1e-9
        )
        li = f.assign(t=f["low_income_eu60_total"].astype(float))
        assert v["low_income_eu60", "gini"] == pytest.approx(
            float(Gini(li, "low_income_eu60", "t").statistic), rel=1e-9
        )
        mg = pd.DataFrame(
            {
                "norge": f["population"] - f["immigrant_background"],
                "eu": f["immigrant_background"] - f["africa_asia"],
                "aa": f["africa_asia"].astype(float),
            }
        )
        assert v["landbakgrunn", "multigroup_dissimilarity"] == pytest.approx(
            MultiDissim(mg, ["norge", "eu", "aa"]).statistic, rel=1e-9
        )


def _check_school_disclosure(tables: dict[str, pd.DataFrame], rule: dict) -> None:
    comp = tables["segregation_institution_composition"]
    shown = comp[~comp["suppressed"]]
    assert not primary(shown["count"], shown["total"], rule_columns(rule)).any()
    assert comp.loc[comp["suppressed"], ["count", "total", "share"]].isna().all().all()
    up = tables["segregation_school_uptake"]
    sizes = up[~up["uptake_suppressed"]]
    assert not primary(np.zeros(len(sizes)), sizes["enrolled"], rule_columns(rule)).any()
    assert not primary(np.zeros(len(sizes)), sizes["resident"].fillna(0), rule_columns(rule)).any()
    loc = up[~up["local_suppressed"] & up["local"].notna()]
    assert not primary(loc["local"], loc["resident"], rule_columns(rule)).any()
    assert not primary(loc["local"], loc["enrolled"], rule_columns(rule)).any()
    assert up.loc[up["local_suppressed"], ["local", "local_share"]].isna().all().all()
    # pairs and class counts only from published cells
    published = set(map(tuple, shown[shown["basis"] == "enrolled"][["year", "group", "institution_id"]].values))
    for name in ("segregation_contrast_pairs", "segregation_kindergarten_pairs"):
        p = tables[name]
        for side in ("institution_a", "institution_b"):
            assert all((int(y), g, i) in published for y, g, i in p[["year", "group", side]].itertuples(index=False))
    cls = tables["segregation_school_classes"]
    # a shown kommune total of local pupils never has exactly one hidden school under it
    hidden = up[up["local_suppressed"]].groupby(["year", "kommune"]).size()
    for r in cls[(cls["scope_level"] == "kommune") & cls["local_attendance"].notna()].itertuples():
        assert hidden.get((r.year, r.scope_code), 0) != 1
    assert (cls[["at_least_50", "under_10"]].sum(axis=1) <= cls["classified"]).all()
    assert (cls["classified"] <= cls["schools"]).all()
    # no per-person or per-cell count columns anywhere
    for frame in tables.values():
        assert not {"n_local", "x", "y"} & set(frame.columns)


def test_school_tables_obey_the_primary_rule(tiny_tables):
    comp = tiny_tables["segregation_institution_composition"]
    assert comp["suppressed"].any() and (~comp["suppressed"]).any()  # the rule bites on the tiny preset
    _check_school_disclosure(tiny_tables, RULE)


def test_stricter_rule_suppresses_more(tiny_dir, tiny_tables):
    strict = {"min_denominator": 100, "small_counts": [1, 9], "small_complements": [1, 9]}
    t = school_tables(tiny_dir, rule=strict)
    _check_school_disclosure(t, strict)
    a = tiny_tables["segregation_institution_composition"]["suppressed"].sum()
    assert t["segregation_institution_composition"]["suppressed"].sum() > a


def test_store_tables_are_deterministic(tiny_dir):
    geo = gpd.read_parquet(tiny_dir / "geography.parquet")
    levels = level_mappings(geo.drop(columns="geometry"), None, None)
    a = store_tables(tiny_dir, levels, geo)
    b = store_tables(tiny_dir, levels, None)
    assert sorted(a) == sorted(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
    ks = a["segregation_knn_profile"]
    assert set(ks["k"]) == {200 * 2**j for j in range(9)} and not {"n_local", "x", "y"} & set(ks.columns)


def test_cli_schools_round_trip_and_bytes(tiny_dir, tmp_path):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    for out in (out1, out2):
        r = runner.invoke(app, ["segregation", "schools", str(tiny_dir), "--out", str(out), "--year", "2018"])
        assert r.exit_code == 0, r.output
    files = sorted(p.name for p in out1.iterdir())
    assert "segregation_school_classes.csv" in files and "segregation_contrast_pairs.parquet" in files
    for f in files:
        assert (out1 / f).read_bytes() == (out2 / f).read_bytes(), f
    classes = pd.read_csv(out1 / "segregation_school_classes.csv")
    assert set(classes["year"]) == {2018}
    r = runner.invoke(app, ["segregation", "schools", str(tiny_dir), "--out", str(out1)])
    assert r.exit_code == 2 and "exists" in r.output


def _broken(tiny_dir: Path, tmp_path: Path) -> Path:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    return bad


def test_bad_input_is_named_and_nothing_written(tiny_dir, tmp_path):
    bad = _broken(tiny_dir, tmp_path)
    catch = pq.read_table(bad / "catchments.parquet").to_pandas()
    kg = pq.read_table(bad / "institutions.parquet").to_pandas().query("type == 'barnehage'")["institution_id"].iloc[0]
    catch.loc[0, "institution_id"] = kg
    catch.to_parquet(bad / "catchments.parquet")
    out = tmp_path / "out"
    r = runner.invoke(app, ["segregation", "schools", str(bad), "--out", str(out)])
    assert r.exit_code == 2
    assert "catchments.parquet" in r.output and "institution_id" in r.output and kg in r.output
    assert not out.exists()
    (bad / "institutions.parquet").unlink()
    r = runner.invoke(app, ["segregation", "schools", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and "institutions.parquet" in r.output and not out.exists()


def test_bad_school_reference_is_named(tiny_dir, tmp_path):
    bad = _broken(tiny_dir, tmp_path)
    p = pq.read_table(bad / "persons.parquet").to_pandas()
    i = p.index[p["school_id"].notna()][0]
    p.loc[i, "school_id"] = "9999S0001"
    p.to_parquet(bad / "persons.parquet")
    with pytest.raises(InputError, match=r"persons\.parquet: column 'school_id'.*9999S0001"):
        school_tables(bad)


def test_settings_change_the_pairs(tiny_dir):
    loose = school_tables(tiny_dir, settings=Settings(kindergarten_distance=50_000, kindergarten_difference=0.0))
    k = loose["segregation_kindergarten_pairs"]
    assert len(k) > 0 and (k["difference"] > 0).all() and (k["distance_m"] <= 50_000).all()
    assert (k["share_a"] >= k["share_b"]).all()


# --- the embedded default (levekar demo) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(demo_dir) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(demo_dir.parent / "published" / "barometer.duckdb"), read_only=True)


def test_demo_immigrant_profile_decreases_in_k(store):
    prof = store.sql(
        "SELECT year, k, dissimilarity FROM segregation_knn_profile WHERE \"group\" = 'immigrant_background' "
        "AND convention = 'exact' ORDER BY year, k"
    ).df()
    assert len(prof) and set(TABLE_3_2_NORWAY) <= set(prof["k"])
    for _, f in prof.groupby("year"):
        d = f["dissimilarity"].to_numpy()
        assert (np.diff(d) < 0).all(), d
        assert 0 < d[-1] < d[0] < 1


def test_demo_store_has_the_segregation_tables(store, demo_dir):
    names = {r[0] for r in store.sql("SHOW TABLES").fetchall()}
    expected = {
        "segregation_indices",
        "segregation_knn_profile",
        "segregation_institution_composition",
        "segregation_institution_indices",
        "segregation_school_uptake",
        "segregation_school_classes",
        "segregation_contrast_pairs",
        "segregation_kindergarten_pairs",
    }
    assert expected <= names
    tables = {n: store.sql(f"SELECT * FROM {n}").df() for n in expected}
    _check_school_disclosure(tables, RULE)
    # segregation_indices: from published cells only (tests/test_segregation_published.py)
    # indices between institutions run over the published institutions only
    comp = tables["segregation_institution_composition"]
    published = comp[~comp["suppressed"] & (comp["total"] > 0)].groupby(["year", "kind", "group", "basis"]).size()
    idx = tables["segregation_institution_indices"]
    d = idx[(idx["index"] == "dissimilarity") & (idx["scope_level"] == "kommune")]
    keys = pd.MultiIndex.from_arrays([d["year"], d["kind"], d["group"], d["basis"]])
    known = keys.isin(published.index)
    assert known.any()
    assert (d["units"].to_numpy()[known] == published.reindex(keys[known]).to_numpy()).all()
    cls = tables["segregation_school_classes"]
    assert (cls["schools"] > 100).all()  # an Oslo-sized school system
    for name in expected:  # the Parquet and CSV beside the DuckDB table
        assert (demo_dir.parent / "published" / f"{name}.parquet").exists()
