"""The indicator stage on Spark (local mode) against DuckDB on the same extract, each engine in its own process
(so peak memory is its own). Prints one JSON line.

Usage: spark_bench.py counting [EXTRACT_DIR] | full [EXTRACT_DIR|PRESET]

- `counting` (default: the `norway` preset, ≈ 5.5 M persons × 3 years, built first or given as a folder): the
  part of `compute_indicators` that runs on the engine — building and materialising the person-year facts,
  the counts of every additive indicator per grunnkrets, the per-level move counts at every level, the
  medians per area — with everything after it (pandas: roll-up, disclosure control, comparisons) left out,
  because it is the same code on both engines. Checks that both engines' counts are identical.
- `full` (default: the `tiny` preset): `compute_indicators` end to end on both engines.

Memory: the driver's peak RSS (this Python process) and, for Spark, the JVM's peak RSS (VmHWM of the java
child process, which in local mode holds the executors too)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPARK_CONF = {
    # local mode on this 2-core machine: the driver is the executor; more shuffle partitions than cores
    # keeps each task's hash tables small enough not to spill much
    "spark.driver.memory": "6g",
    "spark.sql.shuffle.partitions": "16",
    "spark.ui.enabled": "false",
}


def _jvm_peak_mib() -> float | None:
    """Peak RSS of this process's java children (the local Spark JVM)."""
    peak = None
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmd = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields.get("PPid", "0").strip()) == os.getpid() and b"java" in cmd:
            hwm = int(fields["VmHWM"].split()[0]) / 1024
            peak = hwm if peak is None else max(peak, hwm)
    return peak


def _digest(frame) -> str:
    """The same for the same rows in any order, to the last bit (row hashes, sorted)."""
    import numpy as np
    import pandas as pd

    frame = frame[sorted(frame.columns)].copy()
    for c in frame.columns:  # one dtype per kind, so that only the values count
        kind = frame[c].dtype.kind
        frame[c] = frame[c].astype("float64" if kind == "f" else "int64" if kind in "iu" else object)
    rows = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def counting(extract: Path, engine: str) -> dict:
    """The engine's part of `compute_indicators` (see the module doc)."""
    from dataclasses import replace

    import pandas as pd

    from levekar.indicators.catalogue import load_catalogue
    from levekar.indicators.disclosure import membership
    from levekar.indicators.engine import count_units, medians, per_level_counts
    from levekar.indicators.facts import Stash, connect, person_facts, spark_session
    from levekar.indicators.run import level_mappings, materialise_facts, needed_columns

    t0 = time.perf_counter()
    if engine == "spark":
        spark_session("local[2]", SPARK_CONF)
    phases = {}
    with tempfile.TemporaryDirectory(prefix="levekar-bench-") as tmp:
        con, tables = connect(extract, engine=engine)
        stash = Stash(con)
        facts = person_facts(tables, stash)
        catalogue = load_catalogue(columns=set(facts.columns))
        needed = facts.select(*sorted(needed_columns(catalogue) & set(facts.columns)))
        phases["start_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        facts = materialise_facts(con, needed, engine, Path(tmp))
        stash.drop()
        phases["facts_s"] = time.perf_counter() - t
        _say(f"{engine}: facts {phases['facts_s']:.0f} s")
        t = time.perf_counter()
        additive = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if not i.per_level))
        counts = count_units(con, facts, additive)
        phases["counts_s"] = time.perf_counter() - t
        _say(f"{engine}: counts {phases['counts_s']:.0f} s")
        geography = tables["geography"].execute()
        levels = level_mappings(geography)
        t = time.perf_counter()
        moving = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if i.per_level))
        per_level = per_level_counts(con, facts, moving, levels)
        phases["per_level_s"] = time.perf_counter() - t
        _say(f"{engine}: per level {phases['per_level_s']:.0f} s")
        t = time.perf_counter()
        med = medians(facts, catalogue, membership(levels, geography["grunnkrets"]))
        phases["medians_s"] = time.perf_counter() - t
        jvm = _jvm_peak_mib() if engine == "spark" else None
        written = sum(f.stat().st_size for f in Path(tmp).rglob("*.parquet")) / 2**20
    keys = ["grunnkrets", "year", "breakdown", "breakdown_value", "indicator_id"]
    counts = counts.assign(year=counts["year"].astype("int64"))
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        **{k: round(v, 1) for k, v in phases.items()},
        "count_rows": len(counts),
        "digest": _digest(
            pd.concat(
                [
                    counts.sort_values(keys)[[*keys, "numerator", "denominator", "sum_squares"]],
                    per_level.assign(year=per_level["year"].astype("int64")),
                    med.assign(year=med["year"].astype("int64"))[
                        ["indicator_id", "level", "area_code", "year", "breakdown_value", "denominator", "value"]
                    ],
                ]
            )
        ),
        "jvm_peak_rss_mib": None if jvm is None else round(jvm),
        "facts_parquet_mib": round(written) if engine == "spark" else None,
    }


def full(extract: Path, engine: str) -> dict:
    """`compute_indicators` end to end."""
    from levekar.indicators.facts import spark_session
    from levekar.indicators.run import compute_indicators

    t0 = time.perf_counter()
    if engine == "spark":
        spark_session("local[2]", {**SPARK_CONF, "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g"})
    steps = {}
    values, _, _ = compute_indicators(
        extract, engine=engine, progress=lambda s, f: steps.setdefault(s, time.perf_counter() - t0)
    )
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
        "values": len(values),
        "digest": _digest(values),
        "jvm_peak_rss_mib": None if engine != "spark" else round(_jvm_peak_mib() or 0),
    }


def child(mode: str, extract: Path, engine: str) -> None:
    out = (counting if mode == "counting" else full)(extract, engine)
    out["driver_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


def main(mode: str, where: str | None) -> None:
    from levekar.synth.generate import generate, write_extract

    with tempfile.TemporaryDirectory() as tmp:
        if where and Path(where).is_dir():
            extract = Path(where)
        else:
            preset = where or ("norway" if mode == "counting" else "tiny")
            extract = Path(tmp) / preset
            write_extract(generate(preset, seed=2020), extract, check=False)
        runs = {}
        for engine in ("duckdb", "spark"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(extract), engine],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            runs[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
            _say(f"{engine}: {runs[engine]}")
        import pyarrow.parquet as pq

        rows = pq.read_metadata(extract / "persons.parquet").num_rows
    d, s = runs["duckdb"], runs["spark"]
    print(
        json.dumps(
            {
                "benchmark": f"spark_{mode}",
                "extract": extract.name,
                "person_years": rows,
                "duckdb_s": d["seconds"],
                "spark_s": s["seconds"],
                "ratio_spark_to_duckdb": round(s["seconds"] / d["seconds"], 1),
                "identical": d["digest"] == s["digest"],
                "duckdb_peak_rss_mib": d["driver_peak_rss_mib"],
                "spark_driver_peak_rss_mib": s["driver_peak_rss_mib"],
                "spark_jvm_peak_rss_mib": s["jvm_peak_rss_mib"],
                "duckdb": {k: v for k, v in d.items() if k != "digest"},
                "spark": {k: v for k, v in s.items() if k != "digest"},
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "counting", sys.argv[2] if len(sys.argv) > 2 else None)
