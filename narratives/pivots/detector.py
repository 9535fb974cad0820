"""Pivot detection: abrupt, lasting changes of a page's topic or language.

Each page is read as signals over its posts in time order (see :class:`_Signals`): its
embeddings (on a short page in their full dimension, through its Gram matrix; a long
page's projected on its own principal directions); the same less each language's mean,
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

import functools
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives import schema
from narratives.errors import page_error_status
from narratives.pivots.timelines import Timeline, page_timelines
from narratives.pivots.topics import TOPICS
from narratives.rowfile import RowFile
from narratives.scored import narrative_mix, timed_rows

logger = logging.getLogger(__name__)

UNDETERMINED = "und"
#: Pages longer than this many posts are searched on a coarser grid (every n // this).
_POSTS_PER_JUMP = 500
#: Permutation nulls split long blocks at every post near the ends, sparsely between.
_GRID_EDGE, _GRID_MIDDLE = 100, 200
#: Pages up to this many posts are read in the full embedding space, the permutation
#: nulls of their topic signal computed from its Gram matrix (m^2 additions per shuffle of
#: m posts, whatever the dimension); longer ones are projected on their principal
#: directions first (from about 100 posts on, the projection costs less than the n-column
#: coordinates cost PELT and the nulls; the harness finds the same pivots either way).
_GRAM_POSTS = 128
#: Principal directions of a long page's embeddings that its content signals keep.
_PROJECTION_DIMS = 32
#: A direction in which a page's posts vary less than this (in squared distance, relative
#: to their squared norm) is no direction: float32 embeddings of distinct texts differ
#: by far more, repeated texts not at all.
_RANK_TOL = 1e-9
#: Blocks of up to this many posts keep their shuffles, to compute each statistic's null
#: only when asked (int32 rows: at most 10 MB for 500 shuffles).
_KEEP_SHUFFLES_POSTS = 5_000
#: Longer blocks draw their shuffles at most this many post indices at a time.
_SHUFFLE_ELEMENTS = 2_000_000
#: Inputs of fewer posts are searched in this process: starting the workers (a new
#: interpreter each, importing numpy, pandas, ruptures and the compiled kernel) takes
#: about as long as two processes save on 50,000 posts of short pages.
_PARALLEL_POSTS = 50_000
#: The statistics whose permutation nulls a page's blocks draw (see :meth:`_Signals.null`).
_STATISTICS = ("topic_l2", "langs_l2", "langs_tvd", "profiles_tvd")
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


def _page_entropy(seed: int, page_id: str) -> tuple[int, ...]:
    """The seed of a page's random draws: a page's result does not depend on the other
    pages, and each block's shuffles come from a generator seeded by this and the block
    (:meth:`_Signals.null`), so they do not depend on which tests ran before."""
    digest = hashlib.blake2b(page_id.encode("utf-8"), digest_size=8).digest()
    return (seed, int.from_bytes(digest, "little"))


def _positions(m: int, min_size: int, grid: bool = False) -> np.ndarray:
    """Admissible splits t of m posts (min_size each side). With ``grid``, long blocks are
    split near both ends at every post and in between at about 200 evenly spaced places:
    the weighted shift moves slowly in the middle, and the permutation nulls that take its
    maximum cost a fraction as much."""
    t = np.arange(min_size, m - min_size + 1)
    if grid and len(t) > 2 * _GRID_EDGE + _GRID_MIDDLE:
        step = -(-len(t) // _GRID_MIDDLE)
        t = np.unique(np.r_[t[:_GRID_EDGE], t[_GRID_EDGE:-_GRID_EDGE:step], t[-_GRID_EDGE:]])
    return t


@dataclass(frozen=True)
class _Splits:
    """Splits t of a block of m posts (see :func:`_positions`) and the factors of the
    weighted shift at each: m / (t (m - t)), 1 / (m - t) and sqrt(t (m - t) / m)."""

    t: np.ndarray
    scale_left: np.ndarray
    scale_total: np.ndarray
    weight: np.ndarray


def _split_factors(m: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At splits t of m posts: m / (t (m - t)) and 1 / (m - t), which turn the running sum
    before t and the total into the difference of the two sides' means, and the weight
    sqrt(t (m - t) / m) of that difference."""
    tf = t.astype(np.float64)
    return m / (tf * (m - tf)), 1.0 / (m - tf), np.sqrt(tf * (m - tf) / m)


@functools.lru_cache(maxsize=4096)
def _splits(m: int, min_size: int, grid: bool) -> _Splits:
    """The splits of a block of m posts (factors in float32, as the compiled nulls read
    them), computed once per size: pages share them."""
    t = _positions(m, min_size, grid).astype(np.int64)
    arrays: list[np.ndarray] = [t, *(f.astype(np.float32) for f in _split_factors(m, t))]
    for a in arrays:
        a.flags.writeable = False
    return _Splits(*arrays)


def _split_stats(x: np.ndarray, t: np.ndarray, parts: list[tuple[slice, str]]) -> list[np.ndarray]:
    """Weighted shifts of a signal x (time on axis 0, features last) at splits t.

    For each (columns, norm) in ``parts``: sqrt(t (m - t) / m) times the distance between
    the means before and after the split, as total variation (``"tvd"``) or Euclidean
    (``"l2"``) distance. Squared, the Euclidean one is the drop in squared error the split
    gives (the linear kernel's cost in ruptures). Returns arrays of shape (len(t), ...).
    """
    m = x.shape[0]
    csum = np.cumsum(x, axis=0)
    scale_left, scale_total, weight = (f.astype(x.dtype) for f in _split_factors(m, t))
    # mean before minus mean after = left * m / (t (m - t)) - total / (m - t)
    diff = csum[t - 1] * scale_left[:, None]
    diff -= csum[-1] * scale_total[:, None]
    out = []
    for columns, norm in parts:
        d = diff[:, columns]
        dist = 0.5 * np.abs(d).sum(axis=1) if norm == "tvd" else np.sqrt((d * d).sum(axis=1))
        out.append(dist * weight)
    return out


def _shuffles(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """n shuffled orders of m posts, one per row (drawn a row at a time, so drawing 40 and
    then 60 gives the same 100 orders as drawing 100 at once; compiled,
    :func:`narratives.pivots._kernels.shuffles`)."""
    from narratives.pivots._kernels import shuffles

    out = np.empty((n, m), dtype=np.int32)
    shuffles(rng.random((n, max(m - 1, 0))), out)
    return out


def _null_maxima(
    x: np.ndarray, parts: list[tuple[slice, str]], orders: np.ndarray, min_size: int, lo: int = 0
) -> list[np.ndarray]:
    """Largest weighted shift over all splits of the block of x from row ``lo`` (as many
    posts as the ``orders`` have columns) taken in each of the ``orders`` (rows of
    shuffled post indices), per part.

    The running sums of each shuffled copy are accumulated one post at a time and the
    distances computed at the splits looked at, in compiled code
    (:func:`narratives.pivots._kernels.split_maxima`). :func:`_gram_null_maxima` computes the same
    for a Euclidean signal from its Gram matrix.
    """
    from narratives.pivots._kernels import split_maxima

    s = _splits(orders.shape[1], min_size, True)
    x = np.asarray(x, dtype=np.float32)
    out = []
    for columns, norm in parts:  # the same shuffles for every part
        start, stop, _ = columns.indices(x.shape[1])
        maxima = np.zeros(len(orders), dtype=np.float32)
        split_maxima(
            x, lo, orders, s.t, s.scale_left, s.scale_total, s.weight, start, stop,
            norm == "tvd", maxima,
        )  # fmt: skip
        out.append(maxima)
    return out


def _gram_null_maxima(
    gram: np.ndarray, orders: np.ndarray, min_size: int, lo: int = 0
) -> np.ndarray:
    """:func:`_null_maxima` of one Euclidean (``"l2"``) signal, from the Gram matrix of the
    page's posts (``gram``, n x n; the block from post ``lo``): exact in the signal's full
    dimension at a cost that does not grow with it
    (:func:`narratives.pivots._kernels.gram_split_maxima`). The block is centred as a page's
    languages are taken out, with all its posts in one group."""
    from narratives.pivots._kernels import gram_less_group_means, gram_split_maxima

    m = orders.shape[1]
    block = np.ascontiguousarray(gram[lo : lo + m, lo : lo + m])
    centred = gram_less_group_means(block, np.zeros(m, dtype=np.intp), 1)
    out = np.zeros(len(orders), dtype=np.float64)
    gram_split_maxima(centred, orders, _splits(m, min_size, True).t, out)
    return out.astype(np.float32)


def _jump(n: int) -> int:
    """Spacing of the change points PELT considers on a page of n posts."""
    return max(1, n // _POSTS_PER_JUMP)


def _project(x: np.ndarray, dims: int, scale: float) -> np.ndarray:
    """x centred and expressed in its top ``dims`` principal directions (a long page's):
    distances between means are kept where the page varies most, at a fraction of the cost
    of the full embedding. Deterministic: a randomised SVD with a fixed sketch.

    Only directions in which the page varies at all are kept: those whose variance is at
    least :data:`_RANK_TOL` times ``scale`` (the embeddings' mean squared norm, before
    any mean is taken out). A page that repeats a few texts spans a few directions, and
    one of identical posts none (it gets a single column of zeros)."""
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0)
    d = x.shape[1]
    sketch = np.random.default_rng(0).standard_normal((d, dims + 8)).astype(np.float32)
    q, _ = np.linalg.qr(x @ (x.T @ (x @ sketch)))  # one power iteration
    b = q.T @ x
    values, vectors = np.linalg.eigh((b @ b.T).astype(np.float64))
    values, vectors = values[::-1][:dims], vectors[:, ::-1][:, :dims]
    # eigenvalues are sums of squared coordinates over the page's posts
    rank = int((values > _RANK_TOL * scale * len(x)).sum())
    if rank == 0:
        return np.zeros((len(x), 1), dtype=np.float32)
    basis = (b.T @ vectors[:, :rank]) / np.sqrt(values[:rank])
    return x @ basis.astype(np.float32)


def _coordinates(gram: np.ndarray, scale: float) -> np.ndarray:
    """A short page's signal in at most n coordinates, from its Gram matrix (n x n, of the
    centred signal): a factor X with X X^T = gram has the inner products, and so the
    distances between means, of the signal in its full dimension, at the cost of n columns
    instead of 384.

    The factor is the pivoted Cholesky factorisation's (LAPACK's dpstrf), which stops at
    the matrix's numerical rank: a centred page's Gram matrix is singular, and far more so
    when its posts repeat a few texts (spam and ad pages do), are all identical, or differ
    only by language once each language's mean is taken out. Pivots below ``_RANK_TOL``
    times ``scale`` (the posts' mean squared norm before centring: a pivot is the squared
    distance of a post from the span of the posts chosen before it) end the
    factorisation; a page that varies in no direction gets one column of zeros."""
    from scipy.linalg.lapack import dpstrf

    n = len(gram)
    factor, pivots, rank, info = dpstrf(gram, lower=1, tol=_RANK_TOL * max(scale, 1e-30))
    if info < 0:  # pragma: no cover - an argument LAPACK refuses: a bug here
        raise ValueError(f"dpstrf: illegal argument {-info}")
    if rank == 0:
        return np.zeros((n, 1), dtype=np.float32)
    coordinates = np.empty((n, rank), dtype=np.float32)
    coordinates[pivots - 1] = np.tril(factor)[:, :rank]
    return coordinates


def _known_languages(langs: Iterable[Any]) -> list[str]:
    """Each post's language as a string, "" where it is missing or undetermined."""
    return [str(x) if x and x != UNDETERMINED else "" for x in langs]


def _codes(names: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct names, sorted, and each name's index among them."""
    vocab = sorted(set(names))
    index = {name: i for i, name in enumerate(vocab)}
    return vocab, np.array([index[name] for name in names], dtype=np.intp)


def _language_signal(langs: np.ndarray) -> np.ndarray:
    """One-hot languages; an undetermined post gets the page's language mix."""
    vocab, codes = _codes(_known_languages(langs))
    known = np.array(vocab) != ""
    if not known.any():
        return np.zeros((len(langs), 1))
    onehot = np.eye(len(vocab))[codes][:, known]
    unknown = ~known[codes]
    if unknown.any():
        onehot[unknown] = onehot[~unknown].mean(axis=0)
    return onehot


def _without_language_means(x: np.ndarray, langs: np.ndarray) -> np.ndarray:
    """x less the mean of its language's posts: what is left of an embedding once the
    language it is written in is taken out (e5 places unrelated posts of one language
    closer together than a post and its translation)."""
    x = np.asarray(x, dtype=np.float64)
    _, codes = _codes([str(v) for v in langs])
    members = np.eye(codes.max() + 1)[codes]  # (n, languages) one-hot
    return x - members @ ((members.T @ x) / members.sum(axis=0)[:, None])


class _Signals:
    """One page's signals, oldest post first, and the permutation nulls of its blocks.

    * ``content``: embeddings (centred; a long page's projected), language identity
      included: where a change lies, and which of nearby candidates splits best;
    * ``topic``: embeddings less each language's mean: whether the subject changed within
      a language (the search for topic changes, and their test); on a short page, its
      ``gram`` matrix serves the permutation nulls;
    * ``profiles``: topic distributions over cross-lingual anchors: how far the subject
      moved (``topic_shift``), and whether it moved when the language changed too;
    * ``langs``: languages one-hot.

    Without embeddings, the topic profiles stand in for ``topic``, and together with the
    languages for ``content``.
    """

    def __init__(
        self,
        content: np.ndarray,
        topic: np.ndarray,
        profiles: np.ndarray,
        langs: np.ndarray,
        entropy: tuple[int, ...],
        gram: np.ndarray | None = None,
    ) -> None:
        self.content, self.topic, self.profiles, self.langs = content, topic, profiles, langs
        self.entropy = entropy
        self.gram = gram
        # the signals the permutation tests shuffle, side by side: one shuffle serves all
        # (the topic, where its Gram matrix does not stand in for it)
        own = [] if gram is not None else [topic]
        self._joint = np.hstack([*own, langs, profiles], dtype=np.float32)
        a = 0 if gram is not None else topic.shape[1]
        b = a + langs.shape[1]
        self._parts = {
            "langs_l2": (slice(a, b), "l2"),
            "langs_tvd": (slice(a, b), "tvd"),
            "profiles_tvd": (slice(b, None), "tvd"),
        }
        if gram is None:
            self._parts["topic_l2"] = (slice(0, a), "l2")
        self._nulls: dict[tuple[int, int], _Nulls] = {}
        #: running sums of the topic profiles and languages (row i: the first i posts), for
        #: the mean mixes of any block
        self._mixes = np.concatenate(
            [
                np.zeros((1, profiles.shape[1] + langs.shape[1])),
                np.cumsum(np.hstack([profiles, langs], dtype=np.float64), axis=0),
            ]
        )

    @classmethod
    def of(cls, timeline: Timeline, entropy: tuple[int, ...]) -> _Signals:
        profiles = np.asarray(timeline.profiles, dtype=np.float64)
        langs = _language_signal(timeline.langs)
        if timeline.embeddings is None:
            topic = profiles.astype(np.float32)
            content = np.hstack([topic, langs], dtype=np.float32)
            return cls(content, topic, profiles, langs, entropy)
        emb = np.asarray(timeline.embeddings, dtype=np.float32)
        multilingual = len(set(map(str, timeline.langs))) > 1
        # the size of a post's vector: what "no variation" is measured against
        scale = float(np.einsum("ij,ij->", emb, emb, dtype=np.float64)) / len(emb)
        if len(emb) > _GRAM_POSTS:
            content = _project(emb, _PROJECTION_DIMS, scale)
            if multilingual:
                less = _without_language_means(emb, timeline.langs)
                topic = _project(less, _PROJECTION_DIMS, scale)
            else:
                topic = content
            return cls(content, topic, profiles, langs, entropy)
        from narratives.pivots._kernels import gram_less_group_means

        centred = emb.astype(np.float64)
        centred -= centred.mean(axis=0)
        gram = centred @ centred.T
        content = topic = _coordinates(gram, scale)
        if multilingual:  # the Gram matrix of the embeddings less their language's mean
            vocab, codes = _codes([str(v) for v in timeline.langs])
            gram = gram_less_group_means(gram, codes, len(vocab))
            topic = _coordinates(gram, scale)
        return cls(content, topic, profiles, langs, entropy, gram)

    def __len__(self) -> int:
        return len(self.profiles)

    def subset(self, rows: np.ndarray, key: tuple[int, ...]) -> _Signals:
        """The posts at ``rows`` as a page of their own, with fresh nulls drawn from
        generators seeded by the page's seed, its length and ``key``, which names the
        subset."""
        return _Signals(
            self.content[rows],
            self.topic[rows],
            self.profiles[rows],
            self.langs[rows],
            (*self.entropy, len(self), *key),
            None if self.gram is None else self.gram[np.ix_(rows, rows)],
        )

    def shifts(self, lo: int, at: int, hi: int) -> tuple[float, float]:
        """How far the topic mix and the language mix move between [lo, at) and [at, hi)
        (total variation distances)."""
        mixes = self._mixes
        gap = np.abs((mixes[at] - mixes[lo]) / (at - lo) - (mixes[hi] - mixes[at]) / (hi - at))
        k = self.profiles.shape[1]
        return float(0.5 * gap[:k].sum()), float(0.5 * gap[k:].sum())

    def null(self, lo: int, hi: int, name: str, n: int, min_size: int) -> np.ndarray:
        """At least n permutation maxima of the weighted shift of block [lo, hi) for the
        named statistic (``topic_l2``, ``langs_l2``, ``langs_tvd`` or ``profiles_tvd``).

        A block's shuffles are drawn as they are asked for (the first n orders are the same
        whether drawn at once or in parts) and serve all its statistics; each statistic is
        computed for as many orders as asked for (a page without a candidate change asks
        only for the penalty's), from the shuffles kept. On blocks too long to keep their
        shuffles, every statistic is computed as they are drawn.
        """
        if (lo, hi) not in self._nulls:
            rng = np.random.default_rng([*self.entropy, lo, hi])
            self._nulls[(lo, hi)] = _Nulls(rng)
        block = self._nulls[(lo, hi)]
        m = hi - lo
        if block.drawn < n:
            more = n - block.drawn
            block.drawn += more
            if m > _KEEP_SHUFFLES_POSTS:  # compute everything now, keep nothing
                chunk = max(1, _SHUFFLE_ELEMENTS // m)
                for start in range(0, more, chunk):
                    orders = _shuffles(block.rng, m, min(chunk, more - start))
                    fresh = self._maxima(lo, hi, list(_STATISTICS), orders, min_size)
                    for key, values in fresh.items():
                        block.maxima[key] = np.concatenate(
                            [block.maxima.get(key, np.empty(0)), values]
                        )
            else:
                orders = _shuffles(block.rng, m, more)
                block.orders = (
                    orders if block.orders is None else np.concatenate([block.orders, orders])
                )
        have = block.maxima.get(name, np.empty(0))
        if len(have) < n:
            assert block.orders is not None
            fresh = self._maxima(lo, hi, [name], block.orders[len(have) : n], min_size)
            have = block.maxima[name] = np.concatenate([have, fresh[name]])
        return have[:n]

    def _maxima(
        self, lo: int, hi: int, names: list[str], orders: np.ndarray, min_size: int
    ) -> dict[str, np.ndarray]:
        out = {}
        if "topic_l2" in names and self.gram is not None:
            out["topic_l2"] = _gram_null_maxima(self.gram, orders, min_size, lo)
            names = [k for k in names if k != "topic_l2"]
        if names:  # the running sums cost only the columns these statistics read
            parts = [self._parts[k] for k in names]
            out.update(zip(names, _null_maxima(self._joint, parts, orders, min_size, lo)))
        return out


@dataclass
class _Nulls:
    """A block's permutation nulls: its generator, shuffles drawn, kept shuffles, maxima
    per statistic."""

    rng: np.random.Generator
    drawn: int = 0
    orders: np.ndarray | None = None
    maxima: dict[str, np.ndarray] = field(default_factory=dict)


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

    def _candidates(self, sig: _Signals, name: str, stat: np.ndarray) -> list[int]:
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
        algo = rpt.KernelCPD(kernel="linear", min_size=cfg.min_posts, jump=_jump(n))
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

    def _test(self, sig: _Signals, lo: int, at: int, hi: int) -> _Change:
        """:meth:`_compare`, remembered per page: validation asks again after each removal."""
        key = (lo, at, hi)
        if key not in self._tests:
            self._tests[key] = self._compare(sig, lo, at, hi)
        return self._tests[key]

    def _compare(self, sig: _Signals, lo: int, at: int, hi: int) -> _Change:
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

    def _p_value(self, sig: _Signals, lo: int, hi: int, name: str, scaled: float) -> float:
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

    def _validate(self, sig: _Signals, points: list[int]) -> list[_Change]:
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

    def _find_burst(self, sig: _Signals, bounds: list[int]) -> tuple[int, int] | None:
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
        sig = _Signals.of(timeline, _page_entropy(cfg.seed, timeline.page_id))
        self._tests: dict[tuple[int, int, int], _Change] = {}
        a, b = sig.topic.shape[1], sig.topic.shape[1] + sig.langs.shape[1]
        columns = [sig.topic, sig.langs]
        parts = [(slice(0, a), "l2"), (slice(a, b), "tvd")]
        if sig.content is not sig.topic:  # else the topic's statistic serves for both
            columns.append(sig.content)
            parts.append((slice(b, None), "l2"))
        topic_stat, langs_stat, *content = _split_stats(
            np.hstack(columns), _positions(n, cfg.min_posts), parts
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

    def _refine(self, sig: _Signals, changes: list[_Change]) -> list[_Change]:
        """Move each change to the nearby split that separates its neighbours best on the
        embeddings (the search places changes on a coarser criterion): the content signal
        for a change of language, the topic signal for a change of subject alone."""
        cfg = self.config
        n = len(sig)
        window = max(cfg.merge_within + 2, _jump(n))
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
            (score,) = _split_stats(signal[lo:hi].astype(np.float64), t - lo, [(slice(None), "l2")])
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
    counts = Counter(x for x in _known_languages(langs) if x)
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
