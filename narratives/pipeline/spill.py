"""The posts that per-page work reads, parted by page on disk while a run scores them.

Pivots and the page table need every post of a page together, and a dump's posts come in
input order. As each chunk is scored, :class:`PageSpill` appends the posts that have a
page (their ids, times, languages, tags and topic profiles, not their texts or
embeddings) to one of ``n_parts`` Arrow files, chosen by a hash of the page id, so each
part holds every post of its pages and a part at a time is all that is ever in memory;
the embeddings are read back by row from the run's vectors file. Parts are sized so
that one holds about :data:`PART_POSTS` posts.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from narratives import schema

#: Posts in one part, about: what per-page work holds at a time.
PART_POSTS = 100_000
#: The posts.parquet columns that per-page work reads.
COLUMNS = ("post_id", "page_id", "created_at", "source_row", "status", "lang", "narratives")


def n_parts(n_posts: int | None) -> int:
    """Parts for a dump of about ``n_posts`` posts (one when not known)."""
    return max(1, math.ceil((n_posts or 0) / PART_POSTS))


class PageSpill:
    """Posts with a page, parted by page into ``n`` Arrow files in ``folder`` (created;
    removed by :meth:`close`). ``profile_dim``: the size of a topic profile."""

    def __init__(self, folder: str | Path, n: int, profile_dim: int) -> None:
        self.folder, self.n = Path(folder), max(1, n)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        fields = [f for f in schema.POSTS if f.name in COLUMNS]
        self.schema = pa.schema(
            [
                pa.field("row", pa.int64()),
                *fields,
                pa.field("topic_profile", schema.vector_type(profile_dim)),
            ]
        )
        self._writers: dict[int, Any] = {}

    def add(self, table: pa.Table, first: int) -> None:
        """Rows of posts.parquet (``table``, vectors included) that are rows ``first``
        on of the run; those without a page or not scored are left out."""
        keep = pc.and_(pc.equal(table.column("status"), "ok"), pc.is_valid(table.column("page_id")))
        keep = pc.fill_null(keep, False)
        rows = np.flatnonzero(keep.to_numpy(zero_copy_only=False)) + first
        if len(rows) == 0:
            return
        kept = table.filter(keep)
        kept = pa.Table.from_arrays(
            [
                pa.array(rows, type=pa.int64()),
                *(kept.column(name) for name in self.schema.names[1:]),
            ],
            schema=self.schema,
        )
        if self.n == 1:
            self._writer(0).write_table(kept)
            return
        part = self._part_of(kept.column("page_id").to_numpy(zero_copy_only=False))
        for p in np.unique(part).tolist():
            self._writer(p).write_table(kept.filter(pa.array(part == p)))

    def _part_of(self, pages: np.ndarray) -> np.ndarray:
        hashed = pd.util.hash_array(pages, categorize=True)  # ids: str, never null here
        return (hashed % np.uint64(self.n)).astype(np.int64)

    def _writer(self, part: int) -> Any:
        if part not in self._writers:
            path = self.folder / f"part-{part:05d}.arrow"
            self._writers[part] = pa.ipc.new_stream(str(path), self.schema)
        return self._writers[part]

    def parts(self) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
        """Each part that holds posts: (posts, their rows in the run, their profiles)."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
        for path in sorted(self.folder.glob("part-*.arrow")):
            with pa.ipc.open_stream(str(path)) as reader:
                table = reader.read_all()
            profile = table.column("topic_profile").combine_chunks()
            dim = profile.type.list_size
            profiles = profile.flatten().to_numpy().astype(np.float32).reshape(-1, dim)
            rows = table.column("row").to_numpy()
            posts = table.drop_columns(["row", "topic_profile"]).to_pandas()
            yield posts, rows, profiles

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
        shutil.rmtree(self.folder, ignore_errors=True)


__all__ = ["COLUMNS", "PART_POSTS", "PageSpill", "n_parts"]
