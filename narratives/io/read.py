"""Read posts from JSONL, CSV, Parquet or Hugging Face datasets into one normalised table.

Every input record becomes exactly one row, in input order, with ``source_row`` (its
0-based position among the records), ``status`` and ``error``. A record that cannot be
used (malformed JSON, a CSV row with the wrong number of fields, invalid UTF-8, no
text, an unusable time, a repeated post id) is kept as ``rejected`` with a readable
reason; nothing is dropped. A required column that is missing altogether stops the
read with a message that lists the columns present and the flag to pass.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import logging
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.errors import InputError
from narratives.io.times import UTC, parse_time, resolve_tz

logger = logging.getLogger(__name__)

#: Output fields and the input names each one is found under when not mapped explicitly.
FIELDS = ("post_id", "page_id", "text", "created_at")
ALIASES: dict[str, tuple[str, ...]] = {
    "post_id": ("post_id", "id", "tweetid", "tweet_id"),
    "page_id": ("page_id", "userid", "user_id", "account_id", "author_id"),
    "text": ("text", "content", "message", "tweet_text", "body"),
    "created_at": ("created_at", "tweet_time", "timestamp", "time", "date"),
}
FLAGS = {
    "post_id": "--id-col",
    "page_id": "--page-col",
    "text": "--text-col",
    "created_at": "--time-col",
}
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class ColumnMapping:
    """Input column names for each field; ``None`` means "find it by its usual names"."""

    post_id: str | None = None
    page_id: str | None = None
    text: str | None = None
    created_at: str | None = None

    @classmethod
    def from_any(cls, value: ColumnMapping | Mapping[str, str] | None) -> ColumnMapping:
        if value is None:
            return cls()
        if isinstance(value, ColumnMapping):
            return value
        unknown = set(value) - set(FIELDS)
        if unknown:
            raise InputError(
                f"unknown field(s) in column_mapping: {', '.join(sorted(unknown))}; "
                f"use {', '.join(FIELDS)}"
            )
        return cls(**dict(value))


@dataclass
class ReadResult:
    """The normalised posts and what was learnt while reading them."""

    posts: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Record:
    values: dict[str, Any] | None
    error: str | None = None


# ----------------------------------------------------------------------------- readers


def _open_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "datasets"
    suffix = path.suffixes[-2] if path.suffix == ".gz" and len(path.suffixes) > 1 else path.suffix
    suffix = suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(
        f"cannot tell the format of {path.name!r} from its extension; use .jsonl, .csv, "
        ".tsv, .parquet (optionally .gz), or a directory saved by datasets.save_to_disk"
    )


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def check_encoding(encoding: str) -> None:
    """Refuse an encoding name Python does not know, before any work."""
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise InputError(f"unknown encoding {encoding!r}; try utf-8, gb18030, cp1252") from exc


def utf8_fit(text: str) -> tuple[int, int]:
    """Of text decoded as UTF-8 with surrogate escapes: undecodable bytes, and (only
    counted when there are some) non-ASCII characters that did decode."""
    bad = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    good = sum(1 for ch in text if "\x80" <= ch < "\udc80" or ch > "\udcff") if bad else 0
    return bad, good


def _decode(data: bytes, encoding: str | None) -> tuple[str, str]:
    """Decode a whole file. Undecodable bytes survive as surrogate escapes (one bad row
    is rejected, not the file); the encoding is detected when UTF-8 does not fit."""
    if encoding:
        check_encoding(encoding)
        return data.decode(encoding, errors="surrogateescape"), encoding
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="surrogateescape"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="surrogateescape"), "utf-16"
    text = data.decode("utf-8", errors="surrogateescape")
    bad, good = utf8_fit(text)
    if bad == 0:
        return text, "utf-8"
    if good >= bad:
        # Mostly valid multi-byte UTF-8 with a few broken bytes: UTF-8, reject bad rows.
        return text, "utf-8"
    detected = _detect_encoding(data[: 1 << 20])
    logger.info("detected encoding %s", detected)
    return data.decode(detected, errors="surrogateescape"), detected


#: Where charset-normalizer finds several encodings equally clean (short Western text fits
#: cp1250 as well as cp1252), take the one exports most often use.
_COMMON_ENCODINGS = ("gb18030", "big5", "shift_jis", "euc_kr", "cp1252", "cp1251", "latin_1")


def _detect_encoding(sample: bytes) -> str:
    from charset_normalizer import from_bytes

    results = from_bytes(sample)
    matches = list(results)
    if not matches:
        raise InputError("cannot detect the file's text encoding; pass --encoding")
    cleanest = min(m.chaos for m in matches)
    tied = {m.encoding for m in matches if m.chaos <= cleanest + 0.01}
    common = next((e for e in _COMMON_ENCODINGS if e in tied), None)
    best = results.best()
    return common or (best.encoding if best else matches[0].encoding)


def _bad_bytes_error(encoding: str) -> str:
    return (
        f"invalid {encoding.upper()} bytes in this record; re-save the file as UTF-8 "
        "or pass --encoding"
    )


def _read_jsonl(path: Path, encoding: str | None) -> tuple[list[_Record], list[str], dict]:
    text, used = _decode(_open_bytes(path), encoding)
    records, columns, blank = _jsonl_records(text, used)
    return records, list(columns), {"encoding": used, "blank_lines_skipped": blank}


def _jsonl_records(
    text: str, used: str, first_line: int = 1
) -> tuple[list[_Record], dict[str, None], int]:
    """The records of JSONL ``text`` whose first line is line ``first_line`` of its file,
    the keys seen (in order) and the blank lines skipped."""
    records: list[_Record] = []
    columns: dict[str, None] = {}
    blank = 0
    # records end at "\n" only: str.splitlines() would also cut at U+2028, U+0085, form
    # feeds..., which JSON allows raw inside strings (a pasted post can carry them)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line_no, raw in enumerate(lines, start=first_line):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            blank += 1
            continue
        if _has_bad_bytes(line):
            records.append(_Record(None, f"line {line_no}: " + _bad_bytes_error(used)))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append(_Record(None, f"line {line_no} is not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            records.append(_Record(None, f"line {line_no} is a JSON {kind}, not an object"))
            continue
        columns.update(dict.fromkeys(value))
        records.append(_Record(value))
    return records, columns, blank


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # posts of several MB are real
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_csv(
    path: Path, encoding: str | None, delimiter: str | None
) -> tuple[list[_Record], list[str], dict]:
    text, used = _decode(_open_bytes(path), encoding)
    if delimiter is None:
        delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    records: list[_Record] = []
    with _csv_field_limit():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        try:
            header = next(reader)
        except StopIteration:
            return [], [], {"encoding": used, "blank_lines_skipped": 0}
        header = [h.strip() for h in header]
        blank = 0
        line = reader.line_num
        for row in reader:
            first_line, line = line + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                blank += 1
                continue
            where = f"line {first_line}" if first_line == line else f"lines {first_line}-{line}"
            if any(_has_bad_bytes(cell) for cell in row):
                records.append(_Record(None, f"{where}: " + _bad_bytes_error(used)))
            elif len(row) != len(header):
                records.append(
                    _Record(
                        None,
                        f"{where} has {len(row)} fields but the header has {len(header)}; "
                        "check its quoting, or pass --delimiter",
                    )
                )
            else:
                records.append(_Record(dict(zip(header, row))))
    return records, header, {"encoding": used, "blank_lines_skipped": blank}


def _read_parquet(path: Path) -> tuple[list[_Record], list[str], dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"cannot read {path.name!r} as Parquet: {exc}") from exc
    return [_Record(row) for row in table.to_pylist()], table.column_names, {}


def _from_dataset(dataset: Any, split: str | None) -> tuple[list[_Record], list[str], dict]:
    """Records of a ``datasets.Dataset`` (or one split of a ``DatasetDict``)."""
    import datasets

    if isinstance(dataset, datasets.DatasetDict | datasets.IterableDatasetDict):
        splits = list(dataset.keys())
        if split is None:
            if len(splits) != 1:
                raise InputError(
                    f"the dataset has splits {', '.join(splits)}; pick one with --split"
                )
            split = splits[0]
        if split not in splits:
            raise InputError(f"split {split!r} not found; available: {', '.join(splits)}")
        dataset = dataset[split]
    columns = list(dataset.column_names)
    return [_Record(dict(r)) for r in dataset], columns, {"split": split}


def _load_dataset_dir(path: Path, split: str | None):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise InputError(
            f"{path} is a directory but not one saved by datasets.save_to_disk: {exc}"
        ) from exc
    return _from_dataset(loaded, split)


# ------------------------------------------------------------------------- normalising


def _resolve_columns(columns: Sequence[str], mapping: ColumnMapping) -> dict[str, str | None]:
    """The input column of each field. An input without any column (an empty file, or
    one whose every record is malformed) has nothing to check: its records, if any, are
    each rejected with their own reason."""
    if not columns:
        return dict.fromkeys(FIELDS)
    lower = {c.lower(): c for c in columns}
    resolved: dict[str, str | None] = {}
    shown = ", ".join(columns) if columns else "(none)"
    for name in FIELDS:
        wanted = getattr(mapping, name)
        if wanted is not None:
            if wanted not in columns:
                raise InputError(
                    f"column {wanted!r} (for {name}) not found; available: {shown}; "
                    f"pass the right name with {FLAGS[name]}"
                )
            resolved[name] = wanted
            continue
        resolved[name] = next((lower[a] for a in ALIASES[name] if a in lower), None)
    if resolved["text"] is None:
        raise InputError(
            f"no text column found (looked for {', '.join(ALIASES['text'])}); "
            f"available: {shown}; pass {FLAGS['text']} NAME"
        )
    return resolved


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_id(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value).strip()


def _normalise(
    records: list[_Record],
    columns: dict[str, str | None],
    source_name: str,
    tz_name: str | None,
    start_row: int = 0,
) -> pd.DataFrame:
    """The posts table of ``records``, the first being record ``start_row`` of the source.

    Two working columns go with it: ``_explicit`` (the record gave its own post id, which
    :func:`_mark_duplicates` then checks across the whole source) and ``_naive`` (its time
    had no zone)."""
    tz = resolve_tz(tz_name)
    n = len(records)
    out: dict[str, list] = {
        "post_id": [None] * n,
        "page_id": [None] * n,
        "text": [None] * n,
        "created_at": [None] * n,
        "error": [None] * n,
        "warning": [None] * n,
        "_explicit": [False] * n,
        "_naive": [False] * n,
    }
    for row, record in enumerate(records):
        values = record.values or {}
        id_column = columns["post_id"]
        post_id = _as_id(values.get(id_column)) if id_column else None
        out["post_id"][row] = post_id if post_id is not None else f"{source_name}:{start_row + row}"
        if record.error:
            out["error"][row] = record.error
            continue
        errors: list[str] = []
        warnings: list[str] = []
        out["_explicit"][row] = post_id is not None
        text = values.get(columns["text"] or "")
        if isinstance(text, dict | list):
            errors.append(f"text is a JSON {type(text).__name__}, not a string")
        elif _missing(text):
            blank = isinstance(text, str) and text != ""
            errors.append("empty text (only whitespace)" if blank else "missing text")
        else:
            out["text"][row] = text if isinstance(text, str) else str(text)
        if columns["page_id"]:
            page = _as_id(values.get(columns["page_id"]))
            out["page_id"][row] = page
            if page is None:
                warnings.append("no page_id: scored, but left out of page timelines")
        if columns["created_at"]:
            raw_time = values.get(columns["created_at"])
            try:
                when, was_naive = parse_time(raw_time, tz)
            except ValueError as exc:
                errors.append(str(exc))
            else:
                if when is None:
                    errors.append("missing time")
                out["created_at"][row] = when
                out["_naive"][row] = bool(was_naive)
        if errors:
            out["error"][row] = "; ".join(errors)
        if warnings:
            out["warning"][row] = "; ".join(warnings)
    frame = pd.DataFrame(
        {
            "post_id": pd.array(out["post_id"], dtype="string"),
            "page_id": pd.array(out["page_id"], dtype="string"),
            "created_at": pd.to_datetime(
                pd.Series(out["created_at"], dtype="object"), utc=True
            ).astype("datetime64[us, UTC]"),
            "source_row": pd.RangeIndex(start_row, start_row + n).to_numpy(dtype="int64"),
            "status": pd.array(["rejected" if e else "ok" for e in out["error"]], dtype="string"),
            "error": pd.array(out["error"], dtype="string"),
            "warning": pd.array(out["warning"], dtype="string"),
            "text": pd.array(out["text"], dtype="string"),
            "_explicit": np.array(out["_explicit"], dtype=bool),
            "_naive": np.array(out["_naive"], dtype=bool),
        }
    )
    return frame


def _mark_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """Reject every record whose own post id an earlier record already gave (the first
    one stays); the reason leads its error."""
    explicit = frame[frame["_explicit"].to_numpy(dtype=bool)]
    repeated = explicit["post_id"].duplicated(keep="first")
    if not repeated.any():
        return frame
    first = explicit.groupby("post_id", sort=False)["source_row"].transform("min")
    error = frame["error"].astype(object).to_numpy().copy()
    status = frame["status"].astype(object).to_numpy().copy()
    for index in np.flatnonzero(repeated.to_numpy()):
        row = explicit.index[index]
        at = frame.index.get_loc(row)
        post_id = explicit["post_id"].iloc[index]
        reason = (
            f"duplicate post_id {post_id!r} (first seen at source_row "
            f"{first.iloc[index]}); give every post a unique id"
        )
        error[at] = reason if error[at] is None or pd.isna(error[at]) else f"{reason}; {error[at]}"
        status[at] = "rejected"
    return frame.assign(
        error=pd.array(error, dtype="string"), status=pd.array(status, dtype="string")
    )


def _finish(frame: pd.DataFrame, tz_name: str | None) -> tuple[pd.DataFrame, dict]:
    """Duplicates marked and the working columns dropped: the table read_posts returns."""
    frame = _mark_duplicates(frame)
    info = {
        "naive_times": int(frame["_naive"].sum()),
        "time_zone_for_naive_times": str(resolve_tz(tz_name)),
    }
    return frame.drop(columns=["_explicit", "_naive"]), info


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
        fmt = _format_of(path)
        if fmt == "jsonl":
            records, found, extra = _read_jsonl(path, encoding)
        elif fmt == "csv":
            records, found, extra = _read_csv(path, encoding, delimiter)
        elif fmt == "parquet":
            records, found, extra = _read_parquet(path)
        else:
            records, found, extra = _load_dataset_dir(path, split)
        source_name = name or path.name
        info.update(source=str(path), format=fmt, **extra)
    elif isinstance(source, pd.DataFrame):
        found = [str(c) for c in source.columns]
        records = [_Record(dict(zip(found, row))) for row in source.itertuples(index=False)]
        source_name, info["format"] = name or "dataframe", "dataframe"
    elif hasattr(source, "column_names") or hasattr(source, "keys"):
        records, found, extra = _from_dataset(source, split)
        source_name = name or "dataset"
        info.update(format="datasets", **extra)
    elif isinstance(source, Sequence):
        records = []
        seen: dict[str, None] = {}
        for i, item in enumerate(source):
            if isinstance(item, Mapping):
                seen.update(dict.fromkeys(item))
                records.append(_Record(dict(item)))
            else:
                records.append(_Record(None, f"record {i} is a {type(item).__name__}, not a dict"))
        found, source_name, info["format"] = list(seen), name or "records", "records"
    else:
        raise InputError(
            f"cannot read posts from a {type(source).__name__}; pass a path, a DataFrame, "
            "a datasets.Dataset or a list of dicts"
        )
    resolved = _resolve_columns(found, mapping)
    frame, time_info = _finish(_normalise(records, resolved, source_name, tz), tz)
    info.update(columns=resolved, available_columns=list(found), **time_info)
    for name_, col in resolved.items():
        if col is None and name_ != "text":
            logger.info("no %s column; pass %s to use one", name_, FLAGS[name_])
    return ReadResult(frame, info)


__all__ = ["UTC", "ColumnMapping", "ReadResult", "read_posts"]
