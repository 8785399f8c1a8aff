"""Analysis areas: contiguity, band, coverage, borders, determinism, years, zonings; spopt as an oracle."""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse.csgraph import connected_components
from typer.testing import CliRunner

from levekar.cli.main import app
from levekar.geo.adjacency import join_islands, polygon_adjacency
from levekar.geo.areas import build_areas, extend_over_years, validate_zoning, write_areas, zoning_level
from levekar.geo.inputs import InputError

CRS = "EPSG:25833"


def lattice(nx: int, ny: int, pop, size: float = 500.0, **cols) -> gpd.GeoDataFrame:
    """nx × ny square units, ids u000…, populations `pop` (scalar or array in row-major order)."""
    xs, ys = np.meshgrid(np.arange(nx), np.arange(ny))
    xs, ys = xs.ravel(), ys.ravel()
    geoms = shapely.box(xs * size, 6_600_000 + ys * size, (xs + 1) * size, 6_600_000 + (ys + 1) * size)
    gdf = gpd.GeoDataFrame(
        {
            "unit": [f"u{i:03d}" for i in range(len(xs))],
            "x": xs,
            "y": ys,
            "population": np.broadcast_to(np.asarray(pop, dtype=float), len(xs)).copy(),
        },
        geometry=geoms,
        crs=CRS,
    )
    for k, v in cols.items():
        gdf[k] = v(xs, ys) if callable(v) else v
    return gdf


def check_areas(units: gpd.GeoDataFrame, result, within=(), lo=5000, hi=10000, adjacency="rook"):
    """Independent checks: coverage, contiguity (polygon adjacency plus the reported island links), borders,
    band (except areas the report explains)."""
    a = result.assignment
    assert sorted(a["unit_id"]) == sorted(units["unit"]), "every unit in exactly one area"
    area_of = dict(zip(a["unit_id"], a["area_id"], strict=True))
    group = units[list(within)].astype(str).agg("-".join, axis=1).to_numpy() if within else np.zeros(len(units))
    adj = polygon_adjacency(units.geometry.to_numpy(), group, adjacency).tolil()
    pos = {u: i for i, u in enumerate(units["unit"])}
    for link in result.report["islands_joined"]:
        adj[pos[link["unit"]], pos[link["to"]]] = adj[pos[link["to"]], pos[link["unit"]]] = 1
    adj = adj.tocsr()
    labels = units["unit"].map(area_of).to_numpy()
    for area in np.unique(labels):
        idx = np.flatnonzero(labels == area)
        assert connected_components(adj[idx][:, idx], directed=False)[0] == 1, f"{area} not contiguous"
        if within:
            assert len(set(group[idx])) == 1, f"{area} crosses a border"
    pop = units.groupby(labels)["population"].sum()
    explained = {o["area_id"] for o in result.report["out_of_band"] if o["reason"]}
    bad = pop[((pop < lo) | (pop > hi)) & ~pop.index.isin(explained)]
    assert bad.empty, bad
    return pop


def test_lattice_all_in_band_and_many_areas():
    units = lattice(10, 10, 1000)
    result = build_areas(units, units["population"], "unit", [], 5000, 10000)
    pop = check_areas(units, result)
    assert ((pop >= 5000) & (pop <= 10000)).all()
    assert len(pop) >= 16  # at most 20 areas of 5 000 exist


def test_borders_are_respected_and_ids_follow_them():
    units = lattice(12, 6, 900, kommune=lambda x, y: np.where(x < 6, "0301", "4601"))
    result = build_areas(units, units["population"], "unit", ["kommune"], 5000, 10000)
    check_areas(units, result, within=["kommune"])
    assert all(a.startswith(k) for a, k in zip(result.assignment["area_id"], result.assignment["kommune"], strict=True))


def test_a_unit_above_the_ceiling_is_its_own_area():
    pop = np.full(36, 1200.0)
    pop[14] = 15_000
    units = lattice(6, 6, pop)
    result = build_areas(units, units["population"], "unit", [], 5000, 10000)
    check_areas(units, result)
    (big,) = [o for o in result.report["out_of_band"] if o["population"] == 15_000]
    assert big["unit_ids"] == ["u014"] and "above the ceiling" in big["reason"]


def test_group_below_floor_is_reported():
    units = lattice(8, 4, 700, bydel=lambda x, y: np.where(x < 1, "small", "big"))
    result = build_areas(units, units["population"], "unit", ["bydel"], 5000, 10000)
    check_areas(units, result, within=["bydel"])
    (small,) = result.report["out_of_band"]
    assert small["population"] == 2800 and "whole group" in small["reason"]


def test_islands_join_their_nearest_neighbour():
    units = lattice(6, 6, 1000)
    island = gpd.GeoDataFrame(
        {"unit": ["island"], "x": [9], "y": [2], "population": [800.0]},
        geometry=[shapely.box(4000, 6_601_000, 4400, 6_601_400)],
        crs=CRS,
    )
    units = pd.concat([units, island], ignore_index=True)
    result = build_areas(units, units["population"], "unit", [], 5000, 10000)
    check_areas(units, result)
    (link,) = result.report["islands_joined"]
    assert link["unit"] == "island" and link["to"] in {"u011", "u017"} and link["distance_m"] == 1000.0


def test_queen_adjacency_connects_corners_rook_does_not():
    units = lattice(2, 2, 1)
    group = np.zeros(4)
    rook = polygon_adjacency(units.geometry.to_numpy(), group, "rook")
    queen = polygon_adjacency(units.geometry.to_numpy(), group, "queen")
    assert rook.nnz == 8 and queen.nnz == 12
    chain = lattice(3, 1, 1)
    moved = chain.copy()
    moved.loc[2, "geometry"] = shapely.box(5000, 6_600_000, 5500, 6_600_500)
    adj, links = join_islands(
        polygon_adjacency(moved.geometry.to_numpy(), np.zeros(3)), moved.geometry.to_numpy(), np.zeros(3)
    )
    assert links == [(2, 1, 4000.0)] and connected_components(adj, directed=False)[0] == 1


def test_attributes_make_areas_homogeneous():
    rng = np.random.default_rng(1)
    units = lattice(10, 10, 1000, share=lambda x, y: (x >= 5).astype(float) + 0.05 * rng.random(len(x)))
    plain = build_areas(units, units["population"], "unit", [], 5000, 10000)
    homog = build_areas(units, units["population"], "unit", [], 5000, 10000, attributes=["share"])
    check_areas(units, homog)

    def mixed(result):
        a = units.assign(
            area=units["unit"].map(dict(zip(result.assignment.unit_id, result.assignment.area_id, strict=True)))
        )
        return int((a.groupby("area")["x"].agg(lambda s: (s >= 5).any() and (s < 5).any())).sum())

    assert mixed(homog) <= mixed(plain)
    assert mixed(homog) == 0


def test_deterministic_and_byte_identical(tmp_path):
    units = lattice(9, 9, np.random.default_rng(3).integers(400, 1600, 81))
    a = build_areas(units, units["population"], "unit", [], 5000, 10000)
    b = build_areas(units, units["population"], "unit", [], 5000, 10000)
    pd.testing.assert_frame_equal(a.assignment, b.assignment)
    pa_, pb_ = write_areas(a, tmp_path / "a" / "areas.parquet"), write_areas(b, tmp_path / "b" / "areas.parquet")
    for x, y in zip(pa_, pb_, strict=True):
        assert hashlib.sha256(x.read_bytes()).digest() == hashlib.sha256(y.read_bytes()).digest()
    with pytest.raises(FileExistsError):
        write_areas(a, tmp_path / "a" / "areas.parquet")


def test_extend_over_years_follows_splits_and_merges():
    base = pd.DataFrame(
        {
            "unit_id": ["03010101", "03010102", "03010103"],
            "area_id": ["A", "A", "B"],
            "population": [1000.0, 800.0, 300.0],
        }
    )
    changes = pd.DataFrame(
        {
            "year": [2016, 2016, 2018, 2018],
            "old_grunnkrets": ["03010101", "03010101", "03010104", "03010103"],
            "new_grunnkrets": ["03010104", "03010105", "03010106", "03010106"],
            "population_share": [0.6, 0.4, 1.0, 1.0],
        }
    )
    out = extend_over_years(base, changes).set_index("unit_id")
    assert out.loc["03010104", "area_id"] == "A" and out.loc["03010105", "area_id"] == "A"
    assert out.loc["03010106", "via"] == "03010101" and bool(out.loc["03010106", "straddles"])
    bad = changes.assign(old_grunnkrets=["99999999", "03010101", "03010104", "03010103"])
    with pytest.raises(InputError, match="99999999"):
        extend_over_years(base, bad)


def test_zoning_coverage_and_overlap():
    codes = {"1", "2", "3"}
    ok = pd.DataFrame({"zoning": "z", "grunnkrets": ["1", "2", "3"], "zone": ["a", "a", "b"], "zone_name": "n"})
    assert validate_zoning(ok, codes) == []
    assert set(zoning_level(ok, "z", codes)["area_id"]) == {"a", "b"}
    bad = pd.DataFrame({"zoning": "z", "grunnkrets": ["1", "1", "9"], "zone": ["a", "b", "b"], "zone_name": "n"})
    checks = {p.check for p in validate_zoning(bad, codes)}
    assert checks == {"overlap", "reference", "coverage"}
    with pytest.raises(InputError):
        zoning_level(bad, "z", codes)


def test_cli_reads_any_crs_and_population_file(tmp_path):
    units = lattice(8, 8, 1000, kommune="0301")
    units.drop(columns=["population"]).to_crs("EPSG:4326").to_file(tmp_path / "units.geojson", driver="GeoJSON")
    units[["unit", "population"]].to_csv(tmp_path / "pop.csv", index=False)
    out = tmp_path / "areas.parquet"
    runner = CliRunner()
    args = [
        "areas",
        "build",
        "--geography",
        str(tmp_path / "units.geojson"),
        "--id-column",
        "unit",
        "--population",
        str(tmp_path / "pop.csv"),
        "--within",
        "kommune",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assignment = pd.read_parquet(out)
    assert len(assignment) == 64 and assignment["area_id"].str.startswith("0301-").all()
    polygons = gpd.read_parquet(tmp_path / "areas.geo.parquet")
    assert polygons.crs.to_epsg() == 25833 and len(polygons) == assignment["area_id"].nunique()
    report = json.loads((tmp_path / "areas.report.json").read_text())
    assert report["areas"] == len(polygons) and report["areas_in_band"] == len(polygons)
    # bad input: a located error, exit code 2, nothing written
    units[["unit", "population"]].assign(population="many").to_csv(tmp_path / "bad.csv", index=False)
    bad = runner.invoke(
        app, [*args[:6], "--population", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.parquet")]
    )
    assert bad.exit_code == 2 and "bad.csv [population] population is not a number" in bad.output
    assert "unit='u000'" in bad.output and not (tmp_path / "x.parquet").exists()
    missing = runner.invoke(app, [*args[:4], "kommune_id", *args[5:]])
    assert missing.exit_code == 2
    # a population column of the geography is checked the same way
    with_pop = units.assign(population=units["population"].where(units["unit"] != "u005"))
    with_pop.to_file(tmp_path / "units_pop.gpkg")
    nan = runner.invoke(
        app,
        [
            "areas",
            "build",
            "--geography",
            str(tmp_path / "units_pop.gpkg"),
            "--id-column",
            "unit",
            "--out",
            str(tmp_path / "y.parquet"),
        ],
    )
    assert nan.exit_code == 2 and "units_pop.gpkg [population] population is not a number" in nan.output
    assert "unit='u005'" in nan.output and not (tmp_path / "y.parquet").exists()


def test_a_missing_inner_level_is_the_outer_level(tmp_path):
    """Kommuner without bydeler keep the bydel borders of those that have them (areas_for_extract)."""
    from levekar.geo.areas import fill_inner_levels

    units = pd.DataFrame({"kommune": ["0301", "0301", "1101"], "bydel": ["030101", "030102", None]})
    out = fill_inner_levels(units, ["kommune", "bydel"])
    assert out["bydel"].tolist() == ["030101", "030102", "1101"]


# --- spopt's max-p as an oracle ------------------------------------------------------------------------------
def _spopt_maxp(units: gpd.GeoDataFrame, lo: float) -> np.ndarray:
    libpysal = pytest.importorskip("libpysal")
    from spopt.region import MaxPHeuristic

    w = libpysal.weights.Rook.from_dataframe(units, use_index=False, silence_warnings=True)
    np.random.seed(0)
    model = MaxPHeuristic(units.assign(one=1.0), w, ["one"], "population", lo, top_n=2)
    model.solve()
    return np.asarray(model.labels_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_at_least_as_many_areas_as_spopt_and_within_band(seed):
    rng = np.random.default_rng(seed)
    units = lattice(12, 12, rng.integers(300, 2500, 144))
    ours = build_areas(units, units["population"], "unit", [], 5000, 10000)
    pop = check_areas(units, ours)
    theirs = units.groupby(_spopt_maxp(units, 5000))["population"].sum()
    assert len(pop) >= len(theirs), (len(pop), len(theirs))
    if (theirs > 10000).any():
        assert ((pop >= 5000) & (pop <= 10000)).all()


# --- the embedded default ----------------------------------------------------------------------------------
def test_demo_builds_analysis_areas(demo_dir):
    areas_dir = demo_dir.parent / "areas"
    a = pd.read_parquet(areas_dir / "analysis_areas.parquet")
    report = json.loads((areas_dir / "analysis_areas.report.json").read_text())
    geo = gpd.read_parquet(demo_dir / "geography.parquet")
    assert set(a["unit_id"]) == set(geo["grunnkrets"]), "every code ever valid has an area"
    base = geo[geo["valid_from"] == report["base_year"]]
    units = base.rename(columns={"grunnkrets": "unit"}).reset_index(drop=True)
    pops = pd.read_parquet(demo_dir / "persons.parquet", columns=["year", "grunnkrets"])
    pops = pops[pops["year"] == report["base_year"]].groupby("grunnkrets").size()
    units["population"] = units["unit"].map(pops).fillna(0)

    class Base:  # the base-year part of the result, for the independent checks
        assignment = a[a["from_year"].isna()]

    Base.report = report
    pop = check_areas(units, Base, within=("kommune", "bydel"))
    assert report["areas"] >= 90 and report["areas_in_band"] >= report["areas"] - 1
    (out,) = report["out_of_band"]  # Sentrum: a bydel with only about a thousand inhabitants
    assert out["population"] < 5000 and "whole group" in out["reason"]
    assert len(pop) == report["areas"]
    # split codes follow their parent's area
    changes = pd.read_parquet(demo_dir / "grunnkrets_changes.parquet")
    area = dict(zip(a["unit_id"], a["area_id"], strict=True))
    assert all(area[r.old_grunnkrets] == area[r.new_grunnkrets] for r in changes.itertuples())
    zones = pd.read_parquet(areas_dir / "zones_oslo_delbydel.parquet")
    assert set(zones["unit_id"]) == set(geo["grunnkrets"]) and zones["area_id"].nunique() >= 90
