"""Reading posts with Ray Data: the input is cut into pieces that Ray Data's tasks read
and check in parallel, with :mod:`narratives.io.read`'s own row-level checks.

- JSONL: byte ranges of about ``piece_bytes`` that end at a newline (a record never
  spans lines); a gzipped or UTF-16/32 file is one piece.
- Parquet: one piece per row group.
- CSV: one piece per file. A quoted field may hold newlines, so a byte range cannot be
  cut safely without parsing from the start of the file.

Two passes over the pieces. The first counts each piece's records and lines, the columns
it has and, for JSONL of unknown encoding, how much of it reads as UTF-8; from these the
driver numbers rows and lines, resolves the columns and decides the encoding exactly as
:func:`narratives.io.read.read_posts` would for the whole file. The second builds each piece's
rows. The driver gathers them in order and checks duplicate post ids over the whole
table, so the result is the table ``read_posts`` gives (tested on each format).

Every node reads the input at the same path: use a filesystem the cluster shares.
"""

from __future__ import annotations

import codecs
import itertools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from narratives.errors import InputError
from narratives.io.columns import ColumnMapping, finish, posts_frame, resolve_columns
from narratives.io.formats import (
    BLOCK_BYTES,
    Record,
    check_encoding,
    decode,
    format_of,
    jsonl_records,
    open_bytes,
    read_csv,
    utf8_fit,
    utf8_or_detected,
)
from narratives.io.read import ReadResult, read_posts
from narratives.io.times import resolve_tz

logger = logging.getLogger(__name__)

#: Bytes of JSONL per piece (one Ray task each).
PIECE_BYTES = 32 << 20
_STRINGS = ("post_id", "page_id", "status", "error", "warning", "text")


def ray_read_posts(
    source: str | Path | Any,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    encoding: str | None = None,
    tz: str | None = None,
    delimiter: str | None = None,
    split: str | None = None,
    piece_bytes: int = PIECE_BYTES,
) -> ReadResult:
    """:func:`narratives.io.read.read_posts` of a JSONL, CSV or Parquet file, read by Ray Data
    tasks (Ray must be started) and gathered here. A saved ``datasets`` folder, or anything
    that is not a path, is read by ``read_posts`` here on the driver."""
    if not is_file_source(source):
        return read_posts(
            source, columns, encoding=encoding, tz=tz, delimiter=delimiter, split=split
        )
    data, info, _ = ray_read_dataset(
        source, columns, encoding=encoding, tz=tz, delimiter=delimiter, piece_bytes=piece_bytes
    )
    frame, time_info = finish(typed_rows(data.to_pandas()), tz)
    info.update(time_info)
    logger.info("read %d records with Ray Data", len(frame))
    return ReadResult(frame, info)


def is_file_source(source: Any) -> bool:
    """Whether Ray Data tasks read ``source`` (a JSONL, CSV or Parquet file)."""
    return isinstance(source, str | Path) and Path(source).is_file()


def ray_read_dataset(
    source: str | Path,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    encoding: str | None = None,
    tz: str | None = None,
    delimiter: str | None = None,
    piece_bytes: int = PIECE_BYTES,
) -> tuple[Any, dict[str, Any], int]:
    """The records of the file ``source`` as a Ray Dataset of
    :func:`~narratives.io.columns.posts_frame` rows (duplicates not yet marked), what
    ``read_posts`` says of the file but the time counts, and the number of records. Only
    the pieces' counts come to the driver."""
    import ray.data

    mapping = ColumnMapping.from_any(columns)
    resolve_tz(tz)
    path = Path(source)
    fmt = format_of(path)
    if encoding:
        check_encoding(encoding)
    pieces = _plan(path, fmt, piece_bytes, encoding)
    survey = _survey(ray.data, pieces, encoding, delimiter)
    label = None
    if fmt == "jsonl" and not pieces[0]["whole"] and encoding is None:
        label = _jsonl_encoding(path, pieces, survey)
        if label not in ("utf-8", "utf-8-sig"):  # counted as UTF-8: count again as it is
            survey = _survey(ray.data, pieces, label, delimiter)
    found: dict[str, None] = {}
    for names in survey["columns"]:
        found.update(dict.fromkeys(json.loads(names)))
    resolved = resolve_columns(list(found), mapping)
    starts = np.concatenate([[0], np.cumsum(survey["n"])[:-1]]).astype(int)
    lines = np.concatenate([[1], 1 + np.cumsum(survey["lines"])[:-1]]).astype(int)
    for piece, start, line in zip(pieces, starts, lines):
        piece["start_row"], piece["first_line"] = int(start), int(line)
    used = label or encoding
    built = _pieces(
        ray.data,
        pieces,
        _build,
        encoding=used,
        delimiter=delimiter,
        columns=resolved,
        source_name=path.name,
        tz=tz,
    )
    info: dict[str, Any] = {"source": str(path), "format": fmt}
    if fmt == "jsonl":
        info.update(
            encoding=survey["encoding"][0] if pieces[0]["whole"] else used or "utf-8",
            blank_lines_skipped=int(np.sum(survey["blank"])),
        )
    elif fmt == "csv":
        info.update(json.loads(survey["extra"][0]))
    info.update(columns=resolved, available_columns=list(found))
    return built, info, int(np.sum(survey["n"]))


def _plan(path: Path, fmt: str, piece_bytes: int, encoding: str | None) -> list[dict]:
    """The pieces of ``path``: byte ranges, row groups, or the whole file."""

    def piece(**kw: Any) -> dict[str, Any]:
        return {"kind": fmt, "path": str(path), "whole": False, "group": -1, "a": 0, "b": 0, **kw}

    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            groups = pq.ParquetFile(path).metadata.num_row_groups
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"cannot read {path.name!r} as Parquet: {exc}") from exc
        return [piece(group=g) for g in range(groups)] or [piece(whole=True)]
    if fmt == "csv" or path.suffix == ".gz":
        return [piece(whole=True)]
    with path.open("rb") as f:
        head = f.read(4)
        wide = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and encoding is None
        if encoding and codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
            wide = True
        if wide:  # a newline byte is not a line end there
            return [piece(whole=True)]
        skip = 3 if head.startswith(codecs.BOM_UTF8) and encoding is None else 0
        size = path.stat().st_size
        bounds = [skip]
        target = skip + piece_bytes
        while target < size:
            f.seek(target)
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    cut = size
                    break
                at = chunk.find(b"\n")
                if at >= 0:
                    cut = f.tell() - len(chunk) + at + 1
                    break
            if cut >= size:
                break
            bounds.append(cut)
            target = cut + piece_bytes
        bounds.append(size)
    return [piece(a=a, b=b) for a, b in itertools.pairwise(bounds)]


def _survey(data: Any, pieces: list[dict], encoding: str | None, delimiter: str | None) -> dict:
    """First pass: per piece (in order) records, lines, columns, UTF-8 fit, extras."""
    if pieces[0]["kind"] == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(pieces[0]["path"])
        meta = parquet.metadata
        counts = [meta.row_group(p["group"]).num_rows if p["group"] >= 0 else 0 for p in pieces]
        names = json.dumps(parquet.schema_arrow.names)
        zeros = [0] * len(pieces)
        return {"n": counts, "lines": zeros, "columns": [names] * len(pieces)}
    rows = _per_piece(data, pieces, _count, encoding=encoding, delimiter=delimiter)
    rows = rows.sort_values("order")
    return {k: rows[k].tolist() for k in rows.columns}


def _per_piece(data: Any, pieces: list[dict], fn: Any, **kwargs: Any) -> pd.DataFrame:
    """``fn(piece as a one-row frame, **kwargs)`` run by a Ray Data task per piece, the
    results gathered (in no set order)."""
    return _pieces(data, pieces, fn, **kwargs).to_pandas()


def _pieces(data: Any, pieces: list[dict], fn: Any, **kwargs: Any) -> Any:
    """The Dataset of ``fn(piece as a one-row frame, **kwargs)`` per piece."""
    return data.from_items(pieces, override_num_blocks=len(pieces)).map_batches(
        cast(Any, fn),  # a function of the batch and fn_kwargs
        batch_size=1,
        batch_format="pandas",
        num_cpus=1,
        fn_kwargs=kwargs,
    )


def _jsonl_encoding(path: Path, pieces: list[dict], survey: dict) -> str:
    """The encoding io.formats.decode would choose for the whole file, from the pieces' counts
    of undecodable and non-ASCII characters under UTF-8."""
    if pieces[0]["a"] == 3:
        return "utf-8-sig"
    bad, good = int(np.sum(survey["bad"])), int(np.sum(survey["good"]))
    return utf8_or_detected(bad, good, lambda: _head(path))


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(BLOCK_BYTES)


def _records(
    piece: Mapping[str, Any], encoding: str | None, delimiter: str | None, first_line: int
) -> tuple[list[Record], list[str], dict[str, Any], str]:
    """Records of one piece, its columns, what read_posts notes of it, and its text (for
    the UTF-8 counts; empty where not needed)."""
    path = Path(piece["path"])
    if piece["kind"] == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        table = parquet.read_row_group(int(piece["group"])) if piece["group"] >= 0 else None
        if table is None:
            table = parquet.read()
        return [Record(r) for r in table.to_pylist()], table.column_names, {}, ""
    if piece["kind"] == "csv":
        records, header, extra = read_csv(path, encoding, delimiter)
        return records, header, extra, ""
    if piece["whole"]:
        text, used = decode(open_bytes(path), encoding)
    else:
        with path.open("rb") as f:
            f.seek(int(piece["a"]))
            data = f.read(int(piece["b"]) - int(piece["a"]))
        used = encoding or "utf-8"
        codec = "utf-8" if used == "utf-8-sig" else used
        text = data.decode(codec, errors="surrogateescape")
    records, columns, blank = jsonl_records(text, used, first_line)
    return records, list(columns), {"encoding": used, "blank_lines_skipped": blank}, text


def _count(batch: pd.DataFrame, encoding: str | None, delimiter: str | None) -> pd.DataFrame:
    """Ray task of the first pass, on one piece."""
    piece = batch.iloc[0].to_dict()
    records, columns, extra, text = _records(piece, encoding, delimiter, 1)
    bad, good = utf8_fit(text)
    return pd.DataFrame(
        {
            "order": [_order(piece)],
            "n": [len(records)],
            "lines": [text.count("\n") if text and not piece["whole"] else 0],
            "columns": [json.dumps(columns)],
            "encoding": [str(extra.get("encoding", ""))],
            "blank": [int(extra.get("blank_lines_skipped", 0))],
            "bad": [bad],
            "good": [good],
            "extra": [json.dumps(extra)],
        }
    )


def _order(piece: Mapping[str, Any]) -> int:
    """A piece's place in its file: its first byte, or its row group."""
    return int(piece["group"]) if piece["kind"] == "parquet" else int(piece["a"])


def _build(
    batch: pd.DataFrame,
    encoding: str | None,
    delimiter: str | None,
    columns: dict[str, str | None],
    source_name: str,
    tz: str | None,
) -> pd.DataFrame:
    """Ray task of the second pass: one piece's rows, numbered from its first record."""
    piece = batch.iloc[0].to_dict()
    records, _, _, _ = _records(piece, encoding, delimiter, int(piece["first_line"]))
    frame = posts_frame(records, columns, source_name, tz, int(piece["start_row"]))
    # plain Python values: Arrow types them the same way in every block, empty ones too
    out = {c: frame[c].astype(object).where(frame[c].notna(), None) for c in _STRINGS}
    return pd.DataFrame(
        {
            **out,
            "created_at": frame["created_at"],
            "source_row": frame["source_row"],
            "_explicit": frame["_explicit"],
            "_naive": frame["_naive"],
        }
    )


def typed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the Dataset :func:`ray_read_dataset` gives (some or all) in source order,
    with read_posts' column types. No piece gave a row (an empty file): Ray Data's empty
    result has no columns at all."""
    if frame.empty:
        names = (*_STRINGS, "created_at", "source_row", "_explicit", "_naive")
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in names})
    frame = frame.sort_values("source_row", kind="stable").reset_index(drop=True)
    typed = {
        c: pd.array(frame[c].astype(object).where(frame[c].notna(), None), dtype="string")
        for c in _STRINGS
    }
    return pd.DataFrame(
        {
            "post_id": typed["post_id"],
            "page_id": typed["page_id"],
            "created_at": pd.to_datetime(frame["created_at"], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "source_row": frame["source_row"].to_numpy(dtype="int64"),
            "status": typed["status"],
            "error": typed["error"],
            "warning": typed["warning"],
            "text": typed["text"],
            "_explicit": frame["_explicit"].to_numpy(dtype=bool),
            "_naive": frame["_naive"].to_numpy(dtype=bool),
        }
    )


__all__ = ["PIECE_BYTES", "is_file_source", "ray_read_dataset", "ray_read_posts", "typed_rows"]
