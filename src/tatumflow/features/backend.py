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
