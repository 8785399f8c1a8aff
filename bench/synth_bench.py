"""One synth benchmark run in its own process (so peak memory is its own): prints one JSON line."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.compute as pc

from levekar.synth.generate import generate, write_extract


def main(preset: str, scale: float) -> None:
    t0 = time.perf_counter()
    extract = generate(preset, seed=2020, scale=scale)
    t_gen = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x"
        t1 = time.perf_counter()
        write_extract(extract, out, check=False)
        t_write = time.perf_counter() - t1
        # baseline in the same process: a plain DuckDB scan of the persons file just written
        t2 = time.perf_counter()
        duckdb.sql(
            f"SELECT year, count(*), sum(birth_year), count(DISTINCT household_id) "
            f"FROM read_parquet('{out}/persons.parquet') GROUP BY year"
        ).fetchall()
        t_scan = time.perf_counter() - t2
        size = sum(p.stat().st_size for p in out.iterdir())
    rows = extract.tables["persons"].num_rows
    print(
        json.dumps(
            {
                "preset": preset,
                "scale": scale,
                "person_years": rows,
                "persons_first_year": extract.tables["persons"]
                .filter(pc.equal(extract.tables["persons"]["year"], extract.manifest["years"][0]))
                .num_rows,
                "years": extract.manifest["years"],
                "grunnkretser": len(extract.geography),
                "kommuner": int(extract.geography["kommune"].nunique()),
                "generate_s": round(t_gen, 2),
                "write_s": round(t_write, 2),
                "person_years_per_s": round(rows / (t_gen + t_write)),
                "duckdb_scan_s": round(t_scan, 3),
                "ratio_to_duckdb_scan": round((t_gen + t_write) / t_scan, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "output_mib": round(size / 2**20, 1),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
