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
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    bad, good = utf8_fit(text)
    if bad == 0:
        return text, "utf-8"
    if good >= bad:
        # Mostly valid multi-byte UTF-8 with a few broken bytes: UTF-8, reject bad rows.
        return text, "utf-8"
    detected = detect_encoding(data[: 1 << 20])
    logger.info("detected encoding %s", detected)
    return data.decode(detected, errors="surrogateescape"), detected


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


def _bad_bytes_error(encoding: str) -> str:
    return (
        f"invalid {encoding.upper()} bytes in this record; re-save the file as UTF-8 "
        "or pass --encoding"
    )


def read_jsonl(path: Path, encoding: str | None) -> tuple[list[Record], list[str], dict]:
    text, used = decode(open_bytes(path), encoding)
    records, columns, blank = jsonl_records(text, used)
    return records, list(columns), {"encoding": used, "blank_lines_skipped": blank}


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
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            blank += 1
            continue
        if _has_bad_bytes(line):
            records.append(Record(None, f"line {line_no}: " + _bad_bytes_error(used)))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append(Record(None, f"line {line_no} is not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            records.append(Record(None, f"line {line_no} is a JSON {kind}, not an object"))
            continue
        columns.update(dict.fromkeys(value))
        records.append(Record(value))
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
    text, used = decode(open_bytes(path), encoding)
    if delimiter is None:
        delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    records: list[Record] = []
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
                records.append(Record(None, f"{where}: " + _bad_bytes_error(used)))
            elif len(row) != len(header):
                records.append(
                    Record(
                        None,
                        f"{where} has {len(row)} fields but the header has {len(header)}; "
                        "check its quoting, or pass --delimiter",
                    )
                )
            else:
                records.append(Record(dict(zip(header, row))))
    return records, header, {"encoding": used, "blank_lines_skipped": blank}


def read_parquet(path: Path) -> tuple[list[Record], list[str], dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"cannot read {path.name!r} as Parquet: {exc}") from exc
    return [Record(row) for row in table.to_pylist()], table.column_names, {}


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
    "Record",
    "check_encoding",
    "decode",
    "detect_encoding",
    "format_of",
    "from_dataset",
    "jsonl_records",
    "load_dataset_dir",
    "open_bytes",
    "read_csv",
    "read_jsonl",
    "read_parquet",
    "utf8_fit",
]
