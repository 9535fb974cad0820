"""Repeated post ids, found across a whole input read a chunk at a time.

The ids a source gave itself go to an SQLite table (a file on disk for a run into a
folder, so that the memory does not grow with the dump; in memory otherwise) with the
row of their first record. A later record with the same id is rejected, its reason
naming that row, whether the two records are in one chunk or in two.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

#: Ids looked up in one query (SQLite's limit on bound parameters is 32,766).
_QUERY_IDS = 10_000


class IdIndex:
    """The explicit post ids seen so far, each with the source row of its first record.

    ``path``: an SQLite file to keep them in (created; removed by :meth:`close`), or None
    for memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path))
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE ids (post_id TEXT PRIMARY KEY, row INTEGER) WITHOUT ROWID")

    def add(self, first: Mapping[str, int]) -> None:
        """Ids given before this source (id -> row of its first record)."""
        self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?)", list(first.items()))

    def mark(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (a chunk of :func:`~narratives.io.columns.posts_frame`, in source
        order, after every earlier chunk) with each record whose own post id an earlier
        record gave rejected; the reason leads its error. The first record keeps the id."""
        explicit = np.flatnonzero(frame["_explicit"].to_numpy(dtype=bool))
        if len(explicit) == 0:
            return frame
        ids = frame["post_id"].to_numpy(dtype=object)[explicit]
        rows = frame["source_row"].to_numpy()[explicit]
        first = self._lookup(list(dict.fromkeys(ids)))
        new: list[tuple[str, int]] = []
        repeated: list[tuple[int, str, int]] = []  # (position in frame, id, first row)
        for at, post_id, row in zip(explicit.tolist(), ids.tolist(), rows.tolist()):
            seen = first.get(post_id)
            if seen is None:
                first[post_id] = row
                new.append((post_id, row))
            else:
                repeated.append((at, post_id, seen))
        self._db.executemany("INSERT INTO ids VALUES (?, ?)", new)
        return _reject(frame, repeated)

    def _lookup(self, ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(ids), _QUERY_IDS):
            part = ids[start : start + _QUERY_IDS]
            marks = ",".join("?" * len(part))
            query = f"SELECT post_id, row FROM ids WHERE post_id IN ({marks})"
            found.update(self._db.execute(query, part).fetchall())
        return found

    def close(self) -> None:
        self._db.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def mark_repeats(frame: pd.DataFrame, first: dict[str, int]) -> pd.DataFrame:
    """``frame`` (rows of :func:`~narratives.io.columns.posts_frame`, in any order) with
    each record rejected whose own post id an earlier record gave, ``first`` holding the
    first source row of every id given more than once (found over the whole input, as
    the Ray engine does with a groupby): the rows :meth:`IdIndex.mark` rejects."""
    if not first:
        return frame
    explicit = np.flatnonzero(frame["_explicit"].to_numpy(dtype=bool))
    ids = frame["post_id"].to_numpy(dtype=object)[explicit]
    rows = frame["source_row"].to_numpy()[explicit]
    repeated = []
    for at, post_id, row in zip(explicit.tolist(), ids.tolist(), rows.tolist()):
        seen = first.get(post_id)
        if seen is not None and seen < row:
            repeated.append((at, post_id, seen))
    return _reject(frame, repeated)


def _reject(frame: pd.DataFrame, repeated: list[tuple[int, str, int]]) -> pd.DataFrame:
    """``frame`` with the rows of ``repeated`` (position, id, first row) rejected, the
    reason leading their error."""
    if not repeated:
        return frame
    error = frame["error"].astype(object).to_numpy().copy()
    status = frame["status"].astype(object).to_numpy().copy()
    for at, post_id, seen in repeated:
        reason = (
            f"duplicate post_id {post_id!r} (first seen at source_row {seen}); "
            "give every post a unique id"
        )
        error[at] = reason if error[at] is None or pd.isna(error[at]) else f"{reason}; {error[at]}"
        status[at] = "rejected"
    return frame.assign(
        error=pd.array(error, dtype="string"), status=pd.array(status, dtype="string")
    )


__all__ = ["IdIndex", "mark_repeats"]
