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
