"""Pivot detection: abrupt, lasting changes of a page's topic or language.

Each page is read as signals over its posts in time order
(:class:`~narratives.pivots.signals.Signals`): its embeddings (on a short page in their
full dimension, through its Gram matrix; a long page's projected on its own principal
directions); the same less each language's mean,
which leaves the subject without the language it is written in (e5 puts unrelated posts
of one language closer together than a post and its translation); its topic profiles
over cross-lingual anchors (:mod:`narratives.pivots.topics`); and its languages, one-hot.
ruptures' kernel change-point search (PELT, linear kernel) proposes changes of subject
and of language with a penalty calibrated on the page itself: the largest gain a single
split reaches on shuffled copies of the page's own posts. No penalty is tuned per
dataset.

Every proposed change is then tested between its two neighbouring regimes: the total
variation distance between their topic mixes and between their language mixes must be
large enough to matter (``min_topic_shift``, ``min_language_shift``) and unlikely under a
permutation of the posts of the two regimes (``alpha``): the language on the languages,
the subject on the embeddings when the language stayed and on the topic profiles when
it changed. Weak changes are removed one at a time, weakest first; a short regime whose
neighbours match each other is a burst that reverted, not a pivot. What survives is
placed where the embeddings separate its two sides best and reported as ``topic``,
``language`` or ``topic+language``, with its magnitude (the mean of the two shifts,
0..1), the dormancy before it, and evidence from both sides.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives import schema
from narratives.errors import page_error_status
from narratives.pivots.signals import (
    UNDETERMINED,
    Signals,
    jump,
    known_languages,
    page_entropy,
    positions,
    split_stats,
)
from narratives.pivots.timelines import Timeline, page_timelines
from narratives.pivots.topics import TOPICS
from narratives.rowfile import RowFile
from narratives.scored import narrative_mix, timed_rows

logger = logging.getLogger(__name__)

#: Inputs of fewer posts are searched in this process: starting the workers (a new
#: interpreter each, importing numpy, pandas, ruptures and the compiled kernel) takes
#: about as long as two processes save on 50,000 posts of short pages.
_PARALLEL_POSTS = 50_000
#: Posts of the pages handed to a worker process at a time.
_BATCH_POSTS = 4_000


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

    def __init__(self, config: PivotConfig | None = None, *, n_jobs: int | None = None) -> None:
        #: The settings (checked when the PivotConfig is made).
        self.config = config or PivotConfig()
        #: Worker processes; None: all cores for inputs of ``_PARALLEL_POSTS`` posts or more.
        #: Results do not depend on it.
        self.n_jobs = n_jobs

    # -- the search -------------------------------------------------------------------

    def _candidates(self, sig: Signals, name: str, stat: np.ndarray) -> list[int]:
        """Change points ruptures proposes on one signal (``topic`` or ``langs``), plus its
        best weighted split (``stat``: weighted shifts at every admissible split)."""
        import ruptures as rpt

        cfg = self.config
        signal = getattr(sig, name)
        n = len(sig)
        if np.ptp(signal, axis=0).max() <= 1e-9:
            return []
        # penalty: the largest gain one split reaches on shuffled copies of the page
        null = sig.null(0, n, f"{name}_l2", cfg.n_penalty_permutations, cfg.min_posts)
        penalty = float(null.max() ** 2)
        if penalty <= 0:
            return []
        # PELT is quadratic in the worst case: on long pages, consider every jump-th post
        # as a change point (positions are refined afterwards, see _refine)
        algo = rpt.KernelCPD(kernel="linear", min_size=cfg.min_posts, jump=jump(n))
        found = [int(b) for b in algo.fit(signal.astype(np.float64)).predict(pen=penalty)[:-1]]
        # PELT's squared-error gain needs a large shift to justify a regime of a few posts
        # at either end of a long page; the page's single best split by weighted shift
        # (tested like every candidate) covers a repurposing seen for only 5-8 posts.
        best = cfg.min_posts + int(np.argmax(stat))
        return sorted({*found, best})

    def _merge(self, points: list[int], score: np.ndarray) -> list[int]:
        """One change point per cluster of candidates at most ``merge_within`` apart (and
        closer than ``min_posts``, so no regime is shorter): the one whose split of the page
        is best (``score``, indexed by split - min_posts)."""
        cfg = self.config
        within = max(cfg.merge_within, cfg.min_posts - 1)
        points = sorted(set(points))
        if not points:
            return []
        clusters: list[list[int]] = [[points[0]]]
        for point in points[1:]:
            if point - clusters[-1][-1] <= within:
                clusters[-1].append(point)
            else:
                clusters.append([point])
        return [max(c, key=lambda p: (score[p - cfg.min_posts], -p)) for c in clusters]

    def _test(self, sig: Signals, lo: int, at: int, hi: int) -> _Change:
        """:meth:`_compare`, remembered per page: validation asks again after each removal."""
        key = (lo, at, hi)
        if key not in self._tests:
            self._tests[key] = self._compare(sig, lo, at, hi)
        return self._tests[key]

    def _compare(self, sig: Signals, lo: int, at: int, hi: int) -> _Change:
        """Compare regimes [lo, at) and [at, hi): shifts, permutation p-values, verdict.

        The language test runs on the languages. How far the subject moved is measured on
        the topic profiles; whether that is more than chance is tested on the embeddings
        less their language means when the language stayed (they see far more than 29
        coarse topics), with the profiles confirming at ``kind_alpha`` (the embeddings
        also separate a news page's run on one story from its other news, which is no
        change of subject), and on the profiles alone when the language changed (only
        cross-lingual anchors compare a subject across languages).
        """
        cfg = self.config
        m, n_left = hi - lo, at - lo
        scale = math.sqrt(n_left * (m - n_left) / m)
        regimes = min(n_left, m - n_left) >= cfg.min_posts

        def p_value(name: str, observed: float) -> float:
            return self._p_value(sig, lo, hi, name, observed * scale) if regimes else 1.0

        topic_shift, language_shift = sig.shifts(lo, at, hi)
        language_p = topic_p = 1.0
        if language_shift >= cfg.min_language_shift:
            language_p = p_value("langs_tvd", language_shift)
        language_ok = language_shift >= cfg.min_language_shift and language_p <= cfg.alpha
        if topic_shift >= cfg.min_topic_shift:
            if language_ok:
                topic_p = p_value("profiles_tvd", topic_shift)
            else:
                x = sig.topic
                distance = float(np.linalg.norm(x[lo:at].mean(axis=0) - x[at:hi].mean(axis=0)))
                topic_p = p_value("topic_l2", distance)
                if topic_p <= cfg.alpha:
                    # the embeddings also tell one story from the next: the profiles must
                    # confirm, at the looser level, that the subject moved beyond noise
                    confirm = p_value("profiles_tvd", topic_shift)
                    if confirm > cfg.kind_alpha:
                        topic_p = max(topic_p, confirm)
        return _Change(
            at=at,
            topic_shift=topic_shift,
            language_shift=language_shift,
            topic_p=topic_p,
            language_p=language_p,
            topic_ok=topic_shift >= cfg.min_topic_shift and topic_p <= cfg.alpha,
            language_ok=language_ok,
        )

    def _p_value(self, sig: Signals, lo: int, hi: int, name: str, scaled: float) -> float:
        """Chance that the block's posts, in random order, shift as much somewhere.

        Shuffled copies of the block are split at every admissible place and their largest
        weighted shift is compared with the observed one: the change point was itself
        chosen as a best place, so the null searches as hard as the search did. Shifts are
        weighted by sqrt(t (m - t) / m) so that splits near the ends, whose means are
        noisy, do not dominate the maximum. The null of a block is drawn once and serves
        every split tested in it.

        ``n_permutations`` draws decide; a p-value just above ``alpha`` (up to three times
        it) is refined with four times as many more. A fifth of the draws come first: once
        they alone hold so many shuffles at least as extreme that the p-value of all
        ``n_permutations`` would exceed every level it is compared with (``kind_alpha``,
        three times ``alpha``), whatever the rest hold, that lower bound is returned and
        the rest is not drawn (the same verdicts, for a change that is clearly noise).
        """
        cfg = self.config
        first = -(-cfg.n_permutations // 5)
        null = sig.null(lo, hi, name, first, cfg.min_posts)
        bound = (1 + int((null >= scaled - 1e-6).sum())) / (cfg.n_permutations + 1)
        if bound > max(cfg.kind_alpha, 3 * cfg.alpha):
            return bound
        p = 1.0
        for n in (cfg.n_permutations, 5 * cfg.n_permutations + 4):
            null = sig.null(lo, hi, name, n, cfg.min_posts)
            p = (1 + int((null >= scaled - 1e-6).sum())) / (n + 1)
            if p <= cfg.alpha or p > 3 * cfg.alpha:
                break  # decided; only a p-value just above alpha is worth more draws
        return p

    def _validate(self, sig: Signals, points: list[int]) -> list[_Change]:
        """Remove invalid changes one at a time, weakest first (by the larger of its two
        shifts over their minima), then the bursts. A change whose shifts are both below
        their minima is invalid and weaker than any whose shifts are not: while one is
        left, it goes without testing the others (their permutation tests would be
        drawn for blocks that are about to change)."""
        cfg = self.config
        n = len(sig)
        points = sorted(points)

        def strength(topic: float, language: float, at: int) -> tuple[float, int]:
            return max(topic / cfg.min_topic_shift, language / cfg.min_language_shift), at

        while True:
            bounds = [0, *points, n]
            small = []
            for lo, at, hi in zip(bounds, bounds[1:], bounds[2:]):
                topic, language = sig.shifts(lo, at, hi)
                if topic < cfg.min_topic_shift and language < cfg.min_language_shift:
                    small.append(strength(topic, language, at))
            if small:
                points.remove(min(small)[1])
                continue
            changes = [
                self._test(sig, lo, at, hi) for lo, at, hi in zip(bounds, bounds[1:], bounds[2:])
            ]
            weak = [strength(c.topic_shift, c.language_shift, c.at) for c in changes if not c.valid]
            if weak:
                points.remove(min(weak)[1])
                continue
            burst = self._find_burst(sig, bounds)
            if burst is None:
                return changes
            points = [p for p in points if p not in burst]

    def _find_burst(self, sig: Signals, bounds: list[int]) -> tuple[int, int] | None:
        """Two change points around a short regime whose neighbours do not differ."""
        cfg = self.config
        for i in range(1, len(bounds) - 2):
            start, end = bounds[i], bounds[i + 1]
            shorter = min(start - bounds[i - 1], bounds[i + 2] - end)
            if end - start > max(cfg.max_burst_posts, cfg.max_burst_share * shorter):
                continue
            outer = np.concatenate([np.arange(bounds[i - 1], start), np.arange(end, bounds[i + 2])])
            key = (bounds[i - 1], start, end, bounds[i + 2])
            test = self._compare(sig.subset(outer, key), 0, start - bounds[i - 1], len(outer))
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
        sig = Signals.of(timeline, page_entropy(cfg.seed, timeline.page_id))
        self._tests: dict[tuple[int, int, int], _Change] = {}
        a, b = sig.topic.shape[1], sig.topic.shape[1] + sig.langs.shape[1]
        columns = [sig.topic, sig.langs]
        parts = [(slice(0, a), "l2"), (slice(a, b), "tvd")]
        if sig.content is not sig.topic:  # else the topic's statistic serves for both
            columns.append(sig.content)
            parts.append((slice(b, None), "l2"))
        topic_stat, langs_stat, *content = split_stats(
            np.hstack(columns), positions(n, cfg.min_posts), parts
        )
        content_stat = content[0] if content else topic_stat
        merge_score = content_stat / max(content_stat.max(), 1e-12) + langs_stat / max(
            langs_stat.max(), 1e-12
        )
        points = self._merge(
            self._candidates(sig, "topic", topic_stat) + self._candidates(sig, "langs", langs_stat),
            merge_score,
        )
        changes = self._validate(sig, points) if points else []
        if changes:
            changes = self._refine(sig, changes)
        profiles = sig.profiles
        gaps = timeline.gaps_days()
        bounds = [0, *(c.at for c in changes), n]
        rows = []
        for i, change in enumerate(changes):
            before = slice(bounds[i], bounds[i + 1])
            after = slice(bounds[i + 1], bounds[i + 2])
            rows.append(
                {
                    "page_id": timeline.page_id,
                    "at": timeline.times[change.at],
                    "kind": self._kind(change),
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
                    "before_narratives": narrative_mix(timeline.tags, np.arange(n)[before]),
                    "after_narratives": narrative_mix(timeline.tags, np.arange(n)[after]),
                    "posts_after": after.stop - after.start,
                    "provisional": i == len(changes) - 1
                    and self._may_revert(after.stop - after.start, before.stop - before.start),
                }
            )
        return rows, "ok"

    def _may_revert(self, after: int, before: int) -> bool:
        """Whether a page's last pivot, with ``after`` posts after it and ``before`` in the
        regime before it, is still provisional: short enough that, should the page go back
        to what it posted before, the burst rule would withdraw it (a regime of at most
        ``max_burst_posts`` posts, or ``max_burst_share`` of the shorter neighbour, whose
        neighbours match). The detector reports a pivot from ``min_posts`` posts after it
        on; a later update confirms it (more posts) or withdraws it."""
        cfg = self.config
        return after <= max(cfg.max_burst_posts, cfg.max_burst_share * before)

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

    def _refine(self, sig: Signals, changes: list[_Change]) -> list[_Change]:
        """Move each change to the nearby split that separates its neighbours best on the
        embeddings (the search places changes on a coarser criterion): the content signal
        for a change of language, the topic signal for a change of subject alone."""
        cfg = self.config
        n = len(sig)
        window = max(cfg.merge_within + 2, jump(n))
        points = [c.at for c in changes]
        for i, change in enumerate(changes):
            lo = points[i - 1] if i else 0
            hi = points[i + 1] if i + 1 < len(points) else n
            first = max(lo + cfg.min_posts, change.at - window)
            last = min(hi - cfg.min_posts, change.at + window)
            if first >= last:
                continue
            signal = sig.content if change.language_ok else sig.topic
            t = np.arange(first, last + 1)
            (score,) = split_stats(signal[lo:hi].astype(np.float64), t - lo, [(slice(None), "l2")])
            # the best split; among near-ties, the one closest to where the search put it
            near = np.flatnonzero(score >= score.max() - 1e-9)
            points[i] = int(t[near[np.argmin(np.abs(t[near] - change.at))]])
        if points == [c.at for c in changes]:
            return changes
        bounds = [0, *points, n]
        refined = [
            self._test(sig, bounds[i], bounds[i + 1], bounds[i + 2]) for i in range(len(points))
        ]
        return refined if all(c.valid for c in refined) else changes

    def _examples(self, timeline: Timeline, profiles: np.ndarray, part: slice) -> list[str]:
        """The posts most typical of a regime (closest to its topic mix), in time order."""
        block = profiles[part]
        score = block @ block.mean(axis=0)
        best = np.sort(np.argsort(-score, kind="stable")[: self.config.n_examples])
        return [str(timeline.post_ids[part][i]) for i in best]

    # -- whole datasets -----------------------------------------------------------------

    def fit(
        self, posts: pd.DataFrame, profiles: np.ndarray, embeddings: Any = None
    ) -> PivotDetector:
        """Detect pivots on every page of scored ``posts`` with their topic ``profiles`` and,
        best, their ``embeddings`` (without them, topic changes are found and tested on the
        profiles alone, which see less).

        Pages are independent (each draws its permutations from a generator seeded by its
        own id), so they are shared among ``n_jobs`` worker processes with the same result
        as in one."""
        if len(profiles) != len(posts):
            raise ValueError("profiles must have one row per post")
        if embeddings is not None and len(embeddings) != len(posts):
            raise ValueError("embeddings must have one row per post")
        jobs = self._jobs(len(posts))
        if jobs == 1:
            results = self._detect_pages(page_timelines(posts, profiles, embeddings))
        else:
            results = self._detect_in_workers(jobs, posts, profiles, embeddings)
        self.pivots_ = pivot_frame([row for page in results for row in page.rows])
        self.page_status_ = {page.page_id: page.status for page in results}
        #: page id -> the traceback of the unexpected error that page met
        self.page_errors_ = {page.page_id: page.trace for page in results if page.trace}
        for page_id, trace in self.page_errors_.items():
            logger.error(
                "pivot detection failed on page %r; its pivot_status says %r and the run "
                "goes on without its pivots. Please report this with the traceback:\n%s",
                page_id,
                self.page_status_[page_id],
                trace,
            )
        return self

    def _detect_in_workers(
        self, jobs: int, posts: pd.DataFrame, profiles: np.ndarray, embeddings: Any
    ) -> list[_PageResult]:
        """:meth:`_detect_pages` in ``jobs`` worker processes, which read the pages' signals
        themselves: only the pages' rows, ids, times, languages and tags travel with each
        batch. The profiles (and embeddings held in memory) are written page after page to
        files in a temporary folder, each batch's part just before the batch is handed
        out (the first workers start while the rest is written), and the workers read them
        as memory maps, which joblib sends by name (its own dump of a large array took
        several times as long); a RowFile of embeddings (the run's vectors file) is
        reopened by each worker."""
        import tempfile

        from joblib import Parallel, delayed

        n = len(timed_rows(posts))
        if n == 0:
            return []
        with tempfile.TemporaryDirectory(prefix="narratives-pivots-") as folder:
            files = [_PageOrdered(Path(folder) / "profiles", profiles, n)]
            shared = embeddings  # None, or a RowFile the workers reopen
            if embeddings is not None and not isinstance(embeddings, RowFile):
                files.append(_PageOrdered(Path(folder) / "embeddings", embeddings, n))
                shared = files[-1].map

            def tasks() -> Iterator[Any]:
                for batch in _batches(page_timelines(posts, None)):
                    for f in files:
                        f.write(batch.first, batch.rows)
                    yield delayed(_detect_pages)(self.config, batch, files[0].map, shared)

            try:
                batches = Parallel(n_jobs=jobs, return_as="generator")(tasks())
                return [page for batch in batches for page in batch]
            finally:
                for f in files:
                    f.close()

    def _jobs(self, n_posts: int) -> int:
        """Worker processes for ``n_posts`` posts: ``n_jobs``, or by default all cores once
        there are enough posts to repay starting them."""
        if self.n_jobs is not None:
            return max(1, self.n_jobs)
        from joblib import cpu_count

        return cpu_count() if n_posts >= _PARALLEL_POSTS else 1

    def _detect_pages(self, timelines: Iterable[Timeline]) -> list[_PageResult]:
        """The result of each page, in this process. Linear algebra on a page's small
        matrices runs on one thread: more only costs (and workers share the cores
        already)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            return [_PageResult.of(self, t) for t in timelines]

    def _check_fitted(self) -> None:
        if not hasattr(self, "pivots_"):
            raise RuntimeError("this PivotDetector is not fitted yet; call fit(posts, profiles)")

    def summary(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "config": asdict(self.config),
            "pages": len(self.page_status_),
            "pages_too_few_posts": sum(
                s.startswith("too few posts") for s in self.page_status_.values()
            ),
            "pages_with_errors": len(self.page_errors_),
            "pivots": len(self.pivots_),
        }


class _PageOrdered:
    """The rows of ``values`` in page order, in a file at ``path`` of n rows written a
    batch at a time with plain writes (filling a new memory map page by page takes several
    times as long), and ``map``, the file as a read-only memory map."""

    def __init__(self, path: Path, values: Any, n: int) -> None:
        self.values = values if isinstance(values, np.ndarray) else np.asarray(values, np.float32)
        self._row_bytes = self.values.dtype.itemsize * int(np.prod(self.values.shape[1:]))
        self._file = path.open("w+b")
        self._file.truncate(n * self._row_bytes)
        self.map = np.memmap(path, self.values.dtype, "r", shape=(n, *self.values.shape[1:]))

    def write(self, first: int, rows: np.ndarray) -> None:
        """The values of ``rows`` from position ``first`` on."""
        self._file.seek(first * self._row_bytes)
        self._file.write(np.ascontiguousarray(self.values[rows]).data)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class _PageResult:
    """What detection made of one page: its pivot rows and status, and where it met an
    unexpected error, the traceback (``status`` then says ``error: <type>: <message>``)."""

    page_id: str
    rows: list[dict]
    status: str
    trace: str | None = None

    @classmethod
    def of(cls, detector: PivotDetector, timeline: Timeline) -> _PageResult:
        """:meth:`PivotDetector.detect_page`, with an unexpected error kept to the page: a
        bug met on one page of a million must not lose the run (the detector logs it)."""
        try:
            return cls(timeline.page_id, *detector.detect_page(timeline))
        except Exception as exc:
            import traceback

            return cls(timeline.page_id, [], page_error_status(exc), traceback.format_exc())


def _detect_pages(
    config: PivotConfig, batch: _Batch, profiles: np.ndarray, embeddings: Any
) -> list[_PageResult]:
    """A worker's share of :meth:`PivotDetector.fit`: pages without their signals, read
    here from ``profiles`` and ``embeddings`` in page order (or, from a RowFile, by the
    posts' rows)."""
    detector = PivotDetector(config, n_jobs=1)
    out = []
    # joblib's workers already run BLAS on one thread each (threadpoolctl's limits cost
    # milliseconds a call: not once per batch)
    for timeline, span in batch.timelines():
        timeline.profiles = profiles[span]
        if isinstance(embeddings, RowFile):
            timeline.embeddings = embeddings[timeline.rows]
        elif embeddings is not None:
            timeline.embeddings = embeddings[span]
        out.append(_PageResult.of(detector, timeline))
    return out


def _batches(timelines: Iterable[Timeline]) -> Iterator[_Batch]:
    """Consecutive pages, about ``_BATCH_POSTS`` posts at a time."""
    batch: list[Timeline] = []
    size = first = 0
    for timeline in timelines:
        batch.append(timeline)
        size += len(timeline)
        if size >= _BATCH_POSTS:
            yield _Batch.of(batch, first)
            batch, first, size = [], first + size, 0
    if batch:
        yield _Batch.of(batch, first)


@dataclass
class _Batch:
    """Pages on their way to a worker, without their signals, their arrays end to end:
    a handful of arrays to send, not five per page (each costs joblib's reducers more than
    its data). ``first``: where the first page's posts start in page order."""

    first: int
    page_ids: list[str]
    ends: np.ndarray
    rows: np.ndarray
    post_ids: np.ndarray
    times: np.ndarray
    langs: np.ndarray
    tags: np.ndarray | None

    @classmethod
    def of(cls, timelines: list[Timeline], first: int) -> _Batch:
        def joined(field: str) -> np.ndarray:
            return np.concatenate([getattr(t, field) for t in timelines])

        tags = [t.tags for t in timelines if t.tags is not None]
        return cls(
            first,
            [t.page_id for t in timelines],
            np.cumsum([len(t) for t in timelines]),
            joined("rows"),
            joined("post_ids"),
            joined("times"),
            joined("langs"),
            np.concatenate(tags) if len(tags) == len(timelines) else None,
        )

    def timelines(self) -> Iterator[tuple[Timeline, slice]]:
        """Each page, without signals, and where its posts lie in page order."""
        for page_id, a, b in zip(self.page_ids, np.r_[0, self.ends[:-1]], self.ends):
            part = slice(int(a), int(b))
            page = Timeline(
                page_id,
                self.rows[part],
                self.post_ids[part],
                self.times[part],
                self.langs[part],
                None,
                tags=None if self.tags is None else self.tags[part],
            )
            yield page, slice(self.first + int(a), self.first + int(b))


def _dominant(langs: np.ndarray) -> str | None:
    """The most frequent known language (the first in alphabetical order among ties)."""
    counts = Counter(x for x in known_languages(langs) if x)
    if not counts:
        return UNDETERMINED if len(langs) else None
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


_TOPIC_NAMES = list(TOPICS)


def _topic_name(profiles: np.ndarray) -> str:
    return _TOPIC_NAMES[int(np.argmax(profiles.mean(axis=0)))]


def pivot_frame(rows: list[dict]) -> pd.DataFrame:
    """Pivot rows as a DataFrame with the contract's columns first."""
    columns = [f.name for f in schema.PIVOTS]
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[us, UTC]")
    return frame
