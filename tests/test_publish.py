"""Comparisons, labels and the published store (work in progress for issue 4)."""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.indicators.compare import label, labels, relative_difference, significance
from levekar.publish.run import run
from levekar.schema.validate import ExtractError


def test_labels_reproduce_the_reports_comparison_tables(reference):
    for row in reference["comparison_tables"]:
        scale = "price" if "price" in row["indicator"] else "share"
        assert label(row["relative"], scale) == row["label"], row


def test_relative_difference_and_significance():
    assert relative_difference([15.0, 10.0, 5.0], [10.0, 10.0, 0.0])[:2].tolist() == [50.0, 0.0]
    assert np.isnan(relative_difference([5.0], [0.0])[0])
    assert significance([11, 8, 9], [14, 9.5, 12], [10, 10, 10]).tolist() == ["higher", "lower", "ns"]
    assert label(2.0) == "Om lag samme andel" and label(-250) == "Svært mye lavere andel"
    rel = np.array([2.0, -6, 16, 68, 127, -250, np.nan, 0.4, -0.4])
    assert labels(rel).tolist() == [label(r) for r in rel]


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.suffix != ".duckdb"}


def test_store_is_deterministic_and_complete(tiny_dir, tmp_path):
    a = tmp_path / "a"
    summary = run(tiny_dir, a)
    run(tiny_dir, tmp_path / "b")
    assert _hashes(a) == _hashes(tmp_path / "b")
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["rows"]["indicator_values"] == summary["rows"]
    assert manifest["rows"]["classification"] == summary["classification"] > 0
    assert {"classification.csv", "classification.parquet"} <= set(_hashes(a))
    con = duckdb.connect(str(a / "barometer.duckdb"), read_only=True)
    cols = {r[0] for r in con.execute("DESCRIBE indicator_values").fetchall()}
    assert {
        "indicator_id",
        "level",
        "area_code",
        "year",
        "numerator",
        "denominator",
        "value",
        "ci_low",
        "ci_high",
        "suppressed",
        "value_kommune",
        "value_country",
        "relative_difference_country",
        "label",
    } <= cols
    # suppressed cells carry no number anywhere
    leaked = con.execute(
        "SELECT count(*) FROM indicator_values WHERE suppressed AND "
        "(numerator IS NOT NULL OR denominator IS NOT NULL OR value IS NOT NULL)"
    ).fetchone()[0]
    assert leaked == 0
    csv = pd.read_csv(a / "indicator_values.csv", dtype=str)
    assert (csv.loc[csv["value"] == ":", "numerator"] == ":").all()
    # every published country value equals the sum of its kommuner
    v = pd.read_parquet(a / "indicator_values.parquet")
    assert set(v.pooled_years) == {1, 3}  # tiny has 2016–2018: one pooled window
    tot = v[(v.breakdown == "total") & v.level.isin(["kommune", "country"]) & (v.pooled_years == 1)]
    complete = ~tot[tot.level == "kommune"].groupby(["indicator_id", "year"])["suppressed"].any()
    sums = tot[tot.level == "kommune"].groupby(["indicator_id", "year"])["denominator"].sum()[complete]
    country = tot[tot.level == "country"].set_index(["indicator_id", "year"])["denominator"].reindex(sums.index)
    assert len(sums) > 10 and (sums == country).all()
    levels = set(v.level)
    assert {"grunnkrets", "kommune", "country"} <= levels


def test_invalid_extract_writes_nothing(tiny_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    (bad / "households.parquet").unlink()
    with pytest.raises(ExtractError):
        run(bad, tmp_path / "store")
    assert not (tmp_path / "store").exists()
    result = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "store")])
    assert result.exit_code == 2 and "households.parquet" in result.output
    assert not (tmp_path / "store").exists()


def test_demo_publishes_the_store(demo_dir):
    store = demo_dir.parent / "published"
    con = duckdb.connect(str(store / "barometer.duckdb"), read_only=True)
    levels = {r[0] for r in con.execute("SELECT DISTINCT level FROM indicator_values").fetchall()}
    assert {"grunnkrets", "analysis_area", "oslo_delbydel", "bydel", "kommune", "country"} <= levels
    top = con.execute(
        "SELECT max(value) FROM indicator_values WHERE indicator_id = 'children_low_income_eu60' "
        "AND level = 'analysis_area' AND year = 2018 AND breakdown = 'total'"
    ).fetchone()[0]
    assert top > 25  # some areas over the report's 'moderate' screening threshold


def test_areas_carry_the_geographys_names(demo_dir):
    """Each area's `name` is the extract's: grunnkrets, bydel and kommune names from the geography, zone
    names from the zonings; analysis areas have none (and the country takes no made-up one)."""
    store = demo_dir.parent / "published"
    con = duckdb.connect(str(store / "barometer.duckdb"), read_only=True)
    areas = con.execute("SELECT level, area_code, name FROM areas").df()
    con.close()
    geo = pd.read_parquet(demo_dir / "geography.parquet")
    zon = pd.read_parquet(demo_dir / "zonings.parquet")
    named = {(lv, c): n for lv, c, n in areas.itertuples(index=False)}
    for level, col in (("grunnkrets", "grunnkrets_name"), ("bydel", "bydel_name"), ("kommune", "kommune_name")):
        want = geo.dropna(subset=[level]).drop_duplicates(level).set_index(level)[col]
        got = {c: named[(level, c)] for c in want.index if (level, c) in named}
        assert got and all(got[c] == want[c] for c in got), level
    for zoning, f in zon.groupby("zoning"):
        want = f.drop_duplicates("zone").set_index("zone")["zone_name"]
        assert all(named[(zoning, z)] == want[z] for z in want.index if (zoning, z) in named)
    assert areas[areas["level"] == "analysis_area"]["name"].isna().all()
    assert areas[areas["level"] == "country"]["name"].isna().all()
    # the GeoParquet carries the same names
    geo_areas = pd.read_parquet(store / "areas.geo.parquet", columns=["level", "area_code", "name"])
    assert geo_areas.set_index(["level", "area_code"])["name"].equals(areas.set_index(["level", "area_code"])["name"])
