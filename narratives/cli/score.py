"""narratives score: every post of an input scored into an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from narratives.scored import ScoredFolder


@app.command()
def score(
    input: Annotated[Path, typer.Argument(help="JSONL, CSV/TSV, Parquet, or a saved dataset.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory for the outputs.")],
    model: Annotated[
        str, typer.Option(help="'default' (multilingual-e5-small) or a model name/path.")
    ] = "default",
    id_col: Annotated[str | None, typer.Option(help="Column of post ids.")] = None,
    page_col: Annotated[str | None, typer.Option(help="Column of page/account ids.")] = None,
    text_col: Annotated[str | None, typer.Option(help="Column of post text.")] = None,
    time_col: Annotated[str | None, typer.Option(help="Column of posting times.")] = None,
    tz: Annotated[
        str | None, typer.Option(help="Zone of naive times, e.g. Asia/Shanghai (default UTC).")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of the input (detected if omitted).")
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default , or tab).")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a saved DatasetDict.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Embedding batch size.")] = 32,
    device: Annotated[str | None, typer.Option(help="Torch device (default: best).")] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="Encoder: 'onnx' (int8, exported once), 'torch', or 'auto' (onnx for the "
            "default model on the CPU)."
        ),
    ] = "auto",
    taxonomy: Annotated[Path | None, typer.Option(help=TAXONOMY_HELP)] = None,
    tagger: Annotated[str, typer.Option(help=TAGGER_HELP)] = "default",
    languages: Annotated[str | None, typer.Option(help=LANGUAGES_HELP)] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="Keep each text's embedding and language in the cache for later runs.",
        ),
    ] = True,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Posts per chunk (each is committed to the cache).")
    ] = 2048,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish a run in OUTPUT that was interrupted.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="'local', or 'ray' (Ray Data; pip install 'narratives[ray]').")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: start a local one).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Ray actors (default: one per CPU or GPU).")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Also write OUTPUT/report.html (narratives report).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Score every post and write posts/pivots/pages Parquet files and run.json.

    A run killed at any point is finished with --resume (same input and options); with
    --report, narratives report runs after it."""
    from narratives.embedding.embedder import BACKENDS
    from narratives.pipeline.engines import ENGINES
    from narratives.pipeline.score import score_into

    setup_logging(verbose)
    if not input.exists():
        fail(f"input {str(input)!r} does not exist")
    if backend not in BACKENDS:  # checked before the output folder is touched
        fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if engine not in ENGINES:
        fail(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    flags = {"post_id": id_col, "page_id": page_col, "text": text_col, "created_at": time_col}
    try:
        run = score_into(
            input,
            output,
            {k: v for k, v in flags.items() if v is not None},
            model=model,
            encoding=encoding,
            tz=tz,
            delimiter=delimiter,
            split=split,
            batch_size=batch_size,
            chunk_size=chunk_size,
            device=device,
            backend=backend,
            taxonomy=taxonomy,
            tagger=None if tagger == "none" else tagger,
            languages=languages,
            cache=cache,
            engine=engine,
            address=address,
            concurrency=concurrency,
            force=force,
            resume=resume,
        )
        if report:
            from narratives.report.build import write_report

            page = write_report(output, taxonomy=taxonomy, force=True)
    except NarrativesError as exc:
        fail(str(exc))
    out = output
    counts = run["counts"]
    typer.echo(
        f"read {counts['read']}  ok {counts['ok']}  rejected {counts['rejected']}  "
        f"warned {counts['warned']}  pages {counts['pages']}"
    )
    if counts["rejected"]:
        from narratives.report.build import rejection_reasons

        reasons = ScoredFolder(out).rejected_errors()
        for reason, n in rejection_reasons(reasons, top=5).items():
            typer.echo(f"  rejected {n:>7}: {reason}")
    typer.echo(f"posts with a narrative {counts['tagged']}")
    typer.echo(f"pivots {counts['pivots']} (narratives pivots {out} lists them)")
    tables = [
        f"{name}/ (parts)" if (Path(out) / name).is_dir() else f"{name}.parquet"
        for name in ("posts", "pivots", "pages")
    ]
    extra = ", vectors.f32" if (Path(out) / "vectors.f32").is_file() else ""
    typer.echo(f"outputs in {out}/ ({', '.join(tables)}, run.json{extra})")
    if report:
        typer.echo(f"report {page}")
    exit_on_page_errors(run.get("page_errors"))
