"""narratives update and narratives changes: new posts added to a scored folder, and the
change log of what each update found."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from narratives.cli.app import (
    LANGUAGES_HELP,
    TAGGER_HELP,
    TAXONOMY_HELP,
    app,
    exit_on_page_errors,
    fail,
    setup_logging,
)
from narratives.errors import NarrativesError


@app.command()
def update(
    scored: Annotated[Path, typer.Argument(help="A directory written by narratives score.")],
    input: Annotated[Path, typer.Argument(help="The new posts: JSONL, CSV/TSV or Parquet.")],
    model: Annotated[
        str | None, typer.Option(help="Only to check: the folder's model is used.")
    ] = None,
    id_col: Annotated[str | None, typer.Option(help="Column of post ids.")] = None,
    page_col: Annotated[str | None, typer.Option(help="Column of page/account ids.")] = None,
    text_col: Annotated[str | None, typer.Option(help="Column of post text.")] = None,
    time_col: Annotated[str | None, typer.Option(help="Column of posting times.")] = None,
    tz: Annotated[str | None, typer.Option(help="Zone of naive times (the folder's).")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of the input (detected if omitted).")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default , or tab).")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a saved DatasetDict.")] = None,
    device: Annotated[str | None, typer.Option(help="Torch device (default: best).")] = None,
    taxonomy: Annotated[Path | None, typer.Option(help=TAXONOMY_HELP)] = None,
    tagger: Annotated[str | None, typer.Option(help=TAGGER_HELP)] = None,
    languages: Annotated[str | None, typer.Option(help=LANGUAGES_HELP)] = None,
    cache: Annotated[
        bool,
        typer.Option("--cache/--no-cache", help="Keep each text's embedding in the cache."),
    ] = True,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish an update of SCORED that was interrupted.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Drop an interrupted update's work and run this one.")
    ] = False,
    report: Annotated[
        bool, typer.Option("--report", help="Also write SCORED/report.html again.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Add new posts to a scored folder: only they are scored; pivots and pages are made
    again for the pages that received posts, timing and coordination (where the folder
    has them) with their stored settings.

    The columns, model, tagger, taxonomy, languages, zone and pivot settings are the
    folder's: one
    given that differs is refused. What changed goes to SCORED/updates/NNNN.json
    (narratives changes lists it). An update killed at any point leaves the folder as it
    was, or is finished with --resume (same input).
    """
    from narratives.pipeline.update import update as run_update

    setup_logging(verbose)
    if not input.exists():
        fail(f"input {str(input)!r} does not exist")
    flags = {"post_id": id_col, "page_id": page_col, "text": text_col, "created_at": time_col}
    named = {k: v for k, v in flags.items() if v is not None}
    try:
        entry = run_update(
            scored,
            input,
            named or None,
            model=model,
            tagger=tagger,
            languages=languages,
            taxonomy=taxonomy,
            tz=tz,
            encoding=encoding,
            delimiter=delimiter,
            split=split,
            device=device,
            cache=cache,
            resume=resume,
            force=force,
        )
        if report:
            from narratives.report.build import write_report

            page = write_report(scored, taxonomy=taxonomy, force=True)
    except NarrativesError as exc:
        fail(str(exc))
    _print_entry(entry)
    typer.echo(f"change log {scored}/updates/{entry['update']:04d}.json")
    if report:
        typer.echo(f"report {page}")
    import json

    run = json.loads((scored / "run.json").read_text(encoding="utf-8"))
    exit_on_page_errors(run.get("page_errors"))


@app.command()
def changes(
    scored: Annotated[Path, typer.Argument(help="A directory updated by narratives update.")],
    since: Annotated[
        str | None,
        typer.Option(
            help="Only the updates after this update number, or made at or after this time "
            "(2026-12-07T06:00, UTC without a zone)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The entries as JSON.")] = False,
) -> None:
    """What each update of a scored folder found: pivots new, confirmed, moved or
    withdrawn, pages whose timing moved, coordination clusters and page links new or
    grown, and each narrative's share of the new posts against before."""
    from narratives.pipeline.update import change_log

    try:
        entries = change_log(scored, since)
    except NarrativesError as exc:
        fail(str(exc))
    if as_json:
        import json

        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        typer.echo("no updates" + (f" since {since}" if since else ""))
    for entry in entries:
        _print_entry(entry)


def _print_entry(entry: dict[str, Any]) -> None:
    counts = entry["counts"]
    typer.echo(
        f"update {entry['update']} ({entry['created']}): read {counts['read']}  ok "
        f"{counts['ok']}  rejected {counts['rejected']}  pages touched {entry['pages_touched']}"
    )
    pivots = entry["pivots"]
    for key in ("new", "confirmed", "moved", "withdrawn"):
        for p in pivots[key]:
            flag = " (provisional)" if p.get("provisional") else ""
            moved = f" (was {p['from']})" if key == "moved" else ""
            typer.echo(
                f"  pivot {key}: {p['page_id']} at {p['at']}{moved} {p['kind']} "
                f"{p['before_lang']}->{p['after_lang']}, {p['posts_after']} posts after{flag}"
            )
    for t in entry["timing"]["pages"]:
        typer.echo(f"  timing moved: {t['page_id']} UTC{_hours(t['from_hours'])} -> "
                   f"UTC{_hours(t['to_hours'])}")  # fmt: skip
    coordination = entry.get("coordination")
    if coordination:
        typer.echo(
            f"  coordination: {len(coordination['clusters_new'])} new clusters, "
            f"{len(coordination['clusters_grown'])} grown; {len(coordination['links_new'])} "
            f"new page links, {len(coordination['links_grown'])} heavier"
        )
    risen = [n for n in entry["narratives"] if (n["share_new"] or 0) > (n["share_before"] or 0)]
    for n in risen[:5]:
        typer.echo(
            f"  narrative {n['id']}: {n['share_new']:.0%} of the new posts, "
            f"{(n['share_before'] or 0):.0%} before"
        )


def _hours(value: float | None) -> str:
    return "?" if value is None else f"{value:+g}"
