"""A page's signals for pivot detection, and the permutation nulls that test a change.

:class:`Signals` reads one page's timeline (:mod:`narratives.pivots.timelines`) as
signals over its posts in time order: its embeddings (on a short page in their full
dimension, through their Gram matrix; a long page's projected on its own principal
directions), the same less each language's mean (the subject without the language it is
written in), its topic profiles over cross-lingual anchors, and its languages, one-hot.
It gives the weighted shift of each signal at every split of a block of posts, and that
statistic's largest value over the splits of shuffled copies of the block (the nulls,
compiled in :mod:`narratives.pivots._kernels`), seeded per page and block so that a
page's result depends on nothing else. :mod:`narratives.pivots.detector` searches and
tests changes with them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from narratives.pivots.timelines import Timeline

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
#: The statistics whose permutation nulls a page's blocks draw (see :meth:`Signals.null`).
_STATISTICS = ("topic_l2", "langs_l2", "langs_tvd", "profiles_tvd")


def page_entropy(seed: int, page_id: str) -> tuple[int, ...]:
    """The seed of a page's random draws: a page's result does not depend on the other
    pages, and each block's shuffles come from a generator seeded by this and the block
    (:meth:`Signals.null`), so they do not depend on which tests ran before."""
    digest = hashlib.blake2b(page_id.encode("utf-8"), digest_size=8).digest()
    return (seed, int.from_bytes(digest, "little"))


def positions(m: int, min_size: int, grid: bool = False) -> np.ndarray:
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
    """Splits t of a block of m posts (see :func:`positions`) and the factors of the
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
    t = positions(m, min_size, grid).astype(np.int64)
    arrays: list[np.ndarray] = [t, *(f.astype(np.float32) for f in _split_factors(m, t))]
    for a in arrays:
        a.flags.writeable = False
    return _Splits(*arrays)


def split_stats(x: np.ndarray, t: np.ndarray, parts: list[tuple[slice, str]]) -> list[np.ndarray]:
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


def jump(n: int) -> int:
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


def known_languages(langs: Iterable[Any]) -> list[str]:
    """Each post's language as a string, "" where it is missing or undetermined."""
    return [str(x) if x and x != UNDETERMINED else "" for x in langs]


def _codes(names: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct names, sorted, and each name's index among them."""
    vocab = sorted(set(names))
    index = {name: i for i, name in enumerate(vocab)}
    return vocab, np.array([index[name] for name in names], dtype=np.intp)


def _language_signal(langs: np.ndarray) -> np.ndarray:
    """One-hot languages; an undetermined post gets the page's language mix."""
    vocab, codes = _codes(known_languages(langs))
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


class Signals:
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
    def of(cls, timeline: Timeline, entropy: tuple[int, ...]) -> Signals:
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

    def subset(self, rows: np.ndarray, key: tuple[int, ...]) -> Signals:
        """The posts at ``rows`` as a page of their own, with fresh nulls drawn from
        generators seeded by the page's seed, its length and ``key``, which names the
        subset."""
        return Signals(
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


__all__ = [
    "UNDETERMINED",
    "Signals",
    "jump",
    "known_languages",
    "page_entropy",
    "positions",
    "split_stats",
]
