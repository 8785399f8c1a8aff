"""Analysis areas: ours against spopt's MaxPHeuristic on a city (Oslo's grunnkrets-like units, real grid
populations), and the whole synthetic country (about 14 000 units). Prints one JSON line."""

from __future__ import annotations

import json
import sys
import time
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from levekar.geo.areas import build_areas
from levekar.synth.geography import CRS, unit_polygons
from levekar.synth.presets import oslo_geography, synthetic_geography


def units_of(geo) -> gpd.GeoDataFrame:
    cells = geo.cells
    n = int(cells.unit.max()) + 1
    pop = np.bincount(cells.unit, weights=cells.population, minlength=n)
    zone = np.zeros(n, dtype=np.int64)
    zone[cells.unit] = cells.zone
    kommune = [geo.kommune_codes[geo.zone_table[z]["kommune"]] for z in zone]
    bydel = [geo.zone_table[z].get("bydel") or k for z, k in zip(zone, kommune, strict=True)]
    return gpd.GeoDataFrame(
        {"unit": [f"u{i:05d}" for i in range(n)], "kommune": kommune, "bydel": bydel, "population": pop},
        geometry=list(unit_polygons(cells)),
        crs=CRS,
    )


def summary(pop: pd.Series, lo: float, hi: float) -> dict:
    return {
        "areas": len(pop),
        "in_band": int(((pop >= lo) & (pop <= hi)).sum()),
        "above_ceiling": int((pop > hi).sum()),
        "below_floor": int((pop < lo).sum()),
    }


def city() -> dict:
    import libpysal
    from spopt.region import MaxPHeuristic

    units = units_of(oslo_geography(np.random.default_rng(2020)))
    t0 = time.perf_counter()
    ours = build_areas(units, units["population"], "unit", [], 5000, 10000)
    t_ours = time.perf_counter() - t0
    area = dict(zip(ours.assignment.unit_id, ours.assignment.area_id, strict=True))
    ours_pop = units.groupby(units["unit"].map(area))["population"].sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        w = libpysal.weights.Rook.from_dataframe(units, use_index=False, silence_warnings=True)
        np.random.seed(0)
        model = MaxPHeuristic(units.assign(one=1.0), w, ["one"], "population", 5000, top_n=2)
        model.solve()
        t_spopt = time.perf_counter() - t0
    spopt_pop = units.groupby(np.asarray(model.labels_))["population"].sum()
    return {
        "units": len(units),
        "ours_s": round(t_ours, 2),
        "spopt_s": round(t_spopt, 2),
        "ratio_spopt_to_ours": round(t_spopt / t_ours, 1),
        "ours": summary(ours_pop, 5000, 10000),
        "spopt": summary(spopt_pop, 5000, 10000),
    }


def country() -> dict:
    geo = synthetic_geography(np.random.default_rng(2020), 356, 5_500_000, 250, 393, 50)
    units = units_of(geo)
    t0 = time.perf_counter()
    ours = build_areas(units, units["population"], "unit", ["kommune", "bydel"], 5000, 10000)
    t = time.perf_counter() - t0
    r = ours.report
    return {
        "units": len(units),
        "kommuner": units["kommune"].nunique(),
        "seconds": round(t, 1),
        "areas": r["areas"],
        "in_band": r["areas_in_band"],
        "out_of_band_whole_group": sum("whole group" in o["reason"] for o in r["out_of_band"]),
        "out_of_band_other": sum("whole group" not in o["reason"] for o in r["out_of_band"]),
    }


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "city"
    print(json.dumps({"benchmark": f"areas-{which}", **(city() if which == "city" else country())}))
