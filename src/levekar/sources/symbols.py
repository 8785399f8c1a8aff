"""SSB's table symbols (standard for tables in official statistics) and reading numbers that may be one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# symbol → meaning (SSB «Standardtegn i tabeller»); a cell with a symbol has no number, except "-" (zero)
SYMBOLS: dict[str, str] = {
    ".": "category not applicable",
    "..": "data not available",
    "...": "not yet available",
    ":": "suppressed (confidentiality)",
    "-": "nothing to report (zero)",
}
ZERO = "-"  # SSB: «Null» — the number is 0, the symbol says there is nothing to report


class SourceError(ValueError):
    """Bad input from an external source, located: file, line, column and an example."""

    def __init__(self, source: str, message: str, line: int | None = None, column: str | None = None, example=None):
        self.source, self.line, self.column, self.example = source, line, column, example
        where = [source]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        text = ", ".join(where) + f": {message}"
        if example is not None:
            text += f" (e.g. {example!r})"
        super().__init__(text)


def parse_numbers(
    raw: pd.Series | Sequence, source: str = "input", column: str = "value", first_line: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as published: decimal point or comma, spaces as thousands separators, or an SSB symbol.
    Returns (values with NaN for symbols — 0 for "-", status with the symbol or None). A cell that is
    neither raises a SourceError naming the line (`first_line` is the line of the first value) and value."""
    s = pd.Series(raw, dtype=object).reset_index(drop=True)
    text = s.map(lambda v: v.strip() if isinstance(v, str) else v)
    is_text = text.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    status = np.full(len(s), None, dtype=object)
    sym = is_text & text.isin(list(SYMBOLS)).to_numpy()
    status[sym] = text[sym].to_numpy()
    cleaned = text.where(~is_text, text.astype(str).str.replace("\u00a0", "").str.replace(" ", ""))
    cleaned = cleaned.where(~is_text, cleaned.astype(str).str.replace(",", ".", regex=False))
    cleaned[sym] = np.nan
    cleaned[is_text & (text.astype(str) == "").to_numpy()] = np.nan
    num = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, copy=True)
    bad = np.isnan(num) & ~sym & ~pd.isna(text).to_numpy() & ~(is_text & (text.astype(str) == "").to_numpy())
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SourceError(
            source,
            f"{int(bad.sum())} value(s) are neither a number nor an SSB symbol ({' '.join(SYMBOLS)})",
            line=first_line + i,
            column=column,
            example=s.iloc[i],
        )
    num[status == ZERO] = 0.0
    return num, status
