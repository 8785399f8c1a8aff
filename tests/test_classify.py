"""Classification: rule files, the three-valued engine, every Danish version at its threshold edges, multi-year
categories, missing inputs, trends, the packaged Norwegian schemes on the published store, the settlement
check, grant ranking and the Swedish comparison."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from levekar.classify.engine import _at_least, evaluate
from levekar.classify.inputs import area_table, directions_of, trends
from levekar.classify.nordic import compare_type_distributions, scb_regso_types
from levekar.classify.rules import SchemeError, load_scheme, packaged_schemes, parse_scheme
from levekar.classify.run import (
    PUBLISHED_SCHEMES,
    classify_danish,
    classify_values,
    explain,
    overlap_matrix,
    read_danish_input,
    usable_schemes,
)
from levekar.classify.settlement import SettlementError, check_settlement
from levekar.cli.main import app
from levekar.indicators.catalogue import load_catalogue

DANISH = ["residents", "non_western", "neet_18_64", "convicted", "basic_education_30_59", "income_ratio_regional"]


def danish_rows(*rows: dict, year: int = 2020) -> pd.DataFrame:
    """Areas meeting nothing unless told otherwise (one year each unless `year` is given per row)."""
    base = dict.fromkeys(DANISH, 0.0) | {"residents": 2000.0, "income_ratio_regional": 100.0}
    out = [{"area_id": f"A{i}", "year": year} | base | r for i, r in enumerate(rows)]
    return pd.DataFrame(out)


def category(table: pd.DataFrame, version: str, national: float | None = None) -> list[str]:
    return classify_danish(table, version, national)["category"].tolist()


# --- the engine ------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, np.nan]), min_size=1, max_size=6), st.data())
def test_at_least_is_kleene_logic(states, data):
    """True iff every way of filling in the unknowns gives ≥ n; false iff none does; else unknown."""
    n = data.draw(st.integers(1, len(states)))
    unknown = [i for i, s in enumerate(states) if np.isnan(s)]
    outcomes = set()
    for fill in itertools.product([0.0, 1.0], repeat=len(unknown)):
        filled = list(states)
        for i, v in zip(unknown, fill, strict=True):
            filled[i] = v
        outcomes.add(sum(filled) >= n)
    got = _at_least([np.array([s]) for s in states], n)[0]
    expected = 1.0 if outcomes == {True} else 0.0 if outcomes == {False} else np.nan
    assert (np.isnan(got) and np.isnan(expected)) or got == expected


def test_scheme_errors_name_the_file_and_the_key():
    doc = {
        "scheme": "x",
        "version": "1",
        "inputs": {"a": "a"},
        "criteria": {"c1": {"input": "a", "op": "=>", "threshold": 1}, "c2": {"input": "b", "op": ">", "threshold": 1}},
        "categories": [{"id": "k", "when": {"at_least": 3, "of": ["c1", "c2"]}}, {"id": "m", "when": "nope"}],
        "default": "none",
    }
    with pytest.raises(SchemeError) as e:
        parse_scheme(doc, "own.yaml")
    text = str(e.value)
    assert "own.yaml: criteria.c1: op must be one of" in text
    assert "own.yaml: criteria.c2: unknown input 'b'" in text
    assert "own.yaml: categories.k: at_least needs 1 ≤ N ≤ len(of)" in text
    assert "own.yaml: categories.m: unknown criterion or category 'nope'" in text
    with pytest.raises(SchemeError, match="no packaged scheme 'denmark_1999'"):
        load_scheme("denmark_1999")


def test_every_packaged_scheme_loads():
    assert set(PUBLISHED_SCHEMES) <= set(packaged_schemes())
    for name in packaged_schemes():
        s = load_scheme(name)
        assert s.id == name and s.categories and s.default


# --- Denmark, each version at its edges -------------------------------------------------------------------


def test_denmark_2010_two_of_three_strict_thresholds():
    t = danish_rows(
        {"non_western": 50, "neet_18_64": 40, "convicted": 2.7},  # every value on its edge: none met
        {"non_western": 50.01, "neet_18_64": 40.01},
        {"non_western": 50.01, "convicted": 2.71},
        {"neet_18_64": 40.01, "convicted": 2.71, "residents": 999},  # too small
        {"neet_18_64": 40.01, "convicted": 2.71, "residents": 1000},  # exactly the minimum: counts
        {"non_western": 90.0},
    )
    assert category(t, "2010") == ["none", "ghetto", "ghetto", "none", "ghetto", "none"]
    reasons = classify_danish(t, "2010")["reasons"]
    assert "residents 999 < minimum 1000" in reasons[3]
    assert reasons[0].endswith("Not met: non_western, neet, convicted")
    assert "Met: non_western (non_western 50.01 > 50); neet (neet_18_64 40.01 (mean of 1 yr) > 40)" in reasons[1]
    _, details = evaluate(t, load_scheme("denmark_2010"), ["area_id"], with_details=True)
    edge = details[details["area_id"] == "A0"].set_index("criterion")
    assert edge.loc["neet", ["value", "op", "threshold"]].tolist() == [40.0, ">", 40.0]
    assert not edge["met"].any()


def test_denmark_2014_three_of_five_and_income_below():
    edge = {"neet_18_64": 40.0, "non_western": 50.0, "convicted": 2.7, "basic_education_30_59": 50.0}
    t = danish_rows(
        edge | {"income_ratio_regional": 55.0},  # nothing met
        {"neet_18_64": 41, "non_western": 51, "income_ratio_regional": 54.99},  # 3 of 5
        {"neet_18_64": 41, "basic_education_30_59": 50.5},  # 2 of 5
        {"convicted": 2.8, "basic_education_30_59": 51, "income_ratio_regional": 40},
    )
    assert category(t, "2014") == ["none", "ghetto", "none", "ghetto"]


def test_denmark_2018_vulnerable_ghetto_and_the_national_conviction_share():
    t = danish_rows(
        {"neet_18_64": 40.01, "basic_education_30_59": 60.01},  # vulnerable
        {"neet_18_64": 40.01, "basic_education_30_59": 60.01, "non_western": 50.01},  # ghetto
        {"neet_18_64": 40.01, "convicted": 3.0},  # convicted >= 3 x 1.0: vulnerable
        {"neet_18_64": 40.01, "convicted": 2.99},
        {"neet_18_64": 40.0, "basic_education_30_59": 60.0, "income_ratio_regional": 55.0, "non_western": 99},
    )
    assert category(t, "2018", national=1.0) == ["vulnerable", "ghetto", "vulnerable", "none", "none"]
    # without the national share, convictions are unknown: row 3 (one other criterion) could be vulnerable
    res = classify_danish(t, "2018")
    assert res["category"].tolist() == ["vulnerable", "ghetto", "none", "none", "none"]
    assert "could be vulnerable" in res["reasons"][3]
    assert res["reasons"][3].endswith("Unknown: convicted")
    _, details = evaluate(t, load_scheme("denmark_2018"), ["area_id"], with_details=True)
    row = details[(details["area_id"] == "A3") & (details["criterion"] == "convicted")].iloc[0]
    assert row["value"] == 2.99 and np.isnan(row["threshold"]) and pd.isna(row["met"])
    with pytest.raises(SchemeError, match="use no national conviction share"):
        classify_danish(t, "2010", 1.0)


def test_denmark_2021_prevention_and_precedence():
    t = danish_rows(
        {"non_western": 30.01, "neet_18_64": 30.01, "income_ratio_regional": 64.99},  # prevention
        {"non_western": 30.0, "neet_18_64": 30.01, "income_ratio_regional": 64.99},  # non-Western on the edge
        {"non_western": 31, "neet_18_64": 30.01, "convicted": 2.0},  # convicted >= 2 x 1.0
        {"non_western": 31, "neet_18_64": 41, "basic_education_30_59": 61},  # vulnerable beats prevention
        {"non_western": 51, "neet_18_64": 41, "basic_education_30_59": 61},  # parallel society
    )
    got = classify_danish(t, "2021", 1.0)
    assert got["category"].tolist() == ["prevention", "none", "prevention", "vulnerable", "parallel_society"]
    assert "non_western_30" in got["criteria_met"][3].split(",")  # the reasons still show prevention's criteria


def history(values: dict[int, dict], area: str = "A") -> pd.DataFrame:
    base = dict.fromkeys(DANISH, 0.0) | {"residents": 2000.0, "income_ratio_regional": 100.0}
    return pd.DataFrame([{"area_id": area, "year": y} | base | v for y, v in values.items()])


GHETTO = {"neet_18_64": 45, "basic_education_30_59": 65, "non_western": 60}


def test_hard_ghetto_and_transformation_need_every_year_of_the_history():
    four = history({y: GHETTO for y in range(2015, 2019)})
    assert category(four, "2018") == ["ghetto", "ghetto", "ghetto", "hard_ghetto"]
    gap = history({y: GHETTO for y in (2015, 2016, 2018, 2019)})  # 2017 missing: undecided, not hard
    res = classify_danish(gap, "2018")
    assert res["category"].tolist() == ["ghetto"] * 4
    assert "could be hard_ghetto" in res["reasons"][3]
    broken = history({2015: GHETTO, 2016: {"non_western": 60}, 2017: GHETTO, 2018: GHETTO})
    out = classify_danish(broken, "2018")
    # 2017's NEET is the 2-year mean (0 + 45) / 2, so 2017 is no ghetto either
    assert out["category"].tolist() == ["ghetto", "none", "none", "ghetto"]
    assert "could be hard_ghetto" not in out["reasons"][3]  # decided: 2016 was no ghetto
    five = history({y: GHETTO for y in range(2017, 2022)})
    assert category(five, "2021") == ["parallel_society"] * 4 + ["transformation"]
    assert category(history({y: GHETTO for y in range(2018, 2022)}), "2021") == ["parallel_society"] * 4


def test_averages_over_the_years_the_history_has():
    # NEET 38 then 43: the 2-year mean 40.5 > 40 makes the second year vulnerable with education
    t = history(
        {2019: {"neet_18_64": 38, "basic_education_30_59": 61}, 2020: {"neet_18_64": 43, "basic_education_30_59": 61}}
    )
    res = classify_danish(t, "2018")
    assert res["category"].tolist() == ["none", "vulnerable"]
    assert "neet_18_64 40.5 (mean of 2 yr) > 40" in res["reasons"][1]
    # the 2010 list: a 4-year mean over 2015–2018, of the years present (2017 missing → mean of 3)
    t = history({y: {"neet_18_64": v, "non_western": 51} for y, v in ((2015, 40), (2016, 40), (2018, 41))})
    res = classify_danish(t, "2010")
    assert "neet_18_64 40.333 (mean of 3 yr) > 40" in res["reasons"][2]
    assert res["category"].tolist() == ["none", "none", "ghetto"]


def test_missing_inputs_are_unknown_not_false():
    t = danish_rows({"neet_18_64": np.nan, "basic_education_30_59": 61, "residents": np.nan})
    res = classify_danish(t, "2018", 1.0)
    assert res["category"][0] == "none"
    assert "residents not available (minimum 1000)" in res["reasons"][0]
    t = danish_rows({"neet_18_64": np.nan, "basic_education_30_59": 61})
    res = classify_danish(t, "2018", 1.0)
    assert res["category"][0] == "none" and "could be vulnerable" in res["reasons"][0]


def test_danish_cli_round_trip_and_bad_input(tmp_path):
    good = tmp_path / "in.csv"
    danish_rows({"neet_18_64": 41, "basic_education_30_59": 61}, {"non_western": 10}).assign(convicted="").to_csv(
        good, index=False
    )
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(app, ["classify", "danish", "--version", "2018", "--input", str(good), "--out", str(out)])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got.columns) == ["area_id", "year", "category", "criteria_met", "reasons"]
    assert got["category"].tolist() == ["vulnerable", "none"]
    first = out.read_bytes()
    CliRunner().invoke(app, ["classify", "danish", "--version", "2018", "--input", str(good), "--out", str(out)])
    assert out.read_bytes() == first

    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace(",41.0,", ",4l,", 1))
    out2 = tmp_path / "out2.csv"
    r = CliRunner().invoke(app, ["classify", "danish", "--version", "2018", "--input", str(bad), "--out", str(out2)])
    assert r.exit_code == 2
    assert "bad.csv: column neet_18_64: 1 value(s) not a number, e.g. '4l' (line 2)" in r.output
    assert not out2.exists()
    short = tmp_path / "short.csv"
    short.write_text("area_id,year,residents\nA,2020,2000\n")
    with pytest.raises(SchemeError, match=r"short\.csv: missing column"):
        read_danish_input(short)
    r = CliRunner().invoke(app, ["classify", "danish", "--version", "2019", "--input", str(good), "--out", str(out2)])
    assert r.exit_code == 2 and "--version must be" in r.output


# --- trends, screening, the published schemes ------------------------------------------------------------


def test_trend_slope_and_z_match_weighted_least_squares():
    rng = np.random.default_rng(3)
    years = [2015, 2016, 2017, 2018, 2019]
    v = rng.uniform(10, 30, size=(4, 5))
    se = rng.uniform(0.5, 2.0, size=(4, 5))
    v[3, 1] = np.nan  # a missing year is left out
    slope, z, change = trends(pd.DataFrame(v, columns=years), pd.DataFrame(se, columns=years), years=5)
    for i in range(4):
        ok = np.isfinite(v[i])
        x, y, w = np.asarray(years, float)[ok], v[i][ok], 1 / se[i][ok] ** 2
        X = np.vstack([np.ones_like(x), x]).T
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        beta = cov @ X.T @ (w * y)
        assert slope.iloc[i, 4] == pytest.approx(beta[1], rel=1e-9)
        assert z.iloc[i, 4] == pytest.approx(beta[1] / np.sqrt(cov[1, 1]), rel=1e-9)
        assert change.iloc[i, 4] == pytest.approx(beta[1] * 4, rel=1e-9)
    assert np.isnan(slope.iloc[:, 1]).all()  # two years are not a trend


def test_overlap_matrix_counts_pairs():
    rows = pd.DataFrame(
        {"criteria_met": ["children_low_income_high,children_low_income,neet_30_59", "neet_30_59,neet_20_29", ""]}
    )
    m = overlap_matrix(rows)
    assert m.loc["neet_30_59", "neet_30_59"] == 2
    assert m.loc["children_low_income_high", "neet_30_59"] == 1
    assert m.loc["neet_20_29", "children_low_income"] == 0
    assert (m.to_numpy() == m.to_numpy().T).all()


def store_of(demo_dir):
    return demo_dir.parent / "published"


@pytest.fixture(scope="module")
def published(demo_dir):
    import duckdb

    con = duckdb.connect(str(store_of(demo_dir) / "barometer.duckdb"), read_only=True)
    try:
        return con.execute("SELECT * FROM indicator_values").df(), con.execute("SELECT * FROM classification").df()
    finally:
        con.close()


def test_store_has_every_scheme_for_every_area(published):
    values, cls = published
    assert set(cls["scheme"]) == set(PUBLISHED_SCHEMES)
    areas = values.loc[values["level"] != "country", ["level", "area_code", "year"]].drop_duplicates()
    for scheme, rows in cls.groupby("scheme"):
        assert len(rows) == len(areas), scheme
        assert rows["reasons"].str.len().gt(0).all()
        assert set(rows["category"]) <= set(load_scheme(scheme).category_ids)


def test_tier_distribution_is_of_the_reports_order(published):
    """The report's 88 areas: about 10 / 25 / 10 / 50 %. The embedded default covers the whole city, not
    only the areas the report picked for their challenges, so 'limited' is larger (docs/classification.md)."""
    _, cls = published
    t = cls[(cls["scheme"] == "tiers") & (cls["level"] == "analysis_area")]
    share = t[t["year"] == t["year"].max()]["category"].value_counts(normalize=True)
    assert 0.04 <= share.get("particularly_extensive", 0) <= 0.15
    assert 0.15 <= share.get("large_follow_closely", 0) <= 0.35
    assert 0.04 <= share.get("negative_development_watch", 0) <= 0.15
    assert 0.45 <= share.get("limited", 0) <= 0.75


def test_classification_reads_only_published_numbers(published, demo_dir):
    """Changing what suppression hides cannot change any category or reason."""
    values, cls = published
    cat = directions_of(load_catalogue())
    schemes, skipped = usable_schemes(cat)
    assert not skipped
    again = classify_values(values, cat, schemes)
    cols = ["scheme", "level", "area_code", "year", "category", "reasons"]
    pd.testing.assert_frame_equal(again[cols], cls[cols])
    hidden = values["suppressed"].to_numpy()
    assert hidden.any()
    rng = np.random.default_rng(1)
    poked = values.copy()
    for col in ("value", "numerator", "ci_low", "ci_high"):
        poked.loc[hidden, col] = rng.uniform(0, 100, hidden.sum())
    poked.loc[hidden, "denominator"] = rng.integers(1, 5000, hidden.sum())
    pd.testing.assert_frame_equal(classify_values(poked, cat, schemes)[cols], cls[cols])


def test_explain_gives_the_numbers_behind_each_result(published, demo_dir):
    values, cls = published
    row = cls[(cls["scheme"] == "tiers") & (cls["level"] == "analysis_area")].iloc[-1]
    details = explain(values, directions_of(load_catalogue()), "tiers", "analysis_area", row["area_code"])
    mine = details[details["year"] == row["year"]]
    assert len(mine) == len(load_scheme("tiers").criteria)
    assert ",".join(mine.loc[mine["met"].fillna(False).astype(bool), "criterion"]) == row["criteria_met"]
    r = CliRunner().invoke(
        app,
        [
            "classify",
            "show",
            str(store_of(demo_dir)),
            "--scheme",
            "tiers",
            "--level",
            "analysis_area",
            "--area",
            row["area_code"],
            "--year",
            str(row["year"]),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "children_low_income_high" in r.output and "threshold" in r.output


def test_screening_counts_flags(published):
    values, cls = published
    s = cls[(cls["scheme"] == "nou_screening") & (cls["level"] == "analysis_area")]
    row = s.iloc[len(s) // 2]
    v = values[
        (values["level"] == "analysis_area")
        & (values["area_code"] == row["area_code"])
        & (values["year"] == row["year"])
        & (values["breakdown"] == "total")
        & (values["pooled_years"] == 1)
    ].set_index("indicator_id")["value"]
    thresholds = {
        "children_low_income_eu60": 25,
        "neet_30_59": 20,
        "neet_20_29": 15,
        "no_upper_secondary_21_29": 35,
        "low_education_30_59": 25,
    }
    if v[list(thresholds)].notna().all():
        assert row["category"] == str(sum(v[k] >= t for k, t in thresholds.items()))


def test_grant_ranks_eligible_areas_by_score(published):
    _, cls = published
    g = cls[(cls["scheme"] == "grant") & (cls["level"] == "analysis_area")]
    g = g[g["year"] == g["year"].max()]
    ranked = g[g["rank"].notna()].sort_values("rank")
    assert (ranked["category"] == "eligible").all() and len(ranked) > 0
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked["score"].is_monotonic_decreasing
    assert g[g["category"] != "eligible"]["rank"].isna().all()


# --- settlement ----------------------------------------------------------------------------------------


def test_settlement_check_by_code_and_by_point(demo_dir):
    import geopandas as gpd

    store = store_of(demo_dir)
    polygons = gpd.read_parquet(store / "areas.geo.parquet")
    gk = polygons[polygons["level"] == "grunnkrets"].iloc[7]
    by_code = check_settlement(store, grunnkrets=gk["area_code"])
    assert by_code.level == "analysis_area" and by_code.category in ("accumulated", "not_accumulated")
    point = gk.geometry.representative_point()
    by_point = check_settlement(store, x=point.x, y=point.y)
    assert by_point == by_code
    lonlat = gpd.GeoSeries([point], crs=polygons.crs).to_crs("EPSG:4326").iloc[0]
    assert check_settlement(store, x=lonlat.x, y=lonlat.y, crs="EPSG:4326") == by_code
    r = CliRunner().invoke(app, ["check-settlement", str(store), "--grunnkrets", gk["area_code"], "--json"])
    assert r.exit_code == 0, r.output
    assert '"area_code": "' + by_code.area_code + '"' in r.output
    with pytest.raises(SettlementError, match="grunnkrets '9999' is not in"):
        check_settlement(store, grunnkrets="9999")
    with pytest.raises(SettlementError, match="lies in no grunnkrets"):
        check_settlement(store, x=0.0, y=0.0)
    with pytest.raises(SettlementError, match="either a grunnkrets code or both"):
        check_settlement(store, grunnkrets="1", x=1.0, y=2.0)


# --- Sweden ---------------------------------------------------------------------------------------------


def test_scb_regso_types_are_read_from_the_real_file():
    types = scb_regso_types()
    assert len(types) == 3404 and int(types.isna().sum()) == 41
    assert types.value_counts().to_dict() == {"4": 1770, "3": 855, "2": 289, "5": 289, "1": 160}
    table, tvd = compare_type_distributions(pd.Series(["1", "1", "5", None]), types)
    assert table.loc["1", "levekar_areas"] == 2 and table.loc["5", "levekar_share"] == pytest.approx(0.333, abs=1e-3)
    expected = 0.5 * sum(
        abs(a - b)
        for a, b in zip(
            [2 / 3, 0, 0, 0, 1 / 3], [160 / 3363, 289 / 3363, 855 / 3363, 1770 / 3363, 289 / 3363], strict=True
        )
    )
    assert tvd == pytest.approx(expected)


def test_own_scheme_on_the_area_table(published):
    values, _ = published
    own = parse_scheme(
        {
            "scheme": "own",
            "version": "1",
            "inputs": {"renting": "households_renting", "kommune": "households_renting__kommune"},
            "criteria": {"high": {"input": "renting", "op": ">", "threshold": "1.5 * kommune"}},
            "categories": [{"id": "many_renters", "when": "high"}],
            "default": "other",
        }
    )
    table = area_table(values, directions_of(load_catalogue()), own.columns())
    res, _ = evaluate(table, own, ["level", "area_code"])
    ok = table["households_renting"].notna() & table["households_renting__kommune"].notna()
    expect = np.where(table["households_renting"] > 1.5 * table["households_renting__kommune"], "many_renters", "other")
    assert (res["category"][ok].to_numpy() == expect[ok.to_numpy()]).all()
