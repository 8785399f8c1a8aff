"""Reading and checking the tables the segregation commands take, and grid cells from SSB files or the register.

Every problem is reported with the file, the column and an example value, before anything is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from levekar.io import sql_string

# the cell-id functions live in the first stage (reading SSB grid files needs them); imported here for callers
from levekar.sources.ssbfiles import ssb_cell_corner, ssb_cell_id  # noqa: F401


class InputError(ValueError):
    """Bad input: the message names the file, the column and an example."""


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (delimiter sniffed: SSB's grid files are space-separated) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path).to_pandas()
        return duckdb.sql(f"SELECT * FROM read_csv_auto({sql_string(str(path))}, header = true)").df()
    except (duckdb.Error, OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read it as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {e}") from e


def require_columns(df: pd.DataFrame, path: Path, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(repr(c) for c in missing)}; it has {', '.join(map(str, df.columns))}"
        )
    if df.empty:
        raise InputError(f"{path}: no rows")


def counts(df: pd.DataFrame, path: Path, column: str, what: str = "a count of persons") -> np.ndarray:
    """A non-negative, finite numeric column, or an InputError with the first offending row."""
    raw = df[column]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(num) | (num < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: column {column!r} must be {what} (non-negative number); {int(bad.sum())} row(s) are not, "
            f"e.g. row {i + 1}: {raw.iloc[i]!r}"
        )
    return num


def coordinates(df: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    raw = df[column]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(num)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: column {column!r} must be a coordinate in metres; {int(bad.sum())} row(s) are not, "
            f"e.g. row {i + 1}: {raw.iloc[i]!r}"
        )
    return num


def not_above(part: np.ndarray, whole: np.ndarray, df: pd.DataFrame, path: Path, column: str, of: str) -> None:
    over = part > whole + 1e-9
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise InputError(
            f"{path}: column {column!r} exceeds {of!r} in {int(over.sum())} row(s), "
            f"e.g. row {i + 1}: {part[i]:g} > {whole[i]:g}"
        )


def unique_ids(df: pd.DataFrame, path: Path, column: str) -> None:
    dup = df[column].duplicated(keep=False)
    if dup.any():
        raise InputError(
            f"{path}: column {column!r} must identify each unit once; {int(dup.sum())} rows share an id, "
            f"e.g. {df.loc[dup, column].iloc[0]!r}"
        )


# --- SSB grid cells -----------------------------------------------------------------------------------------


def register_cells(extract_dir: Path, year: int | None = None, size: int = 250) -> tuple[pd.DataFrame, int]:
    """Persons per SSB grid cell of side `size` from a register extract (persons joined to their dwelling's
    coordinates), with the immigrant-background count (innvandringskategori B or C) and each country-background
    group. Returns the cells (x, y = lower-left corner, ssb_id, population, immigrant_background, landbakgrunn
    counts) and the number of persons left out for having no dwelling. `year` defaults to the latest."""
    extract_dir = Path(extract_dir)
    persons, dwellings = extract_dir / "persons.parquet", extract_dir / "dwellings.parquet"
    for f in (persons, dwellings):
        if not f.is_file():
            raise InputError(f"{f}: file not found (a register extract folder has persons and dwellings)")
    con = duckdb.connect()
    p, d = sql_string(str(persons)), sql_string(str(dwellings))
    if year is None:
        year = int(con.sql(f"SELECT max(year) FROM read_parquet({p})").fetchall()[0][0])
    years = {int(r[0]) for r in con.sql(f"SELECT DISTINCT year FROM read_parquet({p})").fetchall()}
    if year not in years:
        raise InputError(f"{persons}: column 'year' has no {year}; it has {', '.join(map(str, sorted(years)))}")
    cells = con.sql(
        f"""
        SELECT floor(d.x / {size}) * {size} AS x, floor(d.y / {size}) * {size} AS y,
               count(*) AS population,
               count(*) FILTER (WHERE p.innvandringskategori IN ('B', 'C')) AS immigrant_background,
               count(*) FILTER (WHERE p.innvandringskategori IN ('B', 'C') AND p.landbakgrunn = 'afrika_asia_mv')
                   AS afrika_asia_mv
        FROM read_parquet({p}) p JOIN read_parquet({d}) d ON p.dwelling_id = d.dwelling_id AND p.year = d.year
        WHERE p.year = {year}
        GROUP BY ALL ORDER BY x, y
        """
    ).df()
    total = int(con.sql(f"SELECT count(*) FROM read_parquet({p}) WHERE year = {year}").fetchall()[0][0])
    for c in ("x", "y"):
        cells[c] = cells[c].astype(np.int64)
    for c in ("population", "immigrant_background", "afrika_asia_mv"):
        cells[c] = cells[c].astype(np.int64)
    cells.insert(0, "ssb_id", ssb_cell_id(cells["x"].to_numpy(), cells["y"].to_numpy(), size))
    return cells, total - int(cells["population"].sum())


# --- persons with the groups the segregation tables use ------------------------------------------------------

PERSON_GROUPS = ("immigrant_background", "africa_asia", "low_income_eu60", "parents_low_education")


def register_groups(extract_dir: Path, years: Sequence[int] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding `seg_persons`: one row per person and year of the extract (optionally only
    `years`), with the groups of the segregation tables:

    - `immigrant_background`: innvandringskategori B or C (also the proxy for minority-language pupils: the
      register has no mother tongue);
    - `africa_asia`: immigrant background and landbakgrunn "Afrika, Asia mv.";
    - `low_income_eu60`: the household's income after tax per EU consumption unit under 60 % of the year's
      median over persons, student households left out of the median and null themselves — the definition
      of `low_income_eu60` in `levekar.indicators.facts` (tested equal);
    - `parents_low_education`: the highest completed education (NUS) of the household's members aged 18 or
      more is at most lower secondary (NUS 0–2); null when no adult's education is known (for children:
      their parents' education; adult siblings at home count too — a register household has no parent link);

    plus `grunnkrets`, `dwelling_id`, `school_id`, `kindergarten_id`, `age_autumn` (year − birth_year: 6–15
    are grades 1–10, 1–5 kindergarten age). `seg_persons` is a view: each query joins the persons to a
    household table made once here. `persons_where` adds the dwelling's coordinates."""
    extract_dir = Path(extract_dir)
    files = {t: extract_dir / f"{t}.parquet" for t in ("persons", "households", "dwellings")}
    for f in files.values():
        if not f.is_file():
            raise InputError(f"{f}: file not found (a register extract folder has persons, households, dwellings)")
    p, h, d = (sql_string(str(files[t])) for t in ("persons", "households", "dwellings"))
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    have = {int(r[0]) for r in con.sql(f"SELECT DISTINCT year FROM read_parquet({p})").fetchall()}
    if years is not None:
        missing = sorted(set(years) - have)
        if missing:
            raise InputError(
                f"{files['persons']}: column 'year' has no {missing[0]}; it has {', '.join(map(str, sorted(have)))}"
            )
    year_filter = f"WHERE year IN ({', '.join(str(int(y)) for y in years)})" if years is not None else ""
    con.execute(
        f"""
        CREATE VIEW seg_raw AS
            SELECT person_id, year, grunnkrets, birth_year, innvandringskategori, landbakgrunn, household_id,
                   dwelling_id, education_nus, school_id, kindergarten_id, year - birth_year - 1 AS age
            FROM read_parquet({p}) {year_filter};
        CREATE VIEW seg_dwellings AS SELECT dwelling_id, year, x, y FROM read_parquet({d});
        """
    )
    # household flags once (a few million households at most); persons are joined to them per query, so
    # nothing person-sized is materialised
    con.execute(
        f"""
        CREATE TEMP TABLE seg_households AS
        WITH hh AS (
            SELECT household_id, year, count(*) FILTER (WHERE age >= 14) AS n14, count(*) FILTER (WHERE age < 14) AS n0,
                   max(education_nus) FILTER (WHERE age >= 18) AS adult_nus
            FROM seg_raw GROUP BY household_id, year
        ),
        f AS (
            SELECT household_id, year, h.student_household, hh.adult_nus, hh.n14 + hh.n0 AS members,
                   h.income_after_tax / CASE WHEN hh.n14 > 0 THEN 1 + 0.5 * (hh.n14 - 1) + 0.3 * hh.n0
                                              ELSE 1 + 0.3 * (hh.n0 - 1) END AS eq_income
            FROM hh JOIN read_parquet({h}) h USING (household_id, year)
        ),
        -- the median over persons: each household's value repeated once per member
        m AS (
            SELECT year, median(eq_income) AS median_eq
            FROM (SELECT year, eq_income FROM f, range(members) WHERE NOT student_household)
            GROUP BY year
        )
        SELECT household_id, year,
               CASE WHEN f.student_household THEN NULL ELSE f.eq_income < 0.6 * m.median_eq END AS low_income_eu60,
               f.adult_nus <= 2 AS parents_low_education
        FROM f JOIN m USING (year)
        """
    )
    con.execute(
        """
        CREATE VIEW seg_persons AS
        SELECT r.person_id, r.year, r.grunnkrets, r.year - r.birth_year AS age_autumn, r.dwelling_id,
               r.school_id, r.kindergarten_id,
               r.innvandringskategori IN ('B', 'C') AS immigrant_background,
               r.innvandringskategori IN ('B', 'C') AND r.landbakgrunn = 'afrika_asia_mv' AS africa_asia,
               h.low_income_eu60, h.parents_low_education
        FROM seg_raw r JOIN seg_households h USING (household_id, year)
        """
    )
    return con


def persons_where(con: duckdb.DuckDBPyConnection, condition: str) -> pd.DataFrame:
    """The rows of `seg_persons` meeting an SQL condition, with their dwelling's coordinates (`x`, `y`; null
    without a dwelling), ordered by year and person."""
    return con.sql(
        f"""SELECT p.*, d.x, d.y FROM (SELECT * FROM seg_persons WHERE {condition}) p
            LEFT JOIN seg_dwellings d ON d.dwelling_id = p.dwelling_id AND d.year = p.year
            ORDER BY p.year, p.person_id"""
    ).df()


def grunnkrets_counts(con: duckdb.DuckDBPyConnection, groups: Sequence[str] = PERSON_GROUPS) -> pd.DataFrame:
    """Per year and grunnkrets of residence, for each group: `<group>` (persons in it) and `<group>_total`
    (persons whose membership is known — everybody except for low income and parents' education)."""
    cols = ", ".join(f"count(*) FILTER (WHERE {g}) AS {g}, count({g}) AS {g}_total" for g in groups)
    return con.sql(
        f"SELECT year, grunnkrets, count(*) AS population, {cols} FROM seg_persons GROUP BY ALL ORDER BY ALL"
    ).df()
