"""Reading units (polygons) and populations for regionalisation, with located errors."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from levekar.schema.validate import Problem

CRS = "EPSG:25833"
VECTOR_SUFFIXES = {".geojson", ".json", ".gpkg", ".parquet", ".geoparquet", ".gml", ".shp"}


class InputError(Exception):
    """Bad input: every problem located (file, column, rows, example); nothing has been written."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _fail(path: Path, column: str, check: str, rows: int, example: str, message: str) -> InputError:
    return InputError([Problem(path.name, column, check, rows, example, message)])


def read_units(path: str | Path, id_column: str, within: list[str] | None = None) -> gpd.GeoDataFrame:
    """Unit polygons from GeoJSON, GeoPackage, GML or GeoParquet, reprojected to EPSG:25833, ids as text."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "*", "missing_file", 0, str(path), "file not found")
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise _fail(path, "*", "format", 0, path.suffix, f"unsupported format; use one of {sorted(VECTOR_SUFFIXES)}")
    try:
        if path.suffix.lower() in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(path)
        else:  # WRITE_GFS=NO: reading a GML must not leave GDAL's schema file beside it
            gdf = gpd.read_file(path, **({"WRITE_GFS": "NO"} if path.suffix.lower() == ".gml" else {}))
    except Exception as e:  # the readers raise many kinds; the message is what matters to the user
        where, what = _syntax_error(path)
        raise _fail(
            path, "*", "unreadable", 0, where or path.name, what or f"cannot be read as a vector layer: {e}"
        ) from e
    for col in [id_column, *(within or [])]:
        if col not in gdf.columns:
            raise _fail(
                path, col, "missing_column", 0, f"columns: {', '.join(map(str, gdf.columns))}", "column not found"
            )
    if gdf.crs is None:
        raise _fail(path, "geometry", "crs", 0, path.name, "no coordinate reference system; set one in the file")
    problems = []
    ids = gdf[id_column]
    if ids.isna().any():
        problems.append(Problem(path.name, id_column, "required", int(ids.isna().sum()), "", "missing unit id"))
    dup = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(dup):
        problems.append(
            Problem(path.name, id_column, "unique_key", len(dup), f"{id_column}={dup.iloc[0]!r}", "duplicate unit id")
        )
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        problems.append(
            Problem(
                path.name,
                "geometry",
                "required",
                int(empty.sum()),
                f"{id_column}={ids[empty].iloc[0]!r}",
                "missing or empty geometry",
            )
        )
    if problems:
        raise InputError(problems)
    gdf = gdf.to_crs(CRS)
    gdf[id_column] = ids.astype(str)
    bad = ~gdf.geometry.is_valid
    if bad.any():
        gdf.loc[bad, "geometry"] = gdf.geometry[bad].make_valid()
    return gdf


def _syntax_error(path: Path) -> tuple[str | None, str | None]:
    """Where a GeoJSON or GML file stops being well-formed (line, column and the text there), as GDAL's own
    message does not say."""
    import json
    import xml.etree.ElementTree as ET

    suffix = path.suffix.lower()
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines() or [""]
    try:
        if suffix in (".geojson", ".json"):
            json.loads(text)
        elif suffix == ".gml":
            ET.fromstring(text.encode("utf-8"))
        else:
            return None, None
    except json.JSONDecodeError as e:
        line = lines[min(e.lineno, len(lines)) - 1]
        return (
            f"line {e.lineno}, column {e.colno}: {line[max(0, e.colno - 30) : e.colno + 30]!r}",
            f"not valid JSON: {e.msg}",
        )
    except ET.ParseError as e:
        ln, col = e.position
        line = lines[min(ln, len(lines)) - 1]
        return f"line {ln}, column {col + 1}: {line[max(0, col - 30) : col + 30]!r}", f"not well-formed XML: {e}"
    return None, None


def _read_csv_text(path: Path) -> pd.DataFrame:
    """A CSV (UTF-8, with or without byte-order mark; comma or semicolon) with every column as text."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(path, "*", "unreadable", 0, f"byte {e.start}", "not UTF-8 text: save it as UTF-8") from e
    header = text.split("\n", 1)[0]
    return pd.read_csv(io.StringIO(text), sep=";" if header.count(";") > header.count(",") else ",", dtype=str)


def read_population(path: str | Path, id_column: str, population_column: str) -> pd.Series:
    """Population per unit id from CSV or Parquet (non-negative numbers, one row per id)."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "*", "missing_file", 0, str(path), "file not found")
    if path.suffix.lower() == ".parquet":
        df = pq.read_table(path).to_pandas()
    elif path.suffix.lower() == ".csv":
        df = _read_csv_text(path)
    else:
        raise _fail(path, "*", "format", 0, path.suffix, "population must be CSV or Parquet")
    for col in (id_column, population_column):
        if col not in df.columns:
            raise _fail(
                path, col, "missing_column", 0, f"columns: {', '.join(map(str, df.columns))}", "column not found"
            )
    ids = df[id_column].astype(str)
    values = check_population(df[population_column], ids, path.name, id_column, population_column)
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise InputError(
            [
                Problem(
                    path.name,
                    id_column,
                    "unique_key",
                    int(dup.sum()),
                    f"{id_column}={ids[dup].iloc[0]!r}",
                    "more than one population row for a unit",
                )
            ]
        )
    return pd.Series(values.to_numpy(dtype=float), index=ids, name="population")


def check_population(raw: pd.Series, ids: pd.Series, source: str, id_column: str, column: str) -> pd.Series:
    """Population as non-negative finite numbers, or a located error."""
    values = pd.to_numeric(raw, errors="coerce").reset_index(drop=True)
    raw, ids = raw.reset_index(drop=True), ids.reset_index(drop=True)
    problems = []
    bad = values.isna() | ~np.isfinite(values.fillna(0))
    if bad.any():
        problems.append(
            Problem(
                source,
                column,
                "type",
                int(bad.sum()),
                f"{id_column}={ids[bad].iloc[0]!r}, {column}={raw[bad].iloc[0]!r}",
                "population is not a number",
            )
        )
    neg = values < 0
    if neg.any():
        problems.append(
            Problem(source, column, "range", int(neg.sum()), f"{id_column}={ids[neg].iloc[0]!r}", "negative population")
        )
    if problems:
        raise InputError(problems)
    return values.astype(float)


def join_population(units: gpd.GeoDataFrame, id_column: str, population: pd.Series, pop_path: Path) -> pd.Series:
    """Population aligned with the units; units without a row get an error, rows without a unit too."""
    ids = units[id_column]
    missing = ~ids.isin(population.index)
    extra = ~population.index.isin(ids)
    problems = []
    if missing.any():
        problems.append(
            Problem(
                pop_path.name,
                id_column,
                "reference",
                int(missing.sum()),
                f"{id_column}={ids[missing].iloc[0]!r}",
                "unit in the geography has no population row",
            )
        )
    if extra.any():
        problems.append(
            Problem(
                pop_path.name,
                id_column,
                "reference",
                int(extra.sum()),
                f"{id_column}={population.index[extra][0]!r}",
                "population row for a unit not in the geography",
            )
        )
    if problems:
        raise InputError(problems)
    return population.reindex(ids).reset_index(drop=True)


CHANGE_COLUMNS = ("year", "old_grunnkrets", "new_grunnkrets", "population_share")


def read_changes(path: str | Path) -> pd.DataFrame:
    """A grunnkrets code correspondence table (the extract's grunnkrets_changes) from Parquet or CSV."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "*", "missing_file", 0, str(path), "file not found")
    df = pq.read_table(path).to_pandas() if path.suffix.lower() == ".parquet" else _read_csv_text(path)
    for col in CHANGE_COLUMNS:
        if col not in df.columns:
            raise _fail(
                path, col, "missing_column", 0, f"columns: {', '.join(map(str, df.columns))}", "column not found"
            )
    for col in ("year", "population_share"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            raise _fail(path, col, "type", int(bad.sum()), f"{col}={df[col][bad].iloc[0]!r}", "not a number")
    return df.astype({"year": int, "population_share": float, "old_grunnkrets": str, "new_grunnkrets": str})
