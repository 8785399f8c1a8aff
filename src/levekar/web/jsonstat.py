"""A small, self-contained JSON-stat 2.0 dataset writer (https://json-stat.org/format/).

A long table (one row per cell of the cube, dimension columns + measure columns) becomes one dataset: the
dimensions in the given order, then a `contents` dimension (role `metric`) over the measures; `value` is the
dense row-major array (null where the cube has no row), `status` carries SSB's symbols for the cells that
have no number (`:` suppressed, `..` missing, `-` nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

CONTENTS = "contents"


def _number(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return float(v) if isinstance(v, float) else int(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def dataset(
    frame: pd.DataFrame,
    dimensions: Sequence[str],
    measures: Sequence[str],
    status: pd.DataFrame | None = None,
    labels: Mapping[str, str] | None = None,
    category_labels: Mapping[str, Mapping[str, str]] | None = None,
    measure_units: Mapping[str, dict] | None = None,
    title: str = "",
    source: str = "levekår",
    updated: str | None = None,
    roles: Mapping[str, Sequence[str]] | None = None,
    extension: dict | None = None,
) -> dict:
    """The JSON-stat 2.0 dataset of `frame`. `status` (same index as `frame`, columns ⊆ `measures`) holds a
    symbol where a cell has no number; `labels` name the dimensions and measures, `category_labels` the
    categories of a dimension."""
    labels = dict(labels or {})
    category_labels = {k: dict(v) for k, v in (category_labels or {}).items()}
    if frame.duplicated(list(dimensions)).any():
        raise ValueError("the dimension columns do not identify the rows (duplicates)")
    ids = [*dimensions, CONTENTS]
    cats: dict[str, list[str]] = {}
    for d in dimensions:
        # categories in first-appearance order (the caller sorts the frame as the table should read)
        cats[d] = [str(c) for c in dict.fromkeys(frame[d].tolist())]
    cats[CONTENTS] = [str(m) for m in measures]
    sizes = [len(cats[d]) for d in ids]
    total = math.prod(sizes)
    value: list = [None] * total
    stat: dict[str, str] = {}
    positions = {d: {c: i for i, c in enumerate(cats[d])} for d in ids}
    strides = [math.prod(sizes[i + 1 :]) for i in range(len(ids))]
    base = np.zeros(len(frame), dtype=np.int64)
    for i, d in enumerate(dimensions):
        codes = frame[d].astype(str).map(positions[d]).to_numpy(dtype=np.int64)
        base += codes * strides[i]
    for j, m in enumerate(measures):
        at = base + j * strides[-1]
        symbols = status[m].to_numpy(dtype=object) if status is not None and m in status else None
        for k, (pos, v) in enumerate(zip(at.tolist(), frame[m].tolist(), strict=True)):
            symbol = symbols[k] if symbols is not None else None
            if isinstance(symbol, str) and symbol:
                stat[str(pos)] = symbol
            else:
                value[pos] = _number(v)
    dimension = {}
    for d in dimensions:
        own = category_labels.get(d, {})
        dimension[d] = {
            "label": labels.get(d, d),
            "category": {
                "index": {c: i for i, c in enumerate(cats[d])},
                "label": {c: own.get(c, c) for c in cats[d]},
            },
        }
    contents = {
        "label": labels.get(CONTENTS, "contents"),
        "category": {
            "index": {m: i for i, m in enumerate(cats[CONTENTS])},
            "label": {m: labels.get(m, m) for m in cats[CONTENTS]},
        },
    }
    if measure_units:
        contents["category"]["unit"] = {m: measure_units[m] for m in cats[CONTENTS] if m in measure_units}
    dimension[CONTENTS] = contents
    out: dict = {
        "version": "2.0",
        "class": "dataset",
        "label": title,
        "source": source,
        "id": ids,
        "size": sizes,
        "role": {**{k: list(v) for k, v in (roles or {}).items()}, "metric": [CONTENTS]},
        "dimension": dimension,
        "value": value,
    }
    if updated:
        out["updated"] = updated
    if stat:
        out["status"] = stat
    if extension:
        out["extension"] = extension
    return out
