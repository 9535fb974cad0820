"""narratives eval: the evaluation harnesses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import TAGGER_HELP, TAXONOMY_HELP, eval_app, fail, setup_logging
from narratives.errors import NarrativesError


@eval_app.command("pivots")
def eval_pivots(
    data: Annotated[Path, typer.Option(help="Folder of the external data sets.")] = Path(
        "../shared/data/external"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the spliced pages.")] = 0,
    baselines: Annotated[bool, typer.Option(help="Also run plain ruptures.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the table here.")] = None,
    replay: Annotated[
        int,
        typer.Option(
            min=0,
            help="Also replay every page this many posts at a time (24: a day) and measure "
            "early detection: posts after a pivot before it is reported, provisional "
            "pivots withdrawn (0: no replay).",
        ),
    ] = 0,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Pivot detection on real text spliced into pages with known change points."""
    import json

    from narratives.evaluation.pivots import evaluate, format_table

    setup_logging(verbose)
    try:
        result = evaluate(data, seed=seed, baselines=baselines, replay_step=replay or None)
    except NarrativesError as exc:
        fail(str(exc))
    typer.echo(format_table(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@eval_app.command("timing")
def eval_timing(
    pages: Annotated[int, typer.Option(min=1, help="Generated pages per size.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the generated schedules.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the table here.")] = None,
) -> None:
    """UTC offset and lunch-break accuracy on generated schedules of known offset, by
    posts per page."""
    import json

    from narratives.evaluation.timing import evaluate, format_table

    result = evaluate(pages=pages, seed=seed)
    typer.echo(format_table(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@eval_app.command("coordination")
def eval_coordination(
    data: Annotated[Path, typer.Option(help="Folder of the external data sets.")] = Path(
        "../shared/data/external"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the generated dump.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the table here.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Page-pair precision and recall on a dump with a known coordinated group that posts
    copied, edited and translated messages among independent pages on the same subjects."""
    import json

    from narratives.evaluation.coordination import evaluate, format_table

    setup_logging(verbose)
    try:
        result = evaluate(data, seed=seed)
    except NarrativesError as exc:
        fail(str(exc))
    typer.echo(format_table(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@eval_app.command("tagger")
def eval_tagger(
    tagger: Annotated[str, typer.Option(help=TAGGER_HELP)] = "default",
    data: Annotated[
        Path | None,
        typer.Option(help="JSONL of labelled posts (text, labels, lang); default: bundled set."),
    ] = None,
    taxonomy: Annotated[Path | None, typer.Option(help=TAXONOMY_HELP)] = None,
    baseline: Annotated[bool, typer.Option(help="Also run the naive cosine baseline.")] = True,
    phrases: Annotated[
        Path | None,
        typer.Option(
            help="Doublethink Lab's phrase list (the ccp-aligned-phrases-doublethink folder): "
            "how many CCP-opposed and -aligned phrases get a tag."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Narrative tags measured on labelled posts (per narrative, micro/macro F1, false tags)."""
    import json

    from narratives.evaluation.tagger import evaluate, format_report

    setup_logging(verbose)
    try:
        result = evaluate(tagger, data, taxonomy, baseline=baseline, phrases=phrases)
    except NarrativesError as exc:
        fail(str(exc))
    typer.echo(format_report(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@eval_app.command("langid")
def eval_langid(
    testdata: Annotated[
        Path,
        typer.Argument(
            help="A clone of https://github.com/pemistahl/lingua-py, or its language-testdata "
            "folder."
        ),
    ],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Items per language and kind (default: all).")
    ] = None,
    languages: Annotated[
        str | None, typer.Option(help="Only these languages' files, e.g. kk,ru,ms,id.")
    ] = None,
    identifiers: Annotated[
        str, typer.Option(help="Which to run, of ours, langdetect and lingua.")
    ] = "ours,langdetect,lingua",
    per_language: Annotated[
        bool, typer.Option("--per-language/--means-only", help="Print every language's row.")
    ] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result here.")] = None,
) -> None:
    """Language identification on Lingua's test sentences, word pairs and single words:
    ours beside langdetect and Lingua, in the same process."""
    import json

    from narratives.evaluation.langid import evaluate, format_table

    try:
        result = evaluate(
            testdata,
            limit=limit,
            languages=languages.split(",") if languages else None,
            identifiers=[x.strip() for x in identifiers.split(",") if x.strip()],
        )
    except NarrativesError as exc:
        fail(str(exc))
    typer.echo(format_table(result, per_language=per_language))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")
