"""What to transcribe: a stretch of a file (or of raw samples) and where it sits on the host's timeline.

Standard library only: the daemon's wire protocol and thin clients share this type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import AudioError
from .vocabulary import Code

# What a source may be: the rates and channel counts midibridge reads (files and inline samples alike).
MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ = 1_000.0, 768_000.0
MAX_CHANNELS = 64


@dataclass(frozen=True, kw_only=True)
class Region:
    """An audio region as a DAW sees it.

    `start_s` is the offset into the source (the region's trim), `duration_s`
    its length (None: to the end of the source), `position_s` where it sits on
    the host's timeline. Times are seconds; `from_file_samples` takes counts of
    samples, which the reader rounds back to exactly.

    Exactly one of `path` and `samples` is set. `samples` is float32 audio
    shaped (n_samples,) or (n_channels, n_samples), with `sample_rate_hz`.
    """

    path: str | None = None
    samples: Any = None
    sample_rate_hz: float | None = None
    start_s: float = 0.0
    duration_s: float | None = None
    position_s: float = 0.0

    def __post_init__(self):
        # Checked here, not where the audio is read, so that a region is refused the same way before any work
        # whether it runs in this process, through the daemon or on a cluster.
        source = self.path if self.path is not None else "of raw samples"
        if not _at_least(self.start_s, 0.0):
            raise AudioError(
                Code.REGION_OUTSIDE_SOURCE,
                f"region {source}: start_s (the offset into the source) must be a finite number "
                f"≥ 0 s, not {self.start_s!r}",
            )
        if not _at_least(self.position_s, 0.0):
            raise AudioError(
                Code.REGION_OUTSIDE_SOURCE,
                f"region {source}: position_s (where it sits on the timeline) must be a finite "
                f"number ≥ 0 s, not {self.position_s!r}",
            )
        if self.duration_s is not None and not (_at_least(self.duration_s, 0.0) and self.duration_s > 0):
            raise AudioError(
                Code.REGION_EMPTY,
                f"region {source} is empty: duration_s must be a finite number > 0 s (or unset: to "
                f"the end of the source), not {self.duration_s!r}",
            )

    @classmethod
    def from_file(
        cls, path, *, start_s: float = 0.0, duration_s: float | None = None, position_s: float = 0.0
    ) -> Region:
        return cls(path=str(path), start_s=start_s, duration_s=duration_s, position_s=position_s)

    @classmethod
    def from_file_samples(
        cls, path, *, start_sample: int, n_samples: int | None = None, sample_rate_hz: float, position_s: float = 0.0
    ) -> Region:
        """A region counted in samples of the file's own rate, as a DAW counts it; read at exactly these samples."""
        return cls.from_file(
            path,
            start_s=start_sample / sample_rate_hz,
            position_s=position_s,
            duration_s=None if n_samples is None else n_samples / sample_rate_hz,
        )

    @classmethod
    def from_samples(
        cls,
        samples,
        *,
        sample_rate_hz: float,
        start_s: float = 0.0,
        duration_s: float | None = None,
        position_s: float = 0.0,
    ) -> Region:
        return cls(
            samples=samples,
            sample_rate_hz=sample_rate_hz,
            start_s=start_s,
            duration_s=duration_s,
            position_s=position_s,
        )

    def describe(self) -> str:
        """A short name for messages: the file, or the raw samples' rate."""
        source = self.path if self.path is not None else f"raw samples at {self.sample_rate_hz} Hz"
        end = "end" if self.duration_s is None else f"{self.start_s + self.duration_s:g} s"
        return f"{source} [{self.start_s:g} s .. {end}]"


def _at_least(value: Any, low: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= low
