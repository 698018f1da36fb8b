"""Decoded intervals to notes, window after window, as transkun's `transcribe` and `transcribeFrames` do.

Each window's intervals become notes with refined times and a velocity (the
heads' answers). A note cut by a window's edge is marked as having no onset
or no offset there; the next window, which overlaps this one by half, starts
decoding each key where the last complete note ended, and its notes replace
or extend the cut ones. At the end notes of one key that still overlap are
trimmed, as transkun's `resolveOverlapping` does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...clip import Note
from .constants import FRAME_S, LAST_FRAME, LOWEST_KEY

# ContinuousBernoulli's mean is computed by a series where its formula is unstable (torch.distributions).
_UNSTABLE = (np.float32(0.499), np.float32(0.501))


@dataclass(frozen=True)
class Event:
    """A note as a window sees it (transkun.Data.Note): seconds from the window's start, then from the audio's."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int
    has_onset: bool
    has_offset: bool


def _refined_shifts(logits: np.ndarray) -> np.ndarray:
    """(n, 2) float32 shifts in frames, -0.5 to 0.5, of each interval's onset and offset: the mean of a continuous
    Bernoulli with these logits, moved to [-0.5, 0.5] (transcribeFrames' `ofValue`)."""
    probs = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    stable = (probs <= _UNSTABLE[0]) | (probs > _UNSTABLE[1])
    cut = np.where(stable, probs, _UNSTABLE[0])
    means = cut / (2.0 * cut - 1.0) + 1.0 / (np.log1p(-cut) - np.log(cut))
    x = probs - 0.5
    series = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * (x * x)) * x
    return np.clip((np.where(stable, means, series) - 0.5) / 0.99, -0.5, 0.5)


def window_events(
    intervals: list[list[tuple[int, int]]], velocity_logits: np.ndarray, refinement_logits: np.ndarray
) -> tuple[list[list[Event]], list[int]]:
    """Each key's events in this window (seconds from its start), and the frame where each key's last note with an
    offset ended (0: none).

    The heads' rows follow the intervals key by key, in order.
    """
    velocities = velocity_logits.argmax(axis=1).tolist()
    shifts = _refined_shifts(refinement_logits[:, :2]).tolist()
    present = (refinement_logits[:, 2:] > 0).tolist()
    events, last_ends = [], []
    row = 0
    for key, key_intervals in enumerate(intervals):
        key_events, last_end_s, last_end = [], 0.0, 0
        for begin, end in key_intervals:
            start_s = max((begin + shifts[row][0]) * FRAME_S, last_end_s)
            end_s = max((end + shifts[row][1]) * FRAME_S, start_s + 1e-8)
            last_end_s = end_s
            # presence only tells a note that starts or ends exactly on the window's first or last frame
            has_offset = end < LAST_FRAME or present[row][1]
            key_events.append(
                Event(LOWEST_KEY + key, start_s, end_s, velocities[row], begin > 0 or present[row][0], has_offset)
            )
            if has_offset:
                last_end = end
            row += 1
        events.append(key_events)
        last_ends.append(last_end)
    return events, last_ends


class NoteMerger:
    """Each key's notes so far; windows' events are added in order (transcribe's `eventsByType`)."""

    def __init__(self, n_keys: int):
        self._keys: list[list[Event]] = [[] for _ in range(n_keys)]

    def add(self, events: list[list[Event]], *, window_start_s: float) -> None:
        """Add a window's events, shifted by where the window starts (it may start before the audio)."""
        for notes, key_events in zip(self._keys, events):
            for event in key_events:
                start_s = max(event.start_s + window_start_s, 0.0)
                event = replace(event, start_s=start_s, end_s=max(event.end_s + window_start_s, start_s))
                if notes and event.start_s < notes[-1].end_s:
                    if event.has_onset:  # a note heard whole replaces the one cut off before it
                        notes[-1] = event
                    else:  # the rest of a note cut off at the last window's end
                        notes[-1] = replace(
                            notes[-1], has_offset=event.has_offset, end_s=max(event.end_s, notes[-1].end_s)
                        )
                elif event.has_onset:
                    notes.append(event)

    def notes(self) -> tuple[Note, ...]:
        """Every note, in order of start, end and pitch; a note still sounding at the end ends there."""
        events: list[Event] = []
        for notes in self._keys:
            if notes:
                notes[-1] = replace(notes[-1], has_offset=True)
            events.extend(event for event in notes if event.has_offset)
        # Transkun's velocity may be 0, which a MIDI file would read as a note-off
        return tuple(Note(e.pitch, e.start_s, e.end_s, max(e.velocity, 1)) for e in _resolve_overlaps(events))


def _resolve_overlaps(events: list[Event]) -> list[Event]:
    """transkun.Data.resolveOverlapping: a note ends where the next of its key starts; empty notes go."""
    events = sorted(events, key=lambda e: (e.start_s, e.end_s, e.pitch))
    last_of_key: dict[int, int] = {}
    for index, event in enumerate(events):
        before = last_of_key.get(event.pitch)
        if before is not None and events[before].end_s > event.start_s:
            events[before] = replace(events[before], end_s=event.start_s)
        last_of_key[event.pitch] = index
    events.sort(key=lambda e: (e.start_s, e.end_s, e.pitch))
    return [e for e in events if e.start_s < e.end_s]
