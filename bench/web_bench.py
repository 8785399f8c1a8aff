"""Load test of the web API: `levekar serve` in its own process on a free loopback port, then 50 concurrent
clients asking for area profiles and filtered values (random areas, indicators and years; every request
bounded, the whole run bounded in count and time). Runs: closed loop (each client asks again the moment it
has its answer: the server saturated, latency ≈ queue) on fresh queries, the same queries again (answered
from the server's cache), and as people (about THINK_S between answer and next request). /api/meta (no
work but the framework) is asked in the same runs as the baseline; the ratios to it are printed too.

The clients speak plain HTTP/1.1 with keep-alive over asyncio streams: a full client library (httpx) cost
the machine about as much CPU per request as the server, and the clients share its two cores.

Usage: web_bench.py [PUBLISHED_DIR] [--workers N] [--before SRC_DIR]
(default store: out/demo/published, built by `levekar demo` if missing). `--before` also runs the same load
against the web app of an older source tree (e.g. `git archive <commit> src | tar -x -C DIR`, then DIR/src)
served as that version served it (one process, uvicorn's pure-Python HTTP and asyncio loop), so before and
after are measured in one run on the same machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
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


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, the status and the whole body (Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(
    host: str, port: int, areas, indicators, years, seed: int = 1, think_s: float = 0.0
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"profile": [], "values": [], "meta": []}
    errors: list[str] = []
    asked: list[str] = []
    deadline = time.monotonic() + TIME_LIMIT_S

    async def one_client(k: int) -> None:
        r = random.Random(seed * 1000 + k)
        conn = Connection(host, port)
        try:
            for i in range(REQUESTS_PER_CLIENT):
                if time.monotonic() > deadline:
                    return
                if think_s:  # a person reading the last answer before the next click
                    await asyncio.sleep(r.uniform(0.5, 1.5) * think_s)
                level, code = r.choice(areas)
                if i % 10 == 9:
                    kind, url = "meta", "/api/meta"
                elif i % 2:
                    kind, url = "profile", f"/api/profile/{level}/{code}?year={r.choice(years)}"
                else:
                    # as the map asks: one indicator, level and year, the whole population
                    kind = "values"
                    url = f"/api/values?indicator={r.choice(indicators)}&level={level}&year={r.choice(years)}"
                    url += "&breakdown=total"
                asked.append(url)
                t0 = time.perf_counter()
                status, _ = await asyncio.wait_for(conn.get(url), 60)
                times[kind].append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"{status} {url}")
        finally:
            conn.close()

    await asyncio.gather(*(one_client(k) for k in range(CLIENTS)))
    times["errors"] = errors  # type: ignore[assignment]
    times["asked"] = asked  # type: ignore[assignment]
    return times


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, q)), 1) if xs else float("nan")


def wait_ready(port: int, server: subprocess.Popen) -> float:
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /api/meta HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > 300 or server.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.3)


def summary(times: dict[str, list[float]], prefix: str) -> dict:
    both = times["profile"] + times["values"]
    meta50 = max(pct(times["meta"], 50), 0.1)
    return {
        f"{prefix}profile_values_p50_ms": pct(both, 50),
        f"{prefix}profile_values_p95_ms": pct(both, 95),
        f"{prefix}meta_p50_ms": pct(times["meta"], 50),
        f"{prefix}meta_p95_ms": pct(times["meta"], 95),
        f"{prefix}ratio_p50_to_meta": round(pct(both, 50) / meta50, 1),
        f"{prefix}ratio_p95_to_meta_p95": round(pct(both, 95) / max(pct(times["meta"], 95), 0.1), 1),
    }


def measure(command: list[str], env: dict | None, store: Path, label: str) -> dict:
    areas, indicators, years = targets(store)
    port = free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        startup = wait_ready(port, server)
        warm = asyncio.run(run_load("127.0.0.1", port, areas, indicators, years, seed=0))  # warm-up, not counted
        t0 = time.perf_counter()
        fresh = asyncio.run(run_load("127.0.0.1", port, areas, indicators, years, seed=1))
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = asyncio.run(run_load("127.0.0.1", port, areas, indicators, years, seed=1))  # the same queries
        wall_again = time.perf_counter() - t0
        users = asyncio.run(run_load("127.0.0.1", port, areas, indicators, years, seed=2, think_s=THINK_S))
    finally:
        server.terminate()
        server.wait(timeout=60)
    errors = fresh.pop("errors") + again.pop("errors") + users.pop("errors")
    # how many of the "fresh" run's profile and values queries had been asked before (in the warm-up or
    # earlier in the run): at most this share can come from a cache (each worker has its own)
    seen, repeats, hot = set(warm["asked"]), 0, 0
    for url in fresh.pop("asked"):
        if "/api/meta" not in url:
            hot += 1
            repeats += url in seen
        seen.add(url)
    again.pop("asked"), users.pop("asked")
    n = sum(len(v) for v in fresh.values())
    out = {
        "server": label,
        "requests": n,
        "errors": len(errors),
        "startup_s": round(startup, 1),
        "requests_per_s": round(n / wall, 1),
        "cached_requests_per_s": round(sum(len(v) for v in again.values()) / wall_again, 1),
        "fresh_run_repeated_queries_pct": round(100 * repeats / max(hot, 1), 1),
    }
    for kind in ("profile", "values", "meta"):
        out[f"{kind}_p50_ms"] = pct(fresh[kind], 50)
        out[f"{kind}_p95_ms"] = pct(fresh[kind], 95)
    out |= summary(fresh, "")
    out |= summary(again, "cached_")
    out["users_think_s"] = THINK_S
    out |= {k: v for k, v in summary(users, "users_").items() if "ratio" not in k}
    return out


BEFORE = """
import sys, uvicorn
from levekar.web.app import create_app
uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning",
            http="h11", loop="asyncio")
"""


def main(argv: list[str]) -> None:
    args = argparse.ArgumentParser()
    args.add_argument("store", nargs="?")
    args.add_argument("--workers", type=int, default=2)
    args.add_argument("--before", help="src folder of an older version to measure in the same run")
    args.add_argument("--cache-mb", type=int, default=None, help="the server's answer cache (0: none)")
    a = args.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = store_dir(a.store, Path(tmp))
        runs = []
        if a.before:
            env = {**os.environ, "PYTHONPATH": str(Path(a.before).resolve())}
            runs.append(measure([sys.executable, "-c", BEFORE, str(store)], env, store, f"before ({a.before})"))
        cmd = [sys.executable, "-m", "levekar.cli.main", "serve", str(store), "--workers", str(a.workers)]
        env, label = None, f"levekar serve --workers {a.workers}"
        if a.cache_mb is not None:
            env, label = {**os.environ, "LEVEKAR_WEB_CACHE_MB": str(a.cache_mb)}, f"{label}, cache {a.cache_mb} MB"
        runs.append(measure(cmd, env, store, label))
    out = {"benchmark": "web", "clients": CLIENTS, "goal_p95_ms": 50, "runs": runs}
    if len(runs) == 2:
        b, c = runs
        out["speedup_p95"] = round(b["profile_values_p95_ms"] / max(c["profile_values_p95_ms"], 0.1), 1)
        out["speedup_throughput"] = round(c["requests_per_s"] / max(b["requests_per_s"], 0.1), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
