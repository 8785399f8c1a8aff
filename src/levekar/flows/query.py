"""Reading the flows back from a published store (what `levekar flows` shows), with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from levekar.flows.core import FlowsError

TABLES = ("flows_movers", "flows_decomposition", "flows_cohort")


@dataclass
class FlowsView:
    movers: pd.DataFrame
    decomposition: pd.DataFrame
    cohort: pd.DataFrame
    level: str
    area_code: str | None


def read_flows(store: str | Path, year_from: int, year_to: int, area: str | None = None, level: str | None = None):
    """The flows of one year pair, for one area (all its levels unless `level`) or every area of `level`
    (default: analysis areas when the store has them, else kommune)."""
    store = Path(store)
    missing = [t for t in TABLES if not (store / f"{t}.parquet").exists()]
    if missing:
        raise FlowsError(f"{store} has no flows tables ({', '.join(missing)}): build it again with `levekar run`")
    t = {name: pd.read_parquet(store / f"{name}.parquet") for name in TABLES}
    m = t["flows_movers"]
    pairs = sorted(set(zip(m.year_from.astype(int), m.year_to.astype(int), strict=True)))
    if (year_from, year_to) not in pairs:
        years = sorted({y for p in pairs for y in p})
        if year_from not in years or year_to not in years:
            bad = year_from if year_from not in years else year_to
            raise FlowsError(f"unknown year {bad}: the store has years {years}")
        raise FlowsError(
            f"the store has no flows {year_from}→{year_to}; published pairs: " + ", ".join(f"{a}→{b}" for a, b in pairs)
        )
    levels = sorted(set(m.level))
    if level is not None and level not in levels:
        raise FlowsError(f"unknown level {level!r}: the store has {levels}")
    sel = {k: v[(v.year_from == year_from) & (v.year_to == year_to)] for k, v in t.items()}
    if area is not None:
        codes = m[["level", "area_code"]].drop_duplicates()
        if level is not None:
            codes = codes[codes.level == level]
        if area not in set(codes.area_code):
            examples = ", ".join(sorted(codes.area_code.unique())[:5])
            where = f" at level {level}" if level else ""
            raise FlowsError(f"unknown area code {area!r}{where}; valid codes are e.g. {examples}")
        sel = {k: v[v.area_code == area] for k, v in sel.items()}
        if level is not None:
            sel = {k: v[v.level == level] for k, v in sel.items()}
        lv = level or sel["flows_movers"].level.iloc[0]
    else:
        lv = level or ("analysis_area" if "analysis_area" in levels else "kommune")
        sel = {k: v[v.level == lv] for k, v in sel.items()}
    return FlowsView(sel["flows_movers"], sel["flows_decomposition"], sel["flows_cohort"], lv, area)
