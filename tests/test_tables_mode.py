"""Aggregate-table mode: the store built from numerators and denominators per grunnkrets and year (an
ordered SSB delivery) is the microdata run's store for every indicator that aggregates exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.geo.inputs import InputError
from levekar.indicators.catalogue import load_catalogue
from levekar.indicators.tables import (
    aggregable,
    compute_from_tables,
    read_geography,
    read_tables,
    tables_from_extract,
)
from levekar.io import write_parquet
from levekar.publish.run import run, run_tables
from levekar.publish.store import publishable

KEYS = ["indicator_id", "level", "area_code", "year", "pooled_years", "breakdown", "breakdown_value"]
COMPARED = ["numerator", "denominator", "value", "ci_low", "ci_high", "suppressed", "value_kommune", "value_country"]
COMPARED += ["relative_difference_country", "label", "significance_kommune", "significance_country", "reliable"]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="module")
def tiny_tables(tiny_dir, catalogue, tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "tables.parquet"
    write_parquet(pa.Table.from_pandas(tables_from_extract(tiny_dir, catalogue), preserve_index=False), path)
    return path


def _same(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> None:
    j = a.merge(b, on=KEYS, how="outer", suffixes=("_micro", "_tables"), indicator=True)
    assert (j["_merge"] == "both").all(), j[j["_merge"] != "both"][KEYS].head()
    for c in columns:
        x, y = j[f"{c}_micro"], j[f"{c}_tables"]
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            same = np.isclose(x.astype(float), y.astype(float), rtol=1e-12, atol=0, equal_nan=True)
        else:
            same = ((x == y) | (x.isna() & y.isna())).to_numpy()
        assert same.all(), f"{c}: {j.loc[~same, [*KEYS, f'{c}_micro', f'{c}_tables']].head()}"


def test_table_counts_are_what_they_say(tiny_dir, tiny_tables):
    """The delivery's children_share counts are the persons 0–17 among all residents, per grunnkrets."""
    t = pd.read_parquet(tiny_tables)
    p = pd.read_parquet(tiny_dir / "persons.parquet", columns=["year", "grunnkrets", "birth_year"])
    age = p["year"] - p["birth_year"] - 1
    direct = p.assign(child=age.between(0, 17)).groupby(["grunnkrets", "year"])["child"].agg(["sum", "size"])
    mine = t[(t.indicator_id == "children_share") & (t.breakdown == "total")].set_index(["grunnkrets", "year"])
    assert (mine["numerator"] == direct["sum"].reindex(mine.index)).all()
    assert (mine["denominator"] == direct["size"].reindex(mine.index)).all()


def test_store_from_tables_equals_microdata_store(tiny_dir, tiny_tables, catalogue, tmp_path):
    micro = run(tiny_dir, tmp_path / "micro", check=False)
    summary = run_tables(tiny_tables, tiny_dir / "geography.parquet", tmp_path / "tables", synthetic=True)
    a = pd.read_parquet(tmp_path / "micro" / "indicator_values.parquet")
    b = pd.read_parquet(tmp_path / "tables" / "indicator_values.parquet")
    exact = set(aggregable(catalogue).values())
    assert set(b["indicator_id"]) == exact and summary["indicators"] == len(exact)
    assert {"children_low_income_eu60", "neet_20_29", "neet_30_59", "low_education_30_59"} <= exact
    assert "median_equivalised_income" not in exact and "in_movers" not in exact
    _same(a[a["indicator_id"].isin(exact)], b, COMPARED)
    assert summary["levels"] == micro["levels"]
    # the classification is made from the published values: the same where it only uses exact indicators
    ca = pd.read_parquet(tmp_path / "micro" / "classification.parquet")
    cb = pd.read_parquet(tmp_path / "tables" / "classification.parquet")
    keys = ["scheme", "level", "area_code", "year"]
    nou = ca[ca.scheme == "nou_screening"].merge(cb[cb.scheme == "nou_screening"], on=keys)
    assert len(nou) and (nou["category_x"] == nou["category_y"]).all()


def test_unknown_input_cells_are_suppressed_upwards(tiny_tables, tiny_dir, catalogue, tmp_path):
    t = pd.read_parquet(tiny_tables)
    t = t[t.indicator_id == "neet_30_59"].astype({"numerator": object, "denominator": object})
    hit = (t.breakdown == "total") & (t.year == t.year.max())
    first = t[hit].index[0]
    t.loc[first, "numerator"] = ":"  # SSB suppressed this count
    path = tmp_path / "t.csv"
    t.to_csv(path, sep=";", index=False)
    _, unknown = read_tables(path, catalogue)
    assert len(unknown) == 1
    run_tables(path, tiny_dir / "geography.parquet", tmp_path / "store")
    v = pd.read_parquet(tmp_path / "store" / "indicator_values.parquet")
    gk, year = t.loc[first, "grunnkrets"], int(t.loc[first, "year"])
    cells = v[(v.year == year) & (v.breakdown == "total") & (v.pooled_years == 1)]
    for level, code in (("grunnkrets", gk), ("kommune", gk[:4]), ("country", "0")):
        row = cells[(cells.level == level) & (cells.area_code == code)].iloc[0]
        assert row["suppressed"] and np.isnan(row["value"]), (level, code)
    other = cells[(cells.level == "grunnkrets") & (cells.area_code != gk)]
    assert other["value"].notna().any()


@pytest.mark.parametrize(
    ("edit", "column", "message"),
    [
        (lambda t: t.assign(indicator_id="median_equivalised_income"), "indicator_id", "cannot be aggregated"),
        (lambda t: t.assign(indicator_id="no_such"), "indicator_id", "not in the catalogue"),
        (lambda t: t.assign(grunnkrets="0301"), "grunnkrets", "8-digit"),
        (lambda t: t.assign(numerator=t.denominator + 1), "numerator", "larger than the denominator"),
        (lambda t: t.assign(numerator="x"), "numerator", "neither a number nor an SSB symbol"),
        (lambda t: pd.concat([t, t]), "indicator_id", "more than one row"),
        (lambda t: t.assign(breakdown="age"), "breakdown", "not allowed"),
    ],
)
def test_bad_tables_are_refused_with_located_errors(tiny_tables, tiny_dir, tmp_path, edit, column, message):
    t = pd.read_parquet(tiny_tables)
    t = edit(t[(t.indicator_id == "neet_20_29")].head(50).astype({"numerator": object}))
    path = tmp_path / "bad.csv"
    t.to_csv(path, sep=";", index=False)
    with pytest.raises(InputError) as e:
        run_tables(path, tiny_dir / "geography.parquet", tmp_path / "store")
    p = e.value.problems[0]
    assert p.file == "bad.csv" and p.column == column and message in str(e.value) and p.example
    assert not (tmp_path / "store").exists()
    if column != "grunnkrets":
        return  # the command once is enough
    r = CliRunner().invoke(
        app, ["run-tables", str(path), "--geography", str(tiny_dir / "geography.parquet"), "--out", str(tmp_path / "s")]
    )
    assert r.exit_code == 2 and "bad.csv" in r.output and not (tmp_path / "s").exists()


def test_demo_values_from_tables(demo_dir, catalogue):
    """The embedded default: the delivery SSB would make for Oslo gives the demo store's published values at
    every level — for the first screening indicator and a mean, to keep it quick (disclosure control works
    per indicator, so the others do not change these; the whole store path is tested on the tiny preset)."""
    ids = {"children_low_income_eu60", "grade_points"}
    few = replace(catalogue, indicators=tuple(i for i in catalogue.indicators if i.id in ids))
    counts = tables_from_extract(demo_dir, few)
    geography = read_geography(demo_dir / "geography.parquet")
    areas = pd.read_parquet(demo_dir.parent / "areas" / "analysis_areas.parquet")
    zonings = pd.read_parquet(demo_dir / "zonings.parquet") if (demo_dir / "zonings.parquet").exists() else None
    values, *_ = compute_from_tables(
        counts, counts.iloc[:0], pd.DataFrame(geography.drop(columns="geometry")), few, areas, zonings
    )
    a = pd.read_parquet(demo_dir.parent / "published" / "indicator_values.parquet")
    b = publishable(values)
    assert {"analysis_area", "bydel", "kommune"} <= set(b["level"]) and set(b["indicator_id"]) == ids
    _same(a[a["indicator_id"].isin(ids)], b, ["numerator", "denominator", "value", "ci_low", "ci_high", "suppressed"])
