"""The whole catalogue on an extract (default: the `norway` preset, ≈ 5.5 M persons × 3 years): wall time
and peak memory of computing every indicator at every level, against a plain DuckDB scan of the persons
table in the same process. Prints one JSON line. Usage: indicators_bench.py [EXTRACT_DIR]"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from levekar.indicators.run import compute_indicators
from levekar.synth.generate import generate, write_extract


def main(extract: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if extract is None:
            extract = Path(tmp) / "norway"
            write_extract(generate("norway", seed=2020), extract, check=False)
        persons = extract / "persons.parquet"
        t0 = time.perf_counter()
        duckdb.sql(
            f"SELECT year, grunnkrets, count(*), sum(employed::INT), sum(birth_year) "
            f"FROM read_parquet('{persons}') GROUP BY ALL"
        ).fetchall()
        t_scan = time.perf_counter() - t0
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        values, levels, disclosure = compute_indicators(extract)
        t_run = time.perf_counter() - t0
        rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{persons}')").fetchall()[0][0]
    print(
        json.dumps(
            {
                "benchmark": "indicators",
                "extract": extract.name,
                "person_years": rows,
                "values": len(values),
                "levels": ["grunnkrets", *sorted(levels), "country"],
                "seconds": round(t_run, 1),
                "duckdb_scan_s": round(t_scan, 2),
                "ratio_to_duckdb_scan": round(t_run / t_scan, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                # the disclosure control's worker processes (the largest one's peak; they run after DuckDB
                # has closed, while this process holds the cells)
                "peak_rss_worker_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
                "disclosure": disclosure,
                "peak_rss_mib_before_run": round(rss_before / 1024),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
