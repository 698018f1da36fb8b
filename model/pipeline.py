"""Region in, clip out: decode → resample → infer → decode notes → pitch bends → clip, with progress and cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .audio import open_region, resample, resampled_length
from .bends import add_pitch_bends, drop_overlapping_bends
from .clip import DEFAULT_BPM, Bend, Clip, Note
from .constants import CONTOUR_BINS_PER_SEMITONE
from .errors import OptionError
from .inference import DEFAULT_BATCH_WINDOWS, Activations, Model, ProgressCallback, frame_times_s
from .notes import NoteEvent, decode_notes
from .options import DecodeOptions
from .region import Region


class Transcriber:
    """Basic Pitch's model, loaded once, turning regions into clips.

    `threads` is onnxruntime's intra-op thread count (0: one per core);
    `batch_windows` how many 2 s windows go through the model per run.
    """

    def __init__(self, *, model_path: str | Path | None = None, threads: int = 0,
                 batch_windows: int = DEFAULT_BATCH_WINDOWS):
        self.model = Model(model_path, threads=threads, batch_windows=batch_windows)

    def transcribe(self, region: Region, *, bpm: float = DEFAULT_BPM, options: DecodeOptions = DecodeOptions(),
                   on_progress: ProgressCallback | None = None) -> Clip:
        """The clip of `region`: notes relative to its start, placed at its timeline position.

        `on_progress(stage, fraction)` is called as work advances; raising
        from it (model.errors.Cancelled) stops the job between model runs.
        """
        if not (isinstance(bpm, (int, float)) and 1.0 <= bpm <= 1000.0):
            raise OptionError(f"host tempo must be a number of BPM in [1, 1000], got {bpm!r}")
        audio = open_region(region)
        if on_progress:
            on_progress("decode", 0.0)
        samples = resample(audio.chunks(), from_hz=audio.sample_rate_hz)
        expected = resampled_length(audio.n_samples, from_hz=audio.sample_rate_hz)
        with self.model.activations(samples, expected_samples=expected, on_progress=on_progress) as activations:
            if on_progress:
                on_progress("notes", 0.0)
            events = note_events(activations, options=options)
        times_s = frame_times_s(activations.n_frames)
        notes = tuple(sorted((to_note(e, times_s) for e in events), key=lambda n: (n.start_s, n.pitch)))
        if on_progress:
            on_progress("notes", 1.0)
        return Clip(notes=notes, position_s=region.position_s, duration_s=audio.n_samples / audio.sample_rate_hz,
                    bpm=float(bpm))


def note_events(activations: Activations, *, options: DecodeOptions) -> list[NoteEvent]:
    """Decoded notes with their pitch bends, as `options.pitch_bends` asks."""
    events = decode_notes(activations.note, activations.onset, options=options)
    if options.pitch_bends == "off":
        return events
    events = add_pitch_bends(activations.contour, events)
    return events if options.pitch_bends == "multiple" else drop_overlapping_bends(events)


def to_note(event: NoteEvent, times_s: np.ndarray) -> Note:
    """A frame-domain event as a Note in seconds; bends become points where the bend changes."""
    bends = []
    previous = 0  # the channel is unbent before the note starts
    for frame, value in enumerate(event.bends or (), start=event.start_frame):
        if value != previous:
            bends.append(Bend(float(times_s[frame]), value / CONTOUR_BINS_PER_SEMITONE))
            previous = value
    velocity = min(max(int(np.round(127 * event.amplitude)), 1), 127)
    return Note(event.pitch, float(times_s[event.start_frame]), float(times_s[event.end_frame]), velocity,
                tuple(bends))
