"""Read posts from JSONL, CSV, Parquet or Hugging Face datasets into one normalised table
(the formats in :mod:`narratives.io.formats`, the columns in :mod:`narratives.io.columns`).

Every input record becomes exactly one row, in input order, with ``source_row`` (its
0-based position among the records), ``status`` and ``error``. A record that cannot be
used (malformed JSON, a CSV row with the wrong number of fields, invalid UTF-8, no
text, an unusable time, a repeated post id) is kept as ``rejected`` with a readable
reason; nothing is dropped. A required column that is missing altogether stops the
read with a message that lists the columns present and the flag to pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from narratives.errors import InputError
from narratives.io.columns import FLAGS, ColumnMapping, finish, posts_frame, resolve_columns
from narratives.io.formats import (
    Record,
    format_of,
    from_dataset,
    load_dataset_dir,
    read_csv,
    read_jsonl,
    read_parquet,
)
from narratives.io.times import UTC, resolve_tz

logger = logging.getLogger(__name__)


@dataclass
class ReadResult:
    """The normalised posts and what was learnt while reading them."""

    posts: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def read_posts(
    source: str | Path | Any,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    encoding: str | None = None,
    tz: str | None = None,
    delimiter: str | None = None,
    split: str | None = None,
    name: str | None = None,
) -> ReadResult:
    """Read posts from a file, a saved dataset directory, or an in-memory table.

    ``source`` is a path (JSONL, CSV/TSV, Parquet, optionally gzipped, or a
    ``datasets.save_to_disk`` directory), a ``datasets.Dataset``/``DatasetDict``, a
    ``pandas.DataFrame``, or a list of dicts. ``columns`` maps ``post_id``,
    ``page_id``, ``text`` and ``created_at`` to input column names; ``tz`` is the zone
    of naive times (an IANA name, UTC by default).
    """
    mapping = ColumnMapping.from_any(columns)
    resolve_tz(tz)  # fail on a bad zone before reading anything
    info: dict[str, Any] = {}
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise InputError(f"input {str(path)!r} does not exist")
        fmt = format_of(path)
        if fmt == "jsonl":
            records, found, extra = read_jsonl(path, encoding)
        elif fmt == "csv":
            records, found, extra = read_csv(path, encoding, delimiter)
        elif fmt == "parquet":
            records, found, extra = read_parquet(path)
        else:
            records, found, extra = load_dataset_dir(path, split)
        source_name = name or path.name
        info.update(source=str(path), format=fmt, **extra)
    elif isinstance(source, pd.DataFrame):
        found = [str(c) for c in source.columns]
        records = [Record(dict(zip(found, row))) for row in source.itertuples(index=False)]
        source_name, info["format"] = name or "dataframe", "dataframe"
    elif hasattr(source, "column_names") or hasattr(source, "keys"):
        records, found, extra = from_dataset(source, split)
        source_name = name or "dataset"
        info.update(format="datasets", **extra)
    elif isinstance(source, Sequence):
        records = []
        seen: dict[str, None] = {}
        for i, item in enumerate(source):
            if isinstance(item, Mapping):
                seen.update(dict.fromkeys(item))
                records.append(Record(dict(item)))
            else:
                records.append(Record(None, f"record {i} is a {type(item).__name__}, not a dict"))
        found, source_name, info["format"] = list(seen), name or "records", "records"
    else:
        raise InputError(
            f"cannot read posts from a {type(source).__name__}; pass a path, a DataFrame, "
            "a datasets.Dataset or a list of dicts"
        )
    resolved = resolve_columns(found, mapping)
    frame, time_info = finish(posts_frame(records, resolved, source_name, tz), tz)
    info.update(columns=resolved, available_columns=list(found), **time_info)
    for name_, col in resolved.items():
        if col is None and name_ != "text":
            logger.info("no %s column; pass %s to use one", name_, FLAGS[name_])
    return ReadResult(frame, info)


__all__ = ["UTC", "ReadResult", "read_posts"]
