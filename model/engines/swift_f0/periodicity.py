"""How periodic the newest raw audio is at a given pitch (numpy only): live's early note-on reads it to confirm a new
pitch that SwiftF0 shows at its newest frame, sooner than more of its frames would."""

from __future__ import annotations

import numpy as np

from .constants import SAMPLE_RATE_HZ
from .series import midi_pitch


def periodicity(audio: np.ndarray, pitch: float, *, window_samples: int, search_semitones: float) -> float:
    """McLeod's normalised square difference (1 for audio that repeats exactly, about 0 for noise) of the last
    `window_samples` of `audio` (m,) at 16 kHz (at least two periods), at its best lag within `search_semitones` of
    `pitch`'s (MIDI) period; 0 where that best lag is at the edge of the search (the period lies elsewhere) or the
    audio is shorter than two periods."""
    period = SAMPLE_RATE_HZ / (440.0 * 2.0 ** ((pitch - 69.0) / 12.0))
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


def periodic_pitch(audio: np.ndarray, *, window_samples: int, lowest_hz: float, key_fraction: float) -> float | None:
    """The MIDI pitch (fractional) the last `window_samples` of `audio` (m,) at 16 kHz repeat at, by McLeod's pitch
    method: the first peak of the normalised square difference whose height is at least `key_fraction` of the
    highest, its lag interpolated; None when nothing repeats (no peak above 0) or the audio is shorter than the
    window. Periods longer than half the window (below max(lowest_hz, 2 / window)) are not looked for."""
    if len(audio) < window_samples:
        return None
    x = audio[-window_samples:].astype(np.float64)
    longest = min(window_samples // 2, int(SAMPLE_RATE_HZ / lowest_hz))
    spectrum = np.fft.rfft(x, 2 * window_samples)
    products = np.fft.irfft(spectrum.real**2 + spectrum.imag**2)[: longest + 2]  # sum of x[i] x[i + lag], each lag
    energy = np.concatenate([[0.0], np.cumsum(x * x)])  # energy[k]: of the first k samples
    lags = np.arange(longest + 2)
    squares = energy[window_samples - lags] + energy[-1] - energy[lags]  # of x[:-lag] and of x[lag:]
    nsdf = 2.0 * products / np.maximum(squares, 1e-12)
    rising = np.flatnonzero((nsdf[1:-1] > nsdf[:-2]) & (nsdf[1:-1] >= nsdf[2:]) & (nsdf[1:-1] > 0)) + 1
    rising = rising[rising >= 2]
    if not len(rising):
        return None
    # each peak's height and lag between samples, by a parabola through it and its neighbours: at short periods the
    # sampled heights alone rank a peak twice as far (an octave low) above the true one
    a, b, c = nsdf[rising - 1], nsdf[rising], nsdf[rising + 1]
    curvature = np.minimum(a - 2.0 * b + c, -1e-12)
    heights = b - (a - c) ** 2 / (8.0 * curvature)
    first = int(np.argmax(heights >= key_fraction * heights.max()))
    lag = rising[first] + 0.5 * (a[first] - c[first]) / curvature[first]
    return float(midi_pitch(SAMPLE_RATE_HZ / lag))
