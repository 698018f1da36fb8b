"""Transcription engines: mono audio at the engine's own rate in, notes out.

An engine is one folder here and one line in ENGINES: its signal constants,
its decoding options (a stdlib-only option group, so presets can check it
without loading anything heavy), its `weights` module (stdlib-only too, the
same shape for every engine: model.engines.weights) and a class with this
shape, imported and loaded when a preset first asks for it:

    class Engine(Protocol):
        name: str              # as a preset names it
        sample_rate_hz: float  # the rate its `notes` wants; the pipeline resamples to it
        hop_samples: int       # its analysis hop: loudness is measured in blocks of it

        def __init__(self, *, weights_path=None, threads: int = 0): ...  # weights.find_weights(weights_path)
        def notes(self, samples: Iterable[np.ndarray], *, n_samples: int, options,
                  on_progress: ProgressCallback | None) -> tuple[Note, ...]: ...

The pipeline (model.pipeline) does everything around it: reading the region,
the preset's chain, resampling, loudness, post-processing and the clip.
Whatever else needs to know the engines (the daemon's `hello` and result
cache, `midibridge model info`, a batch's resume) asks ENGINES.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

from ..clip import Note
from ..options import OptionGroup
from ..vocabulary import Stage
from .basic_pitch import weights as basic_pitch_weights
from .basic_pitch.options import BasicPitchOptions
from .drums import weights as drums_weights
from .drums.constants import CONTEXT_AFTER, FFT_SIZE, HOP_SIZE, SAMPLE_RATE_HZ
from .drums.options import DrumOptions
from .swift_f0 import weights as swift_f0_weights
from .swift_f0.options import SwiftF0Options
from .transkun import weights as transkun_weights
from .transkun.options import TranskunOptions

ProgressCallback = Callable[[Stage, float], None]  # (stage, fraction 0..1); raising from it cancels


class Engine(Protocol):
    name: str
    sample_rate_hz: float
    hop_samples: int

    def notes(
        self, samples: Iterable, *, n_samples: int, options, on_progress: ProgressCallback | None
    ) -> tuple[Note, ...]: ...


@dataclass(frozen=True)
class EngineKind:
    """What a preset's `[engine] name` chooses: the engine's options table, its weights, and where its class is."""

    description: str
    options: type[OptionGroup]  # its [decode] table: from_dict, to_dict, defaults when built with no arguments
    implementation: str  # "module:Class", relative to this package
    weights: ModuleType  # its weights module (model.engines.weights says its shape)
    drums: bool = False  # its notes are General MIDI drum sounds: a drum clip (model.clip.Clip.drums)
    # The pedalboard Resample.Quality its model was trained with, when not model.audio's default (the drum model
    # fed the default's softer top octave lost 0.014 onset F1 on MDB stems, 0.061 on mixes, mostly hi-hats).
    resample_quality: str | None = None
    # Why it cannot run live (model.live), for people; "": it can, its class has `stream(options)`.
    cannot_stream: str = ""

    @property
    def weights_sha256(self) -> str:
        """Of the weights it checks on load: part of what makes two results the same."""
        return self.weights.WEIGHTS_SHA256

    @property
    def installable(self) -> bool:
        """Whether `midibridge model install` fetches its weights (`weights.install_weights`); the others come with a
        package."""
        return hasattr(self.weights, "install_weights")

    def load(self, *, weights_path: str | os.PathLike | None = None, threads: int = 0) -> Engine:
        """The engine, its weights found (`weights_path`, else where it keeps them), checked and loaded."""
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module, __name__), name)(weights_path=weights_path, threads=threads)


DRUM_LOOKAHEAD_MS = 1000 * (CONTEXT_AFTER * HOP_SIZE + FFT_SIZE // 2) / SAMPLE_RATE_HZ
DEFAULT_ENGINE = "basic-pitch"
ENGINES: dict[str, EngineKind] = {
    "basic-pitch": EngineKind(
        "Spotify's Basic Pitch: polyphonic, any pitched instrument",
        BasicPitchOptions,
        ".basic_pitch.engine:BasicPitch",
        basic_pitch_weights,
        cannot_stream="Basic Pitch reads the audio in 2-second windows and builds its notes from the whole region, "
        "so no note is known until seconds after it sounds",
    ),
    "swift-f0": EngineKind(
        "SwiftF0: one melodic line (voice, wind, brass, bowed strings, bass), continuous bends",
        SwiftF0Options,
        ".swift_f0.engine:SwiftF0",
        swift_f0_weights,
    ),
    "drums": EngineKind(
        "Drums: kick, snare, hi-hats (toms, cymbals rarely), one GM drum note per hit",
        DrumOptions,
        ".drums.engine:Drums",
        drums_weights,
        drums=True,
        resample_quality="WindowedSinc32",
        cannot_stream=f"the drum network reads {DRUM_LOOKAHEAD_MS:.0f} ms of audio past each frame and its hit "
        "separation scales each 48-second block as a whole, so a hit is decided later than the 50 ms live allows",
    ),
    "transkun": EngineKind(
        "Transkun 2.0: piano, polyphonic, with velocities; slower (about 2x real time on 2 cores)",
        TranskunOptions,
        ".transkun.engine:Transkun",
        transkun_weights,
        cannot_stream="Transkun scores every note against 16-second windows of audio, so no note is known until "
        "the window around it has been heard",
    ),
}


def load_engine(name: str, *, model_path: str | os.PathLike | None = None, threads: int = 0) -> Engine:
    """The engine `name` on `threads` onnxruntime threads (0: one per core), its weights found, checked and loaded:
    `model_path` is the default engine's (None: the installed ones); the others keep theirs where they install them."""
    return ENGINES[name].load(weights_path=model_path if name == DEFAULT_ENGINE else None, threads=threads)
