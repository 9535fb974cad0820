"""The permutation nulls' inner loop, compiled (numba): running sums of shuffled copies of
a page's signals, and at every split looked at, the weighted distance between the means
before and after it, per part of the signal. See :func:`narratives.pivots._null_maxima`.

Kept apart so that ``import narratives`` does not pay for importing numba; the compiled
code is cached on disk (``cache=True``: beside this file, or numba's user cache folder)
after the first run.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _split_maxima(
    x: np.ndarray,  # (m, dim) float32
    orders: np.ndarray,  # (b, m) int32: each row a shuffled order of the m posts
    t: np.ndarray,  # (T,) int64: splits looked at, increasing
    scale_left: np.ndarray,  # (T,) float32: m / (t (m - t))
    scale_total: np.ndarray,  # (T,) float32: 1 / (m - t)
    weight: np.ndarray,  # (T,) float32: sqrt(t (m - t) / m)
    total: np.ndarray,  # (dim,) float32: sum of x over all posts
    starts: np.ndarray,  # (P,) int64: first column of each part
    stops: np.ndarray,  # (P,) int64: end of each part's columns
    tvd: np.ndarray,  # (P,) bool: total variation (else Euclidean) distance
    out: np.ndarray,  # (P, b) float32, zeros: the maxima
) -> None:
    b = orders.shape[0]
    dim = x.shape[1]
    last = t[t.shape[0] - 1]
    running = np.empty(dim, np.float32)
    for p in range(b):
        running[:] = 0.0
        k = 0
        for i in range(last):
            row = orders[p, i]
            for j in range(dim):
                running[j] += x[row, j]
            if t[k] != i + 1:
                continue
            # mean before minus mean after = left * m / (t (m - t)) - total / (m - t)
            a, c, w = scale_left[k], scale_total[k], weight[k]
            for q in range(starts.shape[0]):
                s = np.float32(0.0)
                if tvd[q]:
                    for j in range(starts[q], stops[q]):
                        s += abs(running[j] * a - total[j] * c)
                    s *= np.float32(0.5)
                else:
                    for j in range(starts[q], stops[q]):
                        v = running[j] * a - total[j] * c
                        s += v * v
                    s = np.sqrt(s)
                s *= w
                if s > out[q, p]:
                    out[q, p] = s
            k += 1


try:
    split_maxima = njit(cache=True, fastmath=True, nogil=True)(_split_maxima)
except RuntimeError:  # nowhere to write the cache (a read-only install): compile each run
    split_maxima = njit(fastmath=True, nogil=True)(_split_maxima)
