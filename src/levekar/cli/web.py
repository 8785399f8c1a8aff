"""`levekar serve` and `levekar report`: thin shells over levekar.web."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def serve_command(
    published_dir: Path = typer.Argument(..., help="Folder of the published store (from `levekar run` or `demo`)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (the default serves this machine only)."),
    port: int = typer.Option(8000, help="Port."),
) -> None:
    """Serve the web barometer and its JSON API, read-only over the store."""
    import uvicorn

    from levekar.web.app import create_app
    from levekar.web.store import load_store

    try:
        store = load_store(published_dir)
    except FileNotFoundError as e:
        err.print(str(e), markup=False)
        raise typer.Exit(2) from e
    app = create_app(store)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    console.print(
        f"levekår web: http://{shown}:{port}/  (API: http://{shown}:{port}/openapi.json)"
        + ("  — SYNTHETIC DATA" if store.synthetic else ""),
        markup=False,
        soft_wrap=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


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
