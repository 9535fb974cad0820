"""Per-page timelines: a page's usable posts in time order, with the signals pivots need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from narratives.scored import timed_rows


@dataclass
class Timeline:
    """One page's scored, timed posts, oldest first."""

    page_id: str
    rows: np.ndarray  # positions in the posts table
    post_ids: np.ndarray
    times: np.ndarray  # datetime64[us], UTC
    langs: np.ndarray
    profiles: np.ndarray | None  # (n, K) topic distributions (None: not read yet)
    embeddings: np.ndarray | None = None  # (n, d) sentence embeddings, when known
    tags: np.ndarray | None = None  # per post, its narrative tags, when tagged

    def __len__(self) -> int:
        return len(self.rows)

    def gaps_days(self) -> np.ndarray:
        """Days between consecutive posts (n - 1 values)."""
        return np.diff(self.times).astype("timedelta64[s]").astype(np.float64) / 86400.0


def page_timelines(
    posts: pd.DataFrame, profiles: np.ndarray | None, embeddings: Any = None
) -> Iterator[Timeline]:
    """Yield a timeline per page, in page id order, from scored posts.

    ``embeddings``: an (n, d) array or anything that gives one for ``embeddings[rows]``
    (a :class:`~narratives.rowfile.RowFile`: a page's rows are read when it comes).
    Without ``profiles``, timelines come without them (and without embeddings): their
    ``rows`` say where to read them.
    Only posts with status ``ok``, a page id and a time take part; ties in time keep
    input order, so the result does not depend on how the input was sorted beyond that.
    """
    rows = timed_rows(posts)
    if len(rows) == 0:
        return
    pages = posts["page_id"].to_numpy(dtype=object)[rows].astype(str)
    times = posts["created_at"].to_numpy(dtype="datetime64[us]")[rows]
    source = posts["source_row"].to_numpy()[rows]
    order = np.lexsort((source, times, pages))
    rows, pages, times = rows[order], pages[order], times[order]
    post_ids = posts["post_id"].to_numpy(dtype=object)
    langs = posts["lang"].to_numpy(dtype=object)
    tags = posts["narratives"].to_numpy(dtype=object) if "narratives" in posts else None
    starts = np.flatnonzero(np.r_[True, pages[1:] != pages[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for start, end in zip(starts, ends):
        page_rows = rows[start:end]
        yield Timeline(
            page_id=str(pages[start]),
            rows=page_rows,
            post_ids=post_ids[page_rows],
            times=times[start:end],
            langs=langs[page_rows],
            profiles=None if profiles is None else profiles[page_rows],
            embeddings=None if embeddings is None or profiles is None else embeddings[page_rows],
            tags=None if tags is None else tags[page_rows],
        )
