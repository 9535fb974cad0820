"""Post times to UTC: ISO 8601, epoch seconds or milliseconds, and common export formats.

Naive times are read in the zone the caller names (``--tz``), UTC if none. Times
before 1990 are refused: in exports they stand for a missing value (``0``). A
day/month order that the value itself cannot settle (``03/04/2022``) is an error, not
a guess: the message says to convert the column to ISO 8601.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from narratives.errors import InputError

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A post time before this is a placeholder for a missing value (0, 1970-01-01), not a time.
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)

_TIME = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([AaPp][Mm])?)?"
_ZONE = r"\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
_YMD = re.compile(r"(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})" + _TIME + _ZONE + r"$")
_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})" + _TIME + _ZONE + r"$")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?$")
_MONTH_WORD = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b", re.IGNORECASE
)
_YEAR = re.compile(r"\b\d{4}\b")

FORMATS_HELP = (
    "expected ISO 8601 (2022-01-21T10:31:00+08:00), epoch seconds or milliseconds, "
    "YYYY/M/D H:M, or a date with a month name"
)


def resolve_tz(name: str | None) -> tzinfo:
    """The zone for naive times: an IANA name such as ``Asia/Shanghai``, or UTC."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(
            f"unknown time zone {name!r}; pass an IANA name such as Asia/Shanghai or UTC"
        ) from exc


def _zone(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text in ("Z", "UTC", "GMT"):
        return UTC
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _from_parts(year, month, day, match: re.Match, first_time_group: int) -> datetime:
    hour, minute, second, frac, ampm, zone = match.groups()[first_time_group:]
    hour_i = int(hour or 0)
    if ampm:
        if not 1 <= hour_i <= 12:
            raise ValueError("hour out of range for AM/PM")
        hour_i = hour_i % 12 + (12 if ampm.lower() == "pm" else 0)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime(
        int(year),
        int(month),
        int(day),
        hour_i,
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=_zone(zone),
    )


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    magnitude = abs(number)
    if magnitude < 1e11:  # seconds (until the year 5138)
        seconds = number
    elif magnitude < 1e14:  # milliseconds
        seconds = number / 1e3
    elif magnitude < 1e17:  # microseconds
        seconds = number / 1e6
    else:  # nanoseconds
        seconds = number / 1e9
    return _EPOCH + timedelta(seconds=seconds)


def parse_time(value: object, naive_tz: tzinfo = UTC) -> tuple[datetime | None, bool]:
    """Parse one time value to an aware UTC datetime.

    Returns ``(time, was_naive)``; ``(None, False)`` for a missing value. Raises
    ``ValueError`` with a readable message for a value that is present but unusable.
    """
    if value is None:
        return None, False
    if value != value or (type(value) in (int, float, str) and value in (0, "0")):
        return None, False  # NaN, NaT, and the 0 that exports write for "no time"
    if isinstance(value, bool):
        raise ValueError(f"time {value!r} is a boolean; {FORMATS_HELP}")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float):
        parsed = _from_epoch(float(value))
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp
        parsed = value.to_pydatetime()
    elif hasattr(value, "isoformat") and not isinstance(value, str):  # date
        parsed = datetime.fromisoformat(value.isoformat())
    else:
        text = str(value).strip()
        if not text or text.lower() in ("nan", "nat", "null", "none"):
            return None, False
        parsed = _parse_text(text)
    naive = parsed.tzinfo is None
    utc = (parsed.replace(tzinfo=naive_tz) if naive else parsed).astimezone(UTC)
    if utc < EARLIEST_PLAUSIBLE:
        raise ValueError(
            f"time {value!r} is before {EARLIEST_PLAUSIBLE:%Y}, a placeholder for a missing "
            "time (such as 0), not a posting time"
        )
    return utc, naive


def _parse_text(text: str) -> datetime:
    shown = text if len(text) <= 40 else text[:40] + "…"
    if _NUMBER.match(text):
        return _from_epoch(float(text))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        m = _YMD.match(text)
        if m:
            return _from_parts(m[1], m[2], m[3], m, 3)
        m = _DMY.match(text)
        if m:
            a, b = int(m[1]), int(m[2])
            if a > 12 >= b:
                return _from_parts(m[3], b, a, m, 3)
            if b > 12 >= a:
                return _from_parts(m[3], a, b, m, 3)
            if a != b:
                raise ValueError(
                    f"time {shown!r} is ambiguous (day/month or month/day); "
                    "convert the column to ISO 8601"
                )
            return _from_parts(m[3], a, b, m, 3)
    except ValueError as exc:
        if "ambiguous" in str(exc):
            raise
        raise ValueError(f"time {shown!r} is not a valid date: {exc}") from None
    if _MONTH_WORD.search(text) and _YEAR.search(text):
        from dateutil import parser as date_parser

        try:
            return date_parser.parse(text)
        except (ValueError, OverflowError):
            pass
    raise ValueError(f"unparseable time {shown!r}; {FORMATS_HELP}")
