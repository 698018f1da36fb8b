"""How periodic the newest raw audio is at a given pitch (numpy only): live's early note-on reads it to confirm a new
pitch that SwiftF0 shows at its newest frame, sooner than more of its frames would."""

from __future__ import annotations

import numpy as np

from .constants import SAMPLE_RATE_HZ


def periodicity(audio: np.ndarray, midi_pitch: float, *, window_samples: int, search_semitones: float) -> float:
    """McLeod's normalised square difference (1 for audio that repeats exactly, about 0 for noise) of the last
    `window_samples` of `audio` (m,) at 16 kHz (at least two periods), at its best lag within `search_semitones` of
    `midi_pitch`'s period; 0 where that best lag is at the edge of the search (the period lies elsewhere) or the
    audio is shorter than two periods."""
    period = SAMPLE_RATE_HZ / (440.0 * 2.0 ** ((midi_pitch - 69.0) / 12.0))
    lo = max(1, int(np.floor(period * 2.0 ** (-search_semitones / 12.0))))
    hi = int(np.ceil(period * 2.0 ** (search_semitones / 12.0)))
    x = audio[-max(window_samples, 2 * hi) :].astype(np.float64)
    if len(x) < 2 * hi:
        return 0.0
    scores = np.array([_nsdf(x[:-lag], x[lag:]) for lag in range(lo, hi + 1)])
    best = int(np.argmax(scores))
    return float(scores[best]) if 0 < best < len(scores) - 1 else 0.0


def _nsdf(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(a @ b) / max(float(a @ a + b @ b), 1e-12)
