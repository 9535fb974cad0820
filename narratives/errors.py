"""The exceptions narratives raises. Catch :class:`NarrativesError` for all of them."""

from __future__ import annotations


class NarrativesError(Exception):
    """Base class of every error narratives raises on purpose."""


class InputError(NarrativesError, ValueError):
    """The input cannot be read as posts (a missing file, column or unknown format)."""


class ModelError(NarrativesError, RuntimeError):
    """A model cannot be built, verified or loaded."""


class OutputError(NarrativesError):
    """The output location cannot be written (exists without ``force``, not a directory)."""


def page_error_status(exc: BaseException) -> str:
    """The status a page gets when its analysis (pivots, timing) meets an unexpected
    error: ``error: <type>: <first line of the message>``, short enough for a table cell.
    The run goes on; the page's other results stay."""
    message = str(exc).strip().splitlines()
    line = f"error: {type(exc).__name__}" + (f": {message[0]}" if message else "")
    return line if len(line) <= 200 else line[:199] + "…"
