"""Cell keys as categoricals while the cells are computed.

A run has millions of cells keyed by a few dozen indicators, a handful of levels and breakdowns and some
thousand area codes. Kept as strings, every sort, group-by, merge and row selection moves the strings; as
categoricals whose categories are in sorted order, those work on small integer codes and sort as the
strings do. The published frame gets its strings back at the end (`as_strings`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

KEY_COLUMNS = ("indicator_id", "level", "area_code", "grunnkrets", "breakdown", "breakdown_value")


def sorted_index(values: Iterable) -> pd.Index:
    """Distinct values, sorted, as the categories of a key (one form everywhere, so that dtypes compare equal)."""
    return pd.Index(sorted(set(values)), dtype=object)


def categorical(values: pd.Series | np.ndarray, categories: pd.Index | None = None) -> pd.Categorical:
    """`values` as a categorical with sorted categories (`categories` when given: a value outside them is
    missing)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        categories = sorted_index(values.categories) if categories is None else categories
        if values.categories.dtype == object and values.categories.equals(categories):
            return values
        return values.set_categories(categories)
    codes, uniques = pd.factorize(values)
    categories = sorted_index(uniques) if categories is None else categories
    where = categories.get_indexer(pd.Index(np.asarray(uniques, dtype=object)))
    # a missing value (code −1) picks the −1 appended at the end
    return pd.Categorical.from_codes(np.append(where, -1)[codes], categories=categories)


def as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its key columns (those of `KEY_COLUMNS` it has) as sorted categoricals."""
    keys = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame.assign(**{c: categorical(frame[c]) for c in keys}) if keys else frame


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """`pd.concat` of frames of cells, keeping the key columns categorical: each key's categories are the
    sorted union of the frames' (for categoricals that differ pandas would fall back to strings)."""
    frames = [as_categories(f) for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    keys = [c for c in KEY_COLUMNS if any(c in f.columns for f in frames)]
    union = {c: sorted_index(v for f in frames if c in f.columns for v in f[c].cat.categories) for c in keys}
    return pd.concat(
        [f.assign(**{c: categorical(f[c], union[c]) for c in keys if c in f.columns}) for f in frames],
        ignore_index=True,
    )


def codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and the values they stand for (a categorical's own; strings factorised)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), pd.Index(np.asarray(values.cat.categories, dtype=object))
    c, u = pd.factorize(values)
    return c, pd.Index(np.asarray(u, dtype=object))


def strings(values: pd.Categorical) -> pd.api.extensions.ExtensionArray:
    """A categorical as pandas' string array, decoded by Arrow (several times faster than `astype(str)`)."""
    codes = values.codes
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array(codes, mask=codes < 0), pa.array(np.asarray(values.categories, dtype=object), pa.string())
    )
    return pd.array(dictionary.cast(pa.large_string()), dtype="str")


def as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every categorical column back as strings (the published form); the columns are
    decoded on threads (Arrow releases the GIL)."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return frame
    with ThreadPoolExecutor(min(len(cats), os.cpu_count() or 1)) as pool:
        decoded = pool.map(lambda c: strings(frame[c].array), cats)
        return frame.assign(**dict(zip(cats, decoded, strict=True)))
