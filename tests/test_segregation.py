"""Segregation: indices against PySAL `segregation`, K-nearest counts against equipop (both test-only oracles),
on the real SSB Oslo grid with a derived group and on generated inputs; the H decomposition identity;
inference; the command line (round trip, determinism, bad input)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.segregation import indices as ix
from levekar.segregation.inputs import register_cells, ssb_cell_corner, ssb_cell_id
from levekar.segregation.knn import knn_counts, knn_table, profile

# the embedded copy of SSB's 100 m Oslo grid (src/levekar/data/oslo/SOURCE.md), so the test runs in any clone
OSLO_GRID = Path(__file__).resolve().parents[1] / "src" / "levekar" / "data" / "oslo" / "Oslo_bef_100m_2015.csv"
runner = CliRunner()
KS = [200 * 2**j for j in range(9)]


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


@pytest.fixture(scope="module")
def oslo() -> pd.DataFrame:
    """SSB's 100 m Oslo grid (2015, © SSB, CC BY 4.0) with a derived group: a deterministic binomial draw
    whose share rises from west to east (Oslo's east–west divide) plus a few dense enclaves."""
    df = pd.read_csv(OSLO_GRID, sep=" ")
    x, y = ssb_cell_corner(df["rute_100m"].to_numpy())
    rng = np.random.default_rng(2020)
    share = 0.08 + 0.5 / (1 + np.exp(-(x - 262_000) / 2_000)) + 0.3 * (rng.random(len(x)) < 0.03)
    return pd.DataFrame(
        {"ssb_id": df["rute_100m"], "x": x, "y": y, "population": df["sum"], "group": rng.binomial(df["sum"], share)}
    )


# --- indices ------------------------------------------------------------------------------------------------


def pysal_single(x: np.ndarray, t: np.ndarray) -> dict[str, float]:
    from segregation.singlegroup import Dissim, Entropy, Interaction, Isolation
    from segregation.singlegroup.atkinson import _atkinson
    from segregation.singlegroup.gini import _gini_vecp

    df = pd.DataFrame({"g": x, "t": t})
    out = {
        "dissimilarity": Dissim(df, "g", "t").statistic,
        # PySAL's own pair loop, run as Python: its numba build takes ~15 s to compile in every session
        "gini": float(_gini_vecp.py_func(x.astype(float), t.astype(float))),
        "entropy": Entropy(df, "g", "t").statistic,
        "isolation": Isolation(df, "g", "t").statistic,
        "interaction": Interaction(df, "g", "t").statistic,
    }
    # PySAL's Atkinson class swallows b (always 0.5); its _atkinson function takes it
    for b in ix.ATKINSON_B:
        out[f"atkinson_{b}"] = _atkinson(df, "g", "t", b=b)[0]
    return out


def test_single_group_indices_equal_pysal_on_oslo_units(oslo):
    # 500 m units of the real grid: about 1 700 units, real population sizes
    unit = ssb_cell_id(oslo["x"], oslo["y"], 500)
    units = oslo.groupby(unit)[["group", "population"]].sum()
    x, t = units["group"].to_numpy(), units["population"].to_numpy()
    ours, ref = ix.single_group(x, t), pysal_single(x, t)
    for key, value in ref.items():
        assert close(ours[key], value), (key, ours[key], value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 400), st.floats(0, 1)), min_size=2, max_size=60).filter(
        lambda u: 0 < sum(round(t * s) for t, s in u) < sum(t for t, _ in u)
    )
)
def test_single_group_indices_equal_pysal_generated(units):
    t = np.array([u[0] for u in units], dtype=float)
    x = np.array([round(u[0] * u[1]) for u in units], dtype=float)
    ours, ref = ix.single_group(x, t), pysal_single(x, t)
    for key, value in ref.items():
        assert close(ours[key], value) or abs(ours[key] - value) < 1e-13, (key, ours[key], value)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 5).flatmap(
        lambda g: st.lists(st.lists(st.integers(0, 200), min_size=g, max_size=g), min_size=2, max_size=40)
    ),
    st.data(),
)
def test_multigroup_equal_pysal_and_h_decomposes(rows, data):
    from segregation.multigroup import MultiDissim, MultiInfoTheory

    c = np.array(rows, dtype=float)
    if (c.sum(axis=0) == 0).any() or (c.sum(axis=1) == 0).any():
        return  # PySAL divides by zero there; so would any definition
    df = pd.DataFrame(c, columns=[f"g{i}" for i in range(c.shape[1])])
    ours = ix.multigroup(c)
    assert close(ours["multigroup_dissimilarity"], MultiDissim(df, list(df.columns)).statistic)
    assert close(ours["multigroup_information_theory"], MultiInfoTheory(df, list(df.columns)).statistic)
    region = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(c), max_size=len(c))))
    d = ix.decompose_information_theory(c, region)
    assert abs(d.total - (d.between + d.within)) <= 1e-12 * max(1.0, d.total)
    assert close(float((d.regions["weight"] * d.regions["h"]).sum()), d.within) or d.within < 1e-15
    assert d.between >= -1e-12 and d.within >= -1e-12


def test_h_decomposition_identity_within_kommuner_on_oslo(oslo):
    # units: 500 m squares, "kommuner": 4 km squares
    unit = ssb_cell_id(oslo["x"], oslo["y"], 500)
    units = (
        oslo.assign(unit=unit)
        .groupby("unit")[["group", "population", "x", "y"]]
        .agg({"group": "sum", "population": "sum", "x": "min", "y": "min"})
    )
    region = ssb_cell_id(units["x"], units["y"], 4000)
    c = np.column_stack([units["group"], units["population"] - units["group"]])
    d = ix.decompose_information_theory(c, region)
    assert close(d.total, ix.entropy(units["group"].to_numpy(), units["population"].to_numpy()))
    assert close(d.total, d.between + d.within, 1e-12)
    assert 0 < d.between < d.total


def test_inference_separates_segregation_from_chance():
    rng = np.random.default_rng(1)
    t = rng.integers(50, 300, 400)
    segregated = rng.binomial(t, np.where(np.arange(400) < 200, 0.1, 0.5))
    random = rng.binomial(t, 0.3)
    seg = ix.infer(np.column_stack([segregated, t - segregated]), 199, seed=5)
    ran = ix.infer(np.column_stack([random, t - random]), 199, seed=5)
    d = seg["dissimilarity"]
    assert d["ci_low"] < d["value"] < d["ci_high"] and d["p_value"] == 1 / 200
    assert ran["dissimilarity"]["p_value"] > 0.05
    assert abs(ran["dissimilarity"]["null_mean"] - ran["dissimilarity"]["value"]) < 0.03  # D's small-unit bias
    assert seg == ix.infer(np.column_stack([segregated, t - segregated]), 199, seed=5)  # same seed, same numbers
    pair = np.column_stack([segregated, t - segregated])
    same = ix.compare(pair, pair, 199, seed=3)
    assert same["dissimilarity"]["difference"] == 0 and same["dissimilarity"]["p_value"] == 1.0
    moved = ix.compare(np.column_stack([random, t - random]), pair, 199, seed=3)
    assert moved["dissimilarity"]["p_value"] == 1 / 200 and moved["dissimilarity"]["ci_low"] > 0


# --- K-nearest neighbourhoods -------------------------------------------------------------------------------


def equipop_counts(x, y, pop, grp, ks, mode):
    from equipop.cells import CellData
    from equipop.fastcounts import run_knn_counts

    cd = CellData(
        E=np.asarray(x, float),
        N=np.asarray(y, float),
        n=np.asarray(pop, float),
        binary_sums={f"g{j}": np.asarray(grp[:, j], float) for j in range(grp.shape[1])},
        unit_size=100.0,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        out = run_knn_counts(cd, k_values=list(ks), overshoot_mode=mode, report=False)
    n_k = np.column_stack([out[f"N_{k}"] for k in ks])
    g_k = np.stack([np.column_stack([out[f"T_g{j}_{k}"] for j in range(grp.shape[1])]) for k in ks], axis=1)
    return n_k, g_k


def assert_counts_equal(ours, ref):
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("convention,mode", [("exact", "proportional"), ("whole-cells", "whole")])
def test_knn_counts_equal_equipop_on_oslo_grid(oslo, convention, mode):
    # the central 12 × 12 km of the real grid (about half of Oslo's cells), all nine K
    part = oslo[(oslo["x"].between(256_000, 268_000)) & (oslo["y"].between(6_644_000, 6_656_000))]
    grp = np.column_stack([part["group"], part["population"] - part["group"]])
    args = (part["x"] + 50, part["y"] + 50, part["population"], grp, KS)
    assert_counts_equal(knn_counts(*args, convention=convention), equipop_counts(*args, mode))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 40), st.floats(0, 1)),
        min_size=1,
        max_size=60,
        unique_by=lambda c: (c[0], c[1]),
    ),
    st.lists(st.integers(1, 300), min_size=1, max_size=5, unique=True),
    st.sampled_from([("exact", "proportional"), ("whole-cells", "whole")]),
    st.sampled_from([100.0, 37.5]),
)
def test_knn_counts_equal_equipop_generated(cells, ks, conv, spacing):
    x = np.array([c[0] for c in cells]) * spacing
    y = np.array([c[1] for c in cells]) * spacing
    pop = np.array([c[2] for c in cells], dtype=float)
    grp = np.array([[round(c[2] * c[3])] for c in cells], dtype=float)
    ks = sorted(ks)
    assert_counts_equal(knn_counts(x, y, pop, grp, ks, conv[0]), equipop_counts(x, y, pop, grp, ks, conv[1]))


def test_knn_irregular_points_and_shared_coordinates_equal_equipop():
    rng = np.random.default_rng(4)
    x = np.round(rng.uniform(0, 3000, 400), 1)
    y = np.round(rng.uniform(0, 3000, 400), 1)
    x[:20], y[:20] = x[20:40], y[20:40]  # cells sharing a point: one ring
    pop = rng.integers(1, 60, 400).astype(float)
    grp = rng.binomial(pop.astype(int), 0.3)[:, None].astype(float)
    for conv, mode in (("exact", "proportional"), ("whole-cells", "whole")):
        ks = [10, 100, 1000, 20_000]  # the last is more than everybody: equipop's partial
        assert_counts_equal(knn_counts(x, y, pop, grp, ks, conv), equipop_counts(x, y, pop, grp, ks, mode))


def test_exact_neighbourhoods_hold_k_persons_and_profile_is_pysal_on_weighted_units(oslo):
    part = oslo[(oslo["x"].between(258_000, 266_000)) & (oslo["y"].between(6_646_000, 6_654_000))]
    table = knn_table(part, "x", "y", "population", ["group"], [200, 1600, 12800])
    for k in (200, 1600, 12800):
        np.testing.assert_allclose(table[f"n_{k}"], k, rtol=1e-12)
    prof = profile(table, ["group"])
    assert list(prof.columns[:5]) == ["k", "group", "dissimilarity", "entropy", "isolation"]
    w = table["n_local"].to_numpy()
    xg = w * table["group_1600"].to_numpy() / 1600
    ref = pysal_single(xg, w)
    row = prof[prof["k"] == 1600].iloc[0]
    assert close(row["dissimilarity"], ref["dissimilarity"]) and close(row["entropy"], ref["entropy"])
    assert close(row["isolation"], ref["isolation"])
    assert row["p10"] <= row["p50"] <= row["p90"]
    assert prof["dissimilarity"].is_monotonic_decreasing  # larger neighbourhoods even out


# --- grid cells ---------------------------------------------------------------------------------------------


def test_ssb_cell_id_matches_ssb_files():
    # SOURCE.md: 22536006661600 is the 100 m cell with lower-left corner 253 600, 6 661 600;
    # the 1 km GML: ssbid1000M 22560006672000 is the square 256 000–257 000, 6 672 000–6 673 000
    assert ssb_cell_id(253_650.0, 6_661_699.9, 100) == 22536006661600
    assert ssb_cell_id(256_999.0, 6_672_000.0, 1000) == 22560006672000
    assert ssb_cell_corner(np.array([22536006661600]))[0][0] == 253_600


def test_register_cells_from_the_tiny_extract(tiny_dir):
    cells, unplaced = register_cells(tiny_dir, size=250)
    assert (cells["x"] % 250 == 0).all() and (cells["immigrant_background"] <= cells["population"]).all()
    assert (cells["ssb_id"] == ssb_cell_id(cells["x"], cells["y"], 250)).all()
    persons = pq.read_table(tiny_dir / "persons.parquet").to_pandas()
    assert int(cells["population"].sum()) + unplaced == int((persons["year"] == persons["year"].max()).sum())


# --- command line -------------------------------------------------------------------------------------------


def test_cli_indices_round_trip(tmp_path, oslo):
    unit = ssb_cell_id(oslo["x"], oslo["y"], 1000)
    units = oslo.assign(unit=unit).groupby("unit", as_index=False)[["group", "population"]].sum()
    units["other"] = units["population"] - units["group"]
    units["kommune"] = units["unit"] // 10**12
    units.to_csv(tmp_path / "units.csv", index=False)
    later = units.assign(group=(units["group"] * 0.9).round(), other=lambda d: d["population"] - d["group"])
    later.to_parquet(tmp_path / "later.parquet")
    out = tmp_path / "indices.json"
    args = ["segregation", "indices", "--input", str(tmp_path / "units.csv"), "--unit-column", "unit"]
    args += ["--group-column", "group", "--total-column", "population", "--groups", "group,other"]
    args += ["--within", "kommune", "--replications", "49", "--compare", str(tmp_path / "later.parquet")]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    for key in ("dissimilarity", "isolation", "interaction", "entropy", "gini", "atkinson"):
        assert key in got
    assert close(got["dissimilarity"], ix.dissimilarity(units["group"].to_numpy(), units["population"].to_numpy()))
    assert set(got["atkinson"]) == {"0.1", "0.5", "0.9"}
    assert close(got["multigroup"]["dissimilarity"], got["dissimilarity"])  # two groups: Sakoda's D is D
    dec = got["decomposition"]["group"]
    assert close(dec["total"], dec["between"] + dec["within"], 1e-12)
    assert "p_value" in got["inference"]["indices"]["gini"] and "difference" in got["comparison"]["indices"]["gini"]
    first = out.read_bytes()
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
    assert out.read_bytes() == first


def test_cli_knn_round_trip_is_deterministic(tmp_path, oslo):
    part = oslo[(oslo["x"].between(258_000, 262_000)) & (oslo["y"].between(6_646_000, 6_650_000))]
    part.to_parquet(tmp_path / "cells.parquet")
    out, prof = tmp_path / "knn.parquet", tmp_path / "profile.csv"
    args = ["segregation", "knn", "--cells", str(tmp_path / "cells.parquet"), "--x-column", "x", "--y-column", "y"]
    args += ["--population-column", "population", "--group-columns", "group", "--k", "200,400,800"]
    args += ["--out", str(out), "--profile", str(prof)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pandas()
    assert list(table.columns) == ["x", "y", "n_local", "group_local"] + [
        c for k in (200, 400, 800) for c in (f"n_{k}", f"group_{k}")
    ]
    assert len(table) == int((part["population"] > 0).sum())
    profile_rows = pd.read_csv(prof)
    assert list(profile_rows["k"]) == [200, 400, 800]
    first = (out.read_bytes(), prof.read_bytes())
    assert runner.invoke(app, args).exit_code == 0
    assert (out.read_bytes(), prof.read_bytes()) == first


@pytest.mark.parametrize(
    "change,expect",
    [
        (lambda d: d.drop(columns=["group"]), ["cells.csv", "'group'", "population"]),
        (
            lambda d: d.assign(population=d["population"].astype(str).where(d.index != 2, "many")),
            ["'population'", "row 3", "many"],
        ),
        (lambda d: d.assign(group=d["population"] + 1), ["'group'", "exceeds", "row 1"]),
        (lambda d: d.assign(x=np.where(d.index == 4, np.nan, d["x"])), ["'x'", "row 5"]),
    ],
)
def test_cli_knn_bad_input_names_file_column_example_and_writes_nothing(tmp_path, oslo, change, expect):
    change(oslo.head(50).reset_index(drop=True)).to_csv(tmp_path / "cells.csv", index=False)
    out = tmp_path / "knn.parquet"
    args = ["segregation", "knn", "--cells", str(tmp_path / "cells.csv"), "--x-column", "x", "--y-column", "y"]
    args += ["--population-column", "population", "--group-columns", "group", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    for text in expect:
        assert text in result.output, result.output
    assert not out.exists()


def test_cli_indices_and_knn_usage_errors(tmp_path):
    pd.DataFrame({"unit": [1, 1], "g": [1, 2], "t": [3, 4]}).to_csv(tmp_path / "u.csv", index=False)
    out = tmp_path / "x.json"
    base = ["segregation", "indices", "--unit-column", "unit", "--group-column", "g", "--total-column", "t"]
    dup = runner.invoke(app, [*base, "--input", str(tmp_path / "u.csv"), "--out", str(out)])
    assert dup.exit_code == 2 and "'unit'" in dup.output and "1" in dup.output
    missing = runner.invoke(app, [*base, "--input", str(tmp_path / "none.csv"), "--out", str(out)])
    assert missing.exit_code == 2 and "not found" in missing.output
    knn = ["segregation", "knn", "--cells", str(tmp_path / "u.csv"), "--x-column", "g", "--y-column", "t"]
    knn += ["--population-column", "t", "--group-columns", "g", "--out", str(tmp_path / "k.parquet")]
    bad_conv = runner.invoke(app, [*knn, "--convention", "nearest"])
    assert bad_conv.exit_code == 2 and "exact, whole-cells" in bad_conv.output
    bad_k = runner.invoke(app, [*knn, "--k", "200,lots"])
    assert bad_k.exit_code == 2 and "200,400" in bad_k.output
    assert not out.exists() and not (tmp_path / "k.parquet").exists()
