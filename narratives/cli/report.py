"""narratives report: the HTML report of a scored folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import app, fail, setup_logging
from narratives.errors import NarrativesError


@app.command()
def report(
    scored: Annotated[Path, typer.Argument(help="A directory written by narratives score.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="HTML file (default SCORED/report.html).")
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option(help="Taxonomy of the run, for narrative names.")
    ] = None,
    max_pages: Annotated[int, typer.Option(min=1, help="Pages drawn in detail.")] = 40,
    max_points: Annotated[int, typer.Option(min=10, help="Posts drawn per page.")] = 1500,
    max_table_rows: Annotated[int, typer.Option(min=1, help="Rows of the page table.")] = 5000,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Write one self-contained HTML report (opens offline; safe against hostile post text):
    counts, pages ranked by pivot, each page's topic drift and languages over time with its
    pivots, narrative mix and example posts, and the narrative mix over time by language."""
    from narratives.report.build import ReportConfig, write_report

    setup_logging(verbose)
    if not scored.is_dir():
        fail(f"{str(scored)!r} is not a directory written by narratives score")
    try:
        config = ReportConfig(
            max_pages=max_pages, max_points=max_points, max_table_rows=max_table_rows
        )
        page = write_report(scored, output, config=config, taxonomy=taxonomy, force=force)
    except (NarrativesError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"report {page} ({page.stat().st_size / 1e6:.1f} MB)")
