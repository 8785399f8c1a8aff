"""Validate a register extract against the declarative schema, in DuckDB.

Every problem is located: file, column, number of offending rows and one example row. The extract is only
read; validation writes nothing.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import shapely

from levekar.io import sql_string
from levekar.schema.model import Column, ExtractSchema, Table, extract_schema

EXTENSIONS = (".parquet", ".csv")


@dataclass(frozen=True)
class Problem:
    file: str
    column: str
    check: str
    rows: int
    example: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} [{self.column}] {self.message}: {self.rows} row(s), e.g. {self.example}"


class ExtractError(Exception):
    """Raised by pipeline stages when their input extract is invalid; nothing has been written."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"invalid register extract ({len(problems)} problem(s)):\n{head}{more}")


def find_table_file(extract_dir: Path, table: Table) -> Path | None:
    for ext in EXTENSIONS:
        p = extract_dir / f"{table.file}{ext}"
        if p.exists():
            return p
    return None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_lit = sql_string


def _geo_crs_problem(path: Path) -> str | None:
    """GeoParquet metadata must exist and say EPSG:25833 for the geometry column."""
    meta = pq.read_schema(path).metadata or {}
    if b"geo" not in meta:
        return "not GeoParquet (no 'geo' metadata); write it with geopandas.GeoDataFrame.to_parquet"
    geo = json.loads(meta[b"geo"])
    col = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
    crs = col.get("crs")
    code = crs.get("id", {}).get("code") if isinstance(crs, dict) else None
    if code != 25833:
        return f"geometry CRS must be EPSG:25833 (found {code or 'none'})"
    return None


def _csv_reader(path: Path) -> str:
    """Read every CSV column as text (types are checked afterwards, with located errors). UTF-8, with or
    without a byte-order mark; anything else raises UnicodeDecodeError."""
    with path.open("rb") as f:
        header = f.readline().decode("utf-8-sig")
    path.read_bytes().decode("utf-8-sig")  # the whole file must be UTF-8: fail here, not halfway in DuckDB
    delim = ";" if header.count(";") > header.count(",") else ","
    names = next(csv.reader([header.rstrip("\r\n")], delimiter=delim))
    cols = ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names)
    return (
        f"read_csv({_lit(str(path))}, header = true, auto_detect = false, delim = {_lit(delim)}, "
        f"quote = '\"', columns = {{{cols}}})"
    )


INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT"}


class _Checker:
    def __init__(self, extract_dir: Path, schema: ExtractSchema):
        self.dir = extract_dir
        self.schema = schema
        self.con = duckdb.connect()
        self.files: dict[str, Path] = {}
        self.present_columns: dict[str, set[str]] = {}
        self.broken: set[str] = set()  # tables whose structure is unusable
        self.problems: list[Problem] = []

    def add(self, table: str, column: str, check: str, rows: int, example: str, message: str) -> None:
        fname = self.files[table].name if table in self.files else f"{self.schema.tables[table].file}.parquet"
        self.problems.append(Problem(fname, column, check, int(rows), example, message))

    # -- structure -----------------------------------------------------------------------------------------
    def load(self, table: Table) -> None:
        path = find_table_file(self.dir, table)
        if path is None:
            if table.required:
                self.add(
                    table.name,
                    "*",
                    "missing_file",
                    0,
                    f"{table.file}.parquet or {table.file}.csv",
                    "required file is missing",
                )
            self.broken.add(table.name)
            return
        self.files[table.name] = path
        if table.spatial and path.suffix != ".parquet":
            self.add(table.name, "geometry", "format", 0, path.name, "spatial table must be GeoParquet")
            self.broken.add(table.name)
            return
        try:
            reader = f"read_parquet({_lit(str(path))})" if path.suffix == ".parquet" else _csv_reader(path)
            # CSV is materialised as text: DuckDB would otherwise push our TRY_CASTs into the reader,
            # which then fails on the first bad value instead of letting us count and locate them all
            kind = "VIEW" if path.suffix == ".parquet" else "TEMP TABLE"
            self.con.execute(f"CREATE {kind} {_q('raw_' + table.name)} AS SELECT * FROM {reader}")
            cols = [r[0] for r in self.con.execute(f"DESCRIBE {_q('raw_' + table.name)}").fetchall()]
        except UnicodeDecodeError as e:
            self.add(table.name, "*", "unreadable", 0, path.name, f"not UTF-8 text (byte {e.start}): save it as UTF-8")
            self.broken.add(table.name)
            return
        except duckdb.Error as e:
            self.add(table.name, "*", "unreadable", 0, path.name, f"cannot be read: {str(e).splitlines()[0]}")
            self.broken.add(table.name)
            return
        self.present_columns[table.name] = set(cols)
        for c in table.columns:
            if c.name not in cols and c.required:
                self.add(
                    table.name,
                    c.name,
                    "missing_column",
                    0,
                    f"columns found: {', '.join(cols)}",
                    "required column is missing",
                )
                self.broken.add(table.name)
        if table.spatial and (crs_problem := _geo_crs_problem(path)):
            self.add(table.name, "geometry", "crs", 0, path.name, crs_problem)
        if table.spatial and "geometry" in cols and table.key[0] in cols:
            self._check_geometry(table, path)
        select = []
        for c in table.columns:
            expr = f"TRY_CAST({_q(c.name)} AS {c.type})" if c.name in cols else f"CAST(NULL AS {c.type})"
            select.append(f"{expr} AS {_q(c.name)}")
        self.con.execute(f"CREATE VIEW {_q(table.name)} AS SELECT {', '.join(select)} FROM {_q('raw_' + table.name)}")

    def _check_geometry(self, table: Table, path: Path) -> None:
        """Geometries must be valid polygons or multipolygons."""
        t = pq.read_table(path, columns=[table.key[0], "geometry"])
        geoms = shapely.from_wkb(t.column("geometry").to_numpy(zero_copy_only=False), on_invalid="ignore")
        keys = t.column(table.key[0]).to_pylist()
        kinds = shapely.get_type_id(geoms)
        not_polygon = ~np.isin(kinds, (3, 6))  # Polygon, MultiPolygon
        if not_polygon.any():
            i = int(np.flatnonzero(not_polygon)[0])
            self.add(
                table.name,
                "geometry",
                "geometry_type",
                int(not_polygon.sum()),
                f"{table.key[0]}={keys[i]!r}, type={shapely.get_type_id(geoms[i]) if geoms[i] else None}",
                "geometry must be a Polygon or MultiPolygon (WKB)",
            )
        invalid = ~not_polygon & ~shapely.is_valid(geoms)
        if invalid.any():
            i = int(np.flatnonzero(invalid)[0])
            self.add(
                table.name,
                "geometry",
                "geometry_valid",
                int(invalid.sum()),
                f"{table.key[0]}={keys[i]!r}",
                f"invalid polygon ({shapely.is_valid_reason(geoms[i])})",
            )

    # -- column and table checks -------------------------------------------------------------------------
    def _column_checks(self, table: Table) -> Iterator[tuple[Column, str, str, str]]:
        """(column, check name, SQL condition over the raw data, message)."""
        present = self.present_columns[table.name]
        for c in table.columns:
            if c.name not in present:
                continue
            raw = _q(c.name)
            typed = f"TRY_CAST({raw} AS {c.type})"
            if c.required:
                yield c, "required", f"{raw} IS NULL", "missing value in a required column"
            bad_type = f"{raw} IS NOT NULL AND {typed} IS NULL"
            if c.type in INTEGER_TYPES:  # 2016.4 would otherwise be rounded quietly into an integer column
                bad_type += f" OR TRY_CAST({raw} AS DOUBLE) <> {typed}"
            yield c, "type", bad_type, f"value is not of type {c.type}"
            if c.codes:
                codes = ", ".join(_lit(v) for v in self.schema.codes(c))
                yield (
                    c,
                    "code",
                    f"CAST({typed} AS VARCHAR) NOT IN ({codes})",
                    f"value outside code list {c.codes} ({', '.join(self.schema.codes(c))})",
                )
            if c.pattern:
                yield (
                    c,
                    "pattern",
                    f"NOT regexp_full_match(CAST({raw} AS VARCHAR), {_lit(c.pattern)})",
                    f"value does not match the code format {c.pattern}",
                )
            if c.range:
                lo, hi = c.range
                conds = ([f"{typed} < {lo}"] if lo is not None else []) + (
                    [f"{typed} > {hi}"] if hi is not None else []
                )
                yield c, "range", " OR ".join(conds), f"value outside the range [{lo}, {hi}]"

    def check_columns(self, table: Table) -> None:
        checks = list(self._column_checks(table))
        if not checks:
            return
        source = f"(SELECT row_number() OVER () AS _row, * FROM {_q('raw_' + table.name)})"
        counts = self.con.execute(
            "SELECT " + ", ".join(f"count_if({cond})" for _, _, cond, _ in checks) + f" FROM {source}"
        ).fetchone()
        for (col, check, cond, message), n in zip(checks, counts, strict=True):
            if n:
                keys = [k for k in table.key if k != col.name and k in self.present_columns[table.name]]
                cols = [*keys, col.name]
                row = self.con.execute(
                    f"SELECT {', '.join(_q(c) for c in cols)}, _row FROM {source} WHERE {cond} ORDER BY _row LIMIT 1"
                ).fetchone()
                example = ", ".join(f"{c}={row[i]!r}" for i, c in enumerate(cols)) + f", data row {row[-1]}"
                self.add(table.name, col.name, check, n, example, message)

    def _key_present(self, table: Table, alias: str = "t") -> str:
        """Rows whose key could be read: the others are already reported and would only add noise."""
        return " AND ".join(f"{alias}.{_q(k)} IS NOT NULL" for k in table.key)

    def _first(self, table: Table, source: str, cond: str, cols: list[str]) -> str:
        order = ", ".join(f"t.{_q(c)}" for c in cols)
        row = self.con.execute(
            f"SELECT {', '.join('t.' + _q(c) for c in cols)} FROM {source} WHERE {cond} ORDER BY {order} LIMIT 1"
        ).fetchone()
        return ", ".join(f"{c}={v!r}" for c, v in zip(cols, row, strict=True))

    def check_key(self, table: Table) -> None:
        if not all(k in self.present_columns[table.name] for k in table.key):
            return
        keys = ", ".join(_q(k) for k in table.key)
        label = ", ".join(_lit(k + "=") + " || " + _q(k) for k in table.key)
        n, example = self.con.execute(
            f"SELECT coalesce(sum(n), 0), min(k) FROM (SELECT count(*) AS n, concat_ws(', ', {label}) AS k "
            f"FROM {_q(table.name)} t WHERE {self._key_present(table)} GROUP BY {keys} HAVING count(*) > 1)"
        ).fetchone()
        if n:
            self.add(
                table.name, ",".join(table.key), "unique_key", n, example, f"duplicate key ({', '.join(table.key)})"
            )

    def check_references(self, table: Table) -> None:
        for c in table.columns:
            if c.references is None or c.name not in self.present_columns[table.name]:
                continue
            parent, pcols = c.references
            if parent in self.broken or parent not in self.files:
                n = self.con.execute(
                    f"SELECT count(*) FROM {_q(table.name)} WHERE {_q(c.name)} IS NOT NULL"
                ).fetchone()[0]
                if n and parent not in self.files:
                    self.add(
                        table.name,
                        c.name,
                        "reference",
                        n,
                        f"{self.schema.tables[parent].file}.parquet",
                        f"refers to {parent}, but that file is missing",
                    )
                continue
            ccols = (c.name, *pcols[1:])  # composite keys share their trailing names (year)
            on = " AND ".join(f"t.{_q(a)} = p.{_q(b)}" for a, b in zip(ccols, pcols, strict=True))
            source = f"{_q(table.name)} t ANTI JOIN {_q(parent)} p ON {on}"
            cond = f"t.{_q(c.name)} IS NOT NULL AND {self._key_present(table)}"
            n = self.con.execute(f"SELECT count(*) FROM {source} WHERE {cond}").fetchone()[0]
            if n:
                cols = [k for k in table.key if k != c.name] + [c.name]
                example = self._first(table, source, cond, cols)
                self.add(
                    table.name, c.name, "reference", n, example, f"value not found in {parent}.({', '.join(pcols)})"
                )

    def check_rules(self, table: Table) -> None:
        for rule in table.rules:
            source = rule.from_ or f"{_q(table.name)} t"
            needed = {n for n in self.schema.tables if re.search(rf"\b{n}\b", source)} | {table.name}
            if needed & self.broken or not needed <= set(self.files):
                continue
            cond = f"({rule.violation}) AND {self._key_present(table)}"
            try:
                n = self.con.execute(f"SELECT count(*) FROM {source} WHERE {cond}").fetchone()[0]
            except duckdb.Error as e:  # a user's own schema file with a faulty rule
                self.add(table.name, ",".join(rule.columns), rule.name, 0, "", f"rule failed: {e}")
                continue
            if n:
                cols = [k for k in table.key if k not in rule.columns] + list(rule.columns)
                example = self._first(table, source, cond, cols)
                self.add(table.name, ",".join(rule.columns), rule.name, n, example, rule.message)


def validate_extract(
    extract_dir: str | Path,
    schema: ExtractSchema | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Problem]:
    """All problems of the extract in `extract_dir` (empty list: valid)."""
    extract_dir = Path(extract_dir)
    schema = schema or extract_schema()
    if not extract_dir.is_dir():
        return [Problem(str(extract_dir), "*", "missing_dir", 0, str(extract_dir), "extract folder not found")]
    chk = _Checker(extract_dir, schema)
    tables = list(schema.tables.values())
    steps: list[tuple[str, Callable[[Table], None]]] = [
        ("columns", chk.check_columns),
        ("keys", chk.check_key),
        ("references", chk.check_references),
        ("rules", chk.check_rules),
    ]
    for t in tables:
        chk.load(t)
    for label, step in steps:
        for t in tables:
            if t.name in chk.broken:
                continue
            if progress:
                progress(f"{label}: {t.name}")
            step(t)
    return chk.problems
