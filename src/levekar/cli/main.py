"""The `levekar` command: a thin shell over the library."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from levekar import __version__
from levekar.cli.classify import check_settlement_command, classify_app
from levekar.cli.flows import flows_command
from levekar.cli.segregation import app as segregation_app
from levekar.cli.sources import register as register_sources
from levekar.cli.web import report_command, serve_command
from levekar.geo.areas import areas_for_extract
from levekar.publish.run import run
from levekar.schema.docs import render_data_model
from levekar.schema.model import extract_schema
from levekar.schema.validate import ExtractError, Problem, validate_extract
from levekar.synth.generate import PRESETS, generate, write_extract

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="levekår: living-conditions and segregation statistics for small areas (NOU 2020:16).",
)
areas_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Analysis areas: contiguous regionalisation with a floor and a ceiling, and user zonings.",
)
app.add_typer(areas_app, name="areas")
app.add_typer(classify_app, name="classify")
app.command("check-settlement")(check_settlement_command)
app.add_typer(segregation_app, name="segregation")
register_sources(app)
app.command("flows")(flows_command)
app.command("serve")(serve_command)
app.command("report")(report_command)
console = Console()
err = Console(stderr=True)


@contextmanager
def _progress(label: str):
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=1.0, step="")

        def update(step: str, fraction: float) -> None:
            bar.update(task, completed=fraction, step=step)

        yield update
        bar.update(task, completed=1.0, step="done")


def _report(problems: list[Problem]) -> None:
    """A table on a terminal; one plain line per problem in logs and pipes."""
    if err.is_terminal:
        err.print(_problem_table(problems))
    else:
        for p in problems:
            err.print(str(p), soft_wrap=True, markup=False, highlight=False)


def _problem_table(problems: list[Problem]) -> Table:
    t = Table(title=f"{len(problems)} problem(s)", show_lines=False)
    for col in ("file", "column", "rows", "problem", "example"):
        t.add_column(col, overflow="fold")
    for p in problems:
        t.add_row(p.file, p.column, f"{p.rows:,}" if p.rows else "", p.message, p.example)
    return t


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"levekar {__version__}")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the extract to."),
    preset: str = typer.Option("oslo", help=f"One of: {', '.join(PRESETS)}."),
    seed: int = typer.Option(2020, help="Random seed; the same seed gives byte-identical files."),
    scale: float = typer.Option(1.0, help="Population scale (synthetic presets only)."),
    force: bool = typer.Option(False, help="Replace an existing folder."),
) -> None:
    """Write a deterministic synthetic register extract."""
    if preset not in PRESETS:
        err.print(f"[red]unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        raise typer.Exit(2)
    if out.exists() and not force:
        err.print(f"[red]{out} exists; use --force to replace it")
        raise typer.Exit(2)
    start = time.perf_counter()
    with _progress(f"synth {preset}") as update:
        extract = generate(preset, seed=seed, scale=scale, progress=update)
        update("writing and validating", 0.97)
        write_extract(extract, out, force=force)
    n = extract.tables["persons"].num_rows
    console.print(f"wrote {out} ({n:,} person-years, {time.perf_counter() - start:.0f} s) — synthetic data")


@app.command()
def validate(
    extract_dir: Path = typer.Argument(..., help="Folder of the register extract."),
    schema: Path | None = typer.Option(None, help="Own schema YAML (default: the packaged data model)."),
    as_json: bool = typer.Option(False, "--json", help="Print the problems as JSON."),
) -> None:
    """Check an extract against the data model. Exit code 2 when it has problems; nothing is written."""
    sch = extract_schema(str(schema) if schema else None)
    with _progress(f"validate {extract_dir}") as update:
        steps = [0]

        def tick(label: str) -> None:
            steps[0] += 1
            update(label, min(steps[0] / 40, 0.99))

        problems = validate_extract(extract_dir, sch, progress=tick)
    if as_json:
        console.print_json(json.dumps([p.__dict__ for p in problems]))
    elif problems:
        _report(problems)
    if problems:
        raise typer.Exit(2)
    console.print(f"[green]{extract_dir}: valid")


@app.command("run")
def run_command(
    extract_dir: Path = typer.Argument(..., help="Folder of the register extract."),
    out: Path = typer.Option(..., help="Folder of the published store to write."),
    areas: Path | None = typer.Option(None, help="Analysis areas (unit_id → area_id), from `levekar areas build`."),
    catalogue: Path | None = typer.Option(None, help="Own indicator catalogue (YAML; default: the packaged one)."),
    force: bool = typer.Option(False, help="Replace an existing store."),
    engine: str = typer.Option("duckdb", help="Where the indicators are counted: duckdb or spark (docs/scale.md)."),
    spark_master: str | None = typer.Option(
        None, help="Spark master URL (default local[2]; spark://…, yarn, k8s://… on a cluster)."
    ),
    spark_workdir: str | None = typer.Option(
        None, help="Folder for the facts Spark hands to DuckDB (default: a temporary one; on a cluster: shared)."
    ),
) -> None:
    """Compute the indicator set at every level and write the published store."""
    from levekar.indicators.expr import DefinitionError
    from levekar.indicators.facts import ENGINES
    from levekar.publish.run import run

    if engine not in ENGINES:
        err.print(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}", markup=False)
        raise typer.Exit(2)
    if engine == "spark":
        try:
            import pyspark  # noqa: F401
        except ImportError as e:
            err.print("--engine spark needs PySpark: pip install 'levekar[spark]' (and Java 17)", markup=False)
            raise typer.Exit(2) from e
    try:
        with _progress(f"run {extract_dir}") as update:
            summary = run(
                extract_dir,
                out,
                areas,
                catalogue,
                force=force,
                progress=update,
                engine=engine,
                spark_master=spark_master,
                spark_workdir=spark_workdir,
            )
    except ExtractError as e:
        _report(e.problems)
        raise typer.Exit(2) from e
    except (FileExistsError, DefinitionError) as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    console.print(
        f"wrote {out}: {summary['rows']:,} values at levels {', '.join(summary['levels'])} "
        f"({summary['suppressed']:,} suppressed)",
        markup=False,
    )


@app.command("schema-doc")
def schema_doc(out: Path = typer.Option(Path("docs/data-model.md"), help="Markdown file to write.")) -> None:
    """Write the data-model documentation generated from the schema."""
    out.write_text(render_data_model(extract_schema()), encoding="utf-8")
    console.print(f"wrote {out}")


@app.command("catalogue-doc")
def catalogue_doc(out: Path = typer.Option(Path("docs/indicators.md"), help="Markdown file to write.")) -> None:
    """Write the indicator documentation generated from the catalogue."""
    from levekar.indicators.catalogue import load_catalogue
    from levekar.indicators.docs import render_indicators

    out.write_text(render_indicators(load_catalogue()), encoding="utf-8")
    console.print(f"wrote {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), help="Folder for everything the demo writes."),
    force: bool = typer.Option(True, help="Replace an earlier demo run."),
    seed: int = typer.Option(2020, help="Random seed."),
) -> None:
    """Run every pipeline stage that exists on the embedded default (the oslo preset)."""
    extract_dir = out / "extract"
    start = time.perf_counter()
    with _progress("1/3 synth oslo → validate") as update:
        extract = generate("oslo", seed=seed, progress=update)
        update("writing and validating", 0.97)
        try:
            write_extract(extract, extract_dir, force=force)
        except FileExistsError as e:
            err.print(f"[red]{e}")
            raise typer.Exit(2) from e
        except ExtractError as e:
            _report(e.problems)
            raise typer.Exit(2) from e
    with _progress("2/3 analysis areas") as update:
        update("regionalising", 0.3)
        areas = areas_for_extract(extract_dir, out / "areas", force=force)
    with _progress("3/3 indicators → published store") as update:
        # the extract was validated as it was written
        store = run(
            extract_dir,
            out / "published",
            out / "areas" / "analysis_areas.parquet",
            force=force,
            progress=update,
            check=False,
        )
    m = extract.manifest
    t = Table(title="levekår demo — SYNTHETIC DATA (no real persons)")
    t.add_column("file")
    t.add_column("rows", justify="right")
    for name, table in sorted(extract.tables.items()):
        t.add_row(f"{extract_dir}/{name}.parquet", f"{table.num_rows:,}")
    t.add_row(f"{extract_dir}/geography.parquet", f"{len(extract.geography):,}")
    for p in areas["written"]:
        t.add_row(str(p), "")
    t.add_row(str(out / "published"), f"{store['rows']:,}")
    console.print(t)
    r = areas["report"]
    console.print(
        f"years {m['years']}, {len(extract.geography)} grunnkrets codes; {r['areas']} analysis areas "
        f"({r['areas_in_band']} with {r['band'][0]:,.0f}–{r['band'][1]:,.0f} inhabitants), "
        f"{time.perf_counter() - start:.0f} s"
    )
    cls = pd.read_parquet(out / "published" / "classification.parquet")
    tiers = cls[(cls["scheme"] == "tiers") & (cls["level"] == "analysis_area")]
    latest = tiers[tiers["year"] == tiers["year"].max()]["category"].value_counts()
    console.print(
        f"tiers of the {latest.sum()} analysis areas in {tiers['year'].max()}: "
        + ", ".join(f"{k} {v}" for k, v in latest.items()),
        markup=False,
    )
    console.print("Look at it with DuckDB (Python), or check it again:")
    console.print(f"  {sys.executable} -m levekar.cli.peek {extract_dir}", soft_wrap=True, markup=False)
    console.print(f"  levekar validate {extract_dir}", soft_wrap=True, markup=False)
    console.print(f"  levekar classify show {out / 'published'} --scheme tiers", soft_wrap=True, markup=False)
    console.print(f"  levekar serve {out / 'published'}", soft_wrap=True, markup=False)


def _split(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


@areas_app.command("build")
def areas_build(
    geography: Path = typer.Option(..., help="Units: GeoJSON, GeoPackage, GML or GeoParquet (any CRS)."),
    id_column: str = typer.Option(..., help="Unit id column (in the geography and the population file)."),
    out: Path = typer.Option(..., help="Parquet of unit → area; polygons and report are written beside it."),
    population: Path | None = typer.Option(None, help="CSV or Parquet with the population per unit."),
    population_column: str = typer.Option("population", help="Population column (population file or geography)."),
    within: str | None = typer.Option(
        None, help="Geography columns whose borders areas never cross, e.g. kommune,bydel."
    ),
    min_population: float = typer.Option(5000, "--min", help="Population floor."),
    max_population: float = typer.Option(10000, "--max", help="Population ceiling."),
    attributes: str | None = typer.Option(None, help="Columns to make areas homogeneous on."),
    adjacency: str = typer.Option("rook", help="rook (shared border) or queen (touching)."),
    changes: Path | None = typer.Option(
        None,
        help="Code correspondence (year, old_grunnkrets, new_grunnkrets, "
        "population_share) to carry the areas to later codes.",
    ),
    seed: int = typer.Option(2020, help="Seed of the restarts (same input and seed → same areas)."),
    force: bool = typer.Option(False, help="Replace existing output."),
) -> None:
    """Build analysis areas: contiguous, inside the given borders, population between --min and --max."""
    from levekar.geo.areas import build_areas, extend_over_years, write_areas
    from levekar.geo.inputs import (
        InputError,
        check_population,
        join_population,
        read_changes,
        read_population,
        read_units,
    )

    try:
        units = read_units(geography, id_column, _split(within) + _split(attributes))
        if population is not None:
            pop = join_population(
                units, id_column, read_population(population, id_column, population_column), population
            )
        elif population_column in units.columns:
            pop = check_population(
                units[population_column], units[id_column], geography.name, id_column, population_column
            )
        else:
            err.print(f"[red]{geography.name}: no column {population_column!r}; give --population FILE")
            raise typer.Exit(2)
        with _progress("areas build") as update:
            update("regionalising", 0.2)
            result = build_areas(
                units,
                pop,
                id_column,
                _split(within),
                min_population,
                max_population,
                _split(attributes) or None,
                adjacency,
                seed,
            )
            if changes is not None:
                extended = extend_over_years(result.assignment, read_changes(changes))
                result.assignment = extended.merge(
                    result.assignment.drop(columns=["area_id"]), on="unit_id", how="left"
                )
            update("writing", 0.9)
            written = write_areas(result, out, force=force)
    except InputError as e:
        _report(e.problems)
        raise typer.Exit(2) from e
    except (FileExistsError, ValueError) as e:
        err.print(f"[red]{e}")
        raise typer.Exit(2) from e
    r = result.report
    console.print(
        f"{r['areas']} areas from {r['units']} units; population min {r['population']['min']:,.0f}, "
        f"median {r['population']['median']:,.0f}, max {r['population']['max']:,.0f}; "
        f"{r['areas_in_band']} in band"
    )
    for o in r["out_of_band"]:
        console.print(f"  {o['area_id']}: {o['population']:,.0f} — {o['reason']}", markup=False)
    for p in written:
        console.print(f"wrote {p}", markup=False)


@areas_app.command("zoning")
def areas_zoning(
    zonings: Path = typer.Option(..., help="CSV or Parquet: zoning, grunnkrets, zone, zone_name."),
    geography: Path = typer.Option(..., help="The extract's geography (GeoParquet) the zoning must cover."),
    name: str = typer.Option(..., help="Which zoning in the file, e.g. oslo_delbydel."),
    out: Path = typer.Option(..., help="Parquet of unit → zone."),
    force: bool = typer.Option(False, help="Replace existing output."),
) -> None:
    """Check a user zoning (coverage, overlap, known codes) and write it as an area level."""
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa

    from levekar.geo.areas import zoning_level
    from levekar.geo.inputs import InputError
    from levekar.io import write_parquet

    if out.exists() and not force:
        err.print(f"[red]{out} exists; use --force to replace it")
        raise typer.Exit(2)
    table = pd.read_parquet(zonings) if zonings.suffix == ".parquet" else pd.read_csv(zonings, dtype=str)
    codes = set(gpd.read_parquet(geography, columns=["grunnkrets", "geometry"])["grunnkrets"])
    try:
        level = zoning_level(table, name, codes)
    except InputError as e:
        _report(e.problems)
        raise typer.Exit(2) from e
    write_parquet(pa.Table.from_pandas(level, preserve_index=False), out)
    console.print(f"{name}: {level['area_id'].nunique()} zones over {len(level)} grunnkretser; wrote {out}")


if __name__ == "__main__":
    app()
