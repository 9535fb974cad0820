"""Pivot detection: abrupt, lasting changes of a page's topic or language.

Each page is read as two signals over its posts in time order: the topic profile of each
post (a distribution over coarse topics, see :mod:`narratives.topics`, which makes topic
comparable across languages) and the post's language as a one-hot vector. For each
signal, ruptures' kernel change-point search (PELT, linear kernel) proposes change
points with a penalty calibrated on the page itself: the largest gain a single split
reaches on shuffled copies of the page's own posts. No penalty is tuned per dataset.

Every proposed change is then tested between its two neighbouring regimes: the total
variation distance between their topic mixes and between their language mixes must be
large enough to matter (``min_topic_shift``, ``min_language_shift``) and unlikely under a
permutation of the posts of the two regimes (``alpha``). Weak changes are removed one at
a time, weakest first; a short regime whose neighbours match each other is a burst that
reverted, not a pivot. What survives is reported as ``topic``, ``language`` or
``topic+language``, with its magnitude (the mean of the two shifts, 0..1), the dormancy
before it, and evidence from both sides.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import schema
from .timelines import Timeline, page_timelines
from .topics import TOPICS

logger = logging.getLogger(__name__)

UNDETERMINED = "und"
#: Pages longer than this many posts are searched on a coarser grid (every n // this).
_POSTS_PER_JUMP = 500


@dataclass
class PivotConfig:
    """Settings of :class:`PivotDetector`. The defaults are meant for every dataset."""

    #: Posts each side of a pivot needs; pages with fewer than twice this are not judged.
    min_posts: int = 4
    #: Smallest change of topic mix (total variation distance, 0..1) that counts.
    min_topic_shift: float = 0.45
    #: Smallest change of language mix (total variation distance, 0..1) that counts.
    min_language_shift: float = 0.5
    #: Largest chance that a reported change is a reshuffle of the same posts.
    alpha: float = 0.01
    #: Once a change is established on one signal, the other signal joins its kind at this
    #: looser level (a language switch of 5 posts whose topic also moved is topic+language).
    kind_alpha: float = 0.05
    #: Permutations for each test (the smallest reachable p-value is 1 / (n + 1)); a
    #: p-value just above ``alpha`` gets four times as many more.
    n_permutations: int = 99
    #: Permutations that calibrate the change-point search's penalty.
    n_penalty_permutations: int = 49
    #: A regime whose neighbours match each other is a burst, not two pivots, when it has
    #: at most this many posts ...
    max_burst_posts: int = 12
    #: ... or at most this share of the shorter neighbour (a news page's run on one story).
    max_burst_share: float = 0.5
    #: Topic and language changes at most this many posts apart are one pivot.
    merge_within: int = 3
    #: Example post ids reported on each side of a pivot.
    n_examples: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_posts < 2:
            raise ValueError("min_posts must be at least 2")
        for name in (
            "min_topic_shift",
            "min_language_shift",
            "alpha",
            "kind_alpha",
        ):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
        if self.n_permutations < 19 or self.n_penalty_permutations < 9:
            raise ValueError("use at least 19 test and 9 penalty permutations")
        if not 0.0 <= self.max_burst_share <= 1.0:
            raise ValueError("max_burst_share must lie between 0 and 1")
        if self.max_burst_posts < 0 or self.merge_within < 0 or self.n_examples < 0:
            raise ValueError("max_burst_posts, merge_within and n_examples must be >= 0")


def _tvd(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


def _page_rng(seed: int, page_id: str) -> np.random.Generator:
    """A generator per page, so a page's result does not depend on the other pages."""
    digest = hashlib.blake2b(page_id.encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def _max_split_gains(signal: np.ndarray, orders: np.ndarray, min_size: int) -> np.ndarray:
    """For each row order, the largest drop in squared error one split can give."""
    n = signal.shape[0]
    x = signal[orders]  # (B, n, d)
    csum = np.cumsum(x, axis=1)
    total = csum[:, -1:, :]
    t = np.arange(min_size, n - min_size + 1)
    left = csum[:, t - 1, :]
    diff = left / t[None, :, None] - (total - left) / (n - t)[None, :, None]
    gains = (t * (n - t) / n)[None, :] * (diff**2).sum(axis=2)
    return gains.max(axis=1)


def _jump(n: int) -> int:
    """Spacing of the change points PELT considers on a page of n posts."""
    return max(1, n // _POSTS_PER_JUMP)


def _weighted_shifts(
    signal: np.ndarray, min_size: int, grid: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """For admissible splits t of (..., m, d) signals, the shift (total variation distance
    between the means before and after) weighted by sqrt(t (m - t) / m).

    With ``grid``, long signals are split near both ends at every post and in between at
    about 200 evenly spaced places: the weighted shift moves slowly in the middle, and
    the permutation nulls that take its maximum cost a fraction as much.
    """
    m = signal.shape[-2]
    t = np.arange(min_size, m - min_size + 1)
    if grid and len(t) > 400:
        step = -(-len(t) // 200)
        t = np.unique(np.r_[t[:100], t[100:-100:step], t[-100:]])
    csum = np.cumsum(signal, axis=-2)
    left = csum[..., t - 1, :] / t[:, None]
    right = (csum[..., -1:, :] - csum[..., t - 1, :]) / (m - t)[:, None]
    return t, 0.5 * np.abs(left - right).sum(axis=-1) * np.sqrt(t * (m - t) / m)


def _language_signal(langs: np.ndarray) -> np.ndarray:
    """One-hot languages; an undetermined post gets the page's language mix."""
    known = [str(x) for x in langs if x and x != UNDETERMINED]
    vocab = sorted(set(known))
    if not vocab:
        return np.zeros((len(langs), 1))
    index = {lang: i for i, lang in enumerate(vocab)}
    onehot = np.zeros((len(langs), len(vocab)))
    rows = [i for i, x in enumerate(langs) if x in index]
    onehot[rows, [index[langs[i]] for i in rows]] = 1.0
    mix = onehot[rows].mean(axis=0)
    onehot[[i for i in range(len(langs)) if langs[i] not in index]] = mix
    return onehot


@dataclass
class _Change:
    at: int  # index of the first post of the new regime
    topic_shift: float
    language_shift: float
    topic_p: float
    language_p: float
    topic_ok: bool
    language_ok: bool

    @property
    def valid(self) -> bool:
        return self.topic_ok or self.language_ok


class PivotDetector:
    """Find pivots in scored posts (scikit-learn style: configure, ``fit``, read ``*_``).

    >>> detector = PivotDetector().fit(result.posts, result.topic_profiles)  # doctest: +SKIP
    >>> detector.pivots_                                                      # doctest: +SKIP
    """

    def __init__(self, config: PivotConfig | None = None, **overrides: Any) -> None:
        self.config = PivotConfig(**{**asdict(config or PivotConfig()), **overrides})

    # -- the search -------------------------------------------------------------------

    def _candidates(
        self, signal: np.ndarray, shifts: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
    ) -> list[int]:
        """Change points ruptures proposes on one signal, plus its best weighted split
        (``shifts`` is :func:`_weighted_shifts` of the whole signal)."""
        import ruptures as rpt

        cfg = self.config
        n = signal.shape[0]
        if n < 2 * cfg.min_posts or np.ptp(signal, axis=0).max() == 0:
            return []
        orders = rng.permuted(np.tile(np.arange(n), (cfg.n_penalty_permutations, 1)), axis=1)
        penalty = float(_max_split_gains(signal, orders, cfg.min_posts).max())
        if penalty <= 0:
            return []
        # PELT is quadratic in the worst case: on long pages, consider every jump-th post
        # as a change point (positions are refined afterwards, see _refine)
        jump = _jump(n)
        algo = rpt.KernelCPD(kernel="linear", min_size=cfg.min_posts, jump=jump).fit(signal)
        found = [int(b) for b in algo.predict(pen=penalty)[:-1]]
        # PELT's squared-error gain needs a large shift to justify a regime of a few posts
        # at either end of a long page; the page's single best split by weighted shift
        # (tested like every candidate) covers a repurposing seen for only 5-8 posts.
        t, shift = shifts
        best = int(t[np.argmax(shift)])
        return sorted({*found, best})

    def _merge(
        self,
        topic: list[int],
        language: list[int],
        topic_shifts: tuple[np.ndarray, np.ndarray],
        language_shifts: tuple[np.ndarray, np.ndarray],
    ) -> list[int]:
        """One change point per cluster of candidates at most ``merge_within`` apart (and
        closer than ``min_posts``, so no regime is shorter): the one that splits the page
        best on both signals together."""
        cfg = self.config
        within = max(cfg.merge_within, cfg.min_posts - 1)
        points = sorted({*topic, *language})
        if not points:
            return []
        t, topic_shift = topic_shifts
        _, language_shift = language_shifts
        score = dict(zip(t.tolist(), (topic_shift + language_shift).tolist()))
        clusters: list[list[int]] = [[points[0]]]
        for point in points[1:]:
            if point - clusters[-1][-1] <= within:
                clusters[-1].append(point)
            else:
                clusters.append([point])
        return [max(c, key=lambda p: (score.get(p, 0.0), -p)) for c in clusters]

    def _test(self, profiles, langs, lo: int, at: int, hi: int, rng) -> _Change:
        """:meth:`_compare`, remembered per page: validation asks again after each removal."""
        key = (lo, at, hi)
        if key not in self._tests:
            self._tests[key] = self._compare(profiles, langs, lo, at, hi, rng)
        return self._tests[key]

    def _compare(
        self,
        profiles: np.ndarray,
        langs: np.ndarray,
        lo: int,
        at: int,
        hi: int,
        rng: np.random.Generator,
    ) -> _Change:
        """Compare regimes [lo, at) and [at, hi): shifts, permutation p-values, verdict."""
        cfg = self.config
        n_left = at - lo
        shifts, pvalues = [], []
        for signal, floor in ((profiles, cfg.min_topic_shift), (langs, cfg.min_language_shift)):
            block = signal[lo:hi]
            observed = _tvd(block[:n_left].mean(axis=0), block[n_left:].mean(axis=0))
            p = 1.0
            if observed >= floor:
                p = self._p_value(block, n_left, observed, rng)
            shifts.append(observed)
            pvalues.append(p)
        return _Change(
            at=at,
            topic_shift=shifts[0],
            language_shift=shifts[1],
            topic_p=pvalues[0],
            language_p=pvalues[1],
            topic_ok=shifts[0] >= cfg.min_topic_shift and pvalues[0] <= cfg.alpha,
            language_ok=shifts[1] >= cfg.min_language_shift and pvalues[1] <= cfg.alpha,
        )

    def _p_value(
        self, block: np.ndarray, n_left: int, observed: float, rng: np.random.Generator
    ) -> float:
        """Chance that the same posts, in random order, shift as much somewhere.

        Shuffled copies of the block are split at every admissible place and their
        largest shift is compared with the observed one: the change point was itself
        chosen as a best place, so the null searches as hard as the search did. Shifts
        are weighted by sqrt(t (m - t) / m) so that splits near the ends, whose means
        are noisy, do not dominate the maximum. A p-value just above ``alpha`` after
        ``n_permutations`` draws (up to three times it) is refined with four times as many.
        """
        m = len(block)
        if min(n_left, m - n_left) < self.config.min_posts:
            return 1.0  # a regime shorter than min_posts is not a regime
        scaled = observed * math.sqrt(n_left * (m - n_left) / m) - 1e-6
        block32 = block.astype(np.float32)
        hits = draws = 0
        for batch in (self.config.n_permutations, 4 * (self.config.n_permutations + 1)):
            orders = rng.permuted(np.tile(np.arange(m), (batch, 1)), axis=1)
            _, null = _weighted_shifts(block32[orders], self.config.min_posts, grid=True)
            hits += int((null.max(axis=-1) >= scaled).sum())
            draws += batch
            p = (1 + hits) / (draws + 1)
            if p <= self.config.alpha or p > 3 * self.config.alpha:
                break  # decided; only a p-value just above alpha is worth more draws
        return p

    def _validate(
        self, profiles: np.ndarray, langs: np.ndarray, points: list[int], rng: np.random.Generator
    ) -> list[_Change]:
        n = len(profiles)
        points = sorted(points)
        while True:
            bounds = [0, *points, n]
            changes = [
                self._test(profiles, langs, bounds[i], bounds[i + 1], bounds[i + 2], rng)
                for i in range(len(points))
            ]
            weak = [c for c in changes if not c.valid]
            if weak:
                weakest = min(
                    weak,
                    key=lambda c: (
                        max(
                            c.topic_shift / self.config.min_topic_shift,
                            c.language_shift / self.config.min_language_shift,
                        ),
                        c.at,
                    ),
                )
                points.remove(weakest.at)
                continue
            burst = self._find_burst(profiles, langs, bounds, rng)
            if burst is None:
                return changes
            points = [p for p in points if p not in burst]

    def _find_burst(
        self, profiles: np.ndarray, langs: np.ndarray, bounds: list[int], rng: np.random.Generator
    ) -> tuple[int, int] | None:
        """Two change points around a short regime whose neighbours do not differ."""
        cfg = self.config
        for i in range(1, len(bounds) - 2):
            start, end = bounds[i], bounds[i + 1]
            shorter = min(start - bounds[i - 1], bounds[i + 2] - end)
            if end - start > max(cfg.max_burst_posts, cfg.max_burst_share * shorter):
                continue
            outer = np.r_[bounds[i - 1] : start, end : bounds[i + 2]]
            joined_p = profiles[outer]
            joined_l = langs[outer]
            test = self._compare(joined_p, joined_l, 0, start - bounds[i - 1], len(outer), rng)
            if not test.valid:
                return start, end
        return None

    # -- per page ---------------------------------------------------------------------

    def detect_page(self, timeline: Timeline) -> tuple[list[dict], str]:
        """Pivots of one page (as output rows) and the page's status."""
        cfg = self.config
        n = len(timeline)
        if n < 2 * cfg.min_posts:
            return [], f"too few posts ({n} < {2 * cfg.min_posts})"
        rng = _page_rng(cfg.seed, timeline.page_id)
        self._tests: dict[tuple[int, int, int], _Change] = {}
        profiles = np.asarray(timeline.profiles, dtype=np.float64)
        langs = _language_signal(timeline.langs)
        # the whole page's weighted shifts serve both the search and the merge
        topic_shifts = _weighted_shifts(profiles, cfg.min_posts)
        language_shifts = _weighted_shifts(langs, cfg.min_posts)
        points = self._merge(
            self._candidates(profiles, topic_shifts, rng),
            self._candidates(langs, language_shifts, rng),
            topic_shifts,
            language_shifts,
        )
        changes = self._validate(profiles, langs, points, rng) if points else []
        if changes:
            changes = self._refine(profiles, langs, changes, rng)
        gaps = timeline.gaps_days()
        bounds = [0, *(c.at for c in changes), n]
        rows = []
        for i, change in enumerate(changes):
            before = slice(bounds[i], bounds[i + 1])
            after = slice(bounds[i + 1], bounds[i + 2])
            kind = self._kind(change)
            rows.append(
                {
                    "page_id": timeline.page_id,
                    "at": timeline.times[change.at],
                    "kind": kind,
                    "magnitude": round((change.topic_shift + change.language_shift) / 2, 4),
                    "before_lang": _dominant(timeline.langs[before]),
                    "after_lang": _dominant(timeline.langs[after]),
                    "before_examples": self._examples(timeline, profiles, before),
                    "after_examples": self._examples(timeline, profiles, after),
                    "dormancy_days": round(float(gaps[change.at - 1]), 3),
                    "position": change.at,
                    "topic_shift": round(change.topic_shift, 4),
                    "language_shift": round(change.language_shift, 4),
                    "before_topic": _topic_name(profiles[before]),
                    "after_topic": _topic_name(profiles[after]),
                }
            )
        return rows, "ok"

    def _kind(self, change: _Change) -> str:
        """topic, language or topic+language: a signal joins an established change when its
        own shift is large enough and significant at ``kind_alpha``."""
        cfg = self.config
        topic = change.topic_ok or (
            change.language_ok
            and change.topic_shift >= cfg.min_topic_shift
            and change.topic_p <= cfg.kind_alpha
        )
        language = change.language_ok or (
            change.topic_ok
            and change.language_shift >= cfg.min_language_shift
            and change.language_p <= cfg.kind_alpha
        )
        return "+".join(k for k, on in (("topic", topic), ("language", language)) if on)

    def _refine(
        self, profiles: np.ndarray, langs: np.ndarray, changes: list[_Change], rng
    ) -> list[_Change]:
        """Move each change to the nearby split that separates its neighbours best (the
        search places changes on the squared error of profiles, not on the shifts)."""
        cfg = self.config
        n = len(profiles)
        window = max(cfg.merge_within + 2, _jump(n))
        points = [c.at for c in changes]
        for i, change in enumerate(changes):
            lo = points[i - 1] if i else 0
            hi = points[i + 1] if i + 1 < len(points) else n
            first = max(lo + cfg.min_posts, change.at - window)
            last = min(hi - cfg.min_posts, change.at + window)
            signal = langs if change.language_ok else profiles
            best, best_score = change.at, -1.0
            for t in range(first, last + 1):
                left, right = signal[lo:t].mean(axis=0), signal[t:hi].mean(axis=0)
                score = _tvd(left, right) * math.sqrt((t - lo) * (hi - t) / (hi - lo))
                if score > best_score + 1e-12 or (
                    abs(score - best_score) <= 1e-12 and abs(t - change.at) < abs(best - change.at)
                ):
                    best, best_score = t, score
            points[i] = best
        if points == [c.at for c in changes]:
            return changes
        bounds = [0, *points, n]
        refined = [
            self._test(profiles, langs, bounds[i], bounds[i + 1], bounds[i + 2], rng)
            for i in range(len(points))
        ]
        return refined if all(c.valid for c in refined) else changes

    def _examples(self, timeline: Timeline, profiles: np.ndarray, part: slice) -> list[str]:
        """The posts most typical of a regime (closest to its topic mix), in time order."""
        block = profiles[part]
        score = block @ block.mean(axis=0)
        best = np.sort(np.argsort(-score, kind="stable")[: self.config.n_examples])
        return [str(timeline.post_ids[part][i]) for i in best]

    # -- whole datasets -----------------------------------------------------------------

    def fit(self, posts: pd.DataFrame, profiles: np.ndarray) -> PivotDetector:
        """Detect pivots on every page of scored ``posts`` with their topic ``profiles``."""
        if len(profiles) != len(posts):
            raise ValueError("profiles must have one row per post")
        rows: list[dict] = []
        status: dict[str, str] = {}
        for timeline in page_timelines(posts, profiles):
            page_rows, status[timeline.page_id] = self.detect_page(timeline)
            rows.extend(page_rows)
        self.pivots_ = pivot_frame(rows)
        self.page_status_ = status
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "pivots_"):
            raise RuntimeError("this PivotDetector is not fitted yet; call fit(posts, profiles)")

    def summary(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "config": asdict(self.config),
            "pages": len(self.page_status_),
            "pages_too_few_posts": sum(s != "ok" for s in self.page_status_.values()),
            "pivots": len(self.pivots_),
        }


def _dominant(langs: np.ndarray) -> str | None:
    known = [str(x) for x in langs if x and x != UNDETERMINED]
    if not known:
        return UNDETERMINED if len(langs) else None
    values, counts = np.unique(known, return_counts=True)
    return str(values[np.argmax(counts)])


_TOPIC_NAMES = list(TOPICS)


def _topic_name(profiles: np.ndarray) -> str:
    return _TOPIC_NAMES[int(np.argmax(profiles.mean(axis=0)))]


def pivot_frame(rows: list[dict]) -> pd.DataFrame:
    """Pivot rows as a DataFrame with the contract's columns first."""
    columns = [f.name for f in schema.PIVOTS]
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[us, UTC]")
    return frame
