"""Small numpy operations on per-frame series (runs, a running median, holding values over gaps) that the note
segmentation is built from."""

from __future__ import annotations

import numpy as np

from ...views import windows


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in mask (n,)."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def median(x: np.ndarray) -> np.floating:
    """The median of x (n,), n ≥ 1, as np.median gives it, without its overhead (about 50 µs a call in numpy 2, ten
    times the work on the few dozen frames live decodes every 32 ms)."""
    k = len(x) // 2
    if len(x) % 2:
        return np.partition(x, k)[k]
    part = np.partition(x, (k - 1, k))
    return (part[k - 1] + part[k]) / 2


def running_median(x: np.ndarray, width: int) -> np.ndarray:
    """(n,) centred running median of x (n,); near the ends the window stays whole inside x, so a vibrato's first
    swing does not read as the note's centre."""
    n, h = len(x), width // 2
    if n == 0 or h == 0:
        return x.copy()
    if n <= 2 * h + 1:
        return np.full(n, median(x))
    inner = np.partition(windows(x, 2 * h + 1), h, axis=1)[:, h]
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
    padded = np.concatenate((np.full(side, x[0]), x, np.full(side, x[-1])))  # edge values, without np.pad's overhead
    around = windows(padded, 2 * side + 1)
    left, right = around[:, :side].max(axis=1), around[:, side + 1 :].max(axis=1)
    return np.nonzero((x <= around.min(axis=1)) & (left - x >= depth) & (right - x >= depth))[0]


def last_min(x: np.ndarray, lo: int, hi: int) -> int:
    """Index of the last minimum of x[lo:hi] (after silence, the frame just before the sound)."""
    part = x[lo:hi]
    return lo + len(part) - 1 - int(np.argmin(part[::-1]))


def midi_pitch(hz: np.ndarray | float) -> np.ndarray:
    """MIDI pitch (fractional) of `hz` (any shape), float64; 0 Hz reads as 1 mHz (unvoiced frames carry 0)."""
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(hz, np.float64), 1e-3) / 440.0)
