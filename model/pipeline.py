"""Region in, clip out: decode → preprocess → resample → the engine's notes → post-process, with progress and cancel.

`Transcriber.convert` is the one core call every path uses (the command
line in-process, the daemon's workers, the benchmarks): transcribe, then
encode the MIDI file. `transcribe()` is the same for a script that wants one
clip without keeping a Transcriber.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import preprocess
from .audio import open_region, resample, resampled_length
from .clip import Clip, Tempo
from .engines import DEFAULT_ENGINE, ENGINES, Engine, ProgressCallback, load_engine
from .midi import clip_to_bytes
from .postprocess import LoudnessMeter, postprocess
from .presets import Preset, resolve_preset
from .region import Region
from .vocabulary import Stage

BASIC_PITCH = Preset(name="default", description="Basic Pitch exactly")


@dataclass(frozen=True)
class Transcription:
    """A region's clip (notes in seconds from its start) and the clip as a standard MIDI file."""

    clip: Clip
    smf: bytes


class Transcriber:
    """The engines, each loaded once, when a preset first asks for it (a drum job never loads Basic Pitch),
    turning regions into clips.

    `threads` is onnxruntime's intra-op thread count (0: one per core);
    `model_path` the default engine's weights (None: the installed ones).
    """

    def __init__(
        self, *, model_path: str | Path | None = None, threads: int = 0, loaded: Mapping[str, Engine] | None = None
    ):
        self.model_path = model_path
        self.threads = threads
        self._engines: dict[str, Engine] = dict(loaded or {})  # by name, each from load_engine with these options

    def engine_for(self, name: str = DEFAULT_ENGINE) -> Engine:
        """The engine `name`, loaded now if it is not yet: WeightsError when its weights are missing or wrong."""
        if name not in self._engines:
            self._engines[name] = load_engine(name, model_path=self.model_path, threads=self.threads)
        return self._engines[name]

    def convert(
        self,
        region: Region,
        *,
        preset: Preset = BASIC_PITCH,
        tempo: Tempo = Tempo(),
        on_progress: ProgressCallback | None = None,
        allow_truncated: bool = False,
    ) -> Transcription:
        """The clip of `region` and its MIDI file: `transcribe`, then encode."""
        clip = self.transcribe(
            region, preset=preset, tempo=tempo, on_progress=on_progress, allow_truncated=allow_truncated
        )
        return Transcription(clip, clip_to_bytes(clip))

    def transcribe(
        self,
        region: Region,
        *,
        preset: Preset = BASIC_PITCH,
        tempo: Tempo = Tempo(),
        on_progress: ProgressCallback | None = None,
        allow_truncated: bool = False,
    ) -> Clip:
        """The clip of `region` through `preset`: notes relative to its start, placed at its timeline position.

        `tempo` is the host's where the clip goes. `on_progress(stage, fraction)`
        is called as work advances; raising from it (model.errors.Cancelled)
        stops the job between model runs. A region reaching past where a
        truncated file's audio ends raises audio_truncated; `allow_truncated`
        transcribes the audio there is and sets the clip's `truncated_at_s`.
        """
        audio = open_region(region, allow_truncated=allow_truncated)  # checks the region before any work
        if on_progress:
            on_progress(Stage.DECODE, 0.0)
        unread = [audio]

        def open_chunks():
            # The region opened above serves the first read; a normalize step reads it once more.
            return (unread.pop() if unread else open_region(region, allow_truncated=allow_truncated)).chunks()

        engine, kind = self.engine_for(preset.engine), ENGINES[preset.engine]
        chunks = preprocess.process(preset.chain, open_chunks, sample_rate_hz=audio.sample_rate_hz)
        samples = resample(
            chunks, from_hz=audio.sample_rate_hz, to_hz=engine.sample_rate_hz, quality=kind.resample_quality
        )
        meter = LoudnessMeter(block_samples=engine.hop_samples, sample_rate_hz=engine.sample_rate_hz)
        if preset.post.velocity == "loudness":
            samples = meter.tap(samples)
        n_samples = resampled_length(audio.n_samples, from_hz=audio.sample_rate_hz, to_hz=engine.sample_rate_hz)
        notes = engine.notes(samples, n_samples=n_samples, options=preset.decode, on_progress=on_progress)
        clip = Clip(
            notes=notes,
            position_s=region.position_s,
            duration_s=audio.n_samples / audio.sample_rate_hz,
            bpm=float(tempo.bpm),
            drums=kind.drums,
            truncated_at_s=None
            if audio.truncated_at_sample is None
            else audio.truncated_at_sample / audio.sample_rate_hz,
            beats_per_bar=float(tempo.beats_per_bar),
        )
        clip = postprocess(clip, preset.post, tempo=tempo, loudness=meter.result())
        if on_progress:
            on_progress(Stage.NOTES, 1.0)
        return clip


def transcribe(
    region: Region,
    *,
    preset: Preset | dict | str | None = None,
    tempo: Tempo = Tempo(),
    on_progress: ProgressCallback | None = None,
    allow_truncated: bool = False,
) -> Transcription:
    """The clip and MIDI file of `region` through `preset` (a Preset, a preset's table, a name or a .toml path;
    None: `default`), with this process's shared Transcriber."""
    return _shared_transcriber().convert(
        region, preset=resolve_preset(preset), tempo=tempo, on_progress=on_progress, allow_truncated=allow_truncated
    )


@functools.cache
def _shared_transcriber() -> Transcriber:
    return Transcriber()
