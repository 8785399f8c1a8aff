"""Country-level figures of an extract, computed directly in SQL from the files (independently of the
generator's own code), for the calibration tests and the closing notes."""

from __future__ import annotations

from pathlib import Path

import duckdb

AGE = "(p.year - p.birth_year - 1)"  # completed years on 1 January


def connect(extract: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for t in ("persons", "households", "dwellings", "geography"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{extract}/{t}.parquet')")
    # person-level household facts: size, EU consumption units, children, low income against the median
    con.execute(f"""
        CREATE TEMP TABLE hh AS
        SELECT p.household_id, p.year, count(*) AS persons,
               count_if({AGE} < 18) AS children,
               count_if({AGE} >= 14) AS n14, count_if({AGE} < 14) AS n_u14
        FROM persons p GROUP BY ALL""")
    con.execute("""
        CREATE TEMP TABLE eq AS
        SELECT h.*, hh.persons, hh.children,
               h.income_after_tax / (CASE WHEN n14 > 0 THEN 1 + 0.5 * (n14 - 1) + 0.3 * n_u14
                                          ELSE 1 + 0.3 * (n_u14 - 1) END) AS eq_income
        FROM households h JOIN hh USING (household_id, year)""")
    con.execute("""
        CREATE TEMP TABLE med AS
        SELECT e.year, median(e.eq_income) AS median
        FROM persons p JOIN eq e USING (household_id, year) WHERE NOT e.student_household GROUP BY ALL""")
    return con


def figures(extract: Path, year: int) -> dict[str, float]:
    con = connect(extract)
    q = lambda sql: con.execute(sql, [year]).fetchone()[0]  # noqa: E731
    ib = "p.innvandringskategori IN ('B', 'C')"

    def share(cond: str, where: str = "TRUE") -> float:
        return q(f"SELECT 100 * avg(({cond})::INT) FROM persons p WHERE year = ? AND {where}")

    out = {
        "population": q("SELECT count(*) FROM persons WHERE year = ?"),
        "immigrant_background": share(ib),
        "africa_asia_background": share(f"{ib} AND p.landbakgrunn = 'afrika_asia_mv'"),
        "children_0_17_share": share(f"{AGE} < 18"),
        "employment_20_66": share("employed", f"{AGE} BETWEEN 20 AND 66"),
        "social_assistance_18_66": share("social_assistance", f"{AGE} BETWEEN 18 AND 66"),
        "child_welfare_0_17": share("child_welfare", f"{AGE} < 18"),
        "low_education_30_59": share("coalesce(education_nus, 0) <= 2", f"{AGE} BETWEEN 30 AND 59"),
        "no_upper_secondary_21_29": share("NOT upper_secondary_completed", f"{AGE} BETWEEN 21 AND 29"),
        "neet_20_29": share("NOT employed AND NOT in_education", f"{AGE} BETWEEN 20 AND 29"),
    }
    for sex, sname in ((2, "women"), (1, "men")):
        for imm, iname in ((True, "immigrant"), (False, "other")):
            out[f"neet_30_59_{sname}_{iname}"] = share(
                "NOT employed AND NOT in_education", f"{AGE} BETWEEN 30 AND 59 AND sex = {sex} AND ({ib}) = {imm}"
            )
    low = (
        "FROM persons p JOIN eq e USING (household_id, year) JOIN med m USING (year) "
        "WHERE p.year = ? AND NOT e.student_household"
    )
    out["persons_low_income_eu60"] = q(f"SELECT 100 * avg((e.eq_income < 0.6 * m.median)::INT) {low}")
    out["children_low_income_eu60"] = q(f"SELECT 100 * avg((e.eq_income < 0.6 * m.median)::INT) {low} AND {AGE} < 18")
    out["at_least_half_income_from_transfers"] = q(
        "SELECT 100 * avg((e.income_transfers >= 0.5 * e.income_total)::INT) FROM persons p "
        "JOIN eq e USING (household_id, year) WHERE p.year = ?"
    )
    fam = (
        "FROM eq e JOIN (SELECT DISTINCT household_id, year, dwelling_id FROM persons) p USING (household_id, year) "
        "JOIN dwellings d USING (dwelling_id, year) WHERE e.year = ? AND e.children > 0"
    )
    out["families_with_children_renting"] = q(f"SELECT 100 * avg((d.tenure IN ('leier', 'kommunal'))::INT) {fam}")
    out["crowded_families_with_children"] = q(
        f"SELECT 100 * avg((((d.rooms < e.persons) OR (e.persons = 1 AND d.rooms = 1)) "
        f"AND d.area_m2 / e.persons < 25)::INT) {fam}"
    )
    out["price_per_m2"] = q("SELECT avg(sale_price / area_m2) FROM dwellings WHERE year = ? AND sale_price IS NOT NULL")
    out["grade_points"] = q("SELECT avg(grade_points) FROM persons WHERE year = ?")
    out["turnout"] = q("SELECT 100 * avg(voted::INT) FROM persons WHERE year = ? AND voted IS NOT NULL")
    out["turnout_women"] = q(
        "SELECT 100 * avg(voted::INT) FROM persons WHERE year = ? AND voted IS NOT NULL AND sex = 2"
    )
    out["dissimilarity_africa_asia_grunnkrets"] = q(f"""
        WITH u AS (SELECT grunnkrets, count_if({ib} AND p.landbakgrunn = 'afrika_asia_mv') AS a, count(*) AS n
                   FROM persons p WHERE year = ? GROUP BY ALL)
        SELECT 0.5 * sum(abs(u.a / t.ta - (u.n - u.a) / (t.tn - t.ta)))
        FROM u, (SELECT sum(a) AS ta, sum(n) AS tn FROM u) t""")
    return out
