"""Synthetic geography: populated grid cells grouped into grunnkrets-like units inside given zones.

Units are contiguous groups of cells in the Delaunay graph of the cell centres of one zone (a delbydel, a
bydel or a kommune); their polygons are the union of the cells' Voronoi regions clipped to the zone, so the
units tile their zone exactly and contiguity of cells is contiguity of polygons.
"""

from __future__ import annotations

import heapq
import itertools
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
    region: np.ndarray | None = None  # each cell's piece of its zone (Voronoi, clipped)

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
        for a, b in itertools.pairwise(order):
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


def _merge_small(label, pop, neighbours, min_pop: float, fallback=None) -> np.ndarray:
    """Merge regions under `min_pop` into their smallest adjacent region, smallest first; a region with no
    neighbour (an island) is merged through the `fallback` graph."""
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
        if not adj and fallback is not None:
            adj = {int(label[nb]) for c in members for nb in fallback[c]} - {int(r)}
        if not adj:
            break
        target = min(adj, key=lambda k: (sizes[k], k))
        label[members] = target
    _, label = np.unique(label, return_inverse=True)
    return label


def _split_large(label, x, y, w, neighbours, target: float, max_weight: float) -> np.ndarray:
    """Grow regions afresh inside any region heavier than `max_weight` (merging can overshoot)."""
    label = label.copy()
    nxt = int(label.max()) + 1
    sizes = np.bincount(label, weights=w)
    for r in np.flatnonzero(sizes > max_weight):
        members = np.flatnonzero(label == r)
        local = {int(c): i for i, c in enumerate(members)}
        sub_nb = [np.array([local[int(n)] for n in neighbours[c] if int(n) in local], dtype=np.int64) for c in members]
        sub = _grow_regions(x[members], y[members], w[members], sub_nb, target)
        sub = _merge_small(sub, w[members], sub_nb, 0.25 * target)
        label[members] = np.where(sub == 0, r, nxt + sub - 1)
        nxt += int(sub.max())
    _, label = np.unique(label, return_inverse=True)
    return label


def _label_zone(x, y, w, neighbours, target, min_weight, fallback=None) -> np.ndarray:
    lab = _merge_small(_grow_regions(x, y, w, neighbours, target), w, neighbours, min_weight, fallback)
    lab = _split_large(lab, x, y, w, neighbours, target, 2.5 * target)
    first_x = np.full(lab.max() + 1, np.inf)
    np.minimum.at(first_x, lab, x)
    rank = np.argsort(np.argsort(first_x, kind="stable"), kind="stable")  # numbered west to east
    return rank[lab]


def group_points(
    px: np.ndarray, py: np.ndarray, weight: np.ndarray, zone: np.ndarray, target: float, min_weight: float
) -> np.ndarray:
    """Contiguous groups of points (Delaunay graph within each zone) of about `target` total weight, none
    under `min_weight` unless its zone is. Numbered zone by zone, west to east within a zone."""
    label = np.empty(len(px), dtype=np.int64)
    offset = 0
    for z in np.unique(zone):
        idx = np.flatnonzero(zone == z)
        x, y = px[idx], py[idx]
        lab = _label_zone(x, y, weight[idx].astype(float), delaunay_neighbours(x, y), target, min_weight)
        label[idx] = lab + offset
        offset += lab.max() + 1
    return label


def voronoi_regions(cells: Cells, zone_geoms: np.ndarray) -> np.ndarray:
    """Each cell's Voronoi region among the cells of its zone, clipped to the zone: the zone's tiling."""
    regions = np.empty(len(cells), dtype=object)
    for z in np.unique(cells.zone):
        idx = np.flatnonzero(cells.zone == z)
        zone = zone_geoms[z]
        if len(idx) == 1:
            regions[idx] = zone
            continue
        pts = shapely.points(cells.cx[idx], cells.cy[idx])
        vor = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=zone, ordered=True)
        regions[idx] = shapely.intersection(np.array(shapely.get_parts(vor), dtype=object), zone)
    return regions


def _border_neighbours(regions: np.ndarray, delaunay: list[np.ndarray]) -> list[np.ndarray]:
    """Delaunay neighbours whose clipped regions share a stretch of border (not just a point)."""
    src = np.repeat(np.arange(len(delaunay)), [len(n) for n in delaunay])
    dst = np.concatenate(delaunay) if delaunay else np.zeros(0, dtype=np.int64)
    keep = src < dst
    src, dst = src[keep], dst[keep]
    shared = shapely.length(shapely.intersection(regions[src], regions[dst])) > 1e-6
    src, dst = src[shared], dst[shared]
    out: list[list[int]] = [[] for _ in range(len(delaunay))]
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        out[a].append(b)
        out[b].append(a)
    return [np.array(v, dtype=np.int64) for v in out]


def partition_cells(cells: Cells, target: float, min_pop: float, zone_geoms: np.ndarray) -> np.ndarray:
    """Unit index per cell: grunnkrets-like units inside each zone whose cells' regions touch along a border,
    so every unit's polygon is in one piece (islands aside)."""
    cells.region = voronoi_regions(cells, zone_geoms)
    unit = np.empty(len(cells), dtype=np.int64)
    offset = 0
    for z in np.unique(cells.zone):
        idx = np.flatnonzero(cells.zone == z)
        x, y = cells.cx[idx], cells.cy[idx]
        delaunay = delaunay_neighbours(x, y)
        border = _border_neighbours(cells.region[idx], delaunay) if len(idx) > 1 else delaunay
        lab = _label_zone(x, y, cells.population[idx].astype(float), border, target, min_pop, delaunay)
        unit[idx] = lab + offset
        offset += lab.max() + 1
    cells.unit = unit
    return unit


def polygonal(geom):
    """The polygonal part of a geometry (unions and make_valid can leave lines and points behind)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else geom


def unit_polygons(cells: Cells) -> np.ndarray:
    """Polygon per unit: the union of its cells' regions."""
    n_units = int(cells.unit.max()) + 1
    out = np.empty(n_units, dtype=object)
    for z in np.unique(cells.zone):
        idx = np.flatnonzero(cells.zone == z)
        units = cells.unit[idx]
        zone_units = np.unique(units)
        for u in zone_units:
            geom = shapely.union_all(cells.region[idx[units == u]])
            out[u] = polygonal(shapely.make_valid(geom) if not geom.is_valid else geom)
        _give_away_empty_parts(out, zone_units, units, shapely.points(cells.cx[idx], cells.cy[idx]))
    return np.array([None if g is None else polygonal(g) for g in out], dtype=object)


def _give_away_empty_parts(out: np.ndarray, zone_units: np.ndarray, units: np.ndarray, pts: np.ndarray) -> None:
    """Clipping Voronoi regions to a concave zone can cut a unit into pieces; a piece that holds none of the
    unit's cell centres goes to the neighbouring unit it shares the longest border with."""
    for u in zone_units:
        parts = shapely.get_parts(out[u])
        if len(parts) < 2:
            continue
        own = pts[units == u]
        keep = [p for p in parts if shapely.contains(p, own).any()]
        if not keep:
            continue
        for piece in (p for p in parts if not shapely.contains(p, own).any()):
            best, best_len = None, 0.0
            for v in zone_units:
                if v != u and shapely.intersects(out[v], piece):
                    shared = shapely.length(shapely.intersection(shapely.boundary(out[v]), shapely.boundary(piece)))
                    if shared > best_len:
                        best, best_len = v, shared
            if best is None:
                keep.append(piece)
            else:
                out[best] = polygonal(shapely.union(out[best], piece))
        out[u] = polygonal(shapely.union_all(keep))


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
