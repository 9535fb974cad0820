"""Records into the posts table: each field found in its column (named, or by its usual
names), ids and times checked (times to UTC), repeated post ids rejected; every record
one row, a bad one with its reason."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from narratives.errors import InputError
from narratives.io.formats import Record
from narratives.io.ids import IdIndex
from narratives.io.times import parse_time, resolve_tz

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


def resolve_columns(columns: Sequence[str], mapping: ColumnMapping) -> dict[str, str | None]:
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


def posts_frame(
    records: list[Record],
    columns: dict[str, str | None],
    source_name: str,
    tz_name: str | None,
    start_row: int = 0,
) -> pd.DataFrame:
    """The posts table of ``records``, the first being record ``start_row`` of the source.

    Two working columns go with it: ``_explicit`` (the record gave its own post id, which
    an :class:`~narratives.io.ids.IdIndex` then checks across the whole source) and
    ``_naive`` (its time had no zone)."""
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


def finish(frame: pd.DataFrame, tz_name: str | None) -> tuple[pd.DataFrame, dict]:
    """A whole source's table with duplicates marked and the working columns dropped
    (what :func:`narratives.io.ray.ray_read_posts` gathers; ``read_posts`` does the same a
    chunk at a time)."""
    ids = IdIndex()
    frame = ids.mark(frame)
    ids.close()
    info = {
        "naive_times": int(frame["_naive"].sum()),
        "time_zone_for_naive_times": str(resolve_tz(tz_name)),
    }
    return frame.drop(columns=["_explicit", "_naive"]), info


__all__ = [
    "ALIASES",
    "FIELDS",
    "FLAGS",
    "ColumnMapping",
    "finish",
    "posts_frame",
    "resolve_columns",
]
