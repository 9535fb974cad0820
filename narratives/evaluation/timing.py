"""Evaluation of :mod:`narratives.operators.timing` on generated posting schedules of known offset.

Each generated page is an operator's working week in a local time zone (whole-hour
offsets from -10 to +12, and one page in ten on a half-hour zone such as India's):

- a shift starting between 07:30 and 10:00 and ending between 17:00 and 19:00; three pages
  in ten also work an evening shift after a dinner break (ending 20:30 to 22:30);
- a lunch break on three pages in four (starting 11:30 to 12:45, 45 to 90 minutes);
- weekends at 0 to 25% of a weekday's activity; overtime on a tenth of the days (one to
  three hours past the end); sick days and holidays (5% of days off);
- irregular bursts (a tenth of the posts in runs of 3 to 8 within minutes) and stray
  posts at any hour (2 to 10% of the posts);
- 8 to 26 weeks of posts, each post's minute drawn uniformly within the active time.

The estimator knows none of these numbers; its template is a generic office week (see
:mod:`narratives.operators.timing`). Reported per number of posts per page: the share of pages
whose offset is within an hour (circularly), the mean absolute error, the share of
pages with a lunch break where a break was found overlapping it, the share of pages
without one where a break was reported between 11:00 and 14:00 (both judged in the
page's true local time: a break is found in the data, its clock time follows the
estimated offset), and the mean confidence of right and wrong estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from narratives.operators.timing import TimingConfig, TimingEstimator, circular_hours

HALF_HOUR_ZONES = (-3.5, 3.5, 4.5, 5.5, 5.75, 6.5, 9.5)


@dataclass
class Schedule:
    offset: float
    start: float
    end: float
    lunch: tuple[float, float] | None
    dinner: tuple[float, float] | None
    weekend: float


def random_schedule(rng: np.random.Generator) -> Schedule:
    if rng.random() < 0.1:
        offset = float(rng.choice(HALF_HOUR_ZONES))
    else:
        offset = float(rng.integers(-10, 13))
    start = float(rng.uniform(7.5, 10.0))
    end = float(rng.uniform(17.0, 19.0))
    lunch = None
    if rng.random() < 0.75:
        a = float(rng.uniform(11.5, 12.75))
        lunch = (a, a + float(rng.uniform(0.75, 1.5)))
    dinner = None
    if rng.random() < 0.3:
        a = end
        dinner = (a, a + float(rng.uniform(0.75, 1.5)))
        end = float(rng.uniform(20.5, 22.5))
    return Schedule(offset, start, end, lunch, dinner, float(rng.uniform(0.0, 0.25)))


def _active(s: Schedule, overtime: float) -> list[tuple[float, float]]:
    """Working intervals of one day, local hours."""
    cuts = sorted(b for b in (s.lunch, s.dinner) if b is not None)
    spans, at = [], s.start
    for a, b in cuts:
        if a > at:
            spans.append((at, a))
        at = max(at, b)
    spans.append((at, s.end + overtime))
    return [(a, b) for a, b in spans if b > a]


def generate_times(s: Schedule, n_posts: int, rng: np.random.Generator) -> pd.DatetimeIndex:
    """``n_posts`` posting times (UTC) of a page kept on schedule ``s``."""
    weeks = int(rng.integers(8, 27))
    first = pd.Timestamp("2022-01-03")  # a Monday, local
    days = np.arange(weeks * 7)
    weight = np.where(days % 7 < 5, 1.0, s.weekend)
    weight[rng.random(len(days)) < 0.05] = 0.0  # days off
    if weight.sum() == 0:
        weight[:] = 1.0
    overtime = np.where(rng.random(len(days)) < 0.1, rng.uniform(1, 3, len(days)), 0.0)
    stray = round(n_posts * rng.uniform(0.02, 0.1))
    bursty = round(n_posts * 0.1)
    regular = n_posts - stray - bursty
    local: list[float] = []  # hours since `first`, local time

    def at_work(count: int) -> None:
        chosen = rng.choice(days, size=count, p=weight / weight.sum())
        for day in chosen:
            spans = _active(s, float(overtime[day]))
            lengths = np.array([b - a for a, b in spans])
            a, b = spans[int(rng.choice(len(spans), p=lengths / lengths.sum()))]
            local.append(day * 24 + float(rng.uniform(a, b)))

    at_work(regular)
    while bursty > 0:
        size = min(bursty, int(rng.integers(3, 9)))
        before = len(local)
        at_work(1)
        start = local[before]
        local.extend(start + np.cumsum(rng.uniform(0.5, 6.0, size - 1)) / 60)
        bursty -= size
    local.extend(rng.uniform(0, weeks * 7 * 24, stray))
    hours = np.sort(np.array(local[:n_posts]))
    utc = first + pd.to_timedelta(hours - s.offset, unit="h")
    return pd.DatetimeIndex(utc).tz_localize("UTC")


def _overlaps(found: list[str] | None, window: tuple[float, float], shift: float) -> bool:
    """Whether a reported break ("HH:MM-HH:MM", moved by ``shift`` hours) meets ``window``."""
    for item in found or []:
        a, b = (int(x[:2]) + int(x[3:]) / 60 + shift for x in item.split("-"))
        if a < window[1] and b > window[0]:
            return True
    return False


def evaluate(
    sizes: tuple[int, ...] = (50, 100, 200, 400, 800),
    pages: int = 200,
    seed: int = 0,
    config: TimingConfig | None = None,
) -> dict[str, Any]:
    """Accuracy of the estimator by posts per page (see the module)."""
    cfg = config or TimingConfig(min_posts=min(sizes))
    estimator = TimingEstimator(cfg)
    rows = []
    for n in sizes:
        rng = np.random.default_rng([seed, n])
        right = lunch_found = lunch_pages = false_lunch = no_lunch = 0
        errors = 0.0
        conf_right: list[float] = []
        conf_wrong: list[float] = []
        for _ in range(pages):
            schedule = random_schedule(rng)
            est = estimator.estimate(generate_times(schedule, n, rng))
            error = abs(float(circular_hours(est["utc_offset_hours"] - schedule.offset)))
            errors += error
            ok = error <= 1.0
            right += ok
            (conf_right if ok else conf_wrong).append(est["confidence"])
            # breaks are reported in the estimated local time: judge them in the true one
            shift = schedule.offset - est["utc_offset_hours"]
            if schedule.lunch:
                lunch_pages += 1
                lunch_found += _overlaps(est["breaks"], schedule.lunch, shift)
            else:
                no_lunch += 1
                false_lunch += _overlaps(est["breaks"], (11.0, 14.0), shift)
        rows.append(
            {
                "posts": n,
                "pages": pages,
                "offset_within_1h": right / pages,
                "mean_abs_error_h": errors / pages,
                "lunch_found": lunch_found / max(lunch_pages, 1),
                "lunch_pages": lunch_pages,
                "false_midday_break": false_lunch / max(no_lunch, 1),
                "confidence_right": float(np.mean(conf_right)) if conf_right else None,
                "confidence_wrong": float(np.mean(conf_wrong)) if conf_wrong else None,
            }
        )
    return {"seed": seed, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    head = (
        "| posts/page | offset within 1 h | mean abs. error (h) | lunch found | "
        "midday break where none | confidence right / wrong |\n|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in result["rows"]:
        wrong = "-" if r["confidence_wrong"] is None else f"{r['confidence_wrong']:.2f}"
        lines.append(
            f"| {r['posts']} | {r['offset_within_1h']:.3f} | {r['mean_abs_error_h']:.2f} | "
            f"{r['lunch_found']:.3f} | {r['false_midday_break']:.3f} | "
            f"{r['confidence_right']:.2f} / {wrong} |"
        )
    pages, seed = result["rows"][0]["pages"], result["seed"]
    return "\n".join(lines) + f"\n({pages} pages per row, seed {seed})"


__all__ = ["evaluate", "format_table", "generate_times", "random_schedule"]
