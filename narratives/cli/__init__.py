"""The narratives command line: one module per command group, each command one library
call. Exit codes: 0 success (rejected rows included), 2 usage or input errors, 3 the run
completed and wrote every file but some pages met an unexpected error (their
``pivot_status`` or ``timing_status`` says ``error: ...``; run.json's ``page_errors``
counts them; the log has each traceback), 1 anything else unexpected."""

from __future__ import annotations

import sys

from narratives.cli.app import EXIT_PAGE_ERRORS, EXIT_USAGE, app

# the command modules register their commands when imported, in the order --help lists them
# isort: off
from narratives.cli import score, update, pivots, operators, report  # noqa: F401
from narratives.cli import train, model, evaluate, taxonomy  # noqa: F401
# isort: on


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


__all__ = ["EXIT_PAGE_ERRORS", "EXIT_USAGE", "app", "main"]
