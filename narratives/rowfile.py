"""A float32 matrix kept in a file and read or written by rows.

`narratives score` keeps a run's vectors here rather than in memory, so that its peak
memory does not grow with the number of posts: the vectors of a chunk are written as the
chunk is done, and read back a page at a time for pivot detection and a slice at a time
for posts.parquet. Plain reads and writes (``os.pread``/``os.pwrite``), not a memory map:
mapped pages that were touched would count in the process's resident memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class RowFile:
    """An (n, dim) float32 matrix in ``path`` that supports ``m[rows]`` and
    ``m[rows] = values`` for a slice, an integer array or a boolean mask of rows.
    Rows never written read as zeros."""

    dtype = np.dtype(np.float32)

    def __init__(self, path: str | Path, n: int, dim: int, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.shape = (n, dim)
        self._row_bytes = dim * self.dtype.itemsize
        if read_only:
            self._fd = os.open(self.path, os.O_RDONLY)
            return
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self._fd, n * self._row_bytes)

    @classmethod
    def reader(cls, path: str | Path, n: int, dim: int) -> RowFile:
        """The (n, dim) matrix already in ``path``, opened to read only."""
        return cls(path, n, dim, read_only=True)

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        """A copy sent to another process (a worker) reads the same file."""
        return RowFile.reader, (str(self.path), *self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, key: Any) -> np.ndarray | slice:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            return slice(start, max(start, stop)) if step == 1 else np.arange(start, stop, step)
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= self.shape[0])):
            raise IndexError("RowFile takes a slice or a 1-d array of row numbers in range")
        return rows.astype(np.int64, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = self._rows(key)
        if isinstance(rows, slice):
            size = (rows.stop - rows.start) * self._row_bytes
            data = os.pread(self._fd, size, rows.start * self._row_bytes)
            return np.frombuffer(data, dtype=self.dtype).reshape(-1, self.shape[1]).copy()
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        for i, row in enumerate(rows.tolist()):
            data = os.pread(self._fd, self._row_bytes, row * self._row_bytes)
            out[i] = np.frombuffer(data, dtype=self.dtype)
        return out

    def __setitem__(self, key: Any, values: np.ndarray) -> None:
        rows = self._rows(key)
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if isinstance(rows, slice):
            os.pwrite(self._fd, values.tobytes(), rows.start * self._row_bytes)
            return
        values = np.broadcast_to(values, (len(rows), self.shape[1]))
        for row, value in zip(rows.tolist(), values):
            os.pwrite(self._fd, value.tobytes(), row * self._row_bytes)

    def append(self, values: np.ndarray) -> None:
        """Add rows after the last (a matrix that grows as a run's chunks come)."""
        values = np.ascontiguousarray(values, dtype=self.dtype).reshape(-1, self.shape[1])
        os.pwrite(self._fd, values.tobytes(), self.shape[0] * self._row_bytes)
        self.shape = (self.shape[0] + len(values), self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """All rows in memory (what code that needs a real array gets)."""
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
