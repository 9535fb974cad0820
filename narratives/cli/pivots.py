"""narratives pivots: pivot detection again on a scored folder, with other settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import app, exit_on_page_errors, fail, setup_logging
from narratives.errors import NarrativesError


@app.command()
def pivots(
    scored: Annotated[Path, typer.Argument(help="A directory written by narratives score.")],
    min_posts: Annotated[int, typer.Option(min=2, help="Posts each side of a pivot.")] = 4,
    min_topic_shift: Annotated[float, typer.Option(help="Smallest topic-mix change.")] = 0.45,
    min_language_shift: Annotated[float, typer.Option(help="Smallest language-mix change.")] = 0.5,
    alpha: Annotated[float, typer.Option(help="Significance of each change.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of the permutation tests.")] = 0,
    show: Annotated[int, typer.Option(min=0, help="Pivots listed (the largest first).")] = 30,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Re-run pivot detection on stored scores with other settings (no re-embedding).

    Rewrites pivots.parquet, pages.parquet and run.json in SCORED; posts stay as they are.
    """
    from narratives.pipeline.pages import redetect_pivots
    from narratives.pivots.detector import PivotConfig

    setup_logging(verbose)
    try:
        config = PivotConfig(
            min_posts=min_posts,
            min_topic_shift=min_topic_shift,
            min_language_shift=min_language_shift,
            alpha=alpha,
            seed=seed,
        )
        result = redetect_pivots(scored, config)
    except (NarrativesError, ValueError) as exc:
        fail(str(exc))
    summary = result.run["pivots"]
    typer.echo(
        f"pages {summary['pages']}  too few posts {summary['pages_too_few_posts']}  "
        f"pivots {summary['pivots']}"
    )
    strongest = result.pivots.sort_values(["magnitude", "page_id"], ascending=[False, True])
    for row in strongest.head(show).itertuples():
        after = ", ".join(f"{n['id']} {n['score']:.0%}" for n in row.after_narratives)
        typer.echo(
            f"  {row.page_id}  {row.at:%Y-%m-%d %H:%M}  {row.kind:<15} "
            f"magnitude {row.magnitude:.2f}  {row.before_lang}->{row.after_lang}  "
            f"{row.before_topic}->{row.after_topic}"
            + (f"  narratives after: {after}" if after else "")
        )
    if len(strongest) > show:
        typer.echo(f"  ... and {len(strongest) - show} more (pivots.parquet has them all)")
    typer.echo(f"outputs in {scored}/ (pivots.parquet, pages.parquet, run.json)")
    if (scored / "report.html").exists():
        typer.echo(f"report.html shows the old pivots: narratives report {scored} --force")
    exit_on_page_errors(result.run.get("page_errors"))
