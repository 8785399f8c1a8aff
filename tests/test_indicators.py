"""The indicator engine (work in progress for issue 4): definitions, hand-worked cases, roll-up, intervals,
primary suppression."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from figures import figures
from levekar.indicators.catalogue import load_catalogue, parse_catalogue
from levekar.indicators.disclosure import membership, primary, rule_columns
from levekar.indicators.engine import (
    Z95,
    medians,
    per_level_counts,
    pool_years,
    roll_up,
    standardise,
    unit_counts,
    values,
    wilson,
)
from levekar.indicators.expr import DefinitionError, compile_expr
from levekar.indicators.facts import connect, person_facts
from levekar.schema.model import extract_schema

YEAR = 2020

# household: (after-tax income, tenure, rooms, m², student) ; persons: (household, birth year, extras)
HOUSEHOLDS = {
    1: (100, "selveier", 2, 60, False),  # 1 adult, eq 100: low income
    2: (460, "leier", 3, 99, False),  # 2 adults + children 5 and 15: cu 2.3, eq 200; 99/4 < 25: crowded
    3: (390, "kommunal", 1, 49, False),  # adult + child 10: cu 1.3, eq 300; 1 room, 24.5 m²: crowded
    4: (50, "leier", 1, 20, True),  # student household: out of the median and of the low-income figures
    5: (300, "selveier", 3, 80, False),  # pensioner, eq 300
    6: (180, "selveier", 2, 50, False),  # eq 180 = exactly 60 % of the median 300: not low income
    7: (600, "selveier", 2, 75, False),  # adult + children 3, 8: cu 1.6, eq 375; 75/3 = 25 m²: not crowded
    8: (600, "borettslag", 3, 40, False),  # adult + children 2, 4: eq 375; rooms = persons: not crowded
}
PERSONS = [
    (1, YEAR - 41, {}),
    (2, YEAR - 41, {}),
    (2, YEAR - 39, {}),
    (2, YEAR - 6, {}),
    (2, YEAR - 16, {}),
    (3, YEAR - 31, {}),
    (3, YEAR - 11, {}),
    (4, YEAR - 23, {"in_education": True}),
    (5, YEAR - 71, {}),
    (6, YEAR - 20, {"employed": False}),  # age 19: outside the 20–29 band
    (7, YEAR - 21, {"employed": False}),
    (7, YEAR - 4, {}),
    (7, YEAR - 9, {}),  # age 20, NEET
    (8, YEAR - 30, {"employed": False, "in_education": True}),
    (8, YEAR - 3, {}),
    (8, YEAR - 5, {}),  # 29, in edu
]


ARROW = {
    "BIGINT": pa.int64(),
    "SMALLINT": pa.int16(),
    "TINYINT": pa.int8(),
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
}


def _write(df: pd.DataFrame, table: str, folder: Path) -> None:
    """Write with the data model's column types (all-missing columns keep their type)."""
    cols = extract_schema().tables[table].columns
    schema = pa.schema([(c.name, ARROW[c.type]) for c in cols])
    pq.write_table(
        pa.Table.from_pandas(df[[c.name for c in cols]], schema=schema, preserve_index=False),
        folder / f"{table}.parquet",
    )


def build_extract(folder: Path, persons=PERSONS, households=HOUSEHOLDS, extra=None) -> Path:
    rows = []
    for pid, (h, by, more) in enumerate(persons, start=1):
        age = YEAR - by - 1
        r = {
            "person_id": pid,
            "year": YEAR,
            "grunnkrets": "03010101" if h <= 4 else "03010102",
            "sex": 1 + pid % 2,
            "birth_year": by,
            "innvandringskategori": "A",
            "landbakgrunn": "norge",
            "botid": None,
            "household_id": h,
            "dwelling_id": h,
            "residence_since": by,
            "education_nus": 4 if age >= 16 else None,
            "in_education": 6 <= age + 1 <= 15,
            "employed": 20 <= age <= 66,
            "upper_secondary_completed": age >= 19,
            "social_assistance": False,
            "child_welfare": False,
            "died_in_year": False,
            "voted": None,
            "school_id": None,
            "kindergarten_id": None,
            "grade_points": None,
        }
        r.update(more)
        r.update((extra or {}).get(pid, {}))
        rows.append(r)
    p = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    _write(p, "persons", folder)
    hh = pd.DataFrame(
        [
            {
                "household_id": h,
                "year": YEAR,
                "income_total": v[0] + 100,
                "income_after_tax": v[0],
                "income_transfers": 0,
                "student_household": v[4],
            }
            for h, v in households.items()
        ]
    )
    _write(hh, "households", folder)
    dw = pd.DataFrame(
        [
            {
                "dwelling_id": h,
                "year": YEAR,
                "grunnkrets": "03010101" if h <= 4 else "03010102",
                "x": 0.0,
                "y": 0.0,
                "building_type": "blokk",
                "rooms": v[2],
                "area_m2": float(v[3]),
                "tenure": v[1],
                "sale_price": None,
            }
            for h, v in households.items()
        ]
    )
    _write(dw, "dwellings", folder)
    return folder


def country_values(folder: Path) -> dict[str, tuple[int, int]]:
    con, tables = connect(folder)
    facts = person_facts(tables)
    cat = load_catalogue(columns=set(facts.columns))
    counts = con.execute(unit_counts(facts, cat))
    c = counts[counts.breakdown == "total"].groupby("indicator_id")[["numerator", "denominator"]].sum()
    return {k: (int(r.numerator), int(r.denominator)) for k, r in c.iterrows()}


def test_hand_worked_extract(tmp_path):
    v = country_values(build_extract(tmp_path / "x"))
    # EU60: the 15 non-student persons have eq incomes 100, 180, 200×4, 300×3, 375×6: median 300, line 180;
    # only household 1 is under it (household 6 is exactly on it), the student household is left out
    assert v["persons_low_income_eu60"] == (1, 15)
    assert v["children_low_income_eu60"] == (0, 7)
    # families with children: households 2, 3, 7, 8 (counted once each)
    assert v["families_with_children_renting"] == (2, 4)
    assert v["crowded_families_with_children"] == (2, 4)
    # age bands: 20–29 are the persons aged 20, 22 and 29 (19 is out); NEET: age 20 only
    assert v["neet_20_29"] == (1, 3)
    assert v["children_share"] == (7, 16)


def test_median_and_ties(tmp_path):
    con, tables = connect(build_extract(tmp_path / "x"))
    facts = person_facts(tables)
    out = con.execute(facts.select("household_id", "eq_income", "median_eq_income", "low_income_eu60"))
    assert set(out["median_eq_income"]) == {300.0}
    eq = dict(zip(out.household_id, out.eq_income, strict=True))
    assert eq[2] == pytest.approx(200) and eq[3] == pytest.approx(300) and eq[7] == pytest.approx(600 / 1.6)
    li = dict(zip(out.household_id, out.low_income_eu60, strict=True))
    assert li[1] and not li[6] and pd.isna(li[4])


def test_botid_under_five(tmp_path):
    extra = {
        1: {"innvandringskategori": "B", "landbakgrunn": "afrika_asia_mv", "botid": 4},
        9: {"innvandringskategori": "B", "landbakgrunn": "eu_eos_mv", "botid": 5},
    }
    v = country_values(build_extract(tmp_path / "x", extra=extra))
    assert v["immigrants_short_residence"] == (1, 2)
    assert v["africa_asia_background"] == (1, 16)


def test_engine_matches_independent_sql_on_the_demo(demo_dir):
    con, tables = connect(demo_dir)
    facts = person_facts(tables)
    cat = load_catalogue(columns=set(facts.columns))
    counts = con.execute(unit_counts(facts.filter(facts.year == 2018), cat))
    total = counts[counts.breakdown == "total"].groupby("indicator_id")[["numerator", "denominator"]].sum()
    got = (100 * total.numerator / total.denominator).to_dict()
    ref = figures(demo_dir, 2018)
    for k in (
        "persons_low_income_eu60",
        "children_low_income_eu60",
        "families_with_children_renting",
        "crowded_families_with_children",
        "employment_20_66",
        "social_assistance_18_66",
        "neet_20_29",
        "low_education_30_59",
        "no_upper_secondary_21_29",
        "immigrant_background",
        "child_welfare_0_17",
    ):
        assert got[k] == pytest.approx(ref[k], abs=1e-9), k


def test_roll_up_adds_exactly():
    counts = pd.DataFrame(
        {
            "grunnkrets": ["a", "b", "c"],
            "year": 2020,
            "breakdown": "total",
            "breakdown_value": "total",
            "indicator_id": "x",
            "numerator": [1, 2, 3],
            "denominator": [10, 20, 30],
            "sum_squares": 0.0,
        }
    )
    levels = {"area": pd.DataFrame({"grunnkrets": ["a", "b", "c"], "area_code": ["A", "A", "B"]})}
    r = roll_up(counts, levels).set_index(["level", "area_code"])
    assert tuple(r.loc[("area", "A"), ["numerator", "denominator"]]) == (3, 30)
    assert tuple(r.loc[("country", "0"), ["numerator", "denominator"]]) == (6, 60)
    with pytest.raises(ValueError, match="no area for grunnkrets 'c'"):
        roll_up(counts, {"area": levels["area"].iloc[:2]}, strict=True)


def test_wilson_interval_known_values():
    lo, hi = wilson(np.array([3, 0, 10]), np.array([10, 10, 10]))
    assert lo[0] == pytest.approx(0.10779, abs=1e-5) and hi[0] == pytest.approx(0.60322, abs=1e-5)
    assert lo[1] == 0 and hi[1] == pytest.approx(0.27753, abs=1e-5)
    assert hi[2] == pytest.approx(1.0) and lo[2] == pytest.approx(0.72247, abs=1e-5)


def test_primary_suppression_rule():
    rule = {"min_denominator": 20, "small_counts": [1, 4], "small_complements": [1, 4]}
    num = np.array([0, 1, 4, 5, 20, 16, 15, 10])
    den = np.array([30, 30, 30, 30, 20, 20, 20, 19])
    assert primary(num, den, rule_columns(rule)).tolist() == [False, True, True, False, False, True, False, True]
    # a mean protects only the number of persons averaged
    assert primary(num, den, rule_columns(rule, mean=True)).tolist() == [False] * 7 + [True]


def test_values_carry_interval_and_flag():
    cat = load_catalogue()
    t = pd.DataFrame(
        {
            "indicator_id": ["neet_30_59"] * 2,
            "level": "x",
            "area_code": ["a", "b"],
            "year": 2020,
            "breakdown": "total",
            "breakdown_value": "total",
            "numerator": [3, 50],
            "denominator": [10, 200],
            "sum_squares": 0.0,
        }
    )
    v = values(t, cat)
    assert v["value"].tolist() == [30.0, 25.0] and v["suppressed"].tolist() == [True, False]
    assert (v["ci_low"] < v["value"]).all() and (v["value"] < v["ci_high"]).all()


def test_definitions_are_checked():
    t = ibis.table({"age": "int16", "employed": "boolean"}, name="t")
    compile_expr("age BETWEEN 20 AND 66 AND NOT employed", t)
    for bad, msg in (("foo > 1", "unknown column"), ("random() > 0.5", "not supported"), ("age >", "cannot parse")):
        with pytest.raises(DefinitionError, match=msg):
            compile_expr(bad, t)
    doc = {
        "breakdowns": {},
        "disclosure_rules": {"default": {}},
        "indicators": [
            {
                "id": "x",
                "title": {},
                "theme": "t",
                "kind": "mode",
                "direction": "up",
                "population": "age > 1",
                "numerator": "nope",
                "breakdowns": ["sex"],
            },
            {
                "id": "y",
                "title": {},
                "theme": "t",
                "kind": "standardised",
                "direction": "neutral",
                "population": "TRUE",
                "numerator": "age > 80",
            },
        ],
    }
    with pytest.raises(DefinitionError) as e:
        parse_catalogue(doc, columns={"age"})
    text = str(e.value)
    for needle in (
        "kind must be",
        "direction must be",
        "unknown breakdown 'sex'",
        "unknown column(s) ['nope']",
        "'y': a standardised rate needs age_groups",
    ):
        assert needle in text


def test_packaged_catalogue_compiles_against_the_facts(tiny_dir):
    con, tables = connect(tiny_dir)
    facts = person_facts(tables)
    cat = load_catalogue(columns=set(facts.columns))
    assert {i.id for i in cat.indicators if i.screening} == {
        "children_low_income_eu60",
        "neet_20_29",
        "neet_30_59",
        "no_upper_secondary_21_29",
        "low_education_30_59",
    }
    counts = con.execute(unit_counts(facts, cat))
    shares = counts[counts.indicator_id.isin([i.id for i in cat.indicators if i.kind == "share"])]
    assert (shares.numerator <= shares.denominator).all() and len(shares) > 0
    assert {i.kind for i in cat.indicators} == {"share", "mean", "median", "standardised"}


def test_means_with_normal_interval():
    cat = load_catalogue()
    # grade points 30, 40, 50: mean 40, sd 10, half-width 1.96 · 10 / √3; below 20 persons: suppressed
    t = pd.DataFrame(
        {
            "indicator_id": ["grade_points"],
            "level": "x",
            "area_code": ["a"],
            "year": 2020,
            "breakdown": "total",
            "breakdown_value": "total",
            "numerator": [120.0],
            "denominator": [3],
            "sum_squares": [900.0 + 1600 + 2500],
        }
    )
    v = values(t, cat).iloc[0]
    assert v["value"] == 40.0 and v["ci_high"] - 40 == pytest.approx(1.959964 * 10 / np.sqrt(3), rel=1e-6)
    assert bool(v["suppressed"])


def test_pooled_years_sum_consecutive_years():
    rows = [
        {
            "indicator_id": "x",
            "level": "area",
            "area_code": "A",
            "year": y,
            "breakdown": "total",
            "breakdown_value": "total",
            "numerator": float(y - 2015),
            "denominator": 10,
            "sum_squares": 0.0,
        }
        for y in (2008, 2016, 2017, 2018, 2019)
    ]
    pooled = pool_years(pd.DataFrame(rows))
    three = pooled[pooled.pooled_years == 3].set_index("year")
    assert sorted(three.index) == [2018, 2019]  # 2008 has no neighbours; 2016–2017 lack two earlier years
    assert tuple(three.loc[2018, ["numerator", "denominator"]]) == (1 + 2 + 3, 30)
    assert tuple(three.loc[2019, ["numerator", "denominator"]]) == (2 + 3 + 4, 30)
    assert (pooled.pooled_years == 1).sum() == 5


def test_persistent_low_income_over_three_consecutive_years(tmp_path):
    """Persons 1 (eq 100 every year), 2 (300), 3+4 (adult and child, eq 200/400/300: mean 300), 5 only in the
    last two years (no three-year mean), 6 in a student household in the last year (left out). The median of
    the three-year means is 300, the line 180: only person 1 is in persistent low income."""
    people = {1: (1, 1980), 2: (2, 1970), 3: (3, 1975), 4: (3, 2010), 5: (4, 1990), 6: (5, 1995)}
    income = {1: [100] * 3, 2: [300] * 3, 3: [260, 520, 390], 4: [500] * 3, 5: [500] * 3}  # after tax per household
    persons, households, dwellings = [], [], []
    for k, year in enumerate((2018, 2019, 2020)):
        for pid, (h, by) in people.items():
            if pid == 5 and year == 2018:
                continue
            persons.append(
                {
                    "person_id": pid,
                    "year": year,
                    "grunnkrets": "03010101",
                    "sex": 1,
                    "birth_year": by,
                    "innvandringskategori": "A",
                    "landbakgrunn": "norge",
                    "household_id": h,
                    "dwelling_id": h,
                    "residence_since": by,
                    "education_nus": 4,
                    "in_education": pid == 6,
                    "employed": True,
                    "upper_secondary_completed": True,
                    "social_assistance": False,
                    "child_welfare": False,
                    "died_in_year": False,
                }
            )
        for h, inc in income.items():
            households.append(
                {
                    "household_id": h,
                    "year": year,
                    "income_total": inc[k],
                    "income_after_tax": inc[k],
                    "income_transfers": 0,
                    "student_household": h == 5 and year == 2020,
                }
            )
            dwellings.append(
                {
                    "dwelling_id": h,
                    "year": year,
                    "grunnkrets": "03010101",
                    "x": 0.0,
                    "y": 0.0,
                    "building_type": "blokk",
                    "rooms": 3,
                    "area_m2": 80.0,
                    "tenure": "selveier",
                }
            )
    folder = tmp_path / "x"
    folder.mkdir()
    for name, rows in (("persons", persons), ("households", households), ("dwellings", dwellings)):
        cols = [c.name for c in extract_schema().tables[name].columns]
        _write(pd.DataFrame(rows).reindex(columns=cols), name, folder)
    con, tables = connect(folder)
    facts = person_facts(tables)
    out = con.execute(facts.filter(facts.year == 2020).select("person_id", "persistent_low_income"))
    got = dict(zip(out.person_id, out.persistent_low_income, strict=True))
    assert got[1]
    assert not got[2] and not got[3] and not got[4]
    assert pd.isna(got[5]) and pd.isna(got[6])
    assert con.execute(facts.filter(facts.year < 2020).persistent_low_income.count()) == 0


def test_median_income_per_area_with_order_statistic_interval(tmp_path):
    _, tables = connect(build_extract(tmp_path / "x"))
    facts = person_facts(tables)
    cat = load_catalogue(columns=set(facts.columns))
    geo = pd.DataFrame({"grunnkrets": ["03010101", "03010102"], "area_code": "0301"})
    m = medians(facts, cat, membership({"kommune": geo}, geo.grunnkrets))
    m = m[m.breakdown == "total"].set_index(["level", "area_code"])
    # non-student persons: 100, 180, 200×4, 300×3, 375×6 → the 8th of 15 is 300; the interval ranks are
    # round(7.5 ∓ 1.96·√15/2) = 4 and round(1 + 7.5 + 1.96·√15/2) = 12: 200 and 375
    got = m.loc[("country", "0"), ["denominator", "value", "ci_low", "ci_high"]].tolist()
    assert got == pytest.approx([15, 300, 200, 375])
    assert m.loc[("kommune", "0301"), "value"] == 300
    # 03010101: 100, 200×4, 300×2 (the student household left out) → 200; 03010102: 180, 300, 375×6 → even
    # count, the mean of the two middle values (both 375)
    assert (
        m.loc[("grunnkrets", "03010101"), "value"] == pytest.approx(200)
        and m.loc[("grunnkrets", "03010101"), "denominator"] == 7
    )
    assert m.loc[("grunnkrets", "03010102"), "value"] == 375 and m.loc[("grunnkrets", "03010102"), "denominator"] == 8
    assert m["suppressed"].all()  # under 20 persons everywhere
    assert m["numerator"].isna().all()


def test_median_of_areas_sharing_a_grunnkrets(tmp_path):
    """A grunnkrets may lie in two areas of one level (overlapping zones): its persons count in both."""
    _, tables = connect(build_extract(tmp_path / "x"))
    facts = person_facts(tables)
    cat = load_catalogue(columns=set(facts.columns))
    zones = pd.DataFrame({"grunnkrets": ["03010101", "03010102", "03010102"], "area_code": ["Z1", "Z1", "Z2"]})
    m = medians(facts, cat, membership({"zone": zones}, pd.Series(["03010101", "03010102"])))
    zone = m[m.level == "zone"]
    total = zone[zone.breakdown == "total"].set_index("area_code")
    assert total.loc["Z1", ["denominator", "value", "ci_low", "ci_high"]].tolist() == pytest.approx([15, 300, 200, 375])
    assert total.loc["Z2", ["denominator", "value"]].tolist() == pytest.approx([8, 375])
    # the breakdown's cells split each area's persons
    cells = zone[zone.breakdown != "total"].groupby("area_code")["denominator"].sum()
    assert cells.to_dict() == {"Z1": 15, "Z2": 8}


def test_direct_age_standardisation_by_hand():
    cat = load_catalogue()
    ind = cat.get("mortality_age_standardised")
    young, old = f"{ind.id}@0", f"{ind.id}@60"
    rows = [
        ("country", "0", young, 3, 600),
        ("country", "0", old, 9, 400),
        ("grunnkrets", "A", young, 1, 100),
        ("grunnkrets", "A", old, 8, 200),
    ]
    rolled = pd.DataFrame(
        [
            {
                "indicator_id": i,
                "level": lv,
                "area_code": a,
                "year": 2020,
                "pooled_years": 1,
                "breakdown": "total",
                "breakdown_value": "total",
                "numerator": float(d),
                "denominator": n,
                "sum_squares": 0.0,
            }
            for lv, a, i, d, n in rows
        ]
    )
    out = values(standardise(rolled, cat), cat).set_index("area_code")
    # the standard: 600 and 400 persons → weights 0.6 and 0.4; A: 1000 × (0.6 · 1/100 + 0.4 · 8/200) = 22
    assert out.loc["A", "value"] == pytest.approx(22.0)
    assert out.loc["A", ["numerator", "denominator"]].tolist() == [9, 300]
    sd = 1000 * np.sqrt(0.36 * 1 / 100**2 + 0.16 * 8 / 200**2)
    assert out.loc["A", "ci_low"] == pytest.approx(22 - Z95 * sd)
    assert out.loc["A", "ci_high"] == pytest.approx(22 + Z95 * sd)
    # the country against itself is its crude rate: 12 deaths per 1000 persons
    assert out.loc["0", "value"] == pytest.approx(12.0)


def test_moves_are_counted_across_each_levels_boundary():
    """g1 and g2 make up area A, g3 area B, all three the kommune. A move from g1 to g2 leaves the grunnkrets
    but not the area; g1 → g3 leaves the area but not the kommune; emigrating leaves everything; dying is
    no move and leaves the population."""
    rows = [  # person, grunnkrets, next year's (None: not resident), died
        (1, "g1", "g2", False),
        (2, "g1", "g3", False),
        (3, "g2", None, False),
        (4, "g2", None, True),
        (5, "g3", "g3", False),
    ]
    facts = ibis.memtable(
        pd.DataFrame(
            [
                {
                    "person_id": p,
                    "year": 2020,
                    "grunnkrets": g,
                    "next_grunnkrets": n,
                    "prev_grunnkrets": g,
                    "has_next_year": True,
                    "has_prev_year": True,
                    "died_in_year": d,
                    "age": 40,
                    "immigrant_background": False,
                    "household_head": True,
                    "hh_small_children": 0,
                }
                for p, g, n, d in rows
            ]
        )
    )
    cat = load_catalogue()
    moving = replace(cat, indicators=(cat.get("out_movers"),))
    levels = {
        "analysis_area": pd.DataFrame({"grunnkrets": ["g1", "g2", "g3"], "area_code": ["A", "A", "B"]}),
        "kommune": pd.DataFrame({"grunnkrets": ["g1", "g2", "g3"], "area_code": "K"}),
    }
    c = per_level_counts(ibis.duckdb.connect(), facts, moving, levels)
    c = c[c.breakdown == "total"].set_index(["level", "area_code"])
    got = {k: (int(r.numerator), int(r.denominator)) for k, r in c.iterrows()}
    assert got == {
        ("grunnkrets", "g1"): (2, 2),
        ("grunnkrets", "g2"): (1, 1),
        ("grunnkrets", "g3"): (0, 1),
        ("analysis_area", "A"): (2, 3),
        ("analysis_area", "B"): (0, 1),
        ("kommune", "K"): (1, 4),
        ("country", "0"): (1, 4),
    }


def test_values_do_not_depend_on_duckdb_threads(tiny_dir, monkeypatch):
    # which cells secondary suppression adds is decided by ties broken in cell order, so the cells' order must
    # not follow the order a parallel engine happens to return its groups in: one thread and four agree
    import levekar.indicators.facts as facts_module
    from levekar.indicators.run import compute_indicators

    real = facts_module.backend
    runs = []
    for threads in (1, 4):

        def with_threads(engine="duckdb", spark_master=None, threads=threads):
            con = real(engine, spark_master)
            con.raw_sql(f"SET threads = {threads}")
            return con

        monkeypatch.setattr(facts_module, "backend", with_threads)
        runs.append(compute_indicators(tiny_dir))
    assert runs[0][2] == runs[1][2] and runs[0][2]["secondary"] > 0
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0], check_exact=True)


@settings(max_examples=200, deadline=None)
@given(
    st.sets(st.integers(0, 10**12), min_size=1, max_size=30),
    st.lists(st.integers(0, 60), max_size=40),
    st.booleans(),
)
def test_reference_lookup_finds_each_key_dense_or_by_search(keys, picks, small):
    """`compare._find` (a dense array for keys in a small range, else binary search) gives each query's
    position in the table, −1 for a key not there or the "none" key −1."""
    from levekar.indicators.compare import _find

    table = np.array(sorted(keys), dtype=np.int64)
    if small:  # a range the dense lookup takes
        table = table % 97 if len(set((table % 97).tolist())) == len(table) else np.arange(len(table))
    table = np.random.default_rng(len(picks)).permutation(table)
    pool = np.concatenate([table, table + 1, [-1]])
    query = pool[np.array(picks, dtype=np.int64) % len(pool)]
    where = {k: i for i, k in enumerate(table.tolist())}
    assert _find(table, query).tolist() == [where.get(q, -1) for q in query.tolist()]
