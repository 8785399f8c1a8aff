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
