"""`python -m levekar.cli.peek EXTRACT_DIR`: a first look at an extract with DuckDB."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def main(folder: str) -> None:
    d = Path(folder)
    con = duckdb.connect()
    for p in sorted(d.glob("*.parquet")):
        con.execute(f"CREATE VIEW {p.stem} AS SELECT * FROM read_parquet('{p}')")
    print(
        f"{d}: " + ("SYNTHETIC DATA" if '"synthetic": true' in (d / "manifest.json").read_text() else "register data")
    )
    con.sql(
        "SELECT year, count(*) AS persons, count(DISTINCT grunnkrets) AS grunnkretser, "
        "round(100 * avg((innvandringskategori IN ('B', 'C'))::INT), 1) AS immigrant_background_pct, "
        "round(100 * avg(employed::INT) FILTER (year - birth_year - 1 BETWEEN 20 AND 66), 1) AS employed_20_66_pct "
        "FROM persons GROUP BY 1 ORDER BY 1"
    ).show()


if __name__ == "__main__":
    main(sys.argv[1])
