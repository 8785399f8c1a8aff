"""The same catalogue on Spark (`levekar run --engine spark`) gives the same published store as on DuckDB.

One local Spark session (two cores) is shared by the whole module; the tiny preset is run once on each engine."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.geo.areas import areas_for_extract
from levekar.indicators.engine import UNITS, _from_units
from levekar.indicators.expr import compile_expr
from levekar.indicators.facts import SPARK_SQL_CONF, backend, spark_session
from levekar.publish.run import run


@pytest.fixture(scope="module")
def spark():
    session = spark_session(
        "local[2]",
        conf={
            # tiny data: few shuffle partitions, no web UI, a small driver
            "spark.sql.shuffle.partitions": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "1g",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def stores(spark, tiny_dir, tmp_path_factory) -> dict[str, Path]:
    """The tiny extract published by each engine, with small analysis areas (so that the levels between
    grunnkrets and country have several areas), flows and segregation tables."""
    out = tmp_path_factory.mktemp("engines")
    areas_for_extract(tiny_dir, out / "areas", lo=500, hi=1500)
    areas = out / "areas" / "analysis_areas.parquet"
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    run(tiny_dir, out / "spark", areas, engine="spark", check=False)
    # the Spark run really ran on Spark (not on a DuckDB fallback)
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) > jobs_before
    run(tiny_dir, out / "duckdb", areas, engine="duckdb", check=False)
    return {"spark": out / "spark", "duckdb": out / "duckdb"}


def test_published_values_are_identical(stores):
    a = pd.read_parquet(stores["duckdb"] / "indicator_values.parquet")
    b = pd.read_parquet(stores["spark"] / "indicator_values.parquet")
    assert len(a) > 10_000 and a["suppressed"].any() and (~a["suppressed"]).any()
    assert set(a["indicator_id"]) >= {"median_equivalised_income", "grade_points", "mortality_age_standardised"}
    assert set(a["level"]) == {"grunnkrets", "analysis_area", "kommune", "country"}  # tiny has no bydeler
    assert a[a["level"] == "analysis_area"]["area_code"].nunique() > 2
    # bit for bit: no tolerance (see docs/scale.md for why the two engines agree exactly)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_published_file_is_identical(stores):
    files = sorted(p.name for p in stores["duckdb"].iterdir() if p.suffix != ".duckdb")
    assert files == sorted(p.name for p in stores["spark"].iterdir() if p.suffix != ".duckdb")
    assert {"indicator_values.csv", "flows_movers.parquet", "classification.csv", "manifest.json"} <= set(files)
    differ = [f for f in files if _digest(stores["duckdb"] / f) != _digest(stores["spark"] / f)]
    assert differ == []


def test_store_databases_hold_the_same_tables(stores):
    cons = {k: duckdb.connect(str(v / "barometer.duckdb"), read_only=True) for k, v in stores.items()}
    names = {k: sorted(r[0] for r in c.execute("SHOW TABLES").fetchall()) for k, c in cons.items()}
    assert names["duckdb"] == names["spark"] and "indicator_values" in names["duckdb"]
    for table in names["duckdb"]:
        # DuckDB keeps insertion order: the same frames written in the same order read back the same
        a, b = (cons[k].execute(f'SELECT * FROM "{table}"').df() for k in ("duckdb", "spark"))
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=table)


# values on the edge of every step where two SQL engines could round differently
EDGES = [0.00005, 1.00005, 2.675, 53821.17647058823, 0.1 + 0.2, -1.00005, -0.00015, 12345.67895, 1e9 / 3, 7.0]


def _both(spark, expr_of, frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`expr_of(table)` on DuckDB and on Spark over the same small table (default: EDGES in three groups)."""
    if frame is None:
        frame = pd.DataFrame({"g": [i % 3 for i in range(len(EDGES))], "x": EDGES})
    out = []
    for con in (backend("duckdb"), ibis.pyspark.connect(spark)):
        out.append(con.execute(expr_of(ibis.memtable(frame))).sort_values("g").reset_index(drop=True))
    return out[0], out[1]


def test_numeric_steps_agree_on_edge_values(spark):
    """The steps the catalogue's numbers pass through, on values where a half-unit rounding, a decimal-to-
    double cast or a median's interpolation could differ between the engines."""

    def steps(t):
        units = (t.x * UNITS).round().cast("decimal(38, 0)")
        g = t.group_by("g").aggregate(
            s=units.cast("decimal(38, 0)").sum(),
            ss=(units * units).cast("decimal(38, 0)").sum(),
            med=t.x.median(),
            xs=t.x.collect().sort(),
        )
        return g.select("g", num=_from_units(g.s, UNITS), ss=_from_units(g.ss, UNITS * UNITS), med=g.med, first=g.xs[0])

    a, b = _both(spark, steps)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # and the sums are the exact ones: half away from zero at the fourth decimal of each value's double
    exact = {}
    for g, x in zip([i % 3 for i in range(len(EDGES))], EDGES, strict=True):
        u = Decimal(x * UNITS).to_integral_value(rounding="ROUND_HALF_UP")
        exact[g] = exact.get(g, 0) + int(u)
    for g, total in exact.items():
        got = a.loc[a["g"] == g, "num"].iloc[0]
        assert math.isclose(got, total / UNITS, rel_tol=2**-52, abs_tol=0), (g, got, total)
    assert np.isfinite(a["ss"]).all()


def test_medians_of_two_middle_values_agree(spark):
    """SQL `median` (the year's median income) interpolates between the two middle values on both engines;
    also where the two could round differently: of opposite signs, or far apart."""
    pairs = [(-1.0, 1e16 + 2), (0.1, 0.7), (1e-300, 3.0), (373295.4285714285, 373295.4285714286), (-5.5, -2.25)]
    frame = pd.DataFrame({"g": [g for g, p in enumerate(pairs) for _ in p], "x": [x for p in pairs for x in p]})
    a, b = _both(spark, lambda t: t.group_by("g").aggregate(med=t.x.median()), frame)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the correctly rounded midpoint, not lo + (hi − lo)/2
    assert a["med"].iloc[0] == 5e15


def test_division_by_zero_is_null_on_both_engines(spark):
    """A definition's division by zero is unknown on both engines (DuckDB alone would give ±inf or NaN,
    Spark in ANSI mode an error)."""
    assert spark.conf.get("spark.sql.ansi.enabled") == SPARK_SQL_CONF["spark.sql.ansi.enabled"] == "true"

    def ratio(t):
        t = t.mutate(zero=t.x - t.x)
        return t.select("g", r=compile_expr("x / zero", t), ok=compile_expr("x / (zero + 2)", t))

    a, b = _both(spark, ratio)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["r"].isna().all() and sorted(a["ok"]) == sorted(x / 2 for x in EDGES)


def test_cli_refuses_an_unknown_engine(tiny_dir, tmp_path):
    result = CliRunner().invoke(app, ["run", str(tiny_dir), "--out", str(tmp_path / "x"), "--engine", "polars"])
    assert result.exit_code == 2 and "unknown engine 'polars'" in result.output
    assert not (tmp_path / "x").exists()
