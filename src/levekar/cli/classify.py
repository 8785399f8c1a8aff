"""`levekar classify …` and `levekar check-settlement`: thin shells over levekar.classify."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from levekar.classify.rules import SchemeError, packaged_schemes

classify_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Classification: NOU screening, tiers, Danish and Swedish criteria, early warning, grants.",
)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(message, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _store_table(store: Path, name: str) -> pd.DataFrame:
    if not (store / "barometer.duckdb").exists():
        _fail(f"{store}: not a published store (no barometer.duckdb)")
    con = duckdb.connect(str(store / "barometer.duckdb"), read_only=True)
    try:
        if name not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}:
            _fail(f"{store}: no table {name} (rebuild the store with `levekar run`)")
        return con.execute(f"SELECT * FROM {name}").df()
    finally:
        con.close()


def _directions(store: Path) -> dict[str, str]:
    rows = _store_table(store, "catalogue")
    return dict(zip(rows["indicator_id"], rows["direction"], strict=True))


@classify_app.command("danish")
def danish(
    version: str = typer.Option(..., help="Criteria version: 2010, 2014, 2018 or 2021."),
    input: Path = typer.Option(
        ...,
        help="CSV: area_id, year, residents, non_western, neet_18_64, convicted, basic_education_30_59, "
        "income_ratio_regional (percent; blank = not available). Annual figures; the averages the law "
        "asks for are taken over the years the file has.",
    ),
    out: Path = typer.Option(..., help="CSV to write: area_id, year, category, criteria_met, reasons."),
    national_convicted: float | None = typer.Option(
        None, help="National share convicted, percent (the 2018 and 2021 criteria compare with it)."
    ),
) -> None:
    """The Danish area criteria on an external table."""
    from levekar.classify.run import classify_danish, read_danish_input
    from levekar.io import write_csv

    if version not in ("2010", "2014", "2018", "2021"):
        _fail(f"--version must be 2010, 2014, 2018 or 2021, got {version!r}")
    try:
        result = classify_danish(read_danish_input(input), version, national_convicted)
    except SchemeError as e:
        _fail(str(e))
    write_csv(result, out)
    counts = result["category"].value_counts().sort_index()
    console.print(f"wrote {out}: {len(result)} rows; " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)


@classify_app.command("show")
def show(
    store: Path = typer.Argument(..., help="Published store folder."),
    scheme: str = typer.Option("tiers", help=f"Packaged scheme ({', '.join(packaged_schemes())}) or a YAML file."),
    level: str | None = typer.Option(None, help="Only this level (analysis_area, bydel, …)."),
    year: int | None = typer.Option(None, help="Only this year (default: the latest)."),
    area: str | None = typer.Option(None, help="Only this area code (with --level: every criterion's numbers)."),
    out: Path | None = typer.Option(None, help="Write the rows as CSV instead of printing them."),
) -> None:
    """The categories and reasons of a scheme; a scheme file of one's own is evaluated on the store."""
    from levekar.classify.run import classify_values
    from levekar.io import write_csv

    if Path(scheme).suffix:
        try:
            table = classify_values(_store_table(store, "indicator_values"), _directions(store), [Path(scheme)])
        except SchemeError as e:
            _fail(str(e))
    else:
        table = _store_table(store, "classification")
        if scheme not in set(table["scheme"]):
            have = ", ".join(sorted(set(table["scheme"])))
            _fail(f"{store}: no scheme {scheme!r} in the classification table (has: {have})")
        table = table[table["scheme"] == scheme]
    if level:
        table = table[table["level"] == level]
    table = table[table["year"] == (year or table["year"].max())]
    if area:
        table = table[table["area_code"] == area]
    if table.empty:
        _fail("nothing matches (check --level, --year and --area)")
    if out:
        write_csv(table, out)
        console.print(f"wrote {out}: {len(table)} rows")
        return
    t = Table(title=f"{scheme} {int(table['year'].iloc[0])}")
    for col in ("level", "area_code", "category", "criteria_met", "reasons"):
        t.add_column(col, overflow="fold")
    for r in table.itertuples(index=False):
        t.add_row(r.level, r.area_code, r.category, r.criteria_met, r.reasons)
    console.print(t)
    if area and level:
        from levekar.classify.run import explain

        src = Path(scheme) if Path(scheme).suffix else scheme
        details = explain(_store_table(store, "indicator_values"), _directions(store), src, level, area)
        details = details[details["year"] == table["year"].iloc[0]]
        console.print(details[["criterion", "input", "value", "op", "threshold", "met"]].to_string(index=False))
        return
    counts = table.groupby("level")["category"].value_counts().rename("areas").reset_index()
    console.print(counts.to_string(index=False), markup=False)


@classify_app.command("overlap")
def overlap(
    store: Path = typer.Argument(..., help="Published store folder."),
    level: str = typer.Option("analysis_area", help="Level of the areas."),
    year: int | None = typer.Option(None, help="Year (default: the latest)."),
    areas: str | None = typer.Option(None, help="Comma-separated area codes (default: every area of the level)."),
    flag: str | None = typer.Option(
        None, help="Only areas with this flag, e.g. children_low_income_high (the report's figure 3.1)."
    ),
    out: Path | None = typer.Option(None, help="Write the matrix as CSV."),
) -> None:
    """How often the screening flags occur together (the report's figure 3.1), for any set of areas."""
    from levekar.classify.run import overlap_matrix
    from levekar.io import write_csv

    table = _store_table(store, "classification")
    rows = table[(table["scheme"] == "nou_screening") & (table["level"] == level)]
    if rows.empty:
        _fail(f"{store}: no screening results at level {level!r}")
    rows = rows[rows["year"] == (year or rows["year"].max())]
    if areas:
        wanted = [a.strip() for a in areas.split(",") if a.strip()]
        unknown = sorted(set(wanted) - set(rows["area_code"]))
        if unknown:
            _fail(f"unknown area code(s) at level {level}: {', '.join(unknown[:5])}")
        rows = rows[rows["area_code"].isin(wanted)]
    if flag:
        rows = rows[rows["criteria_met"].fillna("").str.split(",").apply(lambda f: flag in f)]
    m = overlap_matrix(rows)
    if out:
        write_csv(m.reset_index(names="flag"), out)
        console.print(f"wrote {out}")
        return
    console.print(f"{len(rows)} areas", markup=False)
    console.print(m.to_string(), markup=False)


def check_settlement_command(
    store: Path = typer.Argument(..., help="Published store folder."),
    grunnkrets: str | None = typer.Option(None, help="Grunnkrets code."),
    x: float | None = typer.Option(None, help="Easting (in --crs; default the store's CRS)."),
    y: float | None = typer.Option(None, help="Northing."),
    crs: str | None = typer.Option(None, help="CRS of x and y, e.g. EPSG:4326 (default: the store's)."),
    level: str | None = typer.Option(
        None, help="Level of the answer (default: analysis_area, else bydel, else kommune)."
    ),
    year: int | None = typer.Option(None, help="Year (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
) -> None:
    """Which area a grunnkrets or a point lies in, and whether it has accumulated challenges — and why."""
    from levekar.classify.settlement import SettlementError, check_settlement

    try:
        a = check_settlement(store, grunnkrets, x, y, crs=crs, level=level, year=year)
    except SettlementError as e:
        _fail(str(e))
    if as_json:
        console.print_json(json.dumps(a.as_dict(), ensure_ascii=False))
        return
    verdict = {True: "YES — accumulated challenges", False: "no", None: "cannot be decided"}[a.accumulated]
    console.print(f"grunnkrets {a.grunnkrets} → {a.level} {a.area_code} ({a.year})", markup=False)
    console.print(f"accumulated living-condition challenges: {verdict}", markup=False)
    console.print(a.reasons, markup=False, soft_wrap=True)


@classify_app.command("doc")
def doc(out: Path = typer.Option(Path("docs/schemes.md"), help="Markdown file to write.")) -> None:
    """Write the scheme documentation generated from the packaged rule files."""
    from levekar.classify.docs import render_schemes

    out.write_text(render_schemes(), encoding="utf-8")
    console.print(f"wrote {out}")
