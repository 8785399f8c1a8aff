"""`levekar segregation …`: indices over units, bespoke K-nearest neighbourhoods, grid cells from the register,
schools and kindergartens."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from levekar.io import atomic_dir, write_csv, write_json, write_parquet
from levekar.segregation import indices as ix
from levekar.segregation.inputs import (
    InputError,
    coordinates,
    counts,
    not_above,
    read_table,
    register_cells,
    require_columns,
    unique_ids,
)
from levekar.segregation.knn import CONVENTIONS, DEFAULT_K, knn_table, profile
from levekar.segregation.schools import Settings, school_tables

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Segregation: indices over units with inference, bespoke K-nearest neighbourhoods (EquiPop method), "
    "schools and kindergartens.",
)
console = Console()
err = Console(stderr=True)


def _split(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _fail(e: Exception) -> None:
    err.print(f"error: {e}", markup=False, soft_wrap=True, highlight=False)
    raise typer.Exit(2) from e


def _unit_table(
    path: Path, unit: str, group: str, total: str, groups: list[str], within: str | None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    df = read_table(path)
    require_columns(df, path, [unit, group, total, *groups, *([within] if within else [])])
    unique_ids(df, path, unit)
    x, t = counts(df, path, group), counts(df, path, total)
    not_above(x, t, df, path, group, total)
    multi = np.column_stack([counts(df, path, g) for g in groups]) if groups else None
    if t.sum() <= 0:
        raise InputError(f"{path}: column {total!r} sums to 0 — no persons")
    return df, x, t, multi


def _rounded(obj: object) -> object:
    """Plain floats for JSON (numpy scalars are not serialisable)."""
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@app.command()
def indices(
    input: Path = typer.Option(..., "--input", help="Units table (CSV or Parquet), one row per unit (area)."),
    unit_column: str = typer.Option(..., "--unit-column", help="Unit id column."),
    group_column: str = typer.Option(..., "--group-column", help="Persons of the group (count)."),
    total_column: str = typer.Option(..., "--total-column", help="All persons of the unit (count)."),
    groups: str | None = typer.Option(
        None, "--groups", help="Count columns of exhaustive groups (A,B,C) for the multigroup indices."
    ),
    within: str | None = typer.Option(
        None, "--within", help="Column grouping the units (e.g. kommune): decompose H into between + within."
    ),
    compare: Path | None = typer.Option(
        None, "--compare", help="The same units in a second year (same columns): test of the difference."
    ),
    replications: int = typer.Option(0, "--replications", help="Randomisation replications (0: no inference)."),
    seed: int = typer.Option(2020, help="Seed of the replications (same seed → same numbers)."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    out: Path = typer.Option(..., "--out", help="JSON file to write."),
) -> None:
    """Segregation indices of a group against the rest (and multigroup) over units, on PySAL's scale."""
    group_list = _split(groups)
    try:
        df, x, t, multi = _unit_table(input, unit_column, group_column, total_column, group_list, within)
        if compare is not None:
            df2, x2, t2, multi2 = _unit_table(compare, unit_column, group_column, total_column, group_list, None)
        if replications < 0 or not 0 < level < 1:
            raise InputError("--replications must be ≥ 0 and --level between 0 and 1")
    except InputError as e:
        _fail(e)
    single = ix.single_group(x, t)
    result: dict = {
        "input": input.name,
        "units": len(df),
        "group": group_column,
        "total": total_column,
        "population": float(t.sum()),
        "group_share": float(x.sum() / t.sum()),
        "dissimilarity": single["dissimilarity"],
        "isolation": single["isolation"],
        "interaction": single["interaction"],
        "entropy": single["entropy"],
        "gini": single["gini"],
        "atkinson": {str(b): single[f"atkinson_{b}"] for b in ix.ATKINSON_B},
    }
    pair = np.column_stack([x, t - x])
    if multi is not None:
        mg = ix.multigroup(multi)
        result["multigroup"] = {
            "groups": group_list,
            "dissimilarity": mg["multigroup_dissimilarity"],
            "information_theory": mg["multigroup_information_theory"],
        }
    if within:
        region = df[within].astype(str).to_numpy()
        result["decomposition"] = {}
        for name, c in (("group", pair), *((("multigroup", multi),) if multi is not None else ())):
            d = ix.decompose_information_theory(c, region)
            result["decomposition"][name] = {
                "within_column": within,
                "total": d.total,
                "between": d.between,
                "within": d.within,
                "regions": d.regions.to_dict(orient="records"),
            }
    if replications:
        inf = ix.infer(pair, replications, seed, level)
        if multi is not None:
            inf.update({k: v for k, v in ix.infer(multi, replications, seed, level).items() if "multigroup" in k})
        else:
            inf = {k: v for k, v in inf.items() if "multigroup" not in k}
        result["inference"] = {"replications": replications, "seed": seed, "level": level, "indices": inf}
    if compare is not None:
        ids = pd.Index(df[unit_column]).union(pd.Index(df2[unit_column]), sort=False).sort_values()

        def aligned(frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
            pos = pd.Index(frame[unit_column]).get_indexer(ids)
            return np.where((pos >= 0)[:, None], values[np.maximum(pos, 0)], 0.0)

        a, b = aligned(df, pair), aligned(df2, np.column_stack([x2, t2 - x2]))
        reps = replications or 999
        cmp = ix.compare(a, b, reps, seed, level)
        if multi is not None:
            multi_cmp = ix.compare(aligned(df, multi), aligned(df2, multi2), reps, seed, level)
            cmp.update({k: v for k, v in multi_cmp.items() if "multigroup" in k})
        else:
            cmp = {k: v for k, v in cmp.items() if "multigroup" not in k}
        result["comparison"] = {"second": compare.name, "units": len(ids), "indices": cmp}
    write_json(_rounded(result), out)
    console.print(f"wrote {out} (D = {result['dissimilarity']:.4f}, H = {result['entropy']:.4f}, {len(df):,} units)")


def _k_values(text: str) -> list[int]:
    try:
        ks = sorted({int(v) for v in _split(text)})
    except ValueError as e:
        raise InputError(f"--k must be whole numbers of persons separated by commas, e.g. 200,400; got {text!r}") from e
    if not ks or ks[0] <= 0:
        raise InputError(f"--k must be positive numbers of persons, e.g. 200,400; got {text!r}")
    return ks


@app.command()
def knn(
    cells: Path = typer.Option(..., "--cells", help="Grid cells (CSV or Parquet), one row per cell."),
    x_column: str = typer.Option(..., "--x-column", help="Easting (metres, e.g. EPSG:25833)."),
    y_column: str = typer.Option(..., "--y-column", help="Northing (metres)."),
    population_column: str = typer.Option(..., "--population-column", help="Persons in the cell."),
    group_columns: str = typer.Option(..., "--group-columns", help="Persons of each group in the cell: G1,G2,…"),
    k: str = typer.Option(",".join(map(str, DEFAULT_K)), "--k", help="Neighbourhood sizes K (persons)."),
    convention: str = typer.Option(
        "exact", help="exact: exactly K persons, the tied last ring in proportion; whole-cells: whole rings."
    ),
    out: Path = typer.Option(..., "--out", help="Parquet file of counts per cell and K."),
    profile_out: Path | None = typer.Option(None, "--profile", help="CSV of D, H and isolation per K and group."),
) -> None:
    """Persons and group counts among the K nearest persons of every populated cell, for all K in one pass."""
    groups = _split(group_columns)
    try:
        if convention not in CONVENTIONS:
            raise InputError(f"--convention must be one of {', '.join(CONVENTIONS)}; got {convention!r}")
        ks = _k_values(k)
        if not groups:
            raise InputError("--group-columns: give at least one column, e.g. --group-columns immigrant_background")
        bad = [g for g in groups if g in ("n", "x", "y") or g.startswith("n_")]
        if bad:
            raise InputError(f"{cells}: group column {bad[0]!r} would clash with the output columns; rename it")
        df = read_table(cells)
        require_columns(df, cells, [x_column, y_column, population_column, *groups])
        frame = pd.DataFrame(
            {
                "x": coordinates(df, cells, x_column),
                "y": coordinates(df, cells, y_column),
                "n": counts(df, cells, population_column),
            }
        )
        for g in groups:
            frame[g] = counts(df, cells, g)
            not_above(frame[g].to_numpy(), frame["n"].to_numpy(), df, cells, g, population_column)
        if frame["n"].sum() <= 0:
            raise InputError(f"{cells}: column {population_column!r} sums to 0 — no persons")
    except InputError as e:
        _fail(e)
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=False
    ) as bar:
        task = bar.add_task(f"knn {len(frame):,} cells, K ≤ {ks[-1]:,}", total=1.0)
        table = knn_table(frame, "x", "y", "n", groups, ks, convention, lambda f: bar.update(task, completed=f))
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out)
    if profile_out is not None:
        write_csv(profile(table, groups, ks), profile_out)
    console.print(f"wrote {out} ({len(table):,} cells, {len(ks)} K, {time.perf_counter() - start:.1f} s)")


@app.command("cells")
def cells_command(
    extract_dir: Path = typer.Argument(..., help="Folder of the register extract."),
    out: Path = typer.Option(..., "--out", help="Parquet file of grid cells."),
    year: int | None = typer.Option(None, help="Statistics year (default: the latest)."),
    size: int = typer.Option(250, help="Cell side in metres: 100 or 250 (SSB's grids)."),
) -> None:
    """Persons per SSB grid cell from a register extract (input to `levekar segregation knn`)."""
    try:
        if size not in (100, 250, 1000):
            raise InputError(f"--size must be 100, 250 or 1000 (SSB's grids); got {size}")
        cells, unplaced = register_cells(extract_dir, year, size)
    except InputError as e:
        _fail(e)
    write_parquet(pa.Table.from_pandas(cells, preserve_index=False), out)
    console.print(
        f"wrote {out} ({len(cells):,} cells of {size} m, {int(cells['population'].sum()):,} persons"
        + (f"; {unplaced:,} without a dwelling left out" if unplaced else "")
        + ")"
    )


@app.command("schools")
def schools_command(
    extract_dir: Path = typer.Argument(..., help="Folder of the register extract (with institutions, catchments)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the tables to (Parquet + CSV each)."),
    year: list[int] = typer.Option([], "--year", help="Statistics year (repeatable; default: every year)."),
    contrast_difference: float = typer.Option(
        30.0, help="Contrast pairs: neighbouring schools whose shares differ by more than this (points)."
    ),
    kindergarten_distance: float = typer.Option(1000.0, help="Kindergarten pairs: at most this far apart (metres)."),
    kindergarten_difference: float = typer.Option(
        30.0, help="Kindergarten pairs: shares differing by more than this (points)."
    ),
    replications: int = typer.Option(99, help="Randomisation replications of the indices (0: none)."),
    seed: int = typer.Option(2020, help="Seed of the replications."),
    force: bool = typer.Option(False, help="Replace an existing output folder."),
) -> None:
    """Schools and kindergartens: composition, segregation between institutions against their catchments,
    table 3.5 counts, uptake, contrast pairs, kindergarten pairs — disclosure-controlled as in the store."""
    settings = Settings(
        contrast_difference=contrast_difference,
        kindergarten_distance=kindergarten_distance,
        kindergarten_difference=kindergarten_difference,
        replications=replications,
        seed=seed,
    )
    try:
        if replications < 0 or kindergarten_distance < 0 or contrast_difference < 0 or kindergarten_difference < 0:
            raise InputError("--replications, distances and differences must be ≥ 0")
        if out.exists() and not force:
            raise InputError(f"{out} exists; use --force to replace it")
        tables = school_tables(extract_dir, sorted(set(year)) or None, settings)
    except InputError as e:
        _fail(e)
    with atomic_dir(out, force=force) as tmp:
        for name, frame in tables.items():
            write_parquet(pa.Table.from_pandas(frame, preserve_index=False), tmp / f"{name}.parquet")
            write_csv(frame, tmp / f"{name}.csv")
    classes = tables["segregation_school_classes"]
    last = classes[classes["year"] == classes["year"].max()].iloc[0] if len(classes) else None
    console.print(
        f"wrote {out} ({len(tables)} tables"
        + (
            f"; {int(last['year'])}: {int(last['schools'])} schools, {int(last['at_least_50'])} with ≥ 50 % "
            f"immigrant background, {int(last['over_90'])} over 90 %, {int(last['under_10'])} under 10 %"
            if last is not None
            else ""
        )
        + ")",
        markup=False,
    )
