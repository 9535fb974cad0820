"""narratives timing and narratives coordination: who runs the pages of a scored folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import app, exit_on_page_errors, fail, setup_logging
from narratives.errors import NarrativesError


@app.command()
def timing(
    scored: Annotated[Path, typer.Argument(help="A directory written by narratives score.")],
    min_posts: Annotated[int, typer.Option(min=1, help="Fewer posts: no estimate.")] = 50,
    groups: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet with page_id and group columns: a row per group too "
            "(default: the coordination network's groups, once coordination has run)."
        ),
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Pages listed on the terminal.")] = 30,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Operator timing per page and per group of pages: UTC offset of the working schedule
    (with a confidence), working hours and breaks in that local time, and pages with
    alike timing.

    Writes SCORED/timing.parquet (a row per page, per group and one for all pages
    together) and SCORED/timing_pairs.parquet.
    """
    from narratives.operators.timing import TimingConfig, write_timing

    setup_logging(verbose)
    try:
        table, pairs = write_timing(scored, TimingConfig(min_posts=min_posts), groups)
    except (NarrativesError, ValueError) as exc:
        fail(str(exc))
    import pandas as pd

    pages = table[table["scope"] == "page"]
    shown = pd.concat([table[table["scope"] != "page"], pages.head(show)])
    for row in shown.itertuples():
        who = {"all": "all pages", "group": f"group {row.group}"}.get(row.scope, row.page_id)
        if row.status != "ok":
            typer.echo(f"  {who}: {row.status}")
            continue
        breaks = ", ".join(row.breaks) if row.breaks else "none found"
        typer.echo(
            f"  {who}: UTC{row.utc_offset_hours:+g} (confidence {row.confidence:.2f}), "
            f"{row.n_posts} posts, works {row.work_start}-{row.work_end}, breaks {breaks}"
        )
    if len(pages) > show:
        typer.echo(f"  ... and {len(pages) - show} more pages (timing.parquet has them all)")
    typer.echo(f"pairs of pages with alike timing: {len(pairs)}")
    typer.echo(f"outputs in {scored}/ (timing.parquet, timing_pairs.parquet)")
    failed = [
        {"all": "all pages", "group": f"group {row.group}"}.get(row.scope, str(row.page_id))
        for row in table.itertuples()
        if str(row.status).startswith("error:")
    ]
    exit_on_page_errors({"pages": len(failed), "timing": {"pages": len(failed), "first": failed}})


@app.command()
def coordination(
    scored: Annotated[Path, typer.Argument(help="A directory written by narratives score.")],
    window_minutes: Annotated[
        float, typer.Option(min=0.01, help="Largest time between two linked posts.")
    ] = 10.0,
    threshold: Annotated[
        float, typer.Option(help="Smallest embedding cosine of two posts in one language.")
    ] = 0.94,
    margin: Annotated[
        float,
        typer.Option(
            help="Two languages: how far a pair's cosine must stand above what each post "
            "scores against ordinary posts of the other's language (a ratio; 0: none, "
            "--cross-threshold everywhere)."
        ),
    ] = 1.02,
    cross_threshold: Annotated[
        float,
        typer.Option(help="Two languages, where one has too few posts for the margin: cosine."),
    ] = 0.90,
    exact_only: Annotated[
        bool, typer.Option("--exact-only", help="Only identical texts (no embeddings).")
    ] = False,
    graphml: Annotated[
        Path | None, typer.Option(help="Also write the page network as GraphML here.")
    ] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Posts by different pages that carry the same message (copied, edited or
    translated) within minutes: clusters, and the page network they imply.

    Writes SCORED/coordination.parquet (a row per post in a cluster) and
    SCORED/coordination_edges.parquet (page pairs, weighted by the clusters they share).
    """
    from narratives.operators.coordination import CoordinationConfig, write_coordination

    setup_logging(verbose)
    try:
        config = CoordinationConfig(
            window_minutes=window_minutes,
            threshold=threshold,
            margin=margin,
            cross_threshold=cross_threshold,
        )
        clusters, edges = write_coordination(scored, config, exact_only=exact_only, graphml=graphml)
    except (NarrativesError, ValueError) as exc:
        fail(str(exc))
    n = clusters["cluster_id"].nunique() if len(clusters) else 0
    typer.echo(
        f"clusters {n}  posts in them {len(clusters)}  "
        f"pages {clusters['page_id'].nunique() if n else 0}  page pairs {len(edges)}"
    )
    for row in edges.head(10).itertuples():
        typer.echo(f"  {row.page_a} ~ {row.page_b}: {row.weight} shared clusters")
    typer.echo(f"outputs in {scored}/ (coordination.parquet, coordination_edges.parquet)")
