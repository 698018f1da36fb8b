"""SwiftF0 as a midibridge engine: mono audio at 16 kHz in, the notes of one melodic line with continuous bends out."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from ...clip import Note
from ...vocabulary import Stage
from .. import ProgressCallback
from .constants import HOP_SAMPLES, SAMPLE_RATE_HZ
from .features import FrameExtractor
from .live import SwiftF0Stream
from .notes import decode_notes
from .options import SwiftF0Options
from .weights import find_weights


class SwiftF0:
    """SwiftF0's model, loaded once. `threads`: 1 runs everything on one core; otherwise (0: one per core) the model
    runs on that many of a region's windows at once, beside the spectral features. `weights_path`: another copy of
    model.onnx (None: the swift-f0 package's)."""

    name = "swift-f0"
    sample_rate_hz = SAMPLE_RATE_HZ
    hop_samples = HOP_SAMPLES

    def __init__(self, *, weights_path: str | os.PathLike | None = None, threads: int = 0):
        helpers = 0 if threads == 1 else threads or os.cpu_count() or 1
        self._extractor = FrameExtractor(find_weights(weights_path), helpers=helpers)

    def notes(
        self,
        samples: Iterable[np.ndarray],
        *,
        n_samples: int,
        options: SwiftF0Options,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[Note, ...]:
        """The notes of mono float32 chunks at SAMPLE_RATE_HZ (about `n_samples` of them), in seconds from the
        first sample."""
        frames = self._extractor.frames(
            samples, n_samples=n_samples, low_bass=options.low_bass, on_progress=on_progress
        )
        if on_progress:
            on_progress(Stage.NOTES, 0.0)
        return decode_notes(frames, options)

    def stream(self, options: SwiftF0Options) -> SwiftF0Stream:
        """A live stream of one line (model.live): 16 kHz blocks in, events out as they are decided."""
        return SwiftF0Stream(self._extractor, options)
