"""Read-only strided views of numpy arrays, for code that runs every live period: sliding_window_view checks its
arguments on each call (about 40 µs, most of a decimator call on a 256-sample period)."""

from __future__ import annotations

import numpy as np


def windows(x: np.ndarray, width: int) -> np.ndarray:
    """(n - width + 1, width): a read-only view of the runs of `width` values of x (n,), as sliding_window_view gives
    it, without its checks."""
    return np.lib.stride_tricks.as_strided(
        x, shape=(len(x) - width + 1, width), strides=(x.strides[0], x.strides[0]), writeable=False
    )
