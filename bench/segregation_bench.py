"""One segregation benchmark run in its own process: prints one JSON line.

- `oslo`: K-nearest counts (9 K, 200 … 51 200, exact convention) on SSB's real 100 m Oslo grid (9 371 cells,
  640 797 persons) with a derived group, against equipop's `run_knn_counts` in the same process.
- `norway`: the same on the `norway` preset's synthetic 250 m country grid (about 106 000 cells, 5.5 million
  persons), against equipop in the same process (`--no-equipop` skips it: it takes minutes).
- `indices`: all single-group indices at 10⁴ and 10⁵ units against PySAL `segregation` in the same process.
- `published [DEMO_DIR]`: the store's `segregation_indices` (`published.published_indices`, 99 bootstrap
  replications) from the published store of a `levekar demo --out DEMO_DIR` (built into a temporary folder
  when not given: minutes), against the rest of the segregation stage (`store_tables` without the values:
  K-profiles and schools) in the same process — what the new table adds to `levekar run` / `demo`.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from levekar.segregation import indices as ix
from levekar.segregation.inputs import ssb_cell_corner
from levekar.segregation.knn import DEFAULT_K, knn_counts

OSLO = Path(__file__).resolve().parents[1] / "src" / "levekar" / "data" / "oslo" / "Oslo_bef_100m_2015.csv"


def rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def oslo_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    df = pd.read_csv(OSLO, sep=" ")
    x, y = ssb_cell_corner(df["rute_100m"].to_numpy())
    pop = df["sum"].to_numpy()
    rng = np.random.default_rng(2020)
    g = rng.binomial(pop, 0.08 + 0.5 / (1 + np.exp(-(x - 262_000) / 2_000)))
    return x + 50.0, y + 50.0, pop.astype(float), g.astype(float)


def norway_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from levekar.synth.presets import synthetic_geography

    geo = synthetic_geography(np.random.default_rng(2020), 356, 5_500_000, 250, 393, 50)
    c = geo.cells
    rng = np.random.default_rng(2020)
    share = rng.beta(1, 4, int(c.zone.max()) + 1)[c.zone]  # composition varies between zones
    return c.x + 125.0, c.y + 125.0, c.population.astype(float), rng.binomial(c.population, share).astype(float)


def knn_run(name: str, with_equipop: bool) -> dict:
    t0 = time.perf_counter()
    x, y, pop, g = oslo_cells() if name == "oslo" else norway_cells()
    t_cells = time.perf_counter() - t0
    knn_counts(x[:500], y[:500], pop[:500], g[:500, None], DEFAULT_K)  # JIT warm-up (cached after first run)
    t1 = time.perf_counter()
    _, g_k = knn_counts(x, y, pop, g[:, None], DEFAULT_K)
    ours = time.perf_counter() - t1
    rss_ours = rss_mib()
    row = {
        "run": f"knn {name}",
        "cells": len(x),
        "persons": int(pop.sum()),
        "k": list(DEFAULT_K),
        "cells_s": round(t_cells, 2),
        "levekar_s": round(ours, 2),
        "levekar_peak_rss_mib": rss_ours,
    }
    if with_equipop:
        from equipop.cells import CellData
        from equipop.fastcounts import run_knn_counts

        cd = CellData(E=x, N=y, n=pop, binary_sums={"g": g}, unit_size=100.0 if name == "oslo" else 250.0)
        t2 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ref = run_knn_counts(cd, k_values=list(DEFAULT_K), report=False)
        theirs = time.perf_counter() - t2
        worst = max(
            float(np.max(np.abs(ref[f"T_g_{k}"].to_numpy() - g_k[:, j, 0]) / np.maximum(ref[f"N_{k}"].to_numpy(), 1)))
            for j, k in enumerate(DEFAULT_K)
        )
        row |= {
            "equipop_s": round(theirs, 2),
            "speedup": round(theirs / ours, 1),
            "max_abs_diff_share": worst,
            "peak_rss_mib": rss_mib(),
        }
    return row


def indices_run() -> dict:
    from segregation.singlegroup import Atkinson, Dissim, Entropy, Gini, Interaction, Isolation

    row: dict = {"run": "indices"}
    for n in (10_000, 100_000):
        rng = np.random.default_rng(n)
        t = rng.integers(20, 2000, n).astype(float)
        x = rng.binomial(t.astype(int), rng.beta(1, 4, n)).astype(float)
        t1 = time.perf_counter()
        ix.single_group(x, t)
        ours = time.perf_counter() - t1
        df = pd.DataFrame({"g": x, "t": t})
        Gini(df.head(100), "g", "t")  # JIT warm-up of PySAL's Gini
        t2 = time.perf_counter()
        for cls in (Dissim, Gini, Entropy, Atkinson, Isolation, Interaction):
            cls(df, "g", "t")
        theirs = time.perf_counter() - t2
        row |= {f"units_{n}_levekar_s": round(ours, 4), f"units_{n}_pysal_s": round(theirs, 3)}
        row[f"units_{n}_speedup"] = round(theirs / ours, 1)
    row["peak_rss_mib"] = rss_mib()
    return row


def published_run(demo: Path | None) -> dict:
    import tempfile

    import duckdb
    import geopandas as gpd

    from levekar.segregation.published import published_indices
    from levekar.segregation.results import StoreSettings, store_tables

    if demo is None:
        from typer.testing import CliRunner

        from levekar.cli.main import app

        demo = Path(tempfile.mkdtemp(prefix="levekar-bench-demo-"))
        result = CliRunner().invoke(app, ["demo", "--out", str(demo)])
        assert result.exit_code == 0, result.output
    con = duckdb.connect(str(demo / "published" / "barometer.duckdb"), read_only=True)
    values = con.sql("SELECT * FROM indicator_values").df()
    members = con.sql("SELECT * FROM area_grunnkrets").df()
    levels = {
        n: f[["grunnkrets", "area_code"]] for n, f in members.groupby("level") if n not in ("grunnkrets", "country")
    }
    s = StoreSettings()
    t1 = time.perf_counter()
    table, dropped = published_indices(values, levels, replications=s.replications, seed=s.seed, min_units=s.min_units)
    ours = time.perf_counter() - t1
    geo = gpd.read_parquet(demo / "extract" / "geography.parquet")
    t2 = time.perf_counter()
    store_tables(demo / "extract", levels, geo)
    rest = time.perf_counter() - t2
    return {
        "run": "published indices (demo)",
        "rows": len(table),
        "scopes_dropped": len(dropped),
        "published_indices_s": round(ours, 2),
        "rest_of_stage_s": round(rest, 2),
        "ratio_to_rest_of_stage": round(ours / rest, 3),
        "peak_rss_mib": rss_mib(),
    }


def main(args: list[str]) -> None:
    what = args[0] if args else "oslo"
    if what == "published":
        row = published_run(Path(args[1]) if len(args) > 1 else None)
    else:
        row = indices_run() if what == "indices" else knn_run(what, "--no-equipop" not in args)
    print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1:])
