"""narratives train: a tagger trained on labelled posts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import app, fail, setup_logging
from narratives.errors import NarrativesError


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
    from narratives.embedding.embedder import BACKENDS
    from narratives.tagging.trainer import TrainingArguments, train_tagger

    setup_logging(verbose)
    if backend not in BACKENDS:
        fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    try:
        args = TrainingArguments(
            min_examples=min_examples,
            seed=seed,
            encoder="contrastive" if contrastive else "frozen",
            pairs=pairs,
            gate=gate,
            exemplars=exemplars,
        )
        tagger, report = train_tagger(
            data,
            out,
            args,
            text_col=text_col,
            label_cols=(label_col, sub_label_col),
            taxonomy=taxonomy,
            backend=backend,
            force=force,
        )
    except NarrativesError as exc:
        fail(str(exc))
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
