"""Area polygons for the map: simplified in the store's metric CRS (so the tolerance is in metres), then
reprojected to WGS 84 (Plotly's geo maps take longitude/latitude), once at start-up."""

from __future__ import annotations

import json

import geopandas as gpd


def to_geojson(polygons: gpd.GeoDataFrame, tolerance: float = 20.0) -> dict[str, dict]:
    """One GeoJSON FeatureCollection per level; each feature's `id` and `properties.area_code` is the code."""
    g = polygons.copy()
    if g.crs is not None and g.crs.is_projected and tolerance > 0:
        # topology is not kept across neighbours; at this tolerance the slivers are below a pixel
        g["geometry"] = g.geometry.simplify(tolerance, preserve_topology=True)
    g = g.to_crs(4326) if g.crs is not None else g
    out: dict[str, dict] = {}
    for level, part in g.groupby("level", sort=True):
        part = part[["area_code", "geometry"]].reset_index(drop=True)
        collection = json.loads(part.to_json(drop_id=True, to_wgs84=False))
        for feature in collection["features"]:
            feature["id"] = feature["properties"]["area_code"]
            feature["geometry"] = _rounded(feature["geometry"])
        out[str(level)] = collection
    return out


def _rounded(geometry: dict, digits: int = 5) -> dict:
    """Coordinates to 5 decimals (about a metre): a third of the bytes, nothing visible lost."""

    def r(c):
        return [round(c[0], digits), round(c[1], digits)] if isinstance(c[0], float | int) else [r(x) for x in c]

    return {"type": geometry["type"], "coordinates": r(geometry["coordinates"])}
