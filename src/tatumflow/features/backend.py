"""The few array operations the feature code needs, for numpy (and, in
:mod:`.torch_face`, for torch). Feature formulas are written once against this
interface, so both faces compute the same numbers.

All arrays are flat (one entry per note, per cluster, ...) with a ``row`` index
saying which piece of a batch each entry belongs to.
"""

from __future__ import annotations

import numpy as np


class NumpyBackend:
    name = "numpy"
    float = np.float64
    int = np.int64

    @staticmethod
    def const(a):
        """A constant table (built once by the caller) in this backend."""
        return a

    @staticmethod
    def zeros(shape, dtype=np.float64):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def arange(n, dtype=np.int64):
        return np.arange(n, dtype=dtype)

    @staticmethod
    def segment_sum(values, index, n: int):
        """out[k] = sum of values[index == k] (values 1-D, or 2-D summed along axis 0)."""
        if values.ndim == 1:
            return np.bincount(index, weights=values, minlength=n).astype(np.float64)[:n]
        out = np.zeros((n,) + values.shape[1:], dtype=np.float64)
        np.add.at(out, index, values)
        return out

    @staticmethod
    def row_sums(cols, row, n: int):
        """(n, len(cols)): per-row sums of 1-D columns whose ``row`` index is sorted
        (each row's entries contiguous). Each row is summed on its own (reduceat)."""
        v = np.stack([np.asarray(c, dtype=np.float64) for c in cols])
        out = np.zeros((n, len(cols)))
        if v.shape[1]:
            counts = np.bincount(row, minlength=n)[:n]
            starts = np.minimum(np.cumsum(counts) - counts, v.shape[1] - 1)
            out = np.add.reduceat(v, starts, axis=1).T
            out[counts == 0] = 0.0
        return out

    @staticmethod
    def xlog2x(p):
        """p * log2(p), 0 where p == 0 (p >= 0)."""
        return p * np.log2(np.where(p > 0, p, 1.0))

    @staticmethod
    def take(a, idx):
        """``a[idx]`` for a 1-D array and integer indices."""
        return a[idx]

    @staticmethod
    def nonzero(mask):
        """Indices where a 1-D boolean array holds."""
        return np.flatnonzero(mask)

    @staticmethod
    def cumsum_rows(x):
        return np.cumsum(x, axis=1)

    @staticmethod
    def stable_argsort_small(keys):
        """Stable argsort of small non-negative integer keys (radix sort as int16)."""
        if keys.shape[0] and int(keys.max()) < 32768:
            return np.argsort(keys.astype(np.int16), kind="stable")
        return np.argsort(keys, kind="stable")

    @staticmethod
    def compress(mask, *arrays):
        """The entries of each array where the 1-D ``mask`` holds (one mask, many arrays)."""
        idx = np.flatnonzero(mask)
        return tuple(a[idx] for a in arrays)

    @staticmethod
    def segment_count(index, n: int):
        return np.bincount(index, minlength=n)[:n].astype(np.float64)

    @staticmethod
    def segment_max(values, index, n: int, fill):
        out = np.full(n, fill, dtype=values.dtype)
        np.maximum.at(out, index, values)
        return out

    @staticmethod
    def segment_min(values, index, n: int, fill):
        out = np.full(n, fill, dtype=values.dtype)
        np.minimum.at(out, index, values)
        return out

    @staticmethod
    def cumsum(x):
        return np.cumsum(x)

    @staticmethod
    def repeat(x, counts):
        return np.repeat(x, counts)

    @staticmethod
    def searchsorted(a, v, side: str):
        return np.searchsorted(a, v, side=side)

    @staticmethod
    def argmax(x, axis: int):
        return np.argmax(x, axis=axis)

    @staticmethod
    def to_float(x):
        return x.astype(np.float64)

    @staticmethod
    def to_int(x):
        return x.astype(np.int64)

    @staticmethod
    def take_along(x, idx):
        return np.take_along_axis(x, idx[:, None], axis=1)[:, 0]

    @staticmethod
    def concat_cols(xs):
        return np.concatenate(xs, axis=1)

    @staticmethod
    def topk2(x):
        """The largest and second largest value of each row of a 2-D array."""
        s = np.sort(x, axis=1)
        return s[:, -1], s[:, -2]

    where = staticmethod(np.where)
    log2 = staticmethod(np.log2)
    sqrt = staticmethod(np.sqrt)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    clip = staticmethod(np.clip)
    sign = staticmethod(np.sign)
    abs = staticmethod(np.abs)
