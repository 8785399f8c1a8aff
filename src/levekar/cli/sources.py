"""`levekar fetch …`, `levekar convert` and `levekar run-tables`: external data in (docs/sources.md)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import typer
from rich.console import Console

fetch_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Fetch open statistics: SSB Statbank (PxWebApi v2)."
)
console = Console()
err = Console(stderr=True)


def _write(frame, out: Path) -> None:
    from levekar.io import write_csv, write_parquet

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        write_csv(frame, out)
    else:
        write_parquet(pa.Table.from_pandas(frame, preserve_index=False), out)


def _client(lang: str, cache: Path | None, no_cache: bool, base_url: str, max_cells: int | None):
    from levekar.sources import pxweb

    return pxweb.PxWebClient(
        base_url=base_url,
        lang=lang,
        cache_dir=None if no_cache else (cache or pxweb.default_cache()),
        transport=pxweb.urllib_transport(),  # looked up here, so tests can put recorded answers in its place
        max_cells=max_cells,
    )


@fetch_app.command("ssb")
def fetch_ssb(
    table: str = typer.Argument(..., help="Statbank table id, e.g. 07459."),
    select: list[str] = typer.Option(
        [], "--select", "-s", help="VAR=CODES: codes, wildcards (0301*), top(3), from(2020), range(a,b). Repeatable."
    ),
    codelist: list[str] = typer.Option([], help="VAR=CODELIST: grouped values (e.g. agg_… or vs_…). Repeatable."),
    out: Path = typer.Option(..., help="Tidy Parquet (or .csv) to write: one column per variable, value, status."),
    lang: str = typer.Option("no", help="no or en."),
    cache: Path | None = typer.Option(None, help="Cache folder (default ~/.cache/levekar/pxweb or $LEVEKAR_CACHE)."),
    no_cache: bool = typer.Option(False, help="Ask the API every time."),
    max_cells: int | None = typer.Option(None, help="Cells per request (default: the server's limit)."),
    base_url: str = typer.Option("https://data.ssb.no/api/pxwebapi/v2", help="PxWebApi v2 base URL."),
) -> None:
    """Fetch a Statbank table selection through PxWebApi v2 (paged under the cell limit, cached, polite)."""
    from levekar.sources.pxweb import PxWebError, parse_select

    try:
        sel = parse_select(select)
        lists = dict(parse_select(codelist))
        client = _client(lang, cache, no_cache, base_url, max_cells)
        frame = client.data(table, sel, {k: v[0] for k, v in lists.items()})
    except (ValueError, PxWebError) as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    _write(frame, out)
    console.print(f"table {table}: {len(frame):,} cells → {out}", markup=False)


@fetch_app.command("search")
def fetch_search(
    query: str = typer.Argument(..., help="Words to search table titles for, e.g. 'befolkning grunnkrets'."),
    lang: str = typer.Option("no", help="no or en."),
    cache: Path | None = typer.Option(None, help="Cache folder."),
    no_cache: bool = typer.Option(False, help="Ask the API every time."),
    base_url: str = typer.Option("https://data.ssb.no/api/pxwebapi/v2", help="PxWebApi v2 base URL."),
) -> None:
    """Search Statbank's tables."""
    from levekar.sources.pxweb import PxWebError

    try:
        found = _client(lang, cache, no_cache, base_url, None).search(query)
    except PxWebError as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    for r in found.itertuples(index=False):
        console.print(f"{r.id}  {r.label}  ({r.firstPeriod}–{r.lastPeriod})", markup=False)


def convert(
    source: Path = typer.Argument(..., help="An SSB CSV export, grid file (CSV/GML) or JSON-stat file."),
    out: Path = typer.Option(..., help="Tidy Parquet (or .csv) to write."),
    kind: str = typer.Option("auto", help="auto, ssb-csv, grid or jsonstat."),
) -> None:
    """Read a file SSB publishes (Statbank CSV export with title lines, population grid, JSON-stat) and write
    it tidy."""
    import pandas as pd

    from levekar.sources.jsonstat import read_jsonstat
    from levekar.sources.ssbfiles import read_grid, read_ssb_csv
    from levekar.sources.symbols import SourceError

    if kind == "auto":
        suffix = source.suffix.lower()
        head = source.read_bytes()[:4096] if source.is_file() else b""
        kind = (
            "jsonstat"
            if suffix == ".json"
            else "grid"
            if suffix in (".gml", ".xml") or b"rute" in head.lower() or b"ssbid" in head.lower()
            else "ssb-csv"
        )
    try:
        if kind == "jsonstat":
            frame = pd.concat(
                [d.to_frame(labels=True).assign(dataset=k) for k, d in enumerate(read_jsonstat(source))],
                ignore_index=True,
            )
        elif kind == "grid":
            frame = read_grid(source)
        elif kind == "ssb-csv":
            frame = read_ssb_csv(source)
        else:
            err.print(f"unknown --kind {kind!r}: auto, ssb-csv, grid or jsonstat", markup=False)
            raise typer.Exit(2)
    except SourceError as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    _write(frame, out)
    console.print(f"{source.name} ({kind}): {len(frame):,} rows → {out}", markup=False)


def run_tables_command(
    tables: Path = typer.Argument(..., help="The ordered delivery: Parquet or CSV (layout in docs/sources.md)."),
    geography: Path = typer.Option(..., help="Grunnkrets polygons (GeoParquet, GeoJSON, GeoPackage, GML)."),
    out: Path = typer.Option(..., help="Folder of the published store to write."),
    areas: Path | None = typer.Option(None, help="Analysis areas (unit_id → area_id), from `levekar areas build`."),
    zonings: Path | None = typer.Option(None, help="User zonings: CSV or Parquet with zoning, grunnkrets, zone."),
    catalogue: Path | None = typer.Option(None, help="Own indicator catalogue (YAML; default: the packaged one)."),
    synthetic: bool = typer.Option(False, help="Mark the store synthetic (tables made from a synthetic extract)."),
    force: bool = typer.Option(False, help="Replace an existing store."),
) -> None:
    """The published store from aggregate tables (numerators and denominators per grunnkrets and year)."""
    from levekar.geo.inputs import InputError
    from levekar.indicators.expr import DefinitionError
    from levekar.publish.run import run_tables

    try:
        summary = run_tables(tables, geography, out, areas, zonings, catalogue, synthetic=synthetic, force=force)
    except InputError as e:
        for p in e.problems:
            err.print(str(p), soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(2) from e
    except (FileExistsError, DefinitionError) as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    console.print(
        f"wrote {out}: {summary['rows']:,} values of {summary['indicators']} indicators at levels "
        f"{', '.join(summary['levels'])} ({summary['suppressed']:,} suppressed, "
        f"{summary['unknown_input']:,} unknown input cells)",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the `levekar` app."""
    app.add_typer(fetch_app, name="fetch")
    app.command("convert")(convert)
    app.command("run-tables")(run_tables_command)
