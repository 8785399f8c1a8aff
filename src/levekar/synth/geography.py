"""Synthetic geography: populated grid cells grouped into grunnkrets-like units inside given zones.

Units are contiguous groups of cells in the Delaunay graph of the cell centres of one zone (a delbydel, a
bydel or a kommune); their polygons are the union of the cells' Voronoi regions clipped to the zone, so the
units tile their zone exactly and contiguity of cells is contiguity of polygons.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import Delaunay

CRS = "EPSG:25833"


@dataclass
class Cells:
    """Populated grid cells (lower-left corners, EPSG:25833) with the zone and unit they belong to."""

    x: np.ndarray
    y: np.ndarray
    size: int
    population: np.ndarray
    zone: np.ndarray  # index into the zone table
    unit: np.ndarray | None = None  # index into the unit table, set by partition

    @property
    def cx(self) -> np.ndarray:
        return self.x + self.size / 2

    @property
    def cy(self) -> np.ndarray:
        return self.y + self.size / 2

    def __len__(self) -> int:
        return len(self.x)


def ssb_cell_id(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSB grid cell id of lower-left corners: (x + 2 000 000) · 10⁷ + y."""
    return (np.asarray(x, dtype=np.int64) + 2_000_000) * 10_000_000 + np.asarray(y, dtype=np.int64)


def ssb_cell_corner(cell_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cell_id = np.asarray(cell_id, dtype=np.int64)
    return cell_id // 10_000_000 - 2_000_000, cell_id % 10_000_000


def delaunay_neighbours(px: np.ndarray, py: np.ndarray) -> list[np.ndarray]:
    """Neighbour lists of points in their Delaunay graph (robust for 1–3 and collinear points)."""
    n = len(px)
    if n <= 3 or np.linalg.matrix_rank(np.c_[px - px.mean(), py - py.mean()]) < 2:
        order = np.lexsort((py, px))
        nb: list[list[int]] = [[] for _ in range(n)]
        for a, b in zip(order[:-1], order[1:], strict=True):
            nb[a].append(int(b))
            nb[b].append(int(a))
        return [np.array(v, dtype=np.int64) for v in nb]
    tri = Delaunay(np.c_[px, py])
    indptr, indices = tri.vertex_neighbor_vertices
    return [indices[indptr[i] : indptr[i + 1]] for i in range(n)]


def _grow_regions(px, py, pop, neighbours, target: float) -> np.ndarray:
    """Greedy contiguous region growing: each region takes the frontier cell nearest its seed until it
    reaches its share of the remaining population. Returns a region label per cell."""
    n = len(px)
    label = np.full(n, -1, dtype=np.int64)
    total = float(pop.sum())
    n_regions = max(1, round(total / target))
    order = np.lexsort((py, px))  # seeds from the west edge, deterministic
    remaining_pop, remaining_regions, region = total, n_regions, 0
    for seed in order:
        if label[seed] >= 0:
            continue
        goal = remaining_pop / max(remaining_regions, 1)
        heap = [(0.0, int(seed))]
        acc = 0.0
        while heap:
            _, c = heapq.heappop(heap)
            if label[c] >= 0:
                continue
            label[c] = region
            acc += pop[c]
            if acc >= goal:
                break
            for nb in neighbours[c]:
                if label[nb] < 0:
                    d = (px[nb] - px[seed]) ** 2 + (py[nb] - py[seed]) ** 2
                    heapq.heappush(heap, (float(d), int(nb)))
        remaining_pop -= acc
        remaining_regions -= 1
        region += 1
    return label


def _merge_small(label, pop, neighbours, min_pop: float) -> np.ndarray:
    """Merge regions under `min_pop` into their smallest adjacent region, smallest first."""
    label = label.copy()
    while True:
        sizes = np.bincount(label, weights=pop)
        present = np.unique(label)
        small = [r for r in present if sizes[r] < min_pop]
        if not small or len(present) == 1:
            break
        r = min(small, key=lambda k: (sizes[k], k))
        members = np.flatnonzero(label == r)
        adj = {int(label[nb]) for c in members for nb in neighbours[c]} - {int(r)}
        if not adj:
            break
        target = min(adj, key=lambda k: (sizes[k], k))
        label[members] = target
    _, label = np.unique(label, return_inverse=True)
    return label


def group_points(px: np.ndarray, py: np.ndarray, weight: np.ndarray, zone: np.ndarray, target: float,
                 min_weight: float) -> np.ndarray:
    """Contiguous groups of points (Delaunay graph within each zone) of about `target` total weight, none
    under `min_weight` unless its zone is. Numbered zone by zone, west to east within a zone."""
    label = np.empty(len(px), dtype=np.int64)
    offset = 0
    for z in np.unique(zone):
        idx = np.flatnonzero(zone == z)
        x, y, w = px[idx], py[idx], weight[idx].astype(float)
        nb = delaunay_neighbours(x, y)
        lab = _merge_small(_grow_regions(x, y, w, nb, target), w, nb, min_weight)
        first_x = np.full(lab.max() + 1, np.inf)
        np.minimum.at(first_x, lab, x)
        rank = np.argsort(np.argsort(first_x, kind="stable"), kind="stable")
        label[idx] = rank[lab] + offset
        offset += lab.max() + 1
    return label


def partition_cells(cells: Cells, target: float, min_pop: float) -> np.ndarray:
    """Unit index per cell: grunnkrets-like units of contiguous cells inside each zone."""
    cells.unit = group_points(cells.cx, cells.cy, cells.population, cells.zone, target, min_pop)
    return cells.unit


def unit_polygons(cells: Cells, zone_geoms: np.ndarray) -> np.ndarray:
    """Polygon per unit: union of Voronoi regions of its cells, clipped to the cells' zone."""
    n_units = int(cells.unit.max()) + 1
    out = np.empty(n_units, dtype=object)
    for z in np.unique(cells.zone):
        idx = np.flatnonzero(cells.zone == z)
        zone = zone_geoms[z]
        pts = shapely.points(cells.cx[idx], cells.cy[idx])
        if len(idx) == 1:
            regions = np.array([zone], dtype=object)
        else:
            vor = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=zone, ordered=True)
            regions = np.array(shapely.get_parts(vor), dtype=object)
        regions = shapely.intersection(regions, zone)
        units = cells.unit[idx]
        for u in np.unique(units):
            geom = shapely.union_all(regions[units == u])
            out[u] = shapely.make_valid(geom) if not geom.is_valid else geom
    return out


def cell_squares(cells: Cells, idx: np.ndarray | None = None) -> np.ndarray:
    idx = np.arange(len(cells)) if idx is None else idx
    return shapely.box(cells.x[idx], cells.y[idx], cells.x[idx] + cells.size, cells.y[idx] + cells.size)


def assign_to_zones(cells_x: np.ndarray, cells_y: np.ndarray, zones: gpd.GeoDataFrame) -> np.ndarray:
    """Zone index per point: the polygon containing it, else the nearest one."""
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(cells_x, cells_y), crs=zones.crs)
    zi = zones.reset_index(drop=True)[["geometry"]]
    hit = gpd.sjoin(pts, zi, predicate="within", how="left")
    hit = hit[~hit.index.duplicated(keep="first")]
    zone = hit["index_right"].to_numpy(dtype=float, copy=True)
    missing = np.isnan(zone)
    if missing.any():
        near = gpd.sjoin_nearest(pts[missing], zi, how="left")
        near = near[~near.index.duplicated(keep="first")]
        zone[missing] = near["index_right"].to_numpy()
    return zone.astype(np.int64)


def extend_zones(zones: np.ndarray, cells: Cells) -> np.ndarray:
    """Zones grown by the squares of their cells that lie outside every zone, so every cell's centre is
    inside its own zone and zones stay disjoint."""
    all_zones = shapely.union_all(zones)
    out = zones.copy()
    centres = shapely.points(cells.cx, cells.cy)
    outside = ~shapely.contains(all_zones, centres) | ~shapely.contains(zones[cells.zone], centres)
    for z in np.unique(cells.zone[outside]):
        idx = np.flatnonzero(outside & (cells.zone == z))
        extra = shapely.difference(shapely.union_all(cell_squares(cells, idx)), all_zones)
        out[z] = shapely.union(out[z], extra)
    return out
