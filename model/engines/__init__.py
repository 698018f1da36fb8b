"""Transcription engines: mono audio at the engine's own rate in, notes out.

An engine is one folder here and one line in ENGINES: its signal constants,
its model and weights, its decoding options (a stdlib-only option group, so
presets can check it without loading anything heavy) and a class with this
shape, imported when first used:

    class Engine(Protocol):
        name: str              # as a preset names it
        sample_rate_hz: float  # the rate its `notes` wants; the pipeline resamples to it
        hop_samples: int       # its analysis hop: loudness is measured in blocks of it
        sha256: str            # of its weights: part of what makes two results the same

        def notes(self, samples: Iterable[np.ndarray], *, n_samples: int, options,
                  on_progress: ProgressCallback | None) -> tuple[Note, ...]: ...

The pipeline (model.pipeline) does everything around it: reading the region,
the preset's chain, resampling, loudness, post-processing and the clip.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ..clip import Note
from .basic_pitch.options import BasicPitchOptions
from .basic_pitch.weights import MODEL_SHA256 as BASIC_PITCH_SHA256
from .drums.constants import MODEL_SHA256 as DRUMS_SHA256
from .drums.options import DrumOptions
from .swift_f0.options import SwiftF0Options
from .swift_f0.weights import MODEL_SHA256 as SWIFT_F0_SHA256

ProgressCallback = Callable[[str, float], None]  # (stage, fraction 0..1); raising from it cancels


class Engine(Protocol):
    name: str
    sample_rate_hz: float
    hop_samples: int
    sha256: str

    def notes(self, samples: Iterable, *, n_samples: int, options,
              on_progress: ProgressCallback | None) -> tuple[Note, ...]: ...


@dataclass(frozen=True)
class EngineKind:
    """What a preset's `[engine] name` chooses: the engine's options table, its weights, and where its class is."""

    description: str
    options: type  # its [decode] table: from_dict, to_dict, defaults when built with no arguments
    implementation: str  # "module:Class", relative to this package
    weights_sha256: str  # of the weights it checks on load: part of what makes two results the same
    drums: bool = False  # its notes are General MIDI drum sounds: a drum clip (model.clip.Clip.drums)
    # The pedalboard Resample.Quality its model was trained with, when not model.audio's default (the drum model
    # fed the default's softer top octave lost 0.014 onset F1 on MDB stems, 0.061 on mixes, mostly hi-hats).
    resample_quality: str | None = None

    def load(self, **settings) -> Engine:
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module, __name__), name)(**settings)


DEFAULT_ENGINE = "basic-pitch"
ENGINES: dict[str, EngineKind] = {
    "basic-pitch": EngineKind("Spotify's Basic Pitch: polyphonic, any pitched instrument", BasicPitchOptions,
                              ".basic_pitch.engine:BasicPitch", BASIC_PITCH_SHA256),
    "swift-f0": EngineKind("SwiftF0: one melodic line (voice, wind, brass, bowed strings, bass), continuous bends",
                           SwiftF0Options, ".swift_f0.engine:SwiftF0", SWIFT_F0_SHA256),
    "drums": EngineKind("Drums: kick, snare, hi-hats (toms, cymbals rarely), one GM drum note per hit",
                        DrumOptions, ".drums.engine:Drums", DRUMS_SHA256, drums=True,
                        resample_quality="WindowedSinc32"),
}
