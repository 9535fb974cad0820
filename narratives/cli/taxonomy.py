"""narratives taxonomy: check and show narrative taxonomies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from narratives.cli.app import TAXONOMY_HELP, fail, taxonomy_app
from narratives.errors import NarrativesError


@taxonomy_app.command("validate")
def taxonomy_validate(
    path: Annotated[Path, typer.Argument(help="A taxonomy JSON file.")],
) -> None:
    """Check a taxonomy file against the schema; exit 2 with the problems if it fails."""
    from narratives.tagging.taxonomy import check_file

    try:
        problems, notes, tax = check_file(path)
    except NarrativesError as exc:
        fail(str(exc))
    if problems or tax is None:
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        fail(f"{path}: {len(problems)} problems")
    typer.echo(
        f"{path}: valid ({tax.id} {tax.version}: {len(tax.narratives)} narratives, "
        f"{len(tax.nodes) - len(tax.narratives)} sub-narratives)"
    )
    for note in notes:
        typer.echo(f"  note: {note}")


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
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(tax.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{tax.title}\n{tax.id} {tax.version} (sha256 {tax.digest[:16]})")
    for node in tax.nodes:
        indent = "  " if node.parent is None else "    "
        typer.echo(f"{indent}{node.id:<36} {node.name}")
