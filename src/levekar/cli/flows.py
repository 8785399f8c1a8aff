"""`levekar flows STORE --from Y --to Y [--area CODE]`: movers, change decomposition and the fixed cohort,
read from the published store (a thin shell over `levekar.flows.query`)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from levekar.flows.core import FlowsError
from levekar.flows.query import read_flows

console = Console()
err = Console(stderr=True)
GROUPS = [
    "residents_from",
    "stayers",
    "settled_5_years",
    "in_movers",
    "in_within_kommune",
    "in_other_kommune",
    "immigrated",
    "births",
    "out_movers",
    "out_within_kommune",
    "out_other_kommune",
    "emigrated",
    "deaths",
    "families_small_children_out",
]
MEASURES = ["persons", "median_eq_income", "employment_20_66", "immigrant_background", "low_income_eu60"]


def _fmt(v, digits: int = 1) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ":"
    return f"{v:,.0f}" if digits == 0 else f"{v:.{digits}f}"


def flows_command(
    store: Path = typer.Argument(..., help="Published store (the output of levekar run / demo)."),
    year_from: int = typer.Option(..., "--from", help="First year of the pair."),
    year_to: int = typer.Option(..., "--to", help="Second year of the pair."),
    area: str | None = typer.Option(None, "--area", help="Area code (any level); all areas of --level if omitted."),
    level: str | None = typer.Option(None, "--level", help="Level (grunnkrets, analysis_area, bydel, kommune, …)."),
) -> None:
    """Who moved in and out, and what explains the change (`docs/flows.md`)."""
    try:
        v = read_flows(store, year_from, year_to, area, level)
    except FlowsError as e:
        err.print(str(e), style="red", markup=False)
        raise typer.Exit(2) from e
    console.print(
        f"flows {year_from}→{year_to}, level {v.level}"
        + (f", area {area}" if area else "")
        + "  (':' suppressed or nobody to measure)",
        markup=False,
    )
    m = v.movers
    if area:
        t = Table(title="movers and stayers")
        t.add_column("group")
        for c in MEASURES:
            t.add_column(c, justify="right")
        for lv, part in m.groupby("level", sort=True):
            rows = part.set_index("group")
            for g in GROUPS:
                if g in rows.index:
                    r = rows.loc[g]
                    t.add_row(
                        f"{lv}: {g}",
                        _fmt(r.persons, 0),
                        _fmt(r.median_eq_income, 0),
                        *[_fmt(r[c]) for c in MEASURES[2:]],
                    )
        console.print(t)
        c = v.cohort
        t = Table(title="fixed cohort (residents of the first year, wherever they live) beside the current population")
        for col in [
            "level",
            "view",
            "persons_from",
            "persons_to",
            "employment_20_66_from",
            "employment_20_66_to",
            "low_income_eu60_from",
            "low_income_eu60_to",
            "median_eq_income_from",
            "median_eq_income_to",
        ]:
            t.add_column(col.replace("_", " "), justify="right")
        for r in c.itertuples(index=False):
            t.add_row(
                r.level,
                r.view,
                _fmt(r.persons_from, 0),
                _fmt(r.persons_to, 0),
                _fmt(r.employment_20_66_from),
                _fmt(r.employment_20_66_to),
                _fmt(r.low_income_eu60_from),
                _fmt(r.low_income_eu60_to),
                _fmt(r.median_eq_income_from, 0),
                _fmt(r.median_eq_income_to, 0),
            )
        console.print(t)
        d = v.decomposition[~v.decomposition.suppressed]
        console.print(
            f"change decomposition ({len(d)} published, {int(v.decomposition.suppressed.sum())} suppressed):",
            markup=False,
        )
        for r in d.itertuples(index=False):
            console.print(f"  {r.level} {r.indicator_id}: {r.reading}", markup=False, soft_wrap=True)
    else:
        wide = m[m.group.isin(["in_movers", "out_movers", "stayers"])].pivot(
            index="area_code", columns="group", values=["persons", "median_eq_income", "employment_20_66"]
        )
        t = Table(title="in-movers against out-movers (the report's figures 3.3–3.4)")
        for col in ["area", "in", "out", "stayers", "median in", "median out", "employed in %", "employed out %"]:
            t.add_column(col, justify="right")
        for code, r in wide.iterrows():
            t.add_row(
                code,
                _fmt(r[("persons", "in_movers")], 0),
                _fmt(r[("persons", "out_movers")], 0),
                _fmt(r[("persons", "stayers")], 0),
                _fmt(r[("median_eq_income", "in_movers")], 0),
                _fmt(r[("median_eq_income", "out_movers")], 0),
                _fmt(r[("employment_20_66", "in_movers")]),
                _fmt(r[("employment_20_66", "out_movers")]),
            )
        console.print(t)
