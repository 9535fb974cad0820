"""Operator timing: when a page posts, in what local time, with which breaks.

Influence operations are run by people who keep office hours: Meta found Spamouflage's
clusters worked "with clear shift patterns, including breaks for lunch and dinner on
Beijing time". A page's posting times in UTC, folded onto the week, show that pattern
shifted by the operators' UTC offset.

:class:`TimingEstimator` finds the offset by likelihood: the week is cut into 15-minute
bins, and for each candidate offset (a quarter hour apart, -12 h to +14 h) the page's
posts are scored against a generic working week in local time (:data:`WEEKDAY`: asleep
00:00-07:00, at work 08:30-12:00 and 13:30-17:30 with a lunch dip between, lighter in the
evening; weekends at a third), mixed with a uniform floor for stray posts. The day's
edges and the lunch dip place the offset; weekends settle which side of midnight is
which. The confidence is the share of the (tempered) likelihood within an hour of the
estimate. Then, in the inferred local time, the working window (where the smoothed
weekday profile stays above a third of its peak) and the breaks inside it (runs of 30
minutes to 3 hours below half the window's median that hold fewer posts than the rest of
the window's rate leaves to chance, Poisson p <= 0.01) are read off the page's own
profile.

Below ``min_posts`` posts a page gets no estimate, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.errors import page_error_status
from narratives.scored import ScoredFolder, table_settings, write_table
from narratives.scored import usable as usable_mask

logger = logging.getLogger(__name__)

BINS_PER_HOUR = 4
DAY = 24 * BINS_PER_HOUR
WEEK = 7 * DAY


def _office_day(lunch: float | None, evening: bool) -> list[tuple[float, float]]:
    """(hour, relative rate) knots of a local working day: asleep until 07:45, at work
    from about 08:30 to 18:00, a lunch break of an hour from ``lunch`` (or none), and with
    ``evening`` a dinner break and a shift until about 22:00. Breaks are deep: a post
    inside one costs a template as much as a post at night, which is what lets a lunch
    break place the day within the hour."""
    knots = [(0.0, 0.03), (7.75, 0.03), (9.25, 1.0)]
    if lunch is not None:
        knots += [(lunch - 0.1, 1.0), (lunch + 0.1, 0.05), (lunch + 0.9, 0.05), (lunch + 1.1, 1.0)]
    if evening:
        knots += [(17.6, 1.0), (17.9, 0.1), (18.6, 0.1), (18.9, 1.0), (21.5, 1.0), (22.5, 0.05)]
    else:
        knots += [(17.5, 1.0), (18.75, 0.1), (22.0, 0.08)]
    return [*knots, (23.5, 0.03), (24.0, 0.03)]


#: The working days the offset is fitted with; each offset takes the best of them.
_DAYS = {
    f"{'no lunch break' if lunch is None else f'lunch {lunch:g}h'}"
    f"{', evening shift' if evening else ''}": _office_day(lunch, evening)
    for lunch in (None, 11.5, 12.0, 12.5)
    for evening in (False, True)
}


def _day_template(knots: list[tuple[float, float]]) -> np.ndarray:
    """Relative posting rate per 15-minute bin of a local day."""
    hours = (np.arange(DAY) + 0.5) / BINS_PER_HOUR
    xs, ys = zip(*knots)
    return np.interp(hours, xs, ys)


TEMPLATES = {name: _day_template(knots) for name, knots in _DAYS.items()}


@dataclass
class TimingConfig:
    """Settings of :class:`TimingEstimator`."""

    min_posts: int = 50  # fewer posts: no estimate ("too few posts")
    floor: float = 0.1  # share of posts the model lets fall anywhere in the week
    offset_step_minutes: int = 15
    min_offset_hours: float = -12.0
    max_offset_hours: float = 14.0
    effective_posts: int = 20  # posts are not independent (bursts): tempers the confidence
    smooth_bins: int = 3  # moving window (bins) of the local profile read for breaks
    min_break_minutes: int = 30
    max_break_minutes: int = 180
    break_alpha: float = 0.01  # a dip is a break when so few posts fall in it by chance

    def __post_init__(self) -> None:
        if self.min_posts < 1:
            raise ValueError("min_posts must be at least 1")
        if not 0 < self.floor < 1:
            raise ValueError("floor must be between 0 and 1")
        if self.offset_step_minutes not in (15, 30, 60):
            raise ValueError("offset_step_minutes must be 15, 30 or 60")
        if self.min_offset_hours >= self.max_offset_hours:
            raise ValueError("min_offset_hours must be below max_offset_hours")


def week_histogram(times: Any) -> np.ndarray:
    """Posts per 15-minute bin of the UTC week (bin 0: Monday 00:00-00:15 UTC)."""
    stamps = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    stamps = stamps[~stamps.isna()]
    minutes = stamps.day_of_week * 1440 + stamps.hour * 60 + stamps.minute
    bins = np.asarray(minutes // (60 // BINS_PER_HOUR), dtype=np.int64)
    return np.bincount(bins, minlength=WEEK).astype(np.float64)


def _clock(bins: float) -> str:
    minutes = round(bins * 60 / BINS_PER_HOUR) % 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class TimingEstimator:
    """UTC offset, working window and breaks of posting times (see the module)."""

    def __init__(self, config: TimingConfig | None = None) -> None:
        self.config = config or TimingConfig()
        cfg = self.config
        step = cfg.offset_step_minutes / 60
        count = round((cfg.max_offset_hours - cfg.min_offset_hours) / step) + 1
        self.offsets = cfg.min_offset_hours + step * np.arange(count)
        rows = []
        for day in TEMPLATES.values():
            # weekends at a third of a weekday
            week = np.concatenate([day] * 5 + [0.3 * day + 0.02] * 2)
            week = week / week.sum()
            log_rate = np.log((1 - cfg.floor) * week + cfg.floor / WEEK)
            # a post in UTC bin b falls in local bin b + shift
            rows += [np.roll(log_rate, -round(o * BINS_PER_HOUR)) for o in self.offsets]
        self._log_rates = np.stack(rows)  # (templates x offsets, WEEK)

    def log_likelihoods(self, hist: np.ndarray) -> np.ndarray:
        """Log-likelihood of the UTC week histogram under each candidate offset, the best
        of the working-day templates at each."""
        return (self._log_rates @ hist).reshape(len(TEMPLATES), len(self.offsets)).max(axis=0)

    def estimate(self, times: Any) -> dict[str, Any]:
        """The estimate for one set of posting times (a page, or several pages)."""
        cfg = self.config
        hist = week_histogram(times)
        n = int(hist.sum())
        if n < cfg.min_posts:
            return _no_estimate(n, f"too few posts ({n} < {cfg.min_posts})")
        loglik = self.log_likelihoods(hist)
        best = int(np.argmax(loglik))
        offset = float(self.offsets[best])
        tempered = (loglik - loglik[best]) * min(1.0, cfg.effective_posts / n)
        weights = np.exp(tempered)
        near = np.abs(circular_hours(self.offsets - offset)) <= 1.0
        confidence = float(weights[near].sum() / weights.sum())
        start, end, breaks = self._schedule(hist, offset)
        return {
            "n_posts": n,
            "utc_offset_hours": offset,
            "confidence": round(confidence, 3),
            "work_start": start,
            "work_end": end,
            "breaks": breaks,
            "status": "ok",
        }

    def estimate_or_error(self, times: Any, who: str) -> dict[str, Any]:
        """:meth:`estimate`, with an unexpected error kept to ``who`` (a page, a group):
        logged, and its row says ``error: ...`` with no estimate, so that one page's bug
        does not lose the others' timing."""
        try:
            return self.estimate(times)
        except Exception as exc:
            logger.error(
                "operator timing failed on %s; its status says so and the run goes on. "
                "Please report this with the traceback.",
                who,
                exc_info=True,
            )
            n = int(pd.to_datetime(pd.Series(times), utc=True, errors="coerce").notna().sum())
            return _no_estimate(n, page_error_status(exc))

    def local_profile(self, hist: np.ndarray, offset: float) -> np.ndarray:
        """Posts per 15-minute bin of the local week (bin 0: Monday 00:00 local)."""
        return np.roll(hist, round(offset * BINS_PER_HOUR))

    def _schedule(self, hist: np.ndarray, offset: float) -> tuple[str | None, str | None, list]:
        """Working window and breaks, in local time, from the weekday profile."""
        cfg = self.config
        local = self.local_profile(hist, offset)
        day = local[: 5 * DAY].reshape(5, DAY).sum(axis=0)
        width = cfg.smooth_bins
        padded = np.concatenate([day[-width:], day, day[:width]])
        smooth = np.convolve(padded, np.ones(width) / width, mode="same")[width:-width]
        if smooth.max() <= 0:
            return None, None, []
        # the day starts in the quietest hour (asleep), so the window does not wrap
        quiet = int(np.argmin(np.convolve(np.r_[smooth, smooth[:BINS_PER_HOUR]],
                                          np.ones(BINS_PER_HOUR), mode="valid")[:DAY]))  # fmt: skip
        order = (quiet + np.arange(DAY)) % DAY
        seq = smooth[order]
        raw = day[order]
        active = np.flatnonzero(seq >= smooth.max() / 3)
        first, last = int(active[0]), int(active[-1])
        window = seq[first : last + 1]
        counts = raw[first : last + 1]
        level = float(np.median(window))
        low = window < level / 2
        breaks = []
        shortest = cfg.min_break_minutes // (60 // BINS_PER_HOUR)
        longest = cfg.max_break_minutes // (60 // BINS_PER_HOUR)
        i = 0
        while i < len(low):
            if low[i]:
                j = i
                while j < len(low) and low[j]:
                    j += 1
                if shortest <= j - i <= longest and self._significant(counts, i, j):
                    a, b = order[(first + i) % DAY], order[(first + j) % DAY]
                    breaks.append(f"{_clock(a)}-{_clock(b)}")
                i = j
            else:
                i += 1
        return _clock(order[first]), _clock(order[last] + 1), breaks

    def _significant(self, counts: np.ndarray, i: int, j: int) -> bool:
        """Whether bins i..j-1 of the working window hold fewer posts than the rest of
        the window's rate leaves to chance (Poisson, ``break_alpha``)."""
        rest = np.r_[counts[:i], counts[j:]]
        if len(rest) == 0:
            return False
        expected = float(rest.mean()) * (j - i)
        return _poisson_cdf(int(counts[i:j].sum()), expected) <= self.config.break_alpha


def _no_estimate(n: int, status: str) -> dict[str, Any]:
    return {
        "n_posts": n,
        "utc_offset_hours": None,
        "confidence": None,
        "work_start": None,
        "work_end": None,
        "breaks": None,
        "status": status,
    }


def _poisson_cdf(k: int, mean: float) -> float:
    from scipy.stats import poisson

    return float(poisson.cdf(k, mean))


def circular_hours(delta: np.ndarray | float) -> Any:
    """A difference of offsets as the nearest equivalent in [-12, 12) hours."""
    return (np.asarray(delta) + 12.0) % 24.0 - 12.0


def fingerprint(times: Any, smooth_bins: int = 4) -> np.ndarray:
    """A page's UTC hour-of-week profile, smoothed and L2-normalised: pages run by the
    same shift have similar ones."""
    hist = week_histogram(times)
    padded = np.concatenate([hist[-smooth_bins:], hist, hist[:smooth_bins]])
    smooth = np.convolve(padded, np.ones(smooth_bins), mode="same")[smooth_bins:-smooth_bins]
    norm = float(np.linalg.norm(smooth))
    return smooth / norm if norm else smooth


def page_timing(
    posts: pd.DataFrame,
    config: TimingConfig | None = None,
    groups: Mapping[str, str] | None = None,
    known: Mapping[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """timing.parquet: one row per page of scored, timed posts, one per group of pages
    (``groups``: page id -> group name; ``scope`` ``group``, the members' posts together)
    and one for all of them (``scope`` ``all``, ``page_id`` and ``group`` null).
    ``known``: page id -> its row as estimated before on the same posts (an update's
    pages that received none), taken as it is."""
    estimator = TimingEstimator(config)
    usable = posts[usable_mask(posts, paged=False)]  # "all pages" takes posts without one
    rows = []
    for page_id, part in usable[usable["page_id"].notna()].groupby("page_id", sort=True):
        if known is not None and str(page_id) in known:
            rows.append(known[str(page_id)])
            continue
        estimate = estimator.estimate_or_error(part["created_at"], f"page {str(page_id)!r}")
        rows.append({"scope": "page", "page_id": str(page_id), "group": None, **estimate})
    if groups:
        member = usable["page_id"].astype(str).where(usable["page_id"].notna()).map(dict(groups))
        for name, part in usable[member.notna()].groupby(member[member.notna()], sort=True):
            estimate = estimator.estimate_or_error(part["created_at"], f"group {str(name)!r}")
            rows.append({"scope": "group", "page_id": None, "group": str(name), **estimate})
    estimate = estimator.estimate_or_error(usable["created_at"], "all pages together")
    rows.append({"scope": "all", "page_id": None, "group": None, **estimate})
    frame = pd.DataFrame(rows)
    frame["utc_offset_hours"] = frame["utc_offset_hours"].astype("float64")
    frame["confidence"] = frame["confidence"].astype("float64")
    frame["breaks"] = [
        list(b) if isinstance(b, list | np.ndarray) else None for b in frame["breaks"]
    ]
    return frame


def timing_similarity(
    posts: pd.DataFrame,
    min_posts: int = 50,
    top: int = 5,
    threshold: float = 0.8,
    block: int = 1024,
) -> pd.DataFrame:
    """Pairs of pages whose timing fingerprints are alike (cosine >= ``threshold``), at
    most ``top`` per page, most alike first (ties: the page first in id order).

    The cosines are computed ``block`` pages against all at a time, so memory grows with
    the pages, not with their square (20,000 pages held 3.2 GB of cosines at once)."""
    usable = posts[usable_mask(posts)]
    groups = [(str(p), g["created_at"]) for p, g in usable.groupby("page_id", sort=True)]
    groups = [(p, t) for p, t in groups if len(t) >= min_posts]
    columns = ["page_a", "page_b", "similarity"]
    if len(groups) < 2:
        return pd.DataFrame(columns=columns)
    pages = [p for p, _ in groups]
    matrix = np.stack([fingerprint(t) for _, t in groups])
    n = len(pages)
    k = min(top, n - 1)
    rows = []
    for start in range(0, n, block):
        # rounded: cosines that differ only in their last bits (the order of a product's
        # sums depends on the block) are ties, broken by page id
        sims = np.round(matrix[start : start + block] @ matrix.T, 12)
        own = np.arange(len(sims))
        sims[own, start + own] = -np.inf  # a page is not its own pair
        kth = np.partition(sims, n - k, axis=1)[:, n - k]  # each row's k-th largest cosine
        for r in np.flatnonzero((sims >= threshold).any(axis=1)):
            i = start + int(r)
            near = np.flatnonzero(sims[r] >= kth[r])  # the k nearest, and any tied with them
            near = near[np.lexsort((near, -sims[r, near]))][:k]
            rows += [
                (pages[i], pages[j], round(float(sims[r, j]), 4))
                for j in near
                if sims[r, j] >= threshold and i < j
            ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["similarity", "page_a", "page_b"], ascending=[False, True, True])


def read_groups(path: str | Path) -> dict[str, str]:
    """Groups of pages from a CSV or Parquet file with columns ``page_id`` and ``group``."""
    from narratives.errors import InputError

    path = Path(path)
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the groups file {str(path)!r}: {exc}") from exc
    missing = {"page_id", "group"} - set(frame.columns)
    if missing:
        raise InputError(
            f"the groups file {str(path)!r} lacks column(s) {sorted(missing)}: it needs one "
            "row per page with page_id and group"
        )
    frame = frame.dropna(subset=["page_id", "group"])
    return dict(zip(frame["page_id"].astype(str), frame["group"].astype(str)))


def write_timing(
    scored_dir: str | Path,
    config: TimingConfig | None = None,
    groups: Mapping[str, str] | str | Path | None = None,
    known: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """timing.parquet and timing_pairs.parquet in a folder written by narratives score.

    ``groups`` (page id -> group name, or a file :func:`read_groups` reads) adds a row
    per group; without it, the groups of the coordination network are used when
    ``narratives coordination`` has run."""
    import pyarrow as pa

    from narratives import schema

    folder = ScoredFolder(scored_dir)
    if isinstance(groups, (str, Path)):
        groups = read_groups(groups)
    posts = folder.posts(["page_id", "created_at", "status"])
    cfg = config or TimingConfig()
    settings = {"config": asdict(cfg), "groups": None if groups is None else dict(groups)}
    if groups is None and (folder.path / "coordination_edges.parquet").is_file():
        from narratives.operators.coordination import network_groups

        groups = network_groups(folder.table("coordination_edges.parquet"))
    timing = page_timing(posts, cfg, groups, known)
    pairs = timing_similarity(posts, min_posts=cfg.min_posts)
    for frame, name, arrow in (
        (timing, "timing.parquet", schema.TIMING),
        (pairs, "timing_pairs.parquet", schema.TIMING_PAIRS),
    ):
        table = pa.Table.from_pandas(frame[arrow.names], schema=arrow, preserve_index=False)
        write_table(table, folder.path / name, settings)
    return timing, pairs


def rerun_timing(
    scored_dir: str | Path, touched: Collection[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`write_timing` again, with the settings it was last run with (kept in
    timing.parquet; the defaults where an earlier version wrote it). With ``touched``
    (the pages an update gave posts), only their estimates are made again: the other
    pages' rows are kept (their posts did not change); the groups, all pages together
    and the pairs of alike pages are made again (their posts did)."""
    path = Path(scored_dir) / "timing.parquet"
    settings = table_settings(path) or {}
    config = TimingConfig(**settings.get("config", {}))
    known = None
    if touched is not None and settings:
        old = pd.read_parquet(path)
        old = old[(old["scope"] == "page") & ~old["page_id"].isin(list(touched))]
        known = {str(r["page_id"]): r for r in old.to_dict("records")}
    return write_timing(scored_dir, config, settings.get("groups"), known)


__all__ = [
    "TimingConfig",
    "TimingEstimator",
    "circular_hours",
    "fingerprint",
    "page_timing",
    "read_groups",
    "rerun_timing",
    "timing_similarity",
    "week_histogram",
    "write_timing",
]
