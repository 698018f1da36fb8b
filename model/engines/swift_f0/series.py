"""Small numpy operations on per-frame series (runs, a running median, holding values over gaps) that the note
segmentation is built from."""

from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in mask (n,)."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def running_median(x: np.ndarray, width: int) -> np.ndarray:
    """(n,) centred running median of x (n,); near the ends the window stays whole inside x, so a vibrato's first
    swing does not read as the note's centre."""
    n, h = len(x), width // 2
    if n == 0 or h == 0:
        return x.copy()
    if n <= 2 * h + 1:
        return np.full(n, np.median(x))
    inner = np.median(np.lib.stride_tricks.sliding_window_view(x, 2 * h + 1), axis=1)
    return np.concatenate([np.full(h, inner[0]), inner, np.full(h, inner[-1])])


def hold(values: np.ndarray, good: np.ndarray, *, side: str = "nearest") -> np.ndarray:
    """(n,): values where `good` (n,), elsewhere the next good one ("nearest") or the last ("last")."""
    idx = np.nonzero(good)[0]
    if len(idx) == 0 or len(idx) == len(values):
        return values
    pos = np.arange(len(values))
    if side == "last":
        return values[idx[np.clip(np.searchsorted(idx, pos, side="right") - 1, 0, None)]]
    return values[idx[np.clip(np.searchsorted(idx, pos), 0, len(idx) - 1)]]


def dips(x: np.ndarray, side: int, depth: float) -> np.ndarray:
    """Indices where x (n,) is the lowest of the `side` values on each side and both sides rise `depth` above it."""
    padded = np.pad(x, side, mode="edge")
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * side + 1)
    left, right = around[:, :side].max(axis=1), around[:, side + 1 :].max(axis=1)
    return np.nonzero((x <= around.min(axis=1)) & (left - x >= depth) & (right - x >= depth))[0]


def last_min(x: np.ndarray, lo: int, hi: int) -> int:
    """Index of the last minimum of x[lo:hi] (after silence, the frame just before the sound)."""
    part = x[lo:hi]
    return lo + len(part) - 1 - int(np.argmin(part[::-1]))
