"""Basic Pitch as a midibridge engine: mono audio at 22,050 Hz in, notes with their pitch bends out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ...clip import Bend, Note
from ...vocabulary import Stage
from .. import ProgressCallback
from .bends import add_lone_pitch_bends, add_pitch_bends
from .constants import CONTOUR_BINS_PER_SEMITONE, FFT_HOP_SAMPLES, SAMPLE_RATE_HZ
from .inference import DEFAULT_BATCH_WINDOWS, Activations, Model, frame_times_s
from .notes import NoteEvent, decode_notes
from .options import BasicPitchOptions


class BasicPitch:
    """Basic Pitch's model, loaded once, at float32 (`model`) and at another precision when options first ask for it.
    `weights_path`: its nmp.onnx (None: weights.find_weights' search); `threads`: onnxruntime's intra-op threads (0:
    one per core); `batch_windows`: how many 2 s windows go through the model per run."""

    name = "basic-pitch"
    sample_rate_hz = SAMPLE_RATE_HZ
    hop_samples = FFT_HOP_SAMPLES

    def __init__(
        self,
        *,
        weights_path: str | os.PathLike | None = None,
        threads: int = 0,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
    ):
        self.model = Model(
            None if weights_path is None else Path(weights_path), threads=threads, batch_windows=batch_windows
        )
        self._threads = threads
        self._models = {self.model.precision: self.model}

    def model_for(self, precision: str) -> Model:
        """The model at `precision` (options.PRECISIONS), loaded now if it is not yet (int8: quantised the first
        time, quantise.py)."""
        if precision not in self._models:
            self._models[precision] = Model(
                self.model.path, threads=self._threads, batch_windows=self.model.batch_windows, precision=precision
            )
        return self._models[precision]

    def notes(
        self,
        samples: Iterable[np.ndarray],
        *,
        n_samples: int,
        options: BasicPitchOptions,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[Note, ...]:
        """The notes of mono float32 chunks at SAMPLE_RATE_HZ (about `n_samples` of them), in seconds from the
        first sample."""
        model = self.model_for(options.precision)
        with model.activations(samples, expected_samples=n_samples, on_progress=on_progress) as activations:
            if on_progress:
                on_progress(Stage.NOTES, 0.0)
            events = note_events(activations, options=options)
        times_s = frame_times_s(activations.n_frames).tolist()  # read one by one: Python floats are 4x quicker to index
        return tuple(to_note(event, times_s) for event in events)


def note_events(activations: Activations, *, options: BasicPitchOptions) -> list[NoteEvent]:
    """Decoded notes with their pitch bends, as `options.pitch_bends` asks."""
    events = decode_notes(activations.note, activations.onset, options=options)
    if options.pitch_bends == "off":
        return events
    if options.pitch_bends == "multiple":
        return add_pitch_bends(activations.contour, events)
    return add_lone_pitch_bends(activations.contour, events)


def to_note(event: NoteEvent, times_s: list[float]) -> Note:
    """A frame-domain event as a Note in seconds; bends become points where the bend changes.

    times_s: every frame's true time, (n_frames,).
    """
    bends = []
    previous = 0  # the channel is unbent before the note starts
    for frame, value in enumerate(event.bends or (), start=event.start_frame):
        if value != previous:
            bends.append(Bend(times_s[frame], value / CONTOUR_BINS_PER_SEMITONE))
            previous = value
    velocity = min(max(round(127 * event.amplitude), 1), 127)  # half to even, as Basic Pitch's np.round
    return Note(event.pitch, times_s[event.start_frame], times_s[event.end_frame], velocity, tuple(bends))
