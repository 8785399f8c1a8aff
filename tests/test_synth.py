"""The synthetic register: determinism, real flows, and (on the embedded default) realism and calibration."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pytest
import shapely

from figures import figures
from levekar.schema.validate import validate_extract
from levekar.synth.generate import generate, write_extract

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
DATA = Path(__file__).resolve().parents[1] / "src" / "levekar" / "data" / "oslo"


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _sql(folder: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for p in folder.glob("*.parquet"):
        con.execute(f"CREATE VIEW {p.stem} AS SELECT * FROM read_parquet('{p}')")
    return con


# --- tiny preset ---------------------------------------------------------------------------------------------
def test_same_seed_same_bytes(tiny_dir, tmp_path):
    write_extract(generate("tiny", seed=7), tmp_path / "again")
    assert _hashes(tmp_path / "again") == _hashes(tiny_dir)
    write_extract(generate("tiny", seed=8), tmp_path / "other")
    assert _hashes(tmp_path / "other")["persons.parquet"] != _hashes(tiny_dir)["persons.parquet"]


def test_manifest_marks_synthetic(tiny_dir):
    import json

    m = json.loads((tiny_dir / "manifest.json").read_text())
    assert m["synthetic"] is True and "synthetic" in m["notice"]
    for name, info in m["files"].items():
        assert hashlib.sha256((tiny_dir / name).read_bytes()).hexdigest() == info["sha256"]


def test_flows_are_one_population_that_moves(tiny_dir):
    """Between consecutive years every change of the population is a birth, a death, or a recorded move."""
    con = _sql(tiny_dir)
    for y in (2016, 2017):
        gone = con.execute(
            "SELECT person_id FROM persons a WHERE year = ? AND NOT died_in_year "
            "AND person_id NOT IN (SELECT person_id FROM persons WHERE year = ? + 1) ORDER BY 1",
            [y, y],
        ).fetchall()
        out = con.execute(
            "SELECT person_id FROM migrations WHERE year = ? AND direction = 'out' ORDER BY 1", [y]
        ).fetchall()
        assert gone == out and len(out) > 0
        new = con.execute(
            "SELECT person_id, birth_year FROM persons WHERE year = ? + 1 "
            "AND person_id NOT IN (SELECT person_id FROM persons WHERE year = ?)",
            [y, y],
        ).fetchall()
        came = {
            r[0]
            for r in con.execute("SELECT person_id FROM migrations WHERE year = ? AND direction = 'in'", [y]).fetchall()
        }
        assert came and came <= {p for p, _ in new}
        born_here = [b for p, b in new if p not in came]
        assert born_here and set(born_here) == {y}, "everyone new who did not move in was born that year"
        deaths = con.execute("SELECT count(*) FROM persons WHERE year = ? AND died_in_year", [y]).fetchone()[0]
        assert deaths > 0
        # people move between grunnkretser, and their residence_since says when
        moved = con.execute(
            "SELECT count(*), count_if(b.residence_since = ?) FROM persons a JOIN persons b USING (person_id) "
            "WHERE a.year = ? AND b.year = ? + 1 AND a.grunnkrets <> b.grunnkrets "
            "AND a.grunnkrets NOT IN (SELECT old_grunnkrets FROM grunnkrets_changes)",
            [y, y, y],
        ).fetchone()
        assert moved[0] > 0 and moved[0] == moved[1]
    # a household lives in one dwelling
    assert con.execute(
        "SELECT count(*) FROM (SELECT household_id, year FROM persons "
        "GROUP BY ALL HAVING count(DISTINCT dwelling_id) > 1)"
    ).fetchone() == (0,)


def test_code_change_is_followed(tiny_dir):
    con = _sql(tiny_dir)
    (old, new, year), *_ = con.execute("SELECT old_grunnkrets, new_grunnkrets, year FROM grunnkrets_changes").fetchall()
    assert con.execute("SELECT count(*) FROM persons WHERE grunnkrets = ? AND year < ?", [old, year]).fetchone()[0] > 0
    assert (
        con.execute("SELECT count(*) FROM persons WHERE grunnkrets = ? AND year >= ?", [old, year]).fetchone()[0] == 0
    )
    assert con.execute("SELECT count(*) FROM persons WHERE grunnkrets = ? AND year >= ?", [new, year]).fetchone()[0] > 0


def test_norway_preset_at_small_scale(tmp_path):
    out = write_extract(generate("norway", seed=3, scale=0.004), tmp_path / "norway")
    con = _sql(out)
    geo = gpd.read_parquet(out / "geography.parquet")
    assert geo["kommune"].nunique() == 356
    persons = con.execute("SELECT count(*) FROM persons WHERE year = 2016").fetchone()[0]
    assert 0.9 * 22_000 < persons < 1.3 * 22_000  # every kommune has at least 30 persons
    assert validate_extract(out) == []


def test_unknown_preset_and_scaling_oslo_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        generate("bergen")
    with pytest.raises(ValueError, match="cannot be scaled"):
        generate("oslo", scale=0.5)


# --- the embedded default (oslo) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oslo(demo_dir) -> Path:
    return demo_dir


@pytest.fixture(scope="module")
def oslo_2018(oslo) -> dict[str, float]:
    return figures(oslo, 2018)


def test_real_cells_hold_their_real_population(oslo):
    """2008: all 640 797 persons, each real 100 m cell holding exactly its SSB count."""
    con = _sql(oslo)
    synth = dict(
        con.execute(
            "SELECT ((floor(d.x / 100) * 100 + 2000000) * 10000000 + floor(d.y / 100) * 100)::BIGINT, count(*) "
            "FROM persons p JOIN dwellings d USING (dwelling_id, year) WHERE p.year = 2008 GROUP BY 1"
        ).fetchall()
    )
    with (DATA / "Oslo_bef_100m_2015.csv").open() as f:
        real = {int(r["rute_100m"]): int(r["sum"]) for r in csv.DictReader(f, delimiter=" ")}
    assert sum(real.values()) == 640_797
    assert synth == real


def test_grunnkrets_units(oslo):
    con = _sql(oslo)
    sizes = np.array(
        [r[0] for r in con.execute("SELECT count(*) FROM persons WHERE year = 2008 GROUP BY grunnkrets").fetchall()]
    )
    assert 400 <= len(sizes) <= 700
    assert sizes.min() >= 300 and sizes.max() <= 3000
    # every unit inside one delbydel, and the zoning covers every code
    assert con.execute(
        "SELECT count(*) FROM (SELECT grunnkrets FROM zonings GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone() == (0,)
    geo = gpd.read_parquet(oslo / "geography.parquet")
    assert set(geo["grunnkrets"]) == {r[0] for r in con.execute("SELECT grunnkrets FROM zonings").fetchall()}
    assert geo.crs.to_epsg() == 25833 and geo.is_valid.all()
    # current codes tile the city: no overlaps, and almost every unit is one piece
    current = geo[geo["valid_to"].isna()]
    union = shapely.union_all(current.geometry.values)
    assert abs(current.area.sum() - union.area) / union.area < 1e-6
    single = current.geometry.apply(lambda g: g.geom_type == "Polygon" or len(g.geoms) == 1).mean()
    assert single > 0.95


def test_calibration_to_national_reference(oslo_2018, reference):
    ref = reference["national_reference_2018"]
    got = oslo_2018
    checks = {
        "children_low_income_eu60": (ref["children_low_income_households_eu60"], 1.0),
        "persons_low_income_eu60": (ref["persons_low_income_households_eu60"], 1.0),
        "neet_30_59_women_immigrant": (ref["neet_30_59"]["women_immigrant_background"], 1.0),
        "neet_30_59_women_other": (ref["neet_30_59"]["women_other"], 1.0),
        "neet_30_59_men_immigrant": (ref["neet_30_59"]["men_immigrant_background"], 1.0),
        "neet_30_59_men_other": (ref["neet_30_59"]["men_other"], 1.0),
        "families_with_children_renting": (ref["families_with_children_renting"], 2.5),
        "crowded_families_with_children": (ref["crowded_families_with_children"], 3.5),
        "immigrant_background": (ref["immigrant_background_2020"], 2.0),
        "africa_asia_background": (ref["immigrant_background_africa_asia_etc_2020"], 1.5),
        "social_assistance_18_66": (ref["social_assistance_recipients"], 0.3),
        "child_welfare_0_17": (ref["children_child_welfare_measures_0_17"], 0.3),
        "employment_20_66": (ref["employment_20_66_q4_2019"], 5.0),
        "children_0_17_share": (ref["children_0_17_share_of_population"], 2.5),
        "grade_points": (ref["grade_points_grunnskole"][2018], 0.7),
    }
    off = {k: (round(got[k], 2), target, tol) for k, (target, tol) in checks.items() if abs(got[k] - target) > tol}
    assert not off, off
    assert abs(got["price_per_m2"] / ref["price_per_m2_nok"] - 1) < 0.05


def test_turnout_2019(oslo, reference):
    f = figures(oslo, 2019)
    ref = reference["national_reference_2018"]
    assert abs(f["turnout"] - ref["turnout_all_local_election_2019"]) < 1.0
    assert abs(f["turnout_women"] - ref["turnout_women_local_election_2019"]) < 1.5


def test_residential_segregation_like_a_norwegian_city(oslo, oslo_2018):
    assert 0.35 <= figures(oslo, 2008)["dissimilarity_africa_asia_grunnkrets"] <= 0.55
    assert 0.35 <= oslo_2018["dissimilarity_africa_asia_grunnkrets"] <= 0.55


def _area_shares(oslo: Path, year: int):
    con = _sql(oslo)
    age = "(p.year - p.birth_year - 1)"
    rows = con.execute(
        f"""
        WITH hh AS (SELECT household_id, year, count(*) AS n, count_if({age} < 18) AS kids
                    FROM persons p GROUP BY ALL),
        h AS (SELECT h.*, hh.n, hh.kids, h.income_after_tax / (1 + 0.5 * (hh.n - hh.kids - 1) + 0.3 * hh.kids) AS eq
              FROM households h JOIN hh USING (household_id, year) WHERE year = ?),
        med AS (SELECT median(eq) AS m FROM persons p JOIN h USING (household_id, year) WHERE NOT student_household)
        SELECT left(p.grunnkrets, 8),
          avg((h.eq < 0.6 * med.m)::INT),
          avg((coalesce(education_nus, 0) <= 2)::INT) FILTER ({age} BETWEEN 30 AND 59),
          avg((NOT employed AND NOT in_education)::INT) FILTER ({age} BETWEEN 30 AND 59),
          avg((d.tenure IN ('leier', 'kommunal'))::INT),
          avg(((d.rooms < h.n) AND d.area_m2 / h.n < 25)::INT),
          avg((innvandringskategori IN ('B', 'C') AND landbakgrunn = 'afrika_asia_mv')::INT)
        FROM persons p JOIN h USING (household_id, year) JOIN dwellings d USING (dwelling_id, year), med
        WHERE p.year = ? GROUP BY 1""",
        [year, year],
    ).fetchall()
    return np.array([r[1:] for r in rows], dtype=float)


def test_challenges_cluster_in_the_same_areas(oslo):
    """Low income, low education, non-employment, renting, crowding and 'Afrika, Asia mv.' background are
    positively correlated across grunnkretser, as the report describes for Oslo."""
    corr = np.corrcoef(_area_shares(oslo, 2018).T)
    assert (corr[np.triu_indices(6, 1)] > 0.3).all(), np.round(corr, 2)


def test_concentrated_in_outer_east_and_inner_east(oslo):
    con = _sql(oslo)
    share = dict(
        con.execute(
            "SELECT substr(grunnkrets, 1, 4) = '0301' AND z.zone[1:2] IN ('09', '10', '11', '12', '15'), "
            "avg((innvandringskategori IN ('B', 'C') AND landbakgrunn = 'afrika_asia_mv')::INT) "
            "FROM persons JOIN zonings z USING (grunnkrets) WHERE year = 2018 AND z.zone[1:2] IN "
            "('09', '10', '11', '12', '15', '05', '06', '07') GROUP BY 1"
        ).fetchall()
    )
    assert share[True] > 3 * share[False]


def test_household_composition_follows_real_delbydel_statistics(oslo):
    con = _sql(oslo)
    synth = dict(
        con.execute(
            "SELECT z.zone, avg((n = 1)::INT) FROM (SELECT household_id, any_value(grunnkrets) AS grunnkrets, "
            "count(*) AS n FROM persons WHERE year = 2008 GROUP BY 1) JOIN zonings z USING (grunnkrets) GROUP BY 1"
        ).fetchall()
    )
    real: dict[str, list[float]] = {}
    with (DATA / "husholdninger_med_barn_2008-2018_delbydel.csv").open() as f:
        for r in csv.DictReader(f, delimiter=";"):
            if r["År"] == "2008" and r["delbydelid"]:
                c = real.setdefault(r["delbydelid"][-4:], [0.0, 0.0])
                c[0] += float(r["Antall husholdninger"]) * (r["Husholdningstype"] == "Aleneboende")
                c[1] += float(r["Antall husholdninger"])
    codes = sorted(set(synth) & set(real))
    a = np.array([synth[c] for c in codes])
    b = np.array([real[c][0] / real[c][1] for c in codes])
    assert len(codes) >= 85
    assert np.corrcoef(a, b)[0, 1] > 0.9
    assert abs(a.mean() - b.mean()) < 0.03


def test_tenure_pattern_follows_real_delbydel_statistics(oslo):
    con = _sql(oslo)
    synth = dict(
        con.execute(
            "SELECT z.zone, avg((tenure IN ('leier', 'kommunal'))::INT) FROM dwellings d "
            "JOIN zonings z USING (grunnkrets) WHERE year = 2008 GROUP BY 1"
        ).fetchall()
    )
    with (DATA / "eieform_2015-2017_delbydel.csv").open() as f:
        real = {
            r["delbydel_id"]: float(r["leier_alle"])
            for r in csv.DictReader(f, delimiter=";")
            if r["aar"] == "2015" and r["delbydel_id"]
        }
    codes = sorted(set(synth) & set(real))
    assert np.corrcoef([synth[c] for c in codes], [real[c] for c in codes])[0, 1] > 0.7


def test_schools_and_kindergartens(oslo, reference):
    con = _sql(oslo)
    n_schools = con.execute("SELECT count(*) FROM institutions WHERE type = 'grunnskole'").fetchone()[0]
    assert 110 <= n_schools <= 150  # the report's table 3.5: 134–135 schools in Oslo
    local = con.execute(
        "SELECT 100 * avg((c.institution_id IS NOT NULL)::INT) FROM persons p LEFT JOIN catchments c "
        "ON c.institution_id = p.school_id AND c.grunnkrets = p.grunnkrets "
        "WHERE p.year = 2018 AND school_id IS NOT NULL"
    ).fetchone()[0]
    assert abs(local - reference["oslo_schools_table_3_5"]["local_school_attendance"]) < 3
    kg = con.execute(
        "SELECT 100 * avg((kindergarten_id IS NOT NULL)::INT) FROM persons WHERE year = 2018 "
        "AND year - birth_year BETWEEN 1 AND 5"
    ).fetchone()[0]
    assert 80 <= kg <= 95
    pupils = con.execute(
        "SELECT count(*) FROM persons WHERE year = 2018 AND year - birth_year BETWEEN 6 AND 15 AND school_id IS NULL"
    ).fetchone()[0]
    assert pupils == 0


def test_embedded_data_carries_its_attribution():
    text = (DATA / "SOURCE.md").read_text()
    for needle in ("Statistisk sentralbyrå", "CC BY 4.0", "Oslo kommune"):
        assert needle in text
    if SHARED_REAL.exists():  # the embedded copies are byte-identical to the shared real data
        assert (DATA / "Oslo_bef_100m_2015.csv").read_bytes() == (
            SHARED_REAL / "ssb-rutenett-oslo" / "Oslo_bef_100m_2015.csv"
        ).read_bytes()


def test_reference_copy_is_current():
    shared = SHARED_REAL.parents[1] / "reference" / "nou2020_16.yaml"
    if shared.exists():
        assert shared.read_bytes() == (Path(__file__).parent / "data" / "nou2020_16.yaml").read_bytes()


def test_ssb_cell_id_round_trip():
    """SSB's grid id of the lower-left corner (../shared/reference/ssb_conventions.yaml example)."""
    from levekar.synth.geography import ssb_cell_corner, ssb_cell_id

    x, y = ssb_cell_corner(np.array([22536006661600]))
    assert (int(x[0]), int(y[0])) == (253600, 6661600)
    assert ssb_cell_id(x, y).tolist() == [22536006661600]
