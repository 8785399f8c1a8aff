"""Deterministic, atomic output shared by every stage: same content → same bytes, and a file or a folder
appears whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "row_group_size": 1 << 20,
    "write_statistics": True,
    "store_schema": True,
}


def sql_string(value: str) -> str:
    """A SQL string literal (file paths into DuckDB table functions)."""
    return "'" + str(value).replace("'", "''") + "'"


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside `path`; it replaces `path` only when the writing succeeded."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(table: pa.Table, path: Path) -> None:
    with _replacing(path) as tmp:
        pq.write_table(table.replace_schema_metadata(None), tmp, **PARQUET_OPTIONS)


def write_geoparquet(gdf: gpd.GeoDataFrame, path: Path) -> None:
    with _replacing(path) as tmp:
        gdf.to_parquet(tmp, index=False, compression="zstd", schema_version="1.0.0", write_covering_bbox=False)


def write_json(obj: object, path: Path) -> None:
    with _replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def write_text(text: str, path: Path) -> None:
    """UTF-8 text with the line ends as given."""
    with _replacing(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))


def write_bytes(data: bytes, path: Path) -> None:
    with _replacing(path) as tmp:
        tmp.write_bytes(data)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_dir(target: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` in one rename, on any
    error it is removed and `target` is untouched."""
    target = Path(target)
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; use --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """CSV with floats as their shortest exact repr, LF line ends, no index."""
    with _replacing(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
