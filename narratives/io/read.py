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

import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from narratives.errors import InputError
from narratives.io.columns import FLAGS, ColumnMapping, posts_frame, resolve_columns
from narratives.io.formats import (
    CsvSource,
    JsonlSource,
    MemorySource,
    ParquetSource,
    Record,
    Source,
    format_of,
    from_dataset,
    load_dataset_dir,
)
from narratives.io.ids import IdIndex
from narratives.io.times import UTC, resolve_tz

logger = logging.getLogger(__name__)


@dataclass
class ReadResult:
    """The normalised posts and what was learnt while reading them."""

    posts: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


class PostReader:
    """A source of posts read a chunk at a time, each chunk a normalised table (the rows
    :func:`read_posts` gives, in the same order), so that a dump need not fit in memory.

    The constructor opens the source and resolves its columns: a text file is read once
    for its encoding (and a JSONL file for its keys); a required column that is missing
    stops here, before any work. Repeated post ids are found across chunks by an
    :class:`~narratives.io.ids.IdIndex` (kept in the SQLite file ``ids_path``, or in
    memory). :attr:`info` is complete once :meth:`chunks` is exhausted."""

    def __init__(
        self,
        source: str | Path | Any,
        columns: ColumnMapping | Mapping[str, str] | None = None,
        *,
        encoding: str | None = None,
        tz: str | None = None,
        delimiter: str | None = None,
        split: str | None = None,
        name: str | None = None,
        ids_path: str | Path | None = None,
        first_row: int = 0,
        seen: Mapping[str, int] | None = None,
    ) -> None:
        mapping = ColumnMapping.from_any(columns)
        resolve_tz(tz)  # fail on a bad zone before reading anything
        self.tz, self.ids_path = tz, ids_path
        #: ``source_row`` of the first record (a scored folder's rows so far, when new
        #: posts are added to it) and the ids given earlier, with their rows, that a
        #: record of this source repeats (which it is then rejected for)
        self.first_row, self.seen = first_row, dict(seen or {})
        self.source, self.source_name, self.info = _open(source, encoding, delimiter, split, name)
        self.n_records = self.source.n_records
        #: Records in the source, or an estimate where the format does not say (a CSV
        #: file: its bytes / 100); what a run sizes its parts of pages by.
        self.n_estimate = self.n_records
        if self.n_estimate is None and isinstance(source, str | Path):
            self.n_estimate = Path(source).stat().st_size // 100
        self.columns = resolve_columns(self.source.columns, mapping)
        for name_, col in self.columns.items():
            if col is None and name_ != "text":
                logger.info("no %s column; pass %s to use one", name_, FLAGS[name_])

    def chunks(self, size: int) -> Iterator[pd.DataFrame]:
        """The posts table, ``size`` records at a time (at least one table, maybe empty)."""
        ids = IdIndex(self.ids_path)
        ids.add(self.seen)
        naive = 0
        start = self.first_row
        try:
            records = self.source.records()
            while True:
                batch = list(itertools.islice(records, size))
                if not batch and start > self.first_row:
                    break
                frame = ids.mark(posts_frame(batch, self.columns, self.source_name, self.tz, start))
                naive += int(frame["_naive"].sum())
                start += len(batch)
                yield frame.drop(columns=["_explicit", "_naive"])
                if not batch:
                    break
        finally:
            ids.close()
        self.info.update(self.source.info)
        self.info.update(
            columns=self.columns,
            available_columns=list(self.source.columns),
            naive_times=naive,
            time_zone_for_naive_times=str(resolve_tz(self.tz)),
        )


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
    of naive times (an IANA name, UTC by default). :class:`PostReader` reads the same
    table a chunk at a time.
    """
    reader = PostReader(
        source, columns, encoding=encoding, tz=tz, delimiter=delimiter, split=split, name=name
    )
    frames = list(reader.chunks(_READ_ROWS))
    posts = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return ReadResult(posts, reader.info)


#: Records normalised at a time by read_posts.
_READ_ROWS = 65_536


def _open(
    source: Any, encoding: str | None, delimiter: str | None, split: str | None, name: str | None
) -> tuple[Source, str, dict[str, Any]]:
    """The records of ``source``, the name its generated post ids start with, and what
    its format notes in run.json."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise InputError(f"input {str(path)!r} does not exist")
        fmt = format_of(path)
        opened: Source
        if fmt == "jsonl":
            opened = JsonlSource(path, encoding)
        elif fmt == "csv":
            opened = CsvSource(path, encoding, delimiter)
        elif fmt == "parquet":
            opened = ParquetSource(path)
        else:
            records, found, extra = load_dataset_dir(path, split)
            opened = MemorySource(records, found, len(records), extra)
        return opened, name or path.name, {"source": str(path), "format": fmt}
    if isinstance(source, pd.DataFrame):
        found = [str(c) for c in source.columns]
        records = (Record(dict(zip(found, row))) for row in source.itertuples(index=False))
        opened = MemorySource(records, found, len(source), {})
        return opened, name or "dataframe", {"format": "dataframe"}
    if hasattr(source, "column_names") or hasattr(source, "keys"):
        records, found, extra = from_dataset(source, split)
        return (
            MemorySource(records, found, len(records), extra),
            name or "dataset",
            {"format": "datasets"},
        )
    if isinstance(source, Sequence):
        records = []
        seen: dict[str, None] = {}
        for i, item in enumerate(source):
            if isinstance(item, Mapping):
                seen.update(dict.fromkeys(item))
                records.append(Record(dict(item)))
            else:
                records.append(Record(None, f"record {i} is a {type(item).__name__}, not a dict"))
        opened = MemorySource(records, list(seen), len(records), {})
        return opened, name or "records", {"format": "records"}
    raise InputError(
        f"cannot read posts from a {type(source).__name__}; pass a path, a DataFrame, "
        "a datasets.Dataset or a list of dicts"
    )


__all__ = ["UTC", "PostReader", "ReadResult", "read_posts"]
