"""The pivot detector's compiled loops (numba): shuffles of a block of a page's posts,
the running sums of each shuffled copy, and at every split looked at, the weighted
distance between the means before and after it, per part of the signal (or, for a signal
given by its Gram matrix, from the squared norm of the running sum; see
:func:`narratives.pivots.signals._null_maxima`); and a short page's Gram matrix less its
languages' means.

Kept apart so that ``import narratives`` does not pay for importing numba; the compiled
code is cached on disk (``cache=True``: beside this file, or numba's user cache folder)
after the first run.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _shuffles(uniform: np.ndarray, out: np.ndarray) -> None:
    """Fill each row of ``out`` (b, m) with a shuffled order of 0..m-1 (Fisher-Yates), its
    swaps drawn from the same row of ``uniform`` (b, m - 1), numbers in [0, 1)."""
    b, m = out.shape
    for p in range(b):
        for i in range(m):
            out[p, i] = i
        for i in range(m - 1, 0, -1):
            j = min(int(uniform[p, m - 1 - i] * (i + 1)), i)
            out[p, i], out[p, j] = out[p, j], out[p, i]


def _split_maxima(
    x: np.ndarray,  # (n, dim) float32: the page's signals
    lo: int,  # the block: rows lo..lo+m-1 of x
    orders: np.ndarray,  # (b, m) int32: each row a shuffled order of the m posts
    t: np.ndarray,  # (T,) int64: splits looked at, increasing
    scale_left: np.ndarray,  # (T,) float32: m / (t (m - t))
    scale_total: np.ndarray,  # (T,) float32: 1 / (m - t)
    weight: np.ndarray,  # (T,) float32: sqrt(t (m - t) / m)
    start: int,  # the part of the signal: columns start..stop-1
    stop: int,
    tvd: bool,  # total variation (else Euclidean) distance
    out: np.ndarray,  # (b,) float32: the maxima
) -> None:
    """One part of the signal at a time: its loops then run on the SIMD units (looping over
    several parts of either distance inside was four times slower)."""
    b, m = orders.shape
    d = stop - start
    total = np.zeros(d, np.float32)
    for i in range(m):
        for j in range(d):
            total[j] += x[lo + i, start + j]
    last = t[t.shape[0] - 1]
    running = np.empty(d, np.float32)
    for p in range(b):
        running[:] = 0.0
        best = np.float32(0.0)
        k = 0
        for i in range(last):
            row = x[lo + orders[p, i], start:stop]
            for j in range(d):
                running[j] += row[j]
            if t[k] != i + 1:
                continue
            # mean before minus mean after = left * m / (t (m - t)) - total / (m - t)
            a, c = scale_left[k], scale_total[k]
            s = np.float32(0.0)
            if tvd:
                for j in range(d):
                    s += abs(running[j] * a - total[j] * c)
                s *= np.float32(0.5)
            else:
                for j in range(d):
                    v = running[j] * a - total[j] * c
                    s += v * v
                s = np.sqrt(s)
            s *= weight[k]
            if s > best:
                best = s
            k += 1
        out[p] = best


def _gram_split_maxima(
    centred: np.ndarray,  # (m, m) float64: inner products of the block's posts, centred
    orders: np.ndarray,  # (b, m) int32: each row a shuffled order of the m posts
    t: np.ndarray,  # (T,) int64: splits looked at, increasing
    out: np.ndarray,  # (b,) float64, zeros: the maxima
) -> None:
    """The same maxima for one Euclidean signal given by its Gram matrix: with the block
    centred, the squared norm S of the running sum of the first t posts gives the weighted
    shift sqrt(S m / (t (m - t))), and S grows by 2 <running sum, x> + |x|^2 with each post
    x, the first term read off the running sum of the Gram rows of the posts taken (m
    additions a post, whatever the signal's dimension)."""
    b, m = orders.shape
    last = t[t.shape[0] - 1]
    taken = np.empty(m)  # the sum of the rows of the posts already taken
    for p in range(b):
        taken[:] = 0.0
        s = 0.0
        k = 0
        for i in range(last):
            r = orders[p, i]
            s += 2.0 * taken[r] + centred[r, r]
            for j in range(m):
                taken[j] += centred[r, j]
            if t[k] != i + 1:
                continue
            v = s * m / (t[k] * (m - t[k]))
            if v > 0.0:
                v = np.sqrt(v)
                if v > out[p]:
                    out[p] = v
            k += 1


def _gram_less_group_means(
    gram: np.ndarray,  # (n, n) float64: inner products of n vectors
    groups: np.ndarray,  # (n,) intp: each vector's group, 0..g-1
    n_groups: int,
) -> np.ndarray:
    """The Gram matrix of the same vectors less their group's mean (a page's embeddings
    less their language's mean), in n^2 steps: <x_i - m_a, x_j - m_b> =
    <x_i, x_j> - <x_i, m_b> - <m_a, x_j> + <m_a, m_b>, each mean's products read off the
    sums of the Gram matrix over the group."""
    n = gram.shape[0]
    size = np.zeros(n_groups)
    for i in range(n):
        size[groups[i]] += 1.0
    with_mean = np.zeros((n, n_groups))  # <x_i, m_g>
    for i in range(n):
        for j in range(n):
            with_mean[i, groups[j]] += gram[i, j]
    for i in range(n):
        for g in range(n_groups):
            with_mean[i, g] /= size[g]
    means = np.zeros((n_groups, n_groups))  # <m_g, m_h>
    for i in range(n):
        for h in range(n_groups):
            means[groups[i], h] += with_mean[i, h]
    for g in range(n_groups):
        for h in range(n_groups):
            means[g, h] /= size[g]
    out = np.empty((n, n))
    for i in range(n):
        a = groups[i]
        for j in range(n):
            b = groups[j]
            out[i, j] = gram[i, j] - with_mean[i, b] - with_mean[j, a] + means[a, b]
    return out


def _compiled(function):
    try:
        return njit(cache=True, fastmath=True, nogil=True)(function)
    except RuntimeError:  # nowhere to write the cache (a read-only install): compile each run
        return njit(fastmath=True, nogil=True)(function)


shuffles = _compiled(_shuffles)
split_maxima = _compiled(_split_maxima)
gram_split_maxima = _compiled(_gram_split_maxima)
gram_less_group_means = _compiled(_gram_less_group_means)
