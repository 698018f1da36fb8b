"""Region in, clip out: decode → preprocess → resample → infer → decode notes → bends → post-process, with progress and cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import preprocess
from .audio import open_region, resample, resampled_length
from .bends import add_pitch_bends, drop_overlapping_bends
from .clip import Bend, Clip, Note, Tempo
from .constants import CONTOUR_BINS_PER_SEMITONE, FFT_HOP_SAMPLES, SAMPLE_RATE_HZ
from .inference import DEFAULT_BATCH_WINDOWS, Activations, Model, ProgressCallback, frame_times_s
from .notes import NoteEvent, decode_notes
from .options import DecodeOptions
from .postprocess import LoudnessMeter, postprocess
from .presets import Preset
from .region import Region

BASIC_PITCH = Preset(name="default", description="Basic Pitch exactly")


class Transcriber:
    """Basic Pitch's model, loaded once, turning regions into clips.

    `threads` is onnxruntime's intra-op thread count (0: one per core);
    `batch_windows` how many 2 s windows go through the model per run.
    """

    def __init__(self, *, model_path: str | Path | None = None, threads: int = 0,
                 batch_windows: int = DEFAULT_BATCH_WINDOWS):
        self.model = Model(model_path, threads=threads, batch_windows=batch_windows)

    def transcribe(self, region: Region, *, preset: Preset = BASIC_PITCH, tempo: Tempo = Tempo(),
                   on_progress: ProgressCallback | None = None, allow_truncated: bool = False) -> Clip:
        """The clip of `region` through `preset`: notes relative to its start, placed at its timeline position.

        `tempo` is the host's where the clip goes. `on_progress(stage, fraction)`
        is called as work advances; raising from it (model.errors.Cancelled)
        stops the job between model runs. A region reaching past where a
        truncated file's audio ends raises audio_truncated; `allow_truncated`
        transcribes the audio there is and sets the clip's `truncated_at_s`.
        """
        audio = open_region(region, allow_truncated=allow_truncated)  # checks the region before any work
        if on_progress:
            on_progress("decode", 0.0)
        unread = [audio]

        def open_chunks():
            # The region opened above serves the first read; a normalize step reads it once more.
            return (unread.pop() if unread else open_region(region, allow_truncated=allow_truncated)).chunks()

        chunks = preprocess.process(preset.chain, open_chunks, sample_rate_hz=audio.sample_rate_hz)
        samples = resample(chunks, from_hz=audio.sample_rate_hz)
        meter = LoudnessMeter(block_samples=FFT_HOP_SAMPLES, sample_rate_hz=SAMPLE_RATE_HZ)
        if preset.post.velocity == "loudness":
            samples = meter.tap(samples)
        expected = resampled_length(audio.n_samples, from_hz=audio.sample_rate_hz)
        with self.model.activations(samples, expected_samples=expected, on_progress=on_progress) as activations:
            if on_progress:
                on_progress("notes", 0.0)
            events = note_events(activations, options=preset.decode)
        times_s = frame_times_s(activations.n_frames)
        clip = Clip(notes=tuple(to_note(e, times_s) for e in events), position_s=region.position_s,
                    duration_s=audio.n_samples / audio.sample_rate_hz, bpm=float(tempo.bpm),
                    truncated_at_s=None if audio.truncated_at_sample is None
                    else audio.truncated_at_sample / audio.sample_rate_hz)
        clip = postprocess(clip, preset.post, tempo=tempo, loudness=meter.result())
        if on_progress:
            on_progress("notes", 1.0)
        return clip


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
