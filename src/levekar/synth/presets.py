"""Geography of the presets: the real Oslo (delbydeler and SSB's 100 m grid) and synthetic countries."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import geopandas as gpd
import numpy as np
import shapely

from levekar.synth.geography import (
    CRS,
    Cells,
    assign_to_zones,
    extend_zones,
    partition_cells,
    ssb_cell_corner,
)
from levekar.synth.population import HOUSEHOLD_TYPES, N_CHILDREN, composition_probs

OSLO_BYDELER = {
    "01": "Gamle Oslo",
    "02": "Grünerløkka",
    "03": "Sagene",
    "04": "St. Hanshaugen",
    "05": "Frogner",
    "06": "Ullern",
    "07": "Vestre Aker",
    "08": "Nordre Aker",
    "09": "Bjerke",
    "10": "Grorud",
    "11": "Stovner",
    "12": "Alna",
    "13": "Østensjø",
    "14": "Nordstrand",
    "15": "Søndre Nordstrand",
    "16": "Sentrum",
    "17": "Marka",
}
# Stylised deprivation of the bydeler, after the report's description of Oslo: the outer high-rise suburbs
# (Groruddalen, Søndre Nordstrand) and parts of the inner east highest, the west lowest.
OSLO_BYDEL_DEPRIVATION = {
    "01": 0.9,
    "02": 0.35,
    "03": 0.2,
    "04": -0.2,
    "05": -0.9,
    "06": -1.0,
    "07": -1.2,
    "08": -0.8,
    "09": 0.6,
    "10": 1.0,
    "11": 1.1,
    "12": 1.0,
    "13": 0.1,
    "14": -0.6,
    "15": 1.1,
    "16": 0.0,
    "17": -0.5,
}
OSLO_CENTRE = (262_100.0, 6_649_700.0)  # Oslo S, EPSG:25833
FYLKER = ["03", "11", "15", "18", "30", "34", "38", "42", "46", "50", "54"]


@dataclass
class PresetGeography:
    cells: Cells
    zone_geoms: np.ndarray  # polygon per zone (the zones units nest in)
    zone_table: list[dict]  # per zone: delomrade code/name, bydel code/name, kommune index
    kommune_codes: list[str]
    kommune_names: list[str]
    z_cell: np.ndarray
    kommune_of_cell: np.ndarray
    probs_by_zone: np.ndarray
    probs_global: np.ndarray
    renter_target_zone: np.ndarray | None
    coop_share_zone: np.ndarray | None
    centre_of_kommune: np.ndarray
    zoning: str | None = None  # name of the zoning the zones form (written as a user zoning)
    attribution: tuple[str, ...] = ()


def _data(name: str):
    return resources.files("levekar").joinpath("data", "oslo", name)


def _household_counts(year: int) -> dict[str, np.ndarray]:
    """Households by (type, number of children) per Oslo delbydel (4-char code) for 1 January of `year`."""
    out: dict[str, np.ndarray] = {}
    with _data("husholdninger_med_barn_2008-2018_delbydel.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter=";"):
            if int(r["År"]) != year or not r["delbydelid"]:
                continue
            code = r["delbydelid"][-4:]
            arr = out.setdefault(code, np.zeros((len(HOUSEHOLD_TYPES), len(N_CHILDREN))))
            t = HOUSEHOLD_TYPES.index(r["Husholdningstype"])
            arr[t, N_CHILDREN.index(r["Barn i husholdningen"])] += float(r["Antall husholdninger"])
    return out


def _tenure_shares(year: int) -> dict[str, tuple[float, float]]:
    """(renter %, co-operative share) per delbydel from Oslo's tenure statistics."""
    out = {}
    with _data("eieform_2015-2017_delbydel.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter=";"):
            if int(r["aar"]) == year and r["delbydel_id"]:
                out[r["delbydel_id"]] = (float(r["leier_alle"]), float(r["borettslag_andel_alle"]) / 100)
    return out


def _smooth_noise(rng, cells: Cells, scale_m: float, sd: float) -> np.ndarray:
    """Spatially correlated noise: random values on a coarse lattice, bilinear at the cell centres."""
    x0, y0 = cells.cx.min() - scale_m, cells.cy.min() - scale_m
    nx = int((cells.cx.max() - x0) / scale_m) + 3
    ny = int((cells.cy.max() - y0) / scale_m) + 3
    g = rng.standard_normal((nx, ny)) * sd
    fx, fy = (cells.cx - x0) / scale_m, (cells.cy - y0) / scale_m
    ix, iy = fx.astype(int), fy.astype(int)
    ax, ay = fx - ix, fy - iy
    return (
        g[ix, iy] * (1 - ax) * (1 - ay)
        + g[ix + 1, iy] * ax * (1 - ay)
        + g[ix, iy + 1] * (1 - ax) * ay
        + g[ix + 1, iy + 1] * ax * ay
    )


def oslo_geography(rng, target: float = 1200, min_pop: float = 300, base_year: int = 2008) -> PresetGeography:
    with _data("Oslo_bef_100m_2015.csv").open(encoding="ascii") as f:
        rows = np.loadtxt(f, skiprows=1, dtype=np.int64)
    x, y = ssb_cell_corner(rows[:, 0])
    zones = gpd.read_file(_data("oslo_delbydeler.geojson")).to_crs(CRS)
    zones["geometry"] = shapely.force_2d(zones.geometry.values)
    zones = zones.sort_values("DELBYDEL").reset_index(drop=True)
    cells = Cells(
        x=x.astype(float), y=y.astype(float), size=100, population=rows[:, 1], zone=np.zeros(len(x), dtype=np.int64)
    )
    cells.zone = assign_to_zones(cells.cx, cells.cy, zones)
    zone_geoms = extend_zones(zones.geometry.values, cells)
    partition_cells(cells, target, min_pop, zone_geoms)

    codes = zones["DELBYDEL"].tolist()
    counts = _household_counts(base_year)
    oslo_total = sum(counts.values())
    probs = np.array([composition_probs(counts.get(c, oslo_total)) for c in codes])
    tenure = _tenure_shares(2015)
    renter = np.array([tenure.get(c, (np.nan, np.nan))[0] for c in codes])
    coop = np.array([tenure.get(c, (np.nan, np.nan))[1] for c in codes])
    renter = np.where(np.isnan(renter), np.nanmean(renter), renter)
    coop = np.where(np.isnan(coop), np.nanmean(coop), coop)

    # deprivation: stylised bydel level, the real share of single parents among families with children,
    # and smooth local variation
    single_parent = np.array(
        [counts[c][4:6, 1:].sum() / max(counts[c][2:6, 1:].sum(), 1) if c in counts else np.nan for c in codes]
    )
    single_parent = np.where(np.isnan(single_parent), np.nanmean(single_parent), single_parent)
    sp = (single_parent - single_parent.mean()) / single_parent.std()
    prior = np.array([OSLO_BYDEL_DEPRIVATION[c[:2]] for c in codes])
    z_zone = 0.75 * prior + 0.35 * sp
    z_cell = z_zone[cells.zone] + _smooth_noise(rng, cells, 1500, 0.3) + 0.1 * rng.standard_normal(len(cells))

    table = [
        {
            "delomrade": f"0301{i + 1:02d}",
            "delomrade_name": zones.loc[i, "DELBYDELSN"],
            "bydel": f"0301{c[:2]}",
            "bydel_name": OSLO_BYDELER[c[:2]],
            "kommune": 0,
            "zone": c,
            "zone_name": zones.loc[i, "DELBYDELSN"],
        }
        for i, c in enumerate(codes)
    ]
    return PresetGeography(
        cells=cells,
        zone_geoms=zone_geoms,
        zone_table=table,
        kommune_codes=["0301"],
        kommune_names=["Oslo"],
        z_cell=z_cell,
        kommune_of_cell=np.zeros(len(cells), dtype=np.int64),
        probs_by_zone=probs,
        probs_global=composition_probs(oslo_total),
        renter_target_zone=renter,
        coop_share_zone=coop,
        centre_of_kommune=np.array([OSLO_CENTRE]),
        zoning="oslo_delbydel",
        attribution=(
            "Population grid: Statistisk sentralbyrå (SSB), befolkning på 100 m rutenett 2015, CC BY 4.0",
            "Delbydel boundaries: Oslo kommune (PBE), via oslokommune/bydelsfakta (MIT)",
            "Household and tenure statistics by delbydel: Oslo kommune statistikkbank, via "
            "oslokommune/bydelsfakta-data-processing",
        ),
    )


def synthetic_geography(
    rng, n_kommuner: int, population: int, cell_size: int, target: float, min_pop: float
) -> PresetGeography:
    """A synthetic country: kommuner on a lattice of 30 km squares, Zipf-sized, each a city with a centre,
    satellites and a stylised pattern of deprived outer-east suburbs and inner east."""
    side = 30_000.0
    cols = int(np.ceil(np.sqrt(n_kommuner)))
    rank = np.arange(1, n_kommuner + 1)
    share = rank**-1.05
    kpop = np.maximum(np.round(population * share / share.sum()).astype(np.int64), 30)
    kx0 = (np.arange(n_kommuner) % cols) * side + 20_000.0
    ky0 = (np.arange(n_kommuner) // cols) * side + 6_500_000.0
    centre = np.c_[kx0 + side / 2, ky0 + side / 2]
    # persons scattered around the centre and 0–3 satellite towns, then counted into grid cells
    px, py, pk = [], [], []
    for k in range(n_kommuner):
        n = int(kpop[k])
        r0 = float(np.clip(500 * np.sqrt(n / 10_000), 250, side / 6))
        sat = rng.random(n) < 0.25
        ang = rng.uniform(0, 2 * np.pi, 3)
        which = rng.integers(0, 3, n)
        cx = np.where(sat, centre[k, 0] + 0.55 * side / 2 * np.cos(ang[which]), centre[k, 0])
        cy = np.where(sat, centre[k, 1] + 0.55 * side / 2 * np.sin(ang[which]), centre[k, 1])
        spread = np.where(sat, r0 / 3, r0)
        px.append(np.clip(cx + rng.standard_normal(n) * spread, kx0[k] + 1, kx0[k] + side - 1))
        py.append(np.clip(cy + rng.standard_normal(n) * spread, ky0[k] + 1, ky0[k] + side - 1))
        pk.append(np.full(n, k))
    px, py, pk = np.concatenate(px), np.concatenate(py), np.concatenate(pk)
    gx = np.floor(px / cell_size).astype(np.int64) * cell_size
    gy = np.floor(py / cell_size).astype(np.int64) * cell_size
    key, pop = np.unique(np.c_[gx, gy], axis=0, return_counts=True)
    cx_, cy_ = key[:, 0].astype(float), key[:, 1].astype(float)
    kom = ((cx_ - 20_000) // side).astype(np.int64) + ((cy_ - 6_500_000) // side).astype(np.int64) * cols
    # bydeler (angular sectors) in the largest kommuner
    ang = np.arctan2(cy_ + cell_size / 2 - centre[kom, 1], cx_ + cell_size / 2 - centre[kom, 0])
    n_sect = np.clip(kpop // 60_000, 1, 8)
    sector = np.where(n_sect[kom] > 1, ((ang + np.pi) / (2 * np.pi) * n_sect[kom]).astype(np.int64) % n_sect[kom], 0)
    zone_key = kom * 10 + sector
    uz, zone = np.unique(zone_key, return_inverse=True)
    cells = Cells(x=cx_, y=cy_, size=cell_size, population=pop.astype(np.int64), zone=zone)
    zone_geoms = np.empty(len(uz), dtype=object)
    for i, zk in enumerate(uz):
        k, s = divmod(int(zk), 10)
        sq = shapely.box(kx0[k], ky0[k], kx0[k] + side, ky0[k] + side)
        if n_sect[k] > 1:
            a0 = -np.pi + 2 * np.pi * s / n_sect[k]
            a1 = -np.pi + 2 * np.pi * (s + 1) / n_sect[k]
            ts = np.linspace(a0, a1, 16)
            wedge = shapely.Polygon(
                [tuple(centre[k])] + [(centre[k, 0] + side * np.cos(t), centre[k, 1] + side * np.sin(t)) for t in ts]
            )
            sq = shapely.intersection(sq, wedge)
        zone_geoms[i] = sq
    partition_cells(cells, target, min_pop, zone_geoms)
    # kommune codes: the largest is Oslo-like 0301, the rest spread over the fylker
    codes, names = [], []
    per_fylke: dict[str, int] = {}
    for k in range(n_kommuner):
        f = "03" if k == 0 else FYLKER[1 + (k - 1) % (len(FYLKER) - 1)]
        per_fylke[f] = per_fylke.get(f, 0) + 1
        codes.append(f"{f}{per_fylke[f]:02d}")
        names.append(f"Syntetisk kommune {f}{per_fylke[f]:02d}")
    # deprivation: kommune level, and within cities the outer east and inner east
    dx = cells.cx - centre[kom, 0]
    dy = cells.cy - centre[kom, 1]
    r0 = np.clip(500 * np.sqrt(kpop[kom] / 10_000), 250, side / 6)
    rho = np.hypot(dx, dy) / (2.5 * r0)
    east = np.cos(np.arctan2(dy, dx))
    city = np.clip(np.log10(np.maximum(kpop[kom], 1) / 5_000), 0, 1.5)
    z_cell = (
        rng.normal(0, 0.25, n_kommuner)[kom]
        + city
        * (
            1.0 * np.exp(-(((rho - 0.7) / 0.25) ** 2)) * (east > 0.3)
            + 0.6 * np.exp(-((rho / 0.3) ** 2)) * (east > 0)
            - 0.5 * (east < -0.3)
        )
        + _smooth_noise(rng, cells, 2000, 0.3)
        + 0.1 * rng.standard_normal(len(cells))
    )
    counts = _household_counts(2008)
    national = sum(counts.values()).copy()
    national[0] *= 0.72  # fewer people living alone than in Oslo
    national[1:, :] *= 1.15
    probs = composition_probs(national)
    table = []
    for zk in uz:
        k, s = divmod(int(zk), 10)
        by = f"{codes[k]}{s + 1:02d}" if n_sect[k] > 1 else None
        table.append({"bydel": by, "bydel_name": f"{names[k]} bydel {s + 1}" if by else None, "kommune": k})
    return PresetGeography(
        cells=cells,
        zone_geoms=zone_geoms,
        zone_table=table,
        kommune_codes=codes,
        kommune_names=names,
        z_cell=z_cell,
        kommune_of_cell=kom,
        probs_by_zone=np.tile(probs, (len(uz), 1)),
        probs_global=probs,
        renter_target_zone=None,
        coop_share_zone=None,
        centre_of_kommune=centre,
        attribution=(
            "Geometry and population: synthetic (levekår synth)",
            "Household composition: Oslo kommune statistikkbank 2008, reweighted",
        ),
    )
