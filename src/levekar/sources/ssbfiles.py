"""SSB's files as published: Statbank CSV exports ("semicolon separated with title", Latin-1 or UTF-8) and
the population grid files (100 m, 250 m, 1 km; CSV and GML) with SSB's cell ids.

Errors name the file, the line (1 = the file's first line) and column, with the offending text.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from levekar.sources.symbols import SourceError, parse_numbers

# --- Statbank CSV exports ---------------------------------------------------------------------------------

_CODE = re.compile(r"^(\d+)([a-zA-Z]*)$")
_PERIOD = re.compile(r"^\d{4}([KMUHT]\d{1,2})?$")  # 2024, 2024K1, 2024M01, 2014U30


def _decode(path: Path) -> str:
    """UTF-8 (with or without BOM) when it decodes, else Latin-1 — SSB exports both."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _split_code(values: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """'030101a Gamle Oslo' → ('030101a', 'Gamle Oslo') when every value of the column starts with a code of
    the same number of digits (at least two: '0 years' is a label, not a code)."""
    parts = values.str.split(" ", n=1, expand=True)
    if parts.shape[1] < 2 or parts[1].isna().any():
        return None
    m = parts[0].str.extract(_CODE)
    if m[0].isna().any() or m[0].str.len().nunique() != 1 or m[0].str.len().iloc[0] < 2:
        return None
    return parts[0], parts[1].str.strip()


def read_ssb_csv(path: str | Path, split_codes: bool | list[str] = True) -> pd.DataFrame:
    """A Statbank CSV export as a tidy frame: the stub columns (code and `<name>_label` when the field holds
    "code label"), `heading` (the value column's header, e.g. "Persons 2024"), `contents` and `period` when
    the heading ends in a period, `value` (NaN for SSB symbols) and `status` (the symbol).

    Title lines before the header (and notes after the data, separated by an empty line) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(str(path), "file not found")
    lines = _decode(path).splitlines()
    # the header: the first line of several fields (a quoted title with commas in it is one field)
    header_at, sep = None, ";"
    for i, line in enumerate(lines[:50]):
        widths = {s: len(next(csv.reader([line], delimiter=s), [])) for s in (";", ",")}
        if max(widths.values()) >= 2:
            header_at, sep = i, max(widths, key=lambda s: (widths[s], s == ";"))
            break
    if header_at is None:
        raise SourceError(path.name, "no header line with ';' or ',' separated columns", line=1, example=lines[:1])
    head = lines[header_at]
    # data run until the first empty line (SSB writes footnotes after one)
    end = next((i for i in range(header_at + 1, len(lines)) if not lines[i].strip()), len(lines))
    rows = list(csv.reader(io.StringIO("\n".join(lines[header_at:end])), delimiter=sep))
    header, body = rows[0], rows[1:]
    if not body:
        raise SourceError(path.name, "no data rows under the header", line=header_at + 1, example=head)
    for k, r in enumerate(body):
        if len(r) != len(header):
            raise SourceError(
                path.name,
                f"{len(r)} fields, the header has {len(header)}",
                line=header_at + 2 + k,
                example=lines[header_at + 1 + k][:80],
            )
    frame = pd.DataFrame(body, columns=header)
    # the value columns: those whose cells are numbers or symbols (SSB puts the stub variables first)
    n_stub = 0
    for c in header:
        try:
            parse_numbers(frame[c], path.name, c)
            break
        except SourceError:
            n_stub += 1
    if n_stub == len(header):
        # every column has text: the first non-number of the last column is the error to show
        parse_numbers(frame[header[-1]], path.name, header[-1], first_line=header_at + 2)
    stub, heads = header[:n_stub], header[n_stub:]
    long = frame.melt(id_vars=stub, value_vars=heads, var_name="heading", value_name="raw")
    out = pd.DataFrame(index=long.index)
    for c in stub:
        split = _split_code(long[c]) if (split_codes is True or (split_codes and c in split_codes)) else None
        if split is None:
            out[c] = long[c]
        else:
            out[c], out[f"{c}_label"] = split
    out["heading"] = long["heading"]
    last = long["heading"].str.rsplit(" ", n=1)
    if last.map(lambda p: len(p) == 2 and bool(_PERIOD.match(p[1]))).all():
        out["contents"] = last.str[0]
        out["period"] = last.str[1]
    value = np.empty(len(long))
    status = np.empty(len(long), dtype=object)
    for c in heads:  # per column, so an error names the line it is on (data start after the header)
        part = (long["heading"] == c).to_numpy()
        value[part], status[part] = parse_numbers(long.loc[part, "raw"], path.name, c, first_line=header_at + 2)
    out["value"], out["status"] = value, pd.Series(status, dtype=object)
    return out


# --- grid cells -------------------------------------------------------------------------------------------

SIZES = (100_000, 50_000, 25_000, 10_000, 5_000, 1_000, 500, 250, 100)  # SSB's statistical grid sizes
ID_COLUMNS = ("ssbid", "ssb_id", "rute_100m", "rute_250m", "rute_1km", "ru100m", "ru250m", "ru1000m", "ssbid1000m",
              "ssbid250m", "ssbid100m", "ssbid5000m")  # fmt: skip
POPULATION_COLUMNS = ("population", "pop_tot", "poptot", "sum", "antall", "befolkning", "pers")


def ssb_cell_id(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """SSB's id of the grid cell of side `size` holding (x, y) (EPSG:25833): (x_ll + 2 000 000)·10⁷ + y_ll with
    (x_ll, y_ll) the cell's lower-left corner — e.g. 22536006661600 is the 100 m cell at 253 600, 6 661 600
    (checked against SSB's Oslo files, see tests/data/real/ssb-rutenett-oslo/SOURCE.md)."""
    xl = (np.floor(np.asarray(x, dtype=np.float64) / size) * size).astype(np.int64)
    yl = (np.floor(np.asarray(y, dtype=np.float64) / size) * size).astype(np.int64)
    return (xl + 2_000_000) * 10_000_000 + yl


def ssb_cell_corner(cell_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lower-left corner (x, y) in EPSG:25833 of SSB cell ids."""
    cell_id = np.asarray(cell_id, dtype=np.int64)
    return cell_id // 10_000_000 - 2_000_000, cell_id % 10_000_000


def cell_size(x: np.ndarray, y: np.ndarray) -> int:
    """The largest SSB grid size every corner is a multiple of (a file of one size has corners on its grid)."""
    for s in SIZES:
        if len(x) and not (np.any(np.asarray(x) % s) or np.any(np.asarray(y) % s)):
            return s
    raise ValueError("cell corners on no SSB grid (not multiples of 100 m)")


def _check_ids(raw: pd.Series, source: str, column: str, first_line: int) -> np.ndarray:
    text = raw.astype(str).str.strip()
    ok = text.str.fullmatch(r"\d{14}")
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise SourceError(
            source, "not a 14-digit SSB grid cell id", line=first_line + i, column=column, example=raw.iloc[i]
        )
    ids = text.astype(np.int64).to_numpy()
    x, y = ssb_cell_corner(ids)
    bad = (x < -2_000_000) | (x > 3_000_000) | (y < 6_000_000) | (y > 8_000_000)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SourceError(
            source, "cell id outside Norway's grid", line=first_line + i, column=column, example=raw.iloc[i]
        )
    return ids


def _grid_frame(
    df: pd.DataFrame, source: str, id_column: str | None, size: int | None, first_line: int
) -> pd.DataFrame:
    lower = {c.lower().split(":")[-1]: c for c in df.columns}
    col = id_column or next((lower[c] for c in ID_COLUMNS if c in lower), None)
    if col is None or col not in df.columns:
        raise SourceError(source, f"no cell id column (one of {', '.join(ID_COLUMNS)})", example=list(df.columns))
    ids = _check_ids(df[col], source, col, first_line)
    x, y = ssb_cell_corner(ids)
    size = size or cell_size(x, y)
    if np.any(x % size) or np.any(y % size):
        i = int(np.flatnonzero((x % size) | (y % size))[0])
        raise SourceError(source, f"not a {size} m cell", line=first_line + i, column=col, example=df[col].iloc[i])
    out = pd.DataFrame({"ssb_id": ids, "x": x, "y": y, "size": np.full(len(ids), size, dtype=np.int64)})
    for c in df.columns:
        if c == col or c == "geometry":
            continue
        name = c.split(":")[-1]
        try:
            num, _ = parse_numbers(df[c], source, c, first_line)
        except SourceError:
            out[name] = df[c].to_numpy()
            continue
        out[name] = num
    pop = next((c for c in out.columns if c.lower() in POPULATION_COLUMNS), None)
    if pop is not None and pop != "population":
        out["population"] = out[pop]
    return out


def read_grid(path: str | Path, size: int | None = None, id_column: str | None = None) -> pd.DataFrame:
    """An SSB grid file (CSV: space, semicolon or comma separated; GML) as ssb_id, x, y (lower-left corner,
    EPSG:25833), size, the file's other columns (numbers where they are), and `population` when a known
    population column is there (sum, popTot, …). `size` is inferred from the corners when not given. In a
    GML file each polygon must be the cell its id names."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(str(path), "file not found")
    if path.suffix.lower() in (".gml", ".xml"):
        return _read_grid_gml(path, size, id_column)
    text = _decode(path)
    first = text.split("\n", 1)[0]
    sep = ";" if ";" in first else "," if "," in first else r"\s+"
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, engine="python")
    except (pd.errors.ParserError, ValueError) as e:
        m = re.search(r"line (\d+)", str(e))
        raise SourceError(path.name, f"cannot be read as CSV: {e}", line=int(m.group(1)) if m else None) from e
    return _grid_frame(df, path.name, id_column, size, first_line=2)


def _read_grid_gml(path: Path, size: int | None, id_column: str | None) -> pd.DataFrame:
    try:  # a syntax error located by the XML parser, before GDAL's less precise message
        for _ in ET.iterparse(path):
            pass
    except ET.ParseError as e:
        line, col = e.position
        raise SourceError(path.name, f"not well-formed XML: {e.msg}", line=line, column=f"char {col}") from e
    import warnings

    import geopandas as gpd

    with warnings.catch_warnings():
        # SSB's GML has the cells and, in a second layer, their outer boundary: the cells are the first
        # (default) layer. WRITE_GFS=NO: GDAL would leave a schema file beside the input
        warnings.filterwarnings("ignore", "More than one layer found")
        gdf = gpd.read_file(path, WRITE_GFS="NO")
    out = _grid_frame(pd.DataFrame(gdf.drop(columns="geometry")), path.name, id_column, size, first_line=1)
    if gdf.crs is not None and gdf.crs.to_epsg() != 25833:
        raise SourceError(path.name, "grid polygons must be in EPSG:25833 (SSB's grid)", example=str(gdf.crs))
    c = gdf.geometry.representative_point()
    inside = (c.x.to_numpy() >= out.x) & (c.x.to_numpy() < out.x + out["size"])
    inside &= (c.y.to_numpy() >= out.y) & (c.y.to_numpy() < out.y + out["size"])
    if not inside.all():
        i = int(np.flatnonzero(~inside.to_numpy())[0])
        raise SourceError(
            path.name, f"feature {i + 1}: the polygon is not the cell its id names", example=int(out.ssb_id.iloc[i])
        )
    return out


def cell_polygons(cells: pd.DataFrame):
    """Square polygons (EPSG:25833) for ssb_id, x, y, size rows."""
    import geopandas as gpd
    import shapely

    x, y, s = (cells[c].to_numpy(dtype=float) for c in ("x", "y", "size"))
    geom = shapely.box(x, y, x + s, y + s)
    return gpd.GeoDataFrame(cells.copy(), geometry=geom, crs="EPSG:25833")
