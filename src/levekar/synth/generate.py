"""`levekar synth`: build a deterministic synthetic register extract from a preset."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely
import yaml

from levekar import __version__
from levekar.io import atomic_dir, sha256, write_geoparquet, write_json, write_parquet
from levekar.schema.validate import ExtractError, validate_extract
from levekar.synth.dynamics import apply_events, decide_events, present
from levekar.synth.geography import CRS, polygonal, unit_polygons
from levekar.synth.institutions import Institutions, attendance, build_institutions
from levekar.synth.outcomes import year_outcomes
from levekar.synth.population import Params, World
from levekar.synth.presets import PresetGeography, oslo_geography, synthetic_geography
from levekar.synth.simulate import BG, BTYPES, CATS, TENURES, build_base

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    years: tuple[int, ...]
    split_year: int | None  # year some grunnkretser are split (code changes)
    n_splits: int
    unit_target: float
    unit_min: float
    open_domestic: bool
    children_per_school: float
    children_per_kg: float
    n_kommuner: int = 1
    population: int = 0
    cell_size: int = 100


PRESETS: dict[str, Preset] = {
    "oslo": Preset(
        "oslo",
        "Oslo: real delbydeler and SSB 100 m grid (640 797 persons in 2008), synthetic persons",
        (2008, 2013, 2016, 2017, 2018, 2019),
        2016,
        3,
        1200,
        300,
        True,
        520,
        60,
    ),
    "tiny": Preset(
        "tiny",
        "Two small synthetic kommuner (about 6 000 persons) for fast tests",
        (2016, 2017, 2018),
        2017,
        1,
        250,
        80,
        True,
        90,
        40,
        n_kommuner=2,
        population=6_000,
    ),
    "norway": Preset(
        "norway",
        "A synthetic country: about 5.5 million persons, 14 000 grunnkretser, 356 kommuner",
        (2016, 2017, 2018),
        None,
        0,
        393,
        50,
        False,
        450,
        60,
        n_kommuner=356,
        population=5_500_000,
        cell_size=250,
    ),
}


@dataclass
class SynthExtract:
    tables: dict[str, pa.Table]
    geography: gpd.GeoDataFrame
    manifest: dict
    summary: dict = field(default_factory=dict)


def calibration_targets() -> dict:
    text = resources.files("levekar.synth").joinpath("calibration.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _codes(geo: PresetGeography, unit: np.ndarray, oslo: bool):
    """Grunnkrets codes, names and hierarchy per unit (KKKK + delområde DD + krets KK)."""
    cells = geo.cells
    n_units = int(unit.max()) + 1
    zone_of_unit = np.zeros(n_units, dtype=np.int64)
    zone_of_unit[unit] = cells.zone
    rows = []
    units_in_zone = np.bincount(zone_of_unit)
    used: dict[int, int] = {}  # delområder used so far per kommune (synthetic: up to 60 units each)
    for z in np.unique(zone_of_unit):
        us = np.flatnonzero(zone_of_unit == z)  # numbered west to east within the zone
        info = geo.zone_table[z]
        kcode = geo.kommune_codes[info["kommune"]]
        prev = used.get(info["kommune"], 0)
        used[info["kommune"]] = prev + math.ceil(units_in_zone[z] / 60)
        if used[info["kommune"]] > 99 or (oslo and len(us) > 99):
            raise ValueError(
                f"kommune {kcode} would need more than 99 delområder of up to 60 grunnkretser; use a smaller --scale"
            )
        for i, u in enumerate(us):
            if oslo:
                delomrade, dname, krets = info["delomrade"], info["delomrade_name"], i + 1
            else:
                d = prev + i // 60 + 1
                delomrade, dname, krets = f"{kcode}{d:02d}", f"{geo.kommune_names[info['kommune']]} {d:02d}", i % 60 + 1
            rows.append(
                {
                    "unit": int(u),
                    "grunnkrets": f"{delomrade}{krets:02d}",
                    "grunnkrets_name": f"{dname} {krets}",
                    "delomrade": delomrade,
                    "delomrade_name": dname,
                    "bydel": info.get("bydel"),
                    "bydel_name": info.get("bydel_name"),
                    "kommune": kcode,
                    "kommune_name": geo.kommune_names[info["kommune"]],
                    "zone": info.get("zone"),
                    "zone_name": info.get("zone_name"),
                }
            )
    rows.sort(key=lambda r: r["unit"])
    return rows


def _split_units(geo: PresetGeography, unit: np.ndarray, n: int) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """Split the `n` most populous units in two (west/east halves of their cells)."""
    pop = np.bincount(unit, weights=geo.cells.population)
    final = unit.copy()
    nxt = int(unit.max()) + 1
    splits = {}
    for u in np.argsort(-pop, kind="stable")[:n]:
        idx = np.flatnonzero(unit == u)
        if len(idx) < 2:
            continue
        order = idx[np.argsort(geo.cells.cx[idx], kind="stable")]
        half = order[len(order) // 2 :]
        final[order[: len(order) // 2]] = nxt
        final[half] = nxt + 1
        splits[int(u)] = (nxt, nxt + 1)
        nxt += 2
    return final, splits


def generate(
    preset: str = "oslo", seed: int = 2020, scale: float = 1.0, progress: Progress | None = None
) -> SynthExtract:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    say = progress or (lambda label, frac: None)
    rng = np.random.default_rng(seed)
    targets = calibration_targets()
    say("geography", 0.0)
    if preset == "oslo":
        geo = oslo_geography(rng, spec.unit_target, spec.unit_min, spec.years[0])
        if scale != 1.0:
            raise ValueError("the oslo preset is built on the real grid and cannot be scaled")
    else:
        geo = synthetic_geography(
            rng, spec.n_kommuner, int(spec.population * scale), spec.cell_size, spec.unit_target, spec.unit_min
        )
    cells = geo.cells
    base_unit = cells.unit.copy()
    final_unit, splits = _split_units(geo, base_unit, spec.n_splits if spec.split_year else 0)
    cells.unit = final_unit
    polygons = unit_polygons(cells)
    base_rows = _codes(geo, base_unit, preset == "oslo")
    geography, code_pre, code_base, code_final = _geography_table(
        geo, base_rows, final_unit, base_unit, splits, polygons, spec
    )
    say("population", 0.1)
    params = Params(
        base_year=spec.years[0],
        targets=targets,
        price_level_2018=targets["price_per_m2_2018"],
        open_domestic=spec.open_domestic,
    )
    world: World = build_base(
        rng,
        cells,
        geo.z_cell,
        geo.kommune_of_cell,
        geo.probs_by_zone,
        params,
        geo.renter_target_zone,
        geo.coop_share_zone,
    )
    world.cell_unit_final = final_unit
    inst = _institutions(world, geo, base_unit, spec)

    out: dict[str, list[pa.Table]] = {"persons": [], "households": [], "dwellings": []}
    first, last = spec.years[0], spec.years[-1]
    for t in range(first, last + 1):
        say(f"year {t}", 0.15 + 0.8 * (t - first) / max(last - first, 1))
        ev = decide_events(world, t)
        if t in spec.years:
            codes = code_pre if (spec.split_year is None or t < spec.split_year) else code_final
            p, h, d = _snapshot(world, inst, t, ev, codes, base_unit, geo)
            out["persons"].append(p)
            out["households"].append(h)
            out["dwellings"].append(d)
        if t < last:
            apply_events(world, t, ev, geo.probs_global)
    tables = {k: pa.concat_tables(v) for k, v in out.items()}
    tables.update(_static_tables(world, geo, inst, base_rows, code_base, code_final, splits, spec))
    manifest = {
        "synthetic": True,
        "notice": "Synthetic register data made by levekår synth: no real person is described. Anything shown "
        "from this extract must say it is synthetic.",
        "preset": preset,
        "description": spec.description,
        "seed": seed,
        "scale": scale,
        "years": list(spec.years),
        "generator": f"levekar {__version__}",
        "attribution": list(geo.attribution),
        "calibration_targets": targets,
    }
    say("done", 1.0)
    return SynthExtract(tables=tables, geography=geography, manifest=manifest)


def _geography_table(geo, base_rows, final_unit, base_unit, splits, polygons, spec):
    first = spec.years[0]
    code_base = np.array([r["grunnkrets"] for r in base_rows], dtype=object)
    n_final = int(final_unit.max()) + 1
    code_final = np.empty(n_final, dtype=object)
    base_of_final = np.zeros(n_final, dtype=np.int64)
    base_of_final[final_unit] = base_unit
    records, geoms = [], []
    next_krets: dict[str, int] = {}  # highest krets number in use per delområde
    for r in base_rows:
        next_krets[r["delomrade"]] = max(next_krets.get(r["delomrade"], 0), int(r["grunnkrets"][-2:]))
    for r in base_rows:
        u = r["unit"]
        rec = {
            k: r[k]
            for k in (
                "grunnkrets",
                "grunnkrets_name",
                "delomrade",
                "delomrade_name",
                "bydel",
                "bydel_name",
                "kommune",
                "kommune_name",
            )
        }
        if u in splits:
            a, b = splits[u]
            for j, part in enumerate((a, b)):
                krets = next_krets.get(r["delomrade"], 0) + 1
                next_krets[r["delomrade"]] = krets
                if krets > 99:
                    raise ValueError(f"delområde {r['delomrade']} has no free krets number for a split")
                code = f"{r['delomrade']}{krets:02d}"
                code_final[part] = code
                records.append(
                    {
                        **rec,
                        "grunnkrets": code,
                        "grunnkrets_name": f"{r['grunnkrets_name']} {'vest' if j == 0 else 'øst'}",
                        "valid_from": spec.split_year,
                        "valid_to": None,
                    }
                )
                geoms.append(polygons[part])
            records.append({**rec, "valid_from": first, "valid_to": spec.split_year - 1})
            geoms.append(polygonal(shapely.union(polygons[a], polygons[b])))
        else:
            records.append({**rec, "valid_from": first, "valid_to": None})
            geoms.append(polygons[u])
    for f in range(n_final):
        if code_final[f] is None:
            code_final[f] = code_base[base_of_final[f]]
    gdf = gpd.GeoDataFrame(records, geometry=list(geoms), crs=CRS)
    gdf["valid_from"] = gdf["valid_from"].astype("int16")
    gdf["valid_to"] = gdf["valid_to"].astype("Int16")
    gdf = gdf.sort_values("grunnkrets").reset_index(drop=True)
    return gdf, code_base[base_of_final], code_base, code_final


def _institutions(world: World, geo: PresetGeography, base_unit: np.ndarray, spec: Preset) -> Institutions:
    cells = geo.cells
    n_u = int(base_unit.max()) + 1
    w = cells.population.astype(float)
    ux = np.bincount(base_unit, weights=cells.cx * w, minlength=n_u) / np.bincount(base_unit, weights=w, minlength=n_u)
    uy = np.bincount(base_unit, weights=cells.cy * w, minlength=n_u) / np.bincount(base_unit, weights=w, minlength=n_u)
    ukom = np.zeros(n_u, dtype=np.int64)
    ukom[base_unit] = geo.kommune_of_cell
    uz = np.bincount(base_unit, weights=geo.z_cell * w, minlength=n_u) / np.bincount(
        base_unit, weights=w, minlength=n_u
    )
    P, H, D = world.p, world.h, world.d
    age = spec.years[0] - P["by"].astype(np.int64)
    kids = (age >= 6) & (age <= 15) & P["alive"]
    cell_of_p = D["cell"][H["dw"][P["hh"]]]
    children = np.bincount(base_unit[cell_of_p[kids]], minlength=n_u).astype(float)
    return build_institutions(
        world, ux, uy, ukom, children, uz, geo.kommune_codes, spec.children_per_school, spec.children_per_kg
    )


def _nullable(values: np.ndarray, mask: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, type=typ, mask=mask)


def _snapshot(world: World, inst: Institutions, year: int, ev, codes, base_unit, geo):
    P, H, D = world.p, world.h, world.d
    idx = present(world)
    hh = P["hh"][idx]
    dw = H["dw"][hh]
    if (dw < 0).any():
        raise AssertionError(f"{int((dw < 0).sum())} persons without a dwelling in {year}")
    cell = D["cell"][dw]
    unit_final = world.cell_unit_final[cell]
    gk = codes[unit_final]
    o = year_outcomes(world, year, idx)
    school, kg = attendance(world, inst, year, idx, base_unit[cell], D["x"][dw], D["y"][dw])
    cat = P["cat"][idx]
    botid = year - P["imm"][idx].astype(np.int64)
    died = np.zeros(len(P["pid"]), dtype=bool)
    died[ev.died] = True
    persons = pa.table(
        {
            "person_id": pa.array(P["pid"][idx], pa.int64()),
            "year": pa.array(np.full(len(idx), year), pa.int16()),
            "grunnkrets": pa.array(gk.astype(str), pa.string()),
            "sex": pa.array(P["sex"][idx], pa.int8()),
            "birth_year": pa.array(P["by"][idx], pa.int16()),
            "innvandringskategori": pa.array(CATS[cat], pa.string()),
            "landbakgrunn": pa.array(BG[P["bg"][idx]], pa.string()),
            "botid": _nullable(botid, cat != 1, pa.int16()),
            "household_id": pa.array(H["hid"][hh], pa.int64()),
            "dwelling_id": pa.array(D["did"][dw], pa.int64()),
            "residence_since": pa.array(P["res"][idx], pa.int16()),
            "education_nus": _nullable(o["education_nus"], o["education_nus"] < 0, pa.int8()),
            "in_education": pa.array(o["in_education"], pa.bool_()),
            "employed": pa.array(o["employed"], pa.bool_()),
            "upper_secondary_completed": pa.array(o["upper_secondary_completed"], pa.bool_()),
            "social_assistance": pa.array(o["social_assistance"], pa.bool_()),
            "child_welfare": pa.array(o["child_welfare"], pa.bool_()),
            "died_in_year": pa.array(died[idx], pa.bool_()),
            "voted": _nullable(o["voted"] == 1, o["voted"] < 0, pa.bool_()),
            "school_id": _nullable(inst.school_id[np.maximum(school, 0)], school < 0, pa.string()),
            "kindergarten_id": _nullable(inst.kg_id[np.maximum(kg, 0)], kg < 0, pa.string()),
            "grade_points": _nullable(np.nan_to_num(o["grade_points"]), np.isnan(o["grade_points"]), pa.float64()),
        }
    ).sort_by([("person_id", "ascending")])
    hu = o["hh_unique"]
    households = pa.table(
        {
            "household_id": pa.array(H["hid"][hu], pa.int64()),
            "year": pa.array(np.full(len(hu), year), pa.int16()),
            "income_total": pa.array(o["income_total"], pa.int64()),
            "income_after_tax": pa.array(o["income_after_tax"], pa.int64()),
            "income_transfers": pa.array(o["income_transfers"], pa.int64()),
            "student_household": pa.array(o["student_household"], pa.bool_()),
        }
    ).sort_by([("household_id", "ascending")])
    # dwellings: price per m² falls with deprivation and distance to the centre; sales get that year's level
    dcell = D["cell"]
    centre = geo.centre_of_kommune[world.kommune_of_cell[dcell]]
    dist_km = np.hypot(D["x"] - centre[:, 0], D["y"] - centre[:, 1]) / 1000
    rel = np.exp(-0.22 * world.z_cell[dcell] - 0.04 * np.clip(dist_km, 0, 15) + 0.12 * D["price_u"])
    sold = D["sold"] == year
    level = world.params.price_level_2018 * 1.055 ** (year - 2018)
    ppm2 = level * rel / (rel[sold].mean() if sold.any() else 1.0)
    price = np.rint(ppm2 * D["area"] / 1000) * 1000
    dunit = world.cell_unit_final[dcell]
    dgk = codes[dunit]
    dwellings = pa.table(
        {
            "dwelling_id": pa.array(D["did"], pa.int64()),
            "year": pa.array(np.full(len(D["did"]), year), pa.int16()),
            "grunnkrets": pa.array(dgk.astype(str), pa.string()),
            "x": pa.array(D["x"], pa.float64()),
            "y": pa.array(D["y"], pa.float64()),
            "building_type": pa.array(BTYPES[D["btype"]], pa.string()),
            "rooms": pa.array(D["rooms"], pa.int8()),
            "area_m2": pa.array(D["area"].astype(float), pa.float64()),
            "tenure": pa.array(TENURES[D["tenure"]], pa.string()),
            "sale_price": _nullable(price.astype(np.int64), ~sold, pa.int64()),
        }
    )
    return persons, households, dwellings


def _static_tables(world, geo, inst: Institutions, base_rows, code_base, code_final, splits, spec):
    cells = geo.cells
    # which grunnkrets each institution lies in: the unit of the nearest populated cell
    from scipy.spatial import cKDTree

    tree = cKDTree(np.c_[cells.cx, cells.cy])
    _, sc = tree.query(np.c_[inst.school_x, inst.school_y])
    _, kc = tree.query(np.c_[inst.kg_x, inst.kg_y])
    last_codes = code_final
    ns, nk = len(inst.school_x), len(inst.kg_x)
    institutions = pa.table(
        {
            "institution_id": pa.array(np.r_[inst.school_id, inst.kg_id].astype(str), pa.string()),
            "name": pa.array(
                [f"Skole {i}" for i in inst.school_id] + [f"Barnehage {i}" for i in inst.kg_id], pa.string()
            ),
            "type": pa.array(["grunnskole"] * ns + ["barnehage"] * nk, pa.string()),
            "kommune": pa.array(
                [geo.kommune_codes[k] for k in np.r_[inst.school_kommune, inst.kg_kommune]], pa.string()
            ),
            "grunnkrets": pa.array(last_codes[cells.unit[np.r_[sc, kc]]].astype(str), pa.string()),
            "x": pa.array(np.round(np.r_[inst.school_x, inst.kg_x], 1), pa.float64()),
            "y": pa.array(np.round(np.r_[inst.school_y, inst.kg_y], 1), pa.float64()),
            "private": pa.array(np.r_[np.zeros(ns, dtype=bool), inst.kg_private], pa.bool_()),
        }
    ).sort_by([("institution_id", "ascending")])
    # catchments for every code ever valid (split codes keep their parent's school)
    catch_rows = {(inst.school_id[inst.school_of_unit[r["unit"]]], r["grunnkrets"]) for r in base_rows}
    for u, parts in splits.items():
        for part in parts:
            catch_rows.add((inst.school_id[inst.school_of_unit[u]], code_final[part]))
    catch = sorted(catch_rows)
    catchments = pa.table(
        {
            "institution_id": pa.array([c[0] for c in catch], pa.string()),
            "grunnkrets": pa.array([c[1] for c in catch], pa.string()),
        }
    )
    tables = {"institutions": institutions, "catchments": catchments}
    # code changes
    changes = []
    for u, parts in splits.items():
        pop = [float(cells.population[cells.unit == p].sum()) for p in parts]
        for p, n in zip(parts, pop, strict=True):
            changes.append((spec.split_year, code_base[u], code_final[p], round(n / sum(pop), 6)))
    changes.sort()
    tables["grunnkrets_changes"] = pa.table(
        {
            "year": pa.array([c[0] for c in changes], pa.int16()),
            "old_grunnkrets": pa.array([c[1] for c in changes], pa.string()),
            "new_grunnkrets": pa.array([c[2] for c in changes], pa.string()),
            "population_share": pa.array([c[3] for c in changes], pa.float64()),
        }
    )
    # moves across the outer border
    if world.migrations:
        pid = np.concatenate([m[0] for m in world.migrations])
        yr = np.concatenate([np.full(len(m[0]), m[1]) for m in world.migrations])
        direction = np.concatenate([np.full(len(m[0]), m[2]) for m in world.migrations])
        intl = np.concatenate([m[3] for m in world.migrations])
    else:
        pid, yr, direction, intl = (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0, dtype=str), np.zeros(0, bool))
    tables["migrations"] = pa.table(
        {
            "person_id": pa.array(pid, pa.int64()),
            "year": pa.array(yr, pa.int16()),
            "direction": pa.array(direction.astype(str), pa.string()),
            "scope": pa.array(np.where(intl, "international", "domestic"), pa.string()),
        }
    ).sort_by([("year", "ascending"), ("person_id", "ascending"), ("direction", "ascending")])
    if geo.zoning:
        rows = [(geo.zoning, r["grunnkrets"], r["zone"], r["zone_name"]) for r in base_rows]
        for u, parts in splits.items():
            r = base_rows[u]
            rows += [(geo.zoning, code_final[p], r["zone"], r["zone_name"]) for p in parts]
        rows.sort()
        tables["zonings"] = pa.table(
            {
                k: pa.array([r[i] for r in rows], pa.string())
                for i, k in enumerate(("zoning", "grunnkrets", "zone", "zone_name"))
            }
        )
    return tables


def write_extract(extract: SynthExtract, out_dir: str | Path, force: bool = False, check: bool = True) -> Path:
    """Write the extract atomically (Parquet, GeoParquet, manifest with file hashes); by default it is
    validated before it appears, so a generator bug can never leave an invalid extract behind."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, force=force) as tmp:
        files = {}
        for name, table in sorted(extract.tables.items()):
            write_parquet(table, tmp / f"{name}.parquet")
            files[f"{name}.parquet"] = table.num_rows
        write_geoparquet(extract.geography, tmp / "geography.parquet")
        files["geography.parquet"] = len(extract.geography)
        if check and (problems := validate_extract(tmp)):
            raise ExtractError(problems)
        manifest = {
            **extract.manifest,
            "files": {f: {"rows": n, "sha256": sha256(tmp / f)} for f, n in sorted(files.items())},
        }
        write_json(manifest, tmp / "manifest.json")
    return out_dir
