"""Load test of the web API: `levekar serve` in its own process on a free loopback port, then 50 concurrent
clients asking for area profiles and filtered values (random areas, indicators and years; every request
bounded, the whole run bounded in count and time). Two runs: closed loop (each client asks again the moment
it has its answer: the server saturated, latency ≈ queue) and as people (about THINK_S between answer and
next request). Prints one JSON line with p50/p95 per endpoint, and the ratio to /api/meta (no work but the
framework) under the same load.

Usage: web_bench.py [PUBLISHED_DIR] (default: out/demo/published, built by `levekar demo` if missing)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

CLIENTS = 50
REQUESTS_PER_CLIENT = 40
TIME_LIMIT_S = 180
THINK_S = 2.0
ROOT = Path(__file__).resolve().parents[1]


def store_dir(arg: str | None, tmp: Path) -> Path:
    if arg:
        return Path(arg)
    default = ROOT / "out" / "demo" / "published"
    if (default / "barometer.duckdb").exists():
        return default
    subprocess.run([sys.executable, "-m", "levekar.cli.main", "demo", "--out", str(tmp / "demo")], check=True)
    return tmp / "demo" / "published"


def targets(store: Path) -> tuple[list[tuple[str, str]], list[str], list[int]]:
    con = duckdb.connect(str(store / "barometer.duckdb"), read_only=True)
    try:
        areas = con.execute(
            "SELECT level, area_code FROM areas WHERE level IN ('analysis_area', 'grunnkrets', 'bydel')"
        ).fetchall()
        indicators = [r[0] for r in con.execute("SELECT indicator_id FROM catalogue").fetchall()]
        years = [r[0] for r in con.execute("SELECT DISTINCT year FROM indicator_values ORDER BY 1").fetchall()]
    finally:
        con.close()
    return areas, indicators, years


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(base: str, areas, indicators, years, seed: int = 1, think_s: float = 0.0) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"profile": [], "values": [], "meta": []}
    errors: list[str] = []
    deadline = time.monotonic() + TIME_LIMIT_S
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one_client(k: int) -> None:
            r = random.Random(seed * 1000 + k)
            for i in range(REQUESTS_PER_CLIENT):
                if time.monotonic() > deadline:
                    return
                if think_s:  # a person reading the last answer before the next click
                    await asyncio.sleep(r.uniform(0.5, 1.5) * think_s)
                level, code = r.choice(areas)
                if i % 10 == 9:
                    kind, url, params = "meta", "/api/meta", None
                elif i % 2:
                    kind, url, params = "profile", f"/api/profile/{level}/{code}", {"year": r.choice(years)}
                else:
                    kind = "values"
                    url = "/api/values"
                    # as the map asks: one indicator, level and year, the whole population
                    params = {
                        "indicator": r.choice(indicators),
                        "level": level,
                        "year": r.choice(years),
                        "breakdown": "total",
                    }
                t0 = time.perf_counter()
                resp = await client.get(url, params=params)
                times[kind].append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    errors.append(f"{resp.status_code} {url}")

        await asyncio.gather(*(one_client(k) for k in range(CLIENTS)))
    times["errors"] = errors  # type: ignore[assignment]
    return times


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, q)), 1) if xs else float("nan")


def main(arg: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = store_dir(arg, Path(tmp))
        areas, indicators, years = targets(store)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "levekar.cli.main", "serve", str(store), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            t0 = time.monotonic()
            while True:
                try:
                    if httpx.get(base + "/api/meta", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - t0 > 120 or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.3)
            startup = time.monotonic() - t0
            asyncio.run(run_load(base, areas, indicators, years, seed=0))  # warm-up, not counted
            t0 = time.perf_counter()
            times = asyncio.run(run_load(base, areas, indicators, years))
            wall = time.perf_counter() - t0
            users = asyncio.run(run_load(base, areas, indicators, years, seed=2, think_s=THINK_S))
        finally:
            server.terminate()
            server.wait(timeout=30)
    errors = times.pop("errors") + users.pop("errors")
    n = sum(len(v) for v in times.values())
    out = {
        "benchmark": "web",
        "clients": CLIENTS,
        "requests": n,
        "errors": len(errors),
        "seconds": round(wall, 1),
        "requests_per_s": round(n / wall, 1),
        "startup_s": round(startup, 1),
    }
    for kind in ("profile", "values", "meta"):
        out[f"{kind}_p50_ms"] = pct(times[kind], 50)
        out[f"{kind}_p95_ms"] = pct(times[kind], 95)
    out["profile_values_p95_ms"] = pct(times["profile"] + times["values"], 95)
    # the same 50 clients as people: each waits about THINK_S between answer and next request
    out["users_think_s"] = THINK_S
    out["users_profile_values_p50_ms"] = pct(users["profile"] + users["values"], 50)
    out["users_profile_values_p95_ms"] = pct(users["profile"] + users["values"], 95)
    out["ratio_p50_to_meta"] = round(pct(times["profile"] + times["values"], 50) / max(pct(times["meta"], 50), 0.1), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
