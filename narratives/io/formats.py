"""Each input format read into records: JSONL (line by line, each line's bytes checked),
CSV/TSV (quoted newlines, encodings detected), Parquet, a saved Hugging Face dataset;
gzipped files too. A record that cannot be read becomes a :class:`Record` with its error,
never dropped."""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO, cast

from narratives.errors import InputError

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class Record:
    values: dict[str, Any] | None
    error: str | None = None


def open_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def format_of(path: Path) -> str:
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


#: A byte that did not decode, as ``errors="surrogateescape"`` keeps it.
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    return _BAD_BYTE.search(text) is not None


#: Bytes read at a time when a file is streamed (and the sample an encoding is detected on).
BLOCK_BYTES = 1 << 20


def check_encoding(encoding: str) -> None:
    """Refuse an encoding name Python does not know, before any work."""
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise InputError(f"unknown encoding {encoding!r}; try utf-8, gb18030, cp1252") from exc


_BAD = re.compile("[\udc80-\udcff]")


def utf8_fit(text: str) -> tuple[int, int]:
    """Of text decoded as UTF-8 with surrogate escapes: undecodable bytes, and non-ASCII
    characters that did decode (all, less the ASCII, less the undecodable)."""
    bad = len(_BAD.findall(text))
    return bad, len(text) - len(text.encode("ascii", "ignore")) - bad


def utf8_or_detected(bad: int, good: int, head: Callable[[], bytes]) -> str:
    """The encoding of a file whose reading as UTF-8 met ``bad`` undecodable bytes and
    ``good`` non-ASCII characters: UTF-8 when none was bad or most were good (a few broken
    bytes: those records are rejected), else what charset-normalizer finds in ``head()``,
    the file's first megabyte."""
    if bad == 0 or good >= bad:
        return "utf-8"
    detected = detect_encoding(head())
    logger.info("detected encoding %s", detected)
    return detected


def decode(data: bytes, encoding: str | None) -> tuple[str, str]:
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
    used = utf8_or_detected(*utf8_fit(text), lambda: data[:BLOCK_BYTES])
    return (text if used == "utf-8" else data.decode(used, errors="surrogateescape")), used


#: Where charset-normalizer finds several encodings equally clean (short Western text fits
#: cp1250 as well as cp1252), take the one exports most often use.
_COMMON_ENCODINGS = ("gb18030", "big5", "shift_jis", "euc_kr", "cp1252", "cp1251", "latin_1")


def detect_encoding(sample: bytes) -> str:
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


@contextlib.contextmanager
def open_binary(path: Path) -> Iterator[BinaryIO]:
    """A file's bytes as a stream, gunzipped when it ends in ``.gz``."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
        yield cast(BinaryIO, f)


@contextlib.contextmanager
def open_text(path: Path, encoding: str, newline: str) -> Iterator[TextIO]:
    """A file's text as a stream in ``encoding``; undecodable bytes survive as surrogate
    escapes, as :func:`decode` keeps them."""
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline=newline)
        try:
            yield text
        finally:
            text.detach()


def text_encoding(path: Path, encoding: str | None) -> str:
    """The encoding :func:`decode` would choose for the whole file, found reading it a
    block at a time (a given ``encoding`` is checked and kept)."""
    if encoding:
        check_encoding(encoding)
        return encoding
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    bad = good = 0
    sample = b""
    with open_binary(path) as f:
        block = f.read(BLOCK_BYTES)
        if block.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        while True:
            if len(sample) < BLOCK_BYTES:
                sample += block[: BLOCK_BYTES - len(sample)]
            block_bad, block_good = utf8_fit(decoder.decode(block, final=not block))
            bad, good = bad + block_bad, good + block_good
            if not block:
                break
            block = f.read(BLOCK_BYTES)
    return utf8_or_detected(bad, good, lambda: sample)


def _bad_bytes_error(encoding: str) -> str:
    return (
        f"invalid {encoding.upper()} bytes in this record; re-save the file as UTF-8 "
        "or pass --encoding"
    )


def jsonl_record(raw: str, line_no: int, used: str) -> Record | None:
    """The record of line ``line_no`` of a JSONL file (``raw``, without its ``\\n``) read
    as ``used``; None for a blank line."""
    line = raw[:-1] if raw.endswith("\r") else raw
    if not line.strip():
        return None
    if _has_bad_bytes(line):
        return Record(None, f"line {line_no}: " + _bad_bytes_error(used))
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return Record(None, f"line {line_no} is not valid JSON: {exc.msg}")
    if not isinstance(value, dict):
        return Record(None, f"line {line_no} is a JSON {type(value).__name__}, not an object")
    return Record(value)


def jsonl_records(
    text: str, used: str, first_line: int = 1
) -> tuple[list[Record], dict[str, None], int]:
    """The records of JSONL ``text`` whose first line is line ``first_line`` of its file,
    the keys seen (in order) and the blank lines skipped."""
    records: list[Record] = []
    columns: dict[str, None] = {}
    blank = 0
    # records end at "\n" only: str.splitlines() would also cut at U+2028, U+0085, form
    # feeds..., which JSON allows raw inside strings (a pasted post can carry them)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line_no, raw in enumerate(lines, start=first_line):
        record = jsonl_record(raw, line_no, used)
        if record is None:
            blank += 1
            continue
        if record.values is not None:
            columns.update(dict.fromkeys(record.values))
        records.append(record)
    return records, columns, blank


@contextlib.contextmanager
def _csv_field_limit() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # posts of several MB are real
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_csv(
    path: Path, encoding: str | None, delimiter: str | None
) -> tuple[list[Record], list[str], dict]:
    """A whole CSV/TSV file's records, columns and notes (what a Ray task reads)."""
    source = CsvSource(path, encoding, delimiter)
    records = list(source.records())
    return records, source.columns, source.info


class Source:
    """An input read a record at a time: its columns (known before the records), the
    number of records when known up front, and what reading it noted (complete once
    :meth:`records` is exhausted)."""

    columns: list[str]
    n_records: int | None = None
    info: dict[str, Any]

    def records(self) -> Iterator[Record]:
        raise NotImplementedError


class JsonlSource(Source):
    """A JSONL file (gzipped or not). The constructor reads it once for its encoding
    (decided as :func:`decode` decides for the whole file), its keys and its records."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        self.used = text_encoding(path, encoding)
        keys: dict[str, None] = {}
        n = blank = 0
        for record in self._records():
            if record is None:
                blank += 1
                continue
            n += 1
            if record.values is not None:
                keys.update(dict.fromkeys(record.values))
        self.columns, self.n_records = list(keys), n
        self.info = {"encoding": self.used, "blank_lines_skipped": blank}

    def _records(self) -> Iterator[Record | None]:
        with open_text(self.path, self.used, newline="\n") as f:
            for line_no, raw in enumerate(f, start=1):
                yield jsonl_record(raw[:-1] if raw.endswith("\n") else raw, line_no, self.used)

    def records(self) -> Iterator[Record]:
        return (record for record in self._records() if record is not None)


class CsvSource(Source):
    """A CSV or TSV file (gzipped or not): its encoding found by one pass over its bytes,
    its header, then its records (a quoted field may hold newlines)."""

    def __init__(self, path: Path, encoding: str | None, delimiter: str | None) -> None:
        self.path = path
        self.used = text_encoding(path, encoding)
        if delimiter is None:
            delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
        self.delimiter = delimiter
        with _csv_field_limit(), open_text(path, self.used, newline="") as f:
            header = next(csv.reader(f, delimiter=delimiter, strict=False), None)
        self.header = None if header is None else [h.strip() for h in header]
        self.columns = self.header or []
        self.info = {"encoding": self.used, "blank_lines_skipped": 0}

    def records(self) -> Iterator[Record]:
        if self.header is None:
            return
        header, used = self.header, self.used
        blank = 0
        with _csv_field_limit(), open_text(self.path, used, newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter, strict=False)
            next(reader)
            line = reader.line_num
            for row in reader:
                first_line, line = line + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    blank += 1
                    self.info["blank_lines_skipped"] = blank
                    continue
                where = f"line {first_line}" if first_line == line else f"lines {first_line}-{line}"
                if any(_has_bad_bytes(cell) for cell in row):
                    yield Record(None, f"{where}: " + _bad_bytes_error(used))
                elif len(row) != len(header):
                    yield Record(
                        None,
                        f"{where} has {len(row)} fields but the header has {len(header)}; "
                        "check its quoting, or pass --delimiter",
                    )
                else:
                    yield Record(dict(zip(header, row)))


class ParquetSource(Source):
    """A Parquet file, read ``batch_rows`` rows at a time."""

    def __init__(self, path: Path, batch_rows: int = 8192) -> None:
        import pyarrow.parquet as pq

        self.path, self.batch_rows = path, batch_rows
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"cannot read {path.name!r} as Parquet: {exc}") from exc
        self.columns = list(self._file.schema_arrow.names)
        self.n_records = self._file.metadata.num_rows
        self.info = {}

    def records(self) -> Iterator[Record]:
        batches = self._file.iter_batches(batch_size=self.batch_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:  # a damaged row group
                raise InputError(f"cannot read {self.path.name!r} as Parquet: {exc}") from exc
            yield from (Record(row) for row in batch.to_pylist())


class MemorySource(Source):
    """Records already in memory (a DataFrame, a dataset, a list of dicts)."""

    def __init__(self, records: Any, columns: list[str], n: int, info: dict) -> None:
        self._records, self.columns, self.n_records, self.info = records, columns, n, info

    def records(self) -> Iterator[Record]:
        return iter(self._records)


def from_dataset(dataset: Any, split: str | None) -> tuple[list[Record], list[str], dict]:
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
    return [Record(dict(r)) for r in dataset], columns, {"split": split}


def load_dataset_dir(path: Path, split: str | None):
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise InputError(
            f"{path} is a directory but not one saved by datasets.save_to_disk: {exc}"
        ) from exc
    return from_dataset(loaded, split)


# ------------------------------------------------------------------------- normalising


__all__ = [
    "CSV_SUFFIXES",
    "JSONL_SUFFIXES",
    "PARQUET_SUFFIXES",
    "CsvSource",
    "JsonlSource",
    "MemorySource",
    "ParquetSource",
    "Record",
    "Source",
    "check_encoding",
    "decode",
    "detect_encoding",
    "format_of",
    "from_dataset",
    "jsonl_record",
    "jsonl_records",
    "load_dataset_dir",
    "open_binary",
    "open_bytes",
    "open_text",
    "read_csv",
    "text_encoding",
    "utf8_fit",
    "utf8_or_detected",
]
