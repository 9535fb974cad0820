"""The scored folder: what ``narratives score`` writes and every later step reads.

A scored folder holds ``posts.parquet`` (one row per input record, with its embedding and
topic profile), ``pivots.parquet``, ``pages.parquet`` and ``run.json`` (schemas in
:mod:`narratives.schema`); later commands add their own files beside them
(``timing.parquet``, ``coordination.parquet``, ``report.html``). This module is the one
place that

- writes a file so that it appears whole or not at all (:func:`atomic_path`),
- reads a folder back, whole (:func:`load_scored`) or a part at a time
  (:class:`ScoredFolder`),
- knows that a table may be one file or a folder of parts: the Ray engine's workers
  write ``posts/part-00000.parquet``, ``posts/part-00001.parquet``... (rows in order, the
  parts in name order) where the local engine writes ``posts.parquet``; every reader
  here takes either (:func:`table_files`), and writing a table as one file replaces
  its parts,
- says which posts take part in per-page analysis (:func:`usable`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from narratives import schema
from narratives.errors import InputError, OutputError
from narratives.rowfile import RowFile

OUTPUT_FILES = ("posts.parquet", "pivots.parquet", "pages.parquet", "run.json")
#: Folder of a run's unfinished work inside its output directory.
PARTIAL = ".partial"
#: Folder of an update's unfinished work (:mod:`narratives.pipeline.update`); while it
#: holds :data:`COMMIT`, the update is being moved into the folder, which is then not
#: to be read.
UPDATE = ".update"
COMMIT = "commit.json"
#: The change log: ``updates/0001.json``... one file per update.
UPDATES = "updates"
#: The embeddings of every post as float32 rows in post order (a
#: :class:`~narratives.rowfile.RowFile`; rejected posts' rows hold NaN), which the local
#: engine writes beside posts.parquet: an update reads its pages' embeddings from it by
#: row instead of decoding the embedding column of every row group, and appends its own.
#: Its rows are run.json's ``counts.read``; bytes beyond them are an unfinished update's.
VECTORS = "vectors.f32"
#: The per-post vector columns of posts.parquet.
VECTOR_COLUMNS = ("embedding", "topic_profile")
#: Rows of posts.parquet converted and written at a time (one Parquet row group each).
_SAVE_ROWS = 4096


def update_files(folder: str | Path) -> list[Path]:
    """The change log of a scored folder, ``updates/0001.json``..., oldest first."""
    return sorted((Path(folder) / UPDATES).glob("[0-9][0-9][0-9][0-9].json"))


def parts_folder(path: str | Path) -> Path:
    """The folder of parts that may stand for the table file ``path``
    (``posts.parquet`` -> ``posts/``)."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".parquet"))


def table_files(path: str | Path) -> list[Path]:
    """The Parquet files that hold the table ``path``, in row order: the file itself, or
    the parts of its folder (see :func:`parts_folder`); none when neither is there."""
    path = Path(path)
    if path.is_file():
        return [path]
    folder = parts_folder(path)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def read_parquet(path: str | Path, **options: Any) -> pa.Table:
    """The table ``path`` (one file or its parts), ``options`` as ``pq.read_table``'s."""
    tables = [pq.read_table(f, **options) for f in table_files(path)]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; once the block ends without an error
    it replaces ``path`` (a file, or a folder), so that readers see the old or the new
    whole, never a part. On an error the temporary is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and path.exists():
            _remove(path)  # a folder cannot be replaced in one step
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def usable(posts: pd.DataFrame, *, timed: bool = True, paged: bool = True) -> np.ndarray:
    """Which posts take part in per-page analysis, as a boolean mask: those scored
    (status ``ok``), with a time when ``timed``, with a page when ``paged``. Timelines,
    pivots and coordination need both; the page table counts untimed posts too
    (``timed=False``); timing's estimate over all pages takes posts without a page
    (``paged=False``)."""
    mask = (posts["status"] == "ok").to_numpy(dtype=bool)
    if paged:
        mask = mask & posts["page_id"].notna().to_numpy(dtype=bool)
    if timed:
        mask = mask & posts["created_at"].notna().to_numpy(dtype=bool)
    return mask


def timed_rows(posts: pd.DataFrame) -> np.ndarray:
    """Positions of the posts that take part in timelines: scored, with a page and a time."""
    return np.flatnonzero(usable(posts))


def narrative_mix(tags: np.ndarray | None, rows: np.ndarray, top: int = 3) -> list[dict]:
    """The narratives (top level) most often tagged among posts ``rows`` of the
    ``narratives`` column ``tags``: id and share of the posts, at most ``top``, those on at
    least a tenth of the posts. What pages.parquet and pivots.parquet report."""
    if tags is None or len(rows) == 0:
        return []
    counts: dict[str, int] = {}
    for post in tags[rows]:
        if post is None or (isinstance(post, float) and math.isnan(post)):
            continue
        for entry in post:
            if "." not in entry["id"]:
                counts[entry["id"]] = counts.get(entry["id"], 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [
        {"id": k, "score": round(v / len(rows), 4)} for k, v in ranked[:top] if v / len(rows) >= 0.1
    ]


@dataclass
class ScoreResult:
    """The tables of one scoring run.

    ``embeddings`` (n, dim) and ``topic_profiles`` (n, K) have one row per post, NaN
    where the post was rejected; they are stored as the ``embedding`` and
    ``topic_profile`` columns of posts.parquet. ``embeddings`` is a
    :class:`~narratives.rowfile.RowFile` when :func:`narratives.score` kept them in a file.
    """

    posts: pd.DataFrame
    pivots: pd.DataFrame
    pages: pd.DataFrame
    embeddings: np.ndarray | RowFile
    topic_profiles: np.ndarray
    run: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Write posts/pivots/pages Parquet files and run.json into ``out_dir``."""
        out = prepare_output_dir(out_dir, force=force)
        with atomic_path(out / "posts.parquet") as tmp:
            dims = (self.embeddings.shape[1], self.topic_profiles.shape[1])
            writer = PostsWriter(tmp, dims)
            # in slices of rows: the vectors are converted a slice at a time, not copied whole
            for start in range(0, len(self.posts), _SAVE_ROWS):
                rows = slice(start, start + _SAVE_ROWS)
                writer.write(
                    self.posts.iloc[rows], self.embeddings[rows], self.topic_profiles[rows]
                )
            writer.close()
        self.save_pivots(out)
        return out

    def save_pivots(self, out: Path) -> None:
        """Write pivots.parquet, pages.parquet and run.json (the parts pivots re-runs change).
        Each file appears whole or not at all; run.json comes last."""
        save_tables(out, self.pivots, self.pages, self.run)


def save_tables(out: Path, pivots: pd.DataFrame, pages: pd.DataFrame, run: dict) -> None:
    """Write pivots.parquet, pages.parquet (keeping the columns later steps added to it)
    and run.json into ``out``, each whole or not at all, run.json last."""
    write_table(to_table(pivots, schema.PIVOTS), out / "pivots.parquet")
    table = to_table(pages, schema.PAGES)
    if table_files(out / "pages.parquet"):
        table = _with_added_columns(table, read_parquet(out / "pages.parquet"))
    write_table(table, out / "pages.parquet")
    write_run(out, run)


def write_run(out: Path, run: dict) -> None:
    """Write run.json into ``out``, whole or not at all: the last file a run writes."""
    with atomic_path(out / "run.json") as tmp:
        tmp.write_text(json.dumps(run, indent=2, default=str) + "\n")


class PostsWriter:
    """posts.parquet written as its rows come, in row groups of ``_SAVE_ROWS`` rows (the
    same file whether the rows come at once or a few at a time), so that a run's posts
    never need to be in memory together. ``dims``: the sizes of the embedding and the
    topic profile."""

    def __init__(self, path: str | Path, dims: tuple[int, int]) -> None:
        self.path, self.dims = Path(path), dims
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def write(self, posts: pd.DataFrame, embeddings: np.ndarray, profiles: np.ndarray) -> None:
        """Append ``posts`` (posts.parquet's columns) with their vectors (NaN rows where a
        post was rejected)."""
        self.write_table(posts_table(posts, embeddings, profiles))

    def write_table(self, table: pa.Table) -> None:
        """Append rows already made by :func:`posts_table`."""
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= _SAVE_ROWS:
            self._flush(_SAVE_ROWS)

    def _flush(self, n: int) -> None:
        table = pa.concat_tables(self._pending).combine_chunks()
        head, rest = table.slice(0, n), table.slice(n)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, head.schema)
        self._writer.write_table(head)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        """Write the last rows (one empty row group when there were none) and close."""
        if self._pending_rows or self._writer is None:
            if not self._pending:
                empty = schema.POSTS.empty_table().to_pandas()
                self._pending = [
                    posts_table(empty, *(np.zeros((0, d), np.float32) for d in self.dims))
                ]
            self._flush(self._pending_rows)
        assert self._writer is not None
        self._writer.close()


def posts_table(posts: pd.DataFrame, embeddings: np.ndarray, profiles: np.ndarray) -> pa.Table:
    """Rows of posts.parquet: ``posts``' columns of the schema, then the vectors."""
    table = to_table(posts, schema.POSTS)
    missing = pa.array(posts["status"].to_numpy() != "ok", type=pa.bool_())
    for name, values in zip(VECTOR_COLUMNS, (embeddings, profiles)):
        dim = values.shape[1]
        flat = pa.array(np.nan_to_num(values).reshape(-1), type=pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, dim, mask=missing)
        table = table.append_column(pa.field(name, schema.vector_type(dim)), column)
    return table


#: The key of a table's Parquet metadata that holds the settings that made it.
SETTINGS_KEY = b"narratives.settings"


def write_table(table: pa.Table, path: Path, settings: dict[str, Any] | None = None) -> None:
    """Write one Parquet file of a scored folder, whole or not at all; it replaces the
    table's parts, if the folder held it as parts (they go once the file is in place, and
    readers take the file where both are there). ``settings`` (JSON) go into the file's
    metadata: what made it, for a later update to make it again the same way."""
    if settings is not None:
        meta = dict(table.schema.metadata or {})
        meta[SETTINGS_KEY] = json.dumps(settings, default=str).encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    shutil.rmtree(parts_folder(path), ignore_errors=True)


def table_settings(path: str | Path) -> dict[str, Any] | None:
    """The settings :func:`write_table` kept in the table ``path`` (None without)."""
    files = table_files(path)
    if not files:
        return None
    meta = pq.read_schema(files[0]).metadata or {}
    return json.loads(meta[SETTINGS_KEY]) if SETTINGS_KEY in meta else None


def _with_added_columns(pages: pa.Table, old: pa.Table) -> pa.Table:
    """``pages`` with the columns later steps added to the ``old`` table of the same pages
    (``narratives coordination``'s ``coordination_clusters``), matched by page id; a page
    the old table lacks gets nulls."""
    extra = [c for c in old.column_names if c not in pages.column_names]
    if not extra:
        return pages
    where = {page: i for i, page in enumerate(old.column("page_id").to_pylist())}
    rows = pa.array([where.get(page) for page in pages.column("page_id").to_pylist()],
                    type=pa.int64())  # fmt: skip
    for name in extra:
        pages = pages.append_column(old.schema.field(name), old.column(name).take(rows))
    return pages


def to_table(frame: pd.DataFrame, arrow_schema: pa.Schema) -> pa.Table:
    """``frame``'s columns of ``arrow_schema`` as an Arrow table of exactly that schema."""
    arrays = [pa.array(_plain(frame[f.name]), type=f.type, from_pandas=True) for f in arrow_schema]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _plain(col: pd.Series) -> Any:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC").array
    return col.astype(object).where(col.notna(), None).tolist()


def prepare_output_dir(out_dir: str | Path, *, force: bool) -> Path:
    """Create ``out_dir``; an existing one is only replaced with ``force``."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"output {str(out)!r} exists and is not a directory")
        if any(out.iterdir()):
            if not force:
                unfinished = (out / PARTIAL).is_dir()
                raise OutputError(
                    f"output directory {str(out)!r} holds an unfinished run; pass --resume "
                    "to finish it or --force to start again"
                    if unfinished
                    else f"output directory {str(out)!r} is not empty; pass --force to overwrite"
                )
            for name in (*OUTPUT_FILES, "report.html", VECTORS):
                (out / name).unlink(missing_ok=True)
                if name.endswith(".parquet"):
                    shutil.rmtree(parts_folder(out / name), ignore_errors=True)
            for name in (UPDATES, UPDATE):  # the change log is of the run replaced
                shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


class ScoredFolder:
    """A folder written by ``narratives score``, read a part at a time: the posts' columns
    without their vectors, the vectors of some rows, the other tables, run.json. Each
    table may be one file or a folder of parts (:func:`table_files`).

    The constructor checks that the folder holds posts.parquet; ``require`` checks for
    the other files a reader needs, with the fix in the message."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if (self.path / UPDATE / COMMIT).is_file():
            raise InputError(
                f"an update of {str(self.path)!r} was interrupted while it was written into "
                f"the folder: finish it with narratives update {str(self.path)!r} INPUT "
                "--resume (the same input) before reading the folder"
            )
        self.require(["posts.parquet"])
        #: The columns of posts.parquet (read once: later commands never rewrite it).
        self.post_columns: list[str] = pq.read_schema(self._files("posts.parquet")[0]).names

    def require(self, names: Sequence[str] = OUTPUT_FILES) -> None:
        """Check that the folder holds the files ``names`` (all of a finished run's)."""
        missing = [name for name in names if not self._files(name)]
        if missing:
            fix = (
                "the run there did not finish: complete it with narratives score --resume"
                if (self.path / PARTIAL).is_dir()
                else "run narratives score first"
            )
            raise InputError(f"{str(self.path)!r} holds no {', '.join(missing)}; {fix}")

    def _files(self, name: str) -> list[Path]:
        """The files of the table ``name`` (``run.json`` too: one file)."""
        path = self.path / name
        return table_files(path) if name.endswith(".parquet") else [path] * path.is_file()

    def posts(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """posts.parquet without its vector columns (or only ``columns``)."""
        if columns is None:
            columns = [c for c in self.post_columns if c not in VECTOR_COLUMNS]
        return read_parquet(self.path / "posts.parquet", columns=list(columns)).to_pandas()

    def rejected_errors(self) -> pd.Series:
        """The error of each rejected post (only theirs are read)."""
        table = read_parquet(
            self.path / "posts.parquet", columns=["error"], filters=[("status", "=", "rejected")]
        )
        return table.column("error").to_pandas()

    def vectors(self, name: str = "embedding", rows: np.ndarray | None = None) -> np.ndarray:
        """The ``name`` vectors (float32, NaN for rejected posts) of every post, or of the
        sorted positions ``rows``, read a row group at a time."""
        if name not in self.post_columns:
            raise InputError(f"posts.parquet in {str(self.path)!r} lacks {name}")
        files = self._files("posts.parquet")
        out: list[np.ndarray] = []
        start = 0
        dim = pq.read_schema(files[0]).field(name).type.list_size
        batches = (
            batch
            for path in files
            for batch in pq.ParquetFile(path).iter_batches(columns=[name], batch_size=8192)
        )
        for batch in batches:
            end = start + batch.num_rows
            if rows is None:
                lo, hi = start, end
            else:
                lo, hi = np.searchsorted(rows, [start, end])
            if hi > lo:
                matrix = vector_matrix(batch.column(0), dim)
                out.append(matrix if rows is None else matrix[rows[lo:hi] - start])
            start = end
        return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)

    def rows_of_pages(self, pages: Sequence[str]) -> np.ndarray:
        """Positions of the scored posts (status ``ok``) of the pages ``pages``, read from
        the page and status columns a batch at a time."""
        wanted = pa.array(sorted(set(pages)), type=pa.string())
        out, start = [], 0
        for path in self._files("posts.parquet"):
            for batch in pq.ParquetFile(path).iter_batches(
                columns=["page_id", "status"], batch_size=65_536
            ):
                keep = pc.and_(
                    pc.is_in(batch.column(0), value_set=wanted),
                    pc.equal(batch.column(1), "ok"),
                )
                out.append(np.flatnonzero(pc.fill_null(keep, False).to_numpy(False)) + start)
                start += batch.num_rows
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def take(self, rows: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """The posts at the sorted positions ``rows``, only ``columns``: read a row group
        at a time, and only the row groups that hold some of them."""
        parts, start = [], 0
        for path in self._files("posts.parquet"):
            file = pq.ParquetFile(path)
            for group in range(file.num_row_groups):
                end = start + file.metadata.row_group(group).num_rows
                lo, hi = np.searchsorted(rows, [start, end])
                if hi > lo:  # one group at a time: reading several at once, on threads,
                    # took twice the time and four times the memory (measured)
                    table = file.read_row_group(group, columns=list(columns))
                    parts.append(table.take(pa.array(rows[lo:hi] - start)))
                start = end
        if not parts:
            files = self._files("posts.parquet")
            return pq.read_schema(files[0]).empty_table().select(list(columns))
        return pa.concat_tables(parts)

    def table(self, name: str) -> pd.DataFrame:
        """``pivots.parquet``, ``pages.parquet`` or another table of the folder."""
        return self.arrow_table(name).to_pandas()

    def arrow_table(self, name: str) -> pa.Table:
        """A table of the folder as Arrow reads it (its types kept, for rewriting it)."""
        self.require([name])
        return read_parquet(self.path / name)

    def run(self) -> dict[str, Any]:
        self.require(["run.json"])
        return json.loads((self.path / "run.json").read_text(encoding="utf-8"))


def vector_matrix(column: pa.Array, dim: int) -> np.ndarray:
    """A FixedSizeList column as an (n, dim) float32 matrix, NaN where it is null."""
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if len(values) == len(column) * dim:  # null rows kept their (zero) slots
        out = values.reshape(-1, dim)
        out[~valid] = np.nan
        return out
    out = np.full((len(column), dim), np.nan, dtype=np.float32)
    out[valid] = values.reshape(-1, dim)
    return out


def load_scored(out_dir: str | Path) -> ScoreResult:
    """Read back what :meth:`ScoreResult.save` wrote."""
    folder = ScoredFolder(out_dir)
    missing = set(VECTOR_COLUMNS) - set(folder.post_columns)
    if missing:
        raise InputError(
            f"posts.parquet in {str(folder.path)!r} lacks {', '.join(sorted(missing))}"
        )
    return ScoreResult(
        folder.posts(),
        folder.table("pivots.parquet"),
        folder.table("pages.parquet"),
        folder.vectors("embedding"),
        folder.vectors("topic_profile"),
        folder.run(),
    )


__all__ = [
    "COMMIT",
    "OUTPUT_FILES",
    "PARTIAL",
    "UPDATE",
    "UPDATES",
    "VECTORS",
    "PostsWriter",
    "ScoreResult",
    "ScoredFolder",
    "atomic_path",
    "load_scored",
    "narrative_mix",
    "parts_folder",
    "posts_table",
    "prepare_output_dir",
    "read_parquet",
    "save_tables",
    "table_files",
    "table_settings",
    "timed_rows",
    "to_table",
    "update_files",
    "usable",
    "vector_matrix",
    "write_run",
    "write_table",
]
