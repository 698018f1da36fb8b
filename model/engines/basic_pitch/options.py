"""Basic Pitch's decoding options: at what precision its model runs and how its activations become notes. Standard
library only, like every option group (model.options), so that presets are read and checked without numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...errors import OptionError
from ...options import OptionGroup, Spec
from ...vocabulary import Code
from .constants import NOMINAL_FRAME_RATE_HZ

# "float32": the model as trained. "int8": its largest convolution quantised (quantise.py), faster, fewer of the
# same notes (the figure `python -m benchmarks.transcription` prints): only when a preset asks for it.
PRECISIONS = ("float32", "int8")
DECODE_SPECS = {
    "onset_threshold": Spec(float, 0.0, 1.0, open_low=True, open_high=True),
    "frame_threshold": Spec(float, 0.0, 1.0, open_low=True, open_high=True),
    "min_note_ms": Spec(float, 0.0, 10_000.0),
    "min_frequency_hz": Spec(float, 0.0, 30_000.0, open_low=True, optional=True),
    "max_frequency_hz": Spec(float, 0.0, 30_000.0, open_low=True, optional=True),
    "melodia_trick": Spec(bool),
    "infer_onsets": Spec(bool),
    "pitch_bends": Spec(str, choices=("off", "on", "multiple")),
    "precision": Spec(str, choices=PRECISIONS),
}


@dataclass(frozen=True, kw_only=True)
class BasicPitchOptions(OptionGroup):
    """At what precision the model runs and how its activations become notes. Defaults are Basic Pitch's.

    pitch_bends: "off"; "on" (Basic Pitch's default: notes that overlap
    another note lose their bends); "multiple" (every note keeps its bends).
    precision: "float32" (the model as trained) or "int8" (quantise.py: faster, agreeing less with float32).
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_ms: float = 127.7
    min_frequency_hz: float | None = None
    max_frequency_hz: float | None = None
    melodia_trick: bool = True
    infer_onsets: bool = True
    pitch_bends: str = "on"
    precision: str = "float32"

    SPECS: ClassVar = DECODE_SPECS
    WHERE: ClassVar = "decode options"

    def __post_init__(self):
        super().__post_init__()
        if (
            self.min_frequency_hz is not None
            and self.max_frequency_hz is not None
            and self.min_frequency_hz >= self.max_frequency_hz
        ):
            raise OptionError(
                Code.INVALID_OPTION,
                f"decode options: min_frequency_hz ({self.min_frequency_hz:g}) must be below "
                f"max_frequency_hz ({self.max_frequency_hz:g})",
            )

    @property
    def min_note_frames(self) -> int:
        """Notes must be longer than this many frames (Basic Pitch rounds with the nominal frame rate)."""
        return int(round(self.min_note_ms / 1000.0 * NOMINAL_FRAME_RATE_HZ))
