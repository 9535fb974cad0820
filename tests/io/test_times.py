"""Posting times to UTC."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from narratives.errors import InputError
from narratives.io.times import parse_time, resolve_tz

UTC = timezone.utc
SHANGHAI = resolve_tz("Asia/Shanghai")
T = datetime(2022, 1, 21, 2, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "naive"),
    [
        ("2022-01-21T10:31:00+08:00", False),
        ("2022-01-21T02:31:00Z", False),
        ("2022-01-21 02:31:00 UTC", False),
        ("2022-01-21T10:31:00", True),
        ("2022/1/21 10:31", True),
        ("21/01/2022 10:31", True),
        ("01/21/2022 10:31 AM", True),
        ("Jan 21, 2022 10:31 AM", True),
        ("Fri Jan 21 02:31:00 +0000 2022", False),
        (1642732260, False),
        ("1642732260", False),
        (1642732260000, False),
        ("1642732260000", False),
        (1642732260.0, False),
        (datetime(2022, 1, 21, 10, 31), True),
    ],
)
def test_formats(value, naive):
    assert parse_time(value, SHANGHAI) == (T, naive)


@pytest.mark.parametrize("value", [None, "", "  ", float("nan"), 0, "0", "NaN"])
def test_missing(value):
    assert parse_time(value, SHANGHAI) == (None, False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("next tuesday", "unparseable time"),
        ("03/04/2022", "ambiguous"),
        ("2022-13-01", "not a valid date"),
        ("1969-07-20T20:17:00Z", "placeholder"),
        (True, "boolean"),
    ],
)
def test_unusable(value, message):
    with pytest.raises(ValueError, match=message):
        parse_time(value, UTC)


def test_naive_default_is_utc_and_bad_zone_is_refused():
    assert parse_time("2022-01-21 02:31", resolve_tz(None)) == (T, True)
    with pytest.raises(InputError, match="IANA"):
        resolve_tz("Mars/Olympus")
