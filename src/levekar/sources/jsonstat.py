"""JSON-stat 2.0 (https://json-stat.org/format/): reading datasets and collections as tidy frames, and writing
a tidy frame as a dataset — the form SSB's PxWebApi v2 answers in and the web stage offers as a download.

Reading accepts what publishers write: `value` as an array or as a sparse object, `status` as one string, an
array or a sparse object, `category.index` as an array or an object, a dimension without `index` (one
category), collections (`class: collection`, datasets embedded in `link.item`) and JSON-stat 1.0 bundles
(`{"name": {dataset}}`, SSB's old API). Missing values are null; their `status` is kept, and SSB's "-" (nothing
to report) reads as 0.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from levekar.io import write_text
from levekar.sources.symbols import SYMBOLS, ZERO, SourceError


@dataclass(frozen=True)
class Dimension:
    id: str
    label: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]
    role: str | None = None  # time, geo or metric
    units: dict[str, dict] = field(default_factory=dict)  # metric categories: code → {base, decimals, …}
    extension: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    label: str
    dimensions: tuple[Dimension, ...]
    values: np.ndarray  # float, NaN where null; row-major over the dimensions, as JSON-stat orders them
    status: np.ndarray  # object: the status symbol of each cell, or None
    source: str | None = None
    updated: str | None = None
    note: tuple[str, ...] = ()
    extension: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(len(d.codes) for d in self.dimensions)

    def dimension(self, dim_id: str) -> Dimension:
        for d in self.dimensions:
            if d.id == dim_id:
                return d
        raise KeyError(dim_id)

    def to_frame(self, labels: bool = False) -> pd.DataFrame:
        """Tidy: one column per dimension (codes; `<id>_label` beside when `labels`), `value`, `status`."""
        cols: dict[str, Any] = {}
        n = int(np.prod(self.size)) if self.dimensions else 1
        for k, d in enumerate(self.dimensions):
            # row-major order: the last dimension varies fastest
            inner = int(np.prod(self.size[k + 1 :]))
            idx = np.tile(np.repeat(np.arange(len(d.codes)), inner), n // (inner * len(d.codes)) if d.codes else 0)
            cols[d.id] = np.asarray(d.codes, dtype=object)[idx]
            if labels:
                cols[f"{d.id}_label"] = np.asarray(d.labels, dtype=object)[idx]
        frame = pd.DataFrame(cols)
        frame["value"] = self.values
        frame["status"] = pd.Series(self.status, dtype=object)
        return frame


def _fail(source: str, message: str, example=None) -> SourceError:
    return SourceError(source, message, example=example)


def _load(source: str | Path | dict | bytes) -> tuple[dict, str]:
    """The JSON object and a name for messages; a syntax error is located (line and column)."""
    if isinstance(source, dict):
        return source, "JSON-stat"
    if isinstance(source, bytes):
        text, name = source.decode("utf-8-sig"), "JSON-stat response"
    else:
        path = Path(source)
        if not path.is_file():
            raise _fail(str(path), "file not found")
        text, name = path.read_text(encoding="utf-8-sig"), path.name
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        line = text.splitlines()[e.lineno - 1] if text.splitlines() else ""
        raise SourceError(
            name, f"not valid JSON: {e.msg}", line=e.lineno, column=f"char {e.colno}", example=line[:60]
        ) from e
    if not isinstance(obj, dict):
        raise _fail(name, "a JSON-stat document is a JSON object", example=type(obj).__name__)
    return obj, name


def _categories(name: str, dim_id: str, dim: dict) -> tuple[list[str], list[str]]:
    cat = dim.get("category")
    if not isinstance(cat, dict):
        raise _fail(name, f"dimension {dim_id!r} has no 'category'")
    index, labels = cat.get("index"), cat.get("label") or {}
    if index is None:
        if len(labels) != 1:
            raise _fail(name, f"dimension {dim_id!r}: 'index' may be left out only for one category", example=labels)
        codes = list(labels)
    elif isinstance(index, list):
        codes = [str(c) for c in index]
    elif isinstance(index, dict):
        pos = sorted(index.items(), key=lambda kv: kv[1])
        if [p for _, p in pos] != list(range(len(pos))):
            raise _fail(name, f"dimension {dim_id!r}: category positions are not 0…n−1", example=index)
        codes = [str(c) for c, _ in pos]
    else:
        raise _fail(name, f"dimension {dim_id!r}: 'index' is neither an array nor an object", example=index)
    return codes, [str(labels.get(c, c)) for c in codes]


def _cells(name: str, raw: Any, n: int, what: str) -> list:
    """A dense list of `n` cells from an array, a sparse object {"position": x} or (status) one string."""
    if raw is None:
        return [None] * n
    if isinstance(raw, str) and what == "status":
        return [raw] * n
    if isinstance(raw, list):
        if len(raw) != n and not (what == "status" and len(raw) == 1):
            raise _fail(name, f"'{what}' has {len(raw)} entries, the dimensions' sizes give {n}", example=raw[:3])
        return raw * n if len(raw) == 1 and n != 1 else list(raw)
    if isinstance(raw, dict):
        out = [None] * n
        for k, v in raw.items():
            try:
                i = int(k)
            except ValueError:
                raise _fail(name, f"'{what}' key is not a cell position", example=k) from None
            if not 0 <= i < n:
                raise _fail(name, f"'{what}' position outside the {n} cells", example=k)
            out[i] = v
        return out
    raise _fail(name, f"'{what}' is neither an array nor an object", example=raw)


def parse_dataset(obj: dict, name: str = "JSON-stat", values: bool = True) -> Dataset:
    """One JSON-stat dataset (2.0, or a 1.0 dataset). `values=False` reads a metadata response (PxWebApi's
    table metadata has dimensions but no values)."""
    ids = obj.get("id") or (obj.get("dimension") or {}).get("id")  # 1.0 keeps id, size and role in dimension
    size = obj.get("size") or (obj.get("dimension") or {}).get("size")
    dims = obj.get("dimension")
    if not isinstance(dims, dict) or not isinstance(ids, list):
        raise _fail(name, "a dataset needs 'id' and 'dimension'", example=sorted(obj)[:8])
    roles = obj.get("role") or dims.get("role") or {}
    role_of = {d: r for r, ds in roles.items() for d in (ds or [])}
    out = []
    for k, dim_id in enumerate(ids):
        if dim_id not in dims:
            raise _fail(name, f"dimension {dim_id!r} is listed in 'id' but not described", example=dim_id)
        d = dims[dim_id]
        codes, labels = _categories(name, dim_id, d)
        if size is not None and (k >= len(size) or size[k] != len(codes)):
            raise _fail(name, f"dimension {dim_id!r} has {len(codes)} categories, 'size' says otherwise", size)
        out.append(
            Dimension(
                id=str(dim_id),
                label=str(d.get("label", dim_id)),
                codes=tuple(codes),
                labels=tuple(labels),
                role=role_of.get(dim_id),
                units=dict((d.get("category") or {}).get("unit") or {}),
                extension=dict(d.get("extension") or {}),
            )
        )
    n = int(np.prod([len(d.codes) for d in out])) if out else 1
    if values and "value" not in obj:
        raise _fail(name, "a dataset needs 'value'", example=sorted(obj)[:8])
    raw = _cells(name, obj.get("value") if values else None, n, "value")
    status = np.array(_cells(name, obj.get("status"), n, "status"), dtype=object)
    nums = np.full(n, np.nan)
    for i, v in enumerate(raw):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise _fail(name, f"value {i} is not a number", example=v)
        try:
            nums[i] = float(v)
        except ValueError:  # a symbol written in place of the number
            if v.strip() not in SYMBOLS:
                raise _fail(name, f"value {i} is not a number", example=v) from None
            status[i] = v.strip()
    nums[(status == ZERO) & np.isnan(nums)] = 0.0
    note = obj.get("note") or ()
    return Dataset(
        label=str(obj.get("label", "")),
        dimensions=tuple(out),
        values=nums,
        status=status,
        source=obj.get("source"),
        updated=obj.get("updated"),
        note=tuple(note) if isinstance(note, list) else (str(note),),
        extension=dict(obj.get("extension") or {}),
    )


def read_jsonstat(source: str | Path | dict | bytes) -> list[Dataset]:
    """Every dataset in a JSON-stat document: a dataset, a collection (embedded datasets, in order) or a 1.0
    bundle. A problem names the file and what is wrong, with an example."""
    obj, name = _load(source)
    kind = obj.get("class")
    if kind == "dataset":
        return [parse_dataset(obj, name)]
    if kind == "collection":
        items = ((obj.get("link") or {}).get("item")) or []
        found = [parse_dataset(i, f"{name} item {k}") for k, i in enumerate(items) if i.get("class") == "dataset"]
        if not found:
            raise _fail(name, "the collection embeds no dataset (only links, which are not followed)")
        return found
    if kind is not None:
        raise _fail(name, f"class {kind!r} holds no values; expected a dataset or a collection", example=kind)
    # JSON-stat 1.0 bundle: {"name": {dataset}, …}
    found = [parse_dataset(v, f"{name} {k}") for k, v in obj.items() if isinstance(v, dict) and "dimension" in v]
    if not found:
        raise _fail(name, "no JSON-stat dataset in it (no 'class', no bundle of datasets)", example=sorted(obj)[:8])
    return found


def read_dataset(source: str | Path | dict | bytes) -> Dataset:
    """The one dataset of a document (a collection or bundle of several is an error)."""
    found = read_jsonstat(source)
    if len(found) != 1:
        raise _fail(str(source)[:80], f"{len(found)} datasets; use read_jsonstat for all of them")
    return found[0]


# --- writing ----------------------------------------------------------------------------------------------


def _number(v: float) -> int | float | None:
    """JSON for a value: null for NaN, an integer when whole (50080, not 50080.0), else the float."""
    if v is None or not np.isfinite(v):
        return None
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v)


def _cell(v: Any) -> int | float | str | None:
    """A cell of an object column: numbers as `_number`, text as text, empty as null."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return _number(float(v))
    return str(v)


def to_jsonstat(
    frame: pd.DataFrame,
    dimensions: list[str],
    value: str = "value",
    status: str | None = None,
    label: str = "",
    source: str | None = None,
    updated: str | None = None,
    labels: dict[str, dict[str, str] | str] | None = None,
    titles: dict[str, str] | None = None,
    order: dict[str, list[str]] | None = None,
    roles: dict[str, list[str]] | None = None,
    units: dict[str, dict[str, dict]] | None = None,
    note: list[str] | None = None,
    extension: dict | None = None,
) -> dict:
    """A JSON-stat 2.0 dataset from a tidy frame: one row per cell, one column per dimension (in `dimensions`
    order), the number in `value` (NaN → null), optionally a symbol per cell in `status` (written sparse).

    Categories come in `order[dim]` when given, else sorted; `labels[dim]` is a code → label mapping or the
    name of a label column; `titles[dim]` the dimension's label. Combinations without a row are null. The
    result is the same dict for the same frame, whatever its row order."""
    missing = [c for c in [*dimensions, value, *([status] if status else [])] if c not in frame.columns]
    if missing:
        raise ValueError(f"to_jsonstat: no column {', '.join(map(repr, missing))}; have {list(frame.columns)}")
    keys = frame[dimensions].astype(str)
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise ValueError(f"to_jsonstat: {int(dup.sum())} rows share a cell, e.g. {keys[dup].iloc[0].to_dict()}")
    labels, titles, order = labels or {}, titles or {}, order or {}
    dims, size, positions = {}, [], []
    for d in dimensions:
        present = set(keys[d])
        codes = [str(c) for c in order[d]] if d in order else sorted(present)
        if not present <= set(codes):
            raise ValueError(
                f"to_jsonstat: {d!r} has codes outside order[{d!r}], e.g. {sorted(present - set(codes))[0]}"
            )
        lab = labels.get(d)
        if isinstance(lab, str):
            lab = dict(zip(keys[d], frame[lab].astype(str), strict=True))
        category: dict[str, Any] = {"index": codes, "label": {c: str((lab or {}).get(c, c)) for c in codes}}
        if units and d in units:
            category["unit"] = {c: units[d][c] for c in codes if c in units[d]}
        dims[d] = {"label": titles.get(d, d), "category": category}
        size.append(len(codes))
        positions.append(keys[d].map({c: i for i, c in enumerate(codes)}).to_numpy(dtype=np.int64))
    flat = np.ravel_multi_index(positions, size) if dimensions else np.zeros(len(frame), dtype=np.int64)
    n = int(np.prod(size)) if size else 1
    vals: list = [None] * n
    col = frame[value]
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        cells = [_number(v) for v in col.to_numpy(dtype=float).tolist()]
    else:  # a table of mixed measures (a label beside the numbers): JSON-stat values may be strings
        cells = [_cell(v) for v in col.tolist()]
    for i, v in zip(flat.tolist(), cells, strict=True):
        vals[i] = v
    out: dict[str, Any] = {"version": "2.0", "class": "dataset", "label": label}
    if source:
        out["source"] = source
    if updated:
        out["updated"] = updated
    out |= {"id": list(dimensions), "size": size, "dimension": dims, "value": vals}
    if status:
        st = {
            str(i): str(s)
            for i, s in sorted(zip(flat.tolist(), frame[status].tolist(), strict=True))
            if s is not None and not (isinstance(s, float) and np.isnan(s)) and str(s) != ""
        }
        if st:
            out["status"] = st
    if roles:
        out["role"] = {r: list(ds) for r, ds in roles.items()}
    if note:
        out["note"] = list(note)
    if extension:
        out["extension"] = extension
    return out


def write_jsonstat(obj: dict, path: str | Path) -> Path:
    """Write a JSON-stat document deterministically (keys in the order built, UTF-8, no spaces; one line and a
    newline) and atomically (the file appears whole or not at all)."""
    path = Path(path)
    write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n", path)
    return path


def frame_product(dimensions: dict[str, list[str]]) -> pd.DataFrame:
    """Every combination of the codes, in JSON-stat's row-major order (a helper for tests and writers)."""
    rows = list(itertools.product(*dimensions.values()))
    return pd.DataFrame(rows, columns=list(dimensions))
