"""Live transcription: mono float blocks at any sample rate in, note-on / note-off / bend events out as they are
decided.

`LiveTranscriber` runs what `Transcriber.transcribe` runs, block by block:
the preset's chain (pedalboard, its state carried from block to block), the
resampling to the engine's rate, and the engine's own stream (for SwiftF0,
model.engines.swift_f0.live: the offline features and segmentation, decided
up to a stated look-ahead). What needs the whole region first is refused
with `cannot_stream` and the reason: an engine that cannot stream (its
EngineKind says why), a normalize step (it measures the region first), and
post-processing that moves or drops notes after the fact (quantize, merging,
a minimum length, a shift, one voice, a scale).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from . import preprocess
from .audio import stream_resampler
from .clip import LiveEvent
from .engines import ENGINES
from .errors import OptionError
from .options import PostOptions
from .presets import Preset
from .vocabulary import Code, EventKind

# Post-processing live applies as the offline clip does, note by note (pitch_bends "off" drops bends).
LIVE_POST = ("velocity", "fixed_velocity", "loudness_floor_db", "transpose_semitones", "pitch_bends")
LIVE_VELOCITY = ("confidence", "fixed")  # "loudness" measures each note's first 100 ms, after its note-on


@dataclass(frozen=True)
class LiveLatency:
    """How late a stream decides, by construction: `lookahead_s` after a note's start its note-on is decided (and as
    long after its end, its note-off); the resampler holds back `resampler_s` more."""

    lookahead_s: float
    resampler_s: float

    @property
    def total_s(self) -> float:
        return self.lookahead_s + self.resampler_s


def live_presets() -> tuple[str, ...]:
    """The built-in presets that can run live."""
    from .presets import available_presets, load_preset

    return tuple(
        name
        for name, (source, _) in available_presets().items()
        if source == "built-in" and not refusal(load_preset(name))
    )


def refusal(preset: Preset) -> str:
    """Why `preset` cannot run live, for people; "" when it can."""
    reason = ENGINES[preset.engine].cannot_stream
    if reason:
        return f"its engine {preset.engine} cannot stream: {reason}"
    for step in preset.chain:
        if step.kind == "normalize":
            return "its normalize step measures the whole region before it sets a gain (use a gain step live)"
    defaults = PostOptions()
    changed = [
        f.name
        for f in fields(PostOptions)
        if f.name not in LIVE_POST and getattr(preset.post, f.name) != getattr(defaults, f.name)
    ]
    if preset.post.velocity not in LIVE_VELOCITY:
        return f"its [post] velocity = {preset.post.velocity} measures each note's first 100 ms, after its note-on"
    if changed:
        return f"its [post] {', '.join(changed)} need the notes after each note, which live has not heard yet"
    return ""


def check_live(preset: Preset) -> None:
    """OptionError(cannot_stream) naming why `preset` cannot run live and which presets can."""
    reason = refusal(preset)
    if reason:
        raise OptionError(
            Code.CANNOT_STREAM,
            f"preset {preset.name} cannot run live: {reason}. Presets that can: {', '.join(live_presets())}.",
        )


class LiveTranscriber:
    """One live stream through `preset` at `sample_rate_hz`: `feed(block)` for every block of mono float32 audio,
    `close()` at the end; each gives the events decided, in time order (`time_s` from the stream's first sample). The
    engine comes loaded (model.pipeline.Transcriber.engine_for) and may serve other streams."""

    def __init__(self, engine, preset: Preset, *, sample_rate_hz: float):
        check_live(preset)
        self.preset, self.sample_rate_hz = preset, sample_rate_hz
        self._board = preprocess.build(preset.chain) if preset.chain else None
        self._resampler = stream_resampler(
            from_hz=sample_rate_hz, to_hz=engine.sample_rate_hz, quality=ENGINES[preset.engine].resample_quality
        )
        self._stream = engine.stream(preset.decode)
        self.latency = LiveLatency(
            lookahead_s=self._stream.lookahead_frames * engine.hop_samples / engine.sample_rate_hz,
            resampler_s=self._resampler.input_latency / sample_rate_hz if self._resampler else 0.0,
        )

    def feed(self, block: np.ndarray) -> list[LiveEvent]:
        block = np.asarray(block, np.float32)
        if self._board is not None:
            block = self._board(block[np.newaxis, :], self.sample_rate_hz, reset=False)[0]
        if self._resampler is not None:
            block = self._resampler.process(block[np.newaxis, :])[0]
        return self._post(self._stream.feed(block))

    def close(self) -> list[LiveEvent]:
        events = []
        if self._resampler is not None and self._stream.samples_in:  # a resampler that never had audio has no tail
            events = self._stream.feed(self._resampler.process()[0])
        return self._post(events + self._stream.close())

    def _post(self, events: list[LiveEvent]) -> list[LiveEvent]:
        post = self.preset.post
        out = []
        for event in events:
            if event.kind == EventKind.BEND and post.pitch_bends == "off":
                continue
            pitch = int(np.clip(event.pitch + post.transpose_semitones, 0, 127))
            velocity = event.velocity
            if event.kind == EventKind.NOTE_ON and post.velocity == "fixed":
                velocity = post.fixed_velocity
            out.append(LiveEvent(event.kind, event.time_s, pitch, velocity, event.semitones))
        return out
