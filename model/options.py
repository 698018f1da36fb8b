"""Options as data: one spec table per option group drives defaults, checks and the dict form.

A check names the group, the field, the bad value and what is allowed, so a
preset file or a wire request that sets a field wrong says exactly which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .constants import NOMINAL_FRAME_RATE_HZ
from .errors import OptionError


@dataclass(frozen=True)
class Spec:
    """What one field allows: a number in [low, high] (`open_low`/`open_high` exclude the ends), a bool, or one of `choices`."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False

    def allowed(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        else:
            kind = "a whole number" if self.kind is int else "a number"
            left = "(" if self.open_low else "["
            right = ")" if self.open_high else "]"
            text = f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        return text + (" (or unset)" if self.optional else "")

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if self.choices:
            return value in self.choices
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok


def check_fields(instance, specs: dict[str, Spec], *, where: str) -> None:
    """Raise OptionError for the first field of `instance` that its spec refuses."""
    for name, spec in specs.items():
        value = getattr(instance, name)
        if not spec.accepts(value):
            raise OptionError(f"{where}: {name} must be {spec.allowed()}, got {value!r}")


def from_mapping(cls, data: dict, specs: dict[str, Spec], *, where: str):
    """Build `cls` from a dict, refusing keys it does not know."""
    unknown = sorted(set(data) - set(specs))
    if unknown:
        raise OptionError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(specs)}")
    return cls(**data)


def to_mapping(instance) -> dict:
    return {f.name: getattr(instance, f.name) for f in fields(instance)}


def _num(value) -> str:
    return "∞" if value is None else f"{value:g}"


DECODE_SPECS = {
    "onset_threshold": Spec(float, 0.0, 1.0, open_low=True, open_high=True),
    "frame_threshold": Spec(float, 0.0, 1.0, open_low=True, open_high=True),
    "min_note_ms": Spec(float, 0.0, 10_000.0),
    "min_frequency_hz": Spec(float, 0.0, 30_000.0, open_low=True, optional=True),
    "max_frequency_hz": Spec(float, 0.0, 30_000.0, open_low=True, optional=True),
    "melodia_trick": Spec(bool),
    "infer_onsets": Spec(bool),
    "pitch_bends": Spec(str, choices=("off", "on", "multiple")),
}


@dataclass(frozen=True, kw_only=True)
class DecodeOptions:
    """How activations become notes. Defaults are Basic Pitch's.

    pitch_bends: "off"; "on" (Basic Pitch's default: notes that overlap
    another note lose their bends); "multiple" (every note keeps its bends).
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_ms: float = 127.7
    min_frequency_hz: float | None = None
    max_frequency_hz: float | None = None
    melodia_trick: bool = True
    infer_onsets: bool = True
    pitch_bends: str = "on"

    def __post_init__(self):
        check_fields(self, DECODE_SPECS, where="decode options")
        if (self.min_frequency_hz is not None and self.max_frequency_hz is not None
                and self.min_frequency_hz >= self.max_frequency_hz):
            raise OptionError(f"decode options: min_frequency_hz ({self.min_frequency_hz:g}) must be below "
                              f"max_frequency_hz ({self.max_frequency_hz:g})")

    @property
    def min_note_frames(self) -> int:
        """Notes must be longer than this many frames (Basic Pitch rounds with the nominal frame rate)."""
        return int(round(self.min_note_ms / 1000.0 * NOMINAL_FRAME_RATE_HZ))

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "decode options") -> DecodeOptions:
        return from_mapping(cls, data, DECODE_SPECS, where=where)

    def to_dict(self) -> dict:
        return to_mapping(self)
