"""`levekar serve` and `levekar report`: thin shells over levekar.web."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def serve_command(
    published_dir: Path = typer.Argument(..., help="Folder of the published store (from `levekar run` or `demo`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (the default serves this machine only)."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(
        1, min=1, max=64, help="Worker processes (each holds the store in memory; about one per core)."
    ),
) -> None:
    """Serve the web barometer and its JSON API, read-only over the store."""
    import json

    import uvicorn

    from levekar.web.app import create_app
    from levekar.web.store import load_store

    store = None
    try:
        if workers == 1:
            store = load_store(published_dir)
            synthetic = store.synthetic
        else:  # each worker loads the store itself; here only check that it is one
            if not (published_dir / "barometer.duckdb").exists():
                raise FileNotFoundError(f"{published_dir}: not a published store (no barometer.duckdb)")
            manifest = json.loads((published_dir / "manifest.json").read_text(encoding="utf-8"))
            synthetic = bool(manifest.get("synthetic"))
    except FileNotFoundError as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    console.print(
        f"levekår web: http://{shown}:{port}/  (API: http://{shown}:{port}/openapi.json)"
        + ("  — SYNTHETIC DATA" if synthetic else ""),
        markup=False,
        soft_wrap=True,
    )
    if store is not None:
        uvicorn.run(create_app(store), host=host, port=port, log_level="warning")
        return
    os.environ["LEVEKAR_WEB_STORE"] = str(published_dir.resolve())
    uvicorn.run(
        "levekar.web.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )


def report_command(
    published_dir: Path = typer.Argument(..., help="Folder of the published store."),
    kommune: str = typer.Option(..., help="Kommune code, e.g. 0301."),
    out: Path = typer.Option(Path("report.html"), help="HTML file to write (print it to PDF from a browser)."),
    lang: str = typer.Option("nb", help="nb or en."),
    year: int | None = typer.Option(None, help="Year (default: the latest)."),
) -> None:
    """Write a printable municipality report (levekårsanalyse): maps, charts and tables in one HTML file."""
    from levekar.web.report import render_report
    from levekar.web.store import NotFound, load_store

    if lang not in ("nb", "en"):
        err.print("--lang must be nb or en")
        raise typer.Exit(2)
    try:
        html = render_report(load_store(published_dir), kommune, lang=lang, year=year)
    except (FileNotFoundError, NotFound) as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} ({len(html) / 1e6:.1f} MB) — open it in a browser and print to PDF", markup=False)
