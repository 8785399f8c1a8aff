"""`make bench`: every benchmark, each in its own process, with the machine it ran on.

Results go to bench/results/<name>.json and are printed as a table. Absolute times on a shared, noisy
machine mean little alone; each benchmark also reports a ratio to a baseline run in the same process.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("synth", ["synth_bench.py", "oslo"]),
    ("synth", ["synth_bench.py", "norway"]),
    ("areas", ["areas_bench.py", "city"]),
    ("areas", ["areas_bench.py", "country"]),
    ("indicators", ["indicators_bench.py"]),
    ("spark", ["spark_bench.py", "full", "tiny"]),
    ("spark", ["spark_bench.py", "counting"]),
    ("segregation", ["segregation_bench.py", "oslo"]),
    ("segregation", ["segregation_bench.py", "norway"]),
    ("segregation", ["segregation_bench.py", "indices"]),
    ("segregation", ["segregation_bench.py", "published"]),
    ("web", ["web_bench.py"]),
]


def machine() -> dict:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def main() -> None:
    results: dict[str, list[dict]] = {}
    for name, args in RUNS:
        print(f"running {' '.join(args)} …", flush=True)
        out = subprocess.run(
            [sys.executable, str(HERE / args[0]), *args[1:]], capture_output=True, text=True, check=True
        )
        results.setdefault(name, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    info = machine()
    for name, rows in results.items():
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / f"{name}.json").write_text(json.dumps({"machine": info, "runs": rows}, indent=2) + "\n")
        keys = list(dict.fromkeys(k for r in rows for k in r))
        print(f"\n{name} — {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, Python {info['python']}")
        print(" | ".join(keys))
        for r in rows:
            print(" | ".join(str(r.get(k, "")) for k in keys))


if __name__ == "__main__":
    main()
