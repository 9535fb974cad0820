"""What every command of the ``narratives`` command line shares: the Typer application
and its groups, the exit codes (see :mod:`narratives.cli`), and the error and logging
helpers. The commands live in one module per command group beside this one."""

from __future__ import annotations

import logging
from typing import NoReturn

import typer

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
LANGUAGES_HELP = (
    "The languages the posts can be in, ISO 639-1 codes, e.g. en,zh,ru,kk (default: any "
    "of the 87 known): faster, and no confusion with languages left out."
)

EXIT_USAGE = 2
EXIT_PAGE_ERRORS = 3


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def exit_on_page_errors(errors: dict | None) -> None:
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


def setup_logging(verbose: bool) -> None:
    """Log to stderr; without --verbose, keep the libraries' own chatter (weight-loading
    bars, prompt notices) off the terminal so that our summary stays readable."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        import os
        import sys

        # importing transformers takes most of a second, which a run on the ONNX encoder
        # never needs: where it is not imported yet, its environment settings do the same
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        else:
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset run


__all__ = [
    "EXIT_PAGE_ERRORS",
    "EXIT_USAGE",
    "TAGGER_HELP",
    "TAXONOMY_HELP",
    "app",
    "eval_app",
    "exit_on_page_errors",
    "fail",
    "model_app",
    "setup_logging",
    "taxonomy_app",
]
