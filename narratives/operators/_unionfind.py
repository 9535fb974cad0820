"""Coordination's compiled loop (numba): connected groups of linked posts, joined a block
of links at a time, so that the links of a burst are never all held at once.

Kept apart so that ``import narratives`` does not pay for importing numba; the compiled
code is cached on disk after the first run.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


find = njit(cache=True, nogil=True)(_find)


def _union(parent: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
    """Join the groups of posts i[k] and j[k], for every k (the smaller root wins, so the
    result does not depend on the order the links come in)."""
    for k in range(i.shape[0]):
        a = find(parent, i[k])
        b = find(parent, j[k])
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b


union = njit(cache=True, nogil=True)(_union)


def _roots(parent: np.ndarray, out: np.ndarray) -> None:
    for x in range(parent.shape[0]):
        out[x] = find(parent, x)


roots = njit(cache=True, nogil=True)(_roots)


class DisjointSets:
    """Groups of n items, joined by pairs a block at a time (:meth:`join`); an item no pair
    touched stays on its own (:meth:`labels` gives it -1)."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.touched = np.zeros(n, dtype=bool)

    def join(self, i: np.ndarray, j: np.ndarray) -> None:
        union(self.parent, i.astype(np.int64, copy=False), j.astype(np.int64, copy=False))
        self.touched[i] = True
        self.touched[j] = True

    def labels(self) -> np.ndarray:
        """Per item, the smallest item of its group (-1 for an item in no pair)."""
        out = np.empty(len(self.parent), dtype=np.int64)
        roots(self.parent, out)
        return np.where(self.touched, out, -1)
