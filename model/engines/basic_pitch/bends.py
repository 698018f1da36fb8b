"""Pitch bends of decoded notes, from the model's pitch contour: Basic Pitch's `get_pitch_bends` and its overlap rule.

For each frame of a note, the bend is the contour bin of greatest
Gaussian-weighted salience within ±25 bins (±8⅓ semitones) of the note's own
bin, in contour bins (⅓ semitone) away from it.
"""

from __future__ import annotations

import numpy as np

from .constants import CONTOUR_BINS_PER_SEMITONE, LOWEST_PITCH, N_CONTOUR_BINS
from .notes import NoteEvent

TOLERANCE_BINS = 25
SIGMA_BINS = 5.0


def _gaussian(n_points: int, sigma: float) -> np.ndarray:
    # scipy.signal.windows.gaussian's formula, so that weights are bit-identical.
    n = np.arange(0, n_points) - (n_points - 1.0) / 2.0
    return np.exp(-(n**2) / (2 * sigma * sigma))


_WEIGHTS = _gaussian(2 * TOLERANCE_BINS + 1, SIGMA_BINS)


def add_pitch_bends(contour, events: list[NoteEvent]) -> list[NoteEvent]:
    """Events with `bends` set from the contour (n_frames, 264), read a note's rows at a time."""
    return [_with_bends(contour, e) for e in events]


def add_lone_pitch_bends(contour, events: list[NoteEvent]) -> list[NoteEvent]:
    """Events sorted by time, with bends only where a note overlaps no other (one MIDI channel cannot bend two):
    Basic Pitch's `get_pitch_bends` then `drop_overlapping_pitch_bends`, without reading the contour for the bends
    that would be dropped."""
    ordered = sorted(events, key=lambda e: (e.start_frame, e.end_frame, e.pitch, e.amplitude))
    overlapping = [False] * len(ordered)
    latest_end = -1
    for i, event in enumerate(ordered):
        if latest_end > event.start_frame:
            overlapping[i] = True
        if i + 1 < len(ordered) and ordered[i + 1].start_frame < event.end_frame:
            overlapping[i] = True
        latest_end = max(latest_end, event.end_frame)
    return [e if hit else _with_bends(contour, e) for e, hit in zip(ordered, overlapping)]


def _with_bends(contour, event: NoteEvent) -> NoteEvent:
    rows = contour[event.start_frame : event.end_frame]
    return NoteEvent(event.start_frame, event.end_frame, event.pitch, event.amplitude, _bends(rows, event.pitch))


def _bends(rows: np.ndarray, pitch: int) -> tuple[int, ...]:
    centre = CONTOUR_BINS_PER_SEMITONE * (pitch - LOWEST_PITCH)
    low = max(centre - TOLERANCE_BINS, 0)
    high = min(centre + TOLERANCE_BINS + 1, N_CONTOUR_BINS)
    weights = _WEIGHTS[low - (centre - TOLERANCE_BINS) : high - (centre - TOLERANCE_BINS)]
    best = np.argmax(rows[:, low:high] * weights, axis=1)
    return tuple((best + (low - centre)).tolist())
