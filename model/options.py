"""Options as data: one spec table per option group drives defaults, checks and the dict form.

Standard library only, like the clip types: presets are read and checked
without numpy, and the wire protocol (bridge.headers) describes every header
with Spec tables checked by the same check_table.

A check names the group, the field, the bad value and what is allowed, so a
preset file or a wire request that sets a field wrong says exactly which.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, fields, replace
from typing import Any, ClassVar

from .errors import OptionError
from .vocabulary import Code

_KIND_NAMES = {
    bool: "true or false",
    str: "a string",
    dict: "a table",
    list: "a list",
    int: "a whole number",
    float: "a number",
}


@dataclass(frozen=True)
class Spec:
    """What one field allows: a number in [low, high] (`open_low`/`open_high` exclude the ends), a bool, a string, a
    table or a list, one of several such kinds (a tuple), or one of `choices`.

    `optional`: null (None, unset) is allowed too; `required`: the field must be there. `strict`: a whole number
    must be written as one (a wire count or index), where an option takes 3.0 for 3. A table's own fields (`fields`)
    and a list's items or a table's values (`items`) are checked with it.
    """

    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple = ()
    optional: bool = False
    required: bool = False
    strict: bool = False
    fields: Mapping[str, Spec] | None = None
    items: Spec | None = None

    @property
    def kinds(self) -> tuple[type, ...]:
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def allowed(self) -> str:
        if self.choices:
            # A word of model.vocabulary is shown as its text, as a plain string is.
            text = "one of " + ", ".join(repr(str(c) if isinstance(c, str) else c) for c in self.choices)
        elif self.low is None and self.high is None:
            text = " or ".join(_KIND_NAMES[kind] for kind in self.kinds)
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
            return not isinstance(value, bool) and value in self.choices
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or not {int, float} & set(self.kinds):
            # A bool is an int to Python, never to a spec: true is no number, and 1 is no bool.
            return isinstance(value, self.kinds) and isinstance(value, bool) == (bool in self.kinds)
        if isinstance(value, float):
            if not math.isfinite(value) or float not in self.kinds and (self.strict or not value.is_integer()):
                return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok


def required(spec: Spec) -> Spec:
    return replace(spec, required=True)


def check_table(
    data: Mapping[str, Any],
    specs: Mapping[str, Spec],
    *,
    where: str,
    closed: bool = True,
    fail: Callable[[str], Exception] = lambda message: OptionError(Code.INVALID_OPTION, message),
) -> None:
    """Raise fail(message) for the first key of `data` that `specs` does not know (when `closed`), the first required
    one missing, or the first value its spec refuses; tables and lists inside are checked with their own specs.

    The one check of every table midibridge reads: option groups, tempos, presets, and every wire header (open:
    a newer minor version may add fields).
    """
    unknown = sorted(set(data) - set(specs)) if closed else ()
    if unknown:
        raise fail(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(specs)}")
    for name, spec in specs.items():
        if name in data:
            _check_value(data[name], spec, where=where, name=name, closed=closed, fail=fail)
        elif spec.required:
            raise fail(f"{where}: {name} is required ({spec.allowed()})")


def _check_value(value, spec: Spec, *, where: str, name: str, closed: bool, fail: Callable[[str], Exception]) -> None:
    if not spec.accepts(value):
        raise fail(f"{where}: {name} must be {spec.allowed()}, got {_shown(value)}")
    if spec.fields is not None and isinstance(value, dict):
        check_table(value, spec.fields, where=f"{where} {name}", closed=closed, fail=fail)
    if spec.items is not None and isinstance(value, (list, dict)):
        for key, item in enumerate(value) if isinstance(value, list) else value.items():
            _check_value(item, spec.items, where=where, name=f"{name}[{key!r}]", closed=closed, fail=fail)


def _shown(value) -> str:
    """A bad value as a message quotes it: whole, unless it is long (a message must stay a message)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


class OptionGroup:
    """A frozen dataclass of options checked, read and written through one spec table: a subclass sets SPECS (field
    -> Spec) and WHERE (its name in messages)."""

    SPECS: ClassVar[dict[str, Spec]]
    WHERE: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]  # every subclass is a dataclass

    def __post_init__(self):
        check_table({name: getattr(self, name) for name in self.SPECS}, self.SPECS, where=self.WHERE)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str | None = None):
        """Build the group from a table, refusing unknown keys and bad values with `where` in the message."""
        check_table(data, cls.SPECS, where=where or cls.WHERE)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _num(value) -> str:
    return "∞" if value is None else f"{value:g}"


# A MIDI file holds its tempo as microseconds per beat in 24 bits: no slower tempo can be written.
MIDI_MAX_TEMPO_US = 2**24 - 1
MIN_BPM = 60_000_000 / MIDI_MAX_TEMPO_US

TEMPO_SPECS = {
    "bpm": Spec(float, MIN_BPM, 1000.0),
    "beats_per_bar": Spec(float, 0.25, 64.0),
    "bar_offset_beats": Spec(float, 0.0, 64.0, open_high=True, optional=True),
}

KEYS = {
    "C": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "D#": 3,
    "Eb": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "G#": 8,
    "Ab": 8,
    "A": 9,
    "A#": 10,
    "Bb": 10,
    "B": 11,
}
SCALES = {
    "chromatic": tuple(range(12)),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural_minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
# Grid lengths in beats (quarter notes); "t" is the triplet of each.
GRIDS = {f"1/{d}": 4.0 / d for d in (1, 2, 4, 8, 16, 32, 64)}
GRIDS.update({f"{name}t": beats * 2.0 / 3.0 for name, beats in list(GRIDS.items())})

POST_SPECS = {
    "velocity": Spec(str, choices=("confidence", "fixed", "loudness")),
    "fixed_velocity": Spec(int, 1, 127),
    "loudness_floor_db": Spec(float, -120.0, -1.0),
    "transpose_semitones": Spec(int, -48, 48),
    "scale": Spec(str, choices=tuple(SCALES)),
    "scale_key": Spec(str, choices=tuple(KEYS)),
    "scale_mode": Spec(str, choices=("nearest", "remove")),
    "merge_gap_ms": Spec(float, 0.0, 2000.0),
    "monophonic": Spec(str, choices=("off", "strongest", "highest")),
    "min_length_ms": Spec(float, 0.0, 10_000.0),
    "shift_ms": Spec(float, -500.0, 500.0),
    "quantize_grid": Spec(str, choices=("off", *GRIDS)),
    "quantize_strength_pct": Spec(float, 0.0, 100.0),
    "quantize_ends": Spec(bool),
    "pitch_bends": Spec(str, choices=("off", "per_note", "mpe")),
}


@dataclass(frozen=True, kw_only=True)
class PostOptions(OptionGroup):
    """What happens to notes after decoding. Defaults change nothing.

    velocity: "confidence" (the model's, as Basic Pitch), "fixed"
    (`fixed_velocity`), or "loudness" (the audio's RMS over the note's first
    100 ms, from `loudness_floor_db` → 1 up to 0 dBFS → 127; notes struck
    together share it). merge_gap_ms joins notes of
    one pitch closer than that; min_length_ms drops shorter notes (0: off);
    shift_ms moves every note (negative: earlier), for sounds whose slow
    attack the model hears late.
    pitch_bends: "off", "per_note" (a channel per overlapping bent note), or
    "mpe" (MPE lower zone: a member channel per note on channels 2–16).
    """

    velocity: str = "confidence"
    fixed_velocity: int = 100
    loudness_floor_db: float = -60.0
    transpose_semitones: int = 0
    scale: str = "chromatic"
    scale_key: str = "C"
    scale_mode: str = "nearest"
    merge_gap_ms: float = 0.0
    monophonic: str = "off"
    min_length_ms: float = 0.0
    shift_ms: float = 0.0
    quantize_grid: str = "off"
    quantize_strength_pct: float = 100.0
    quantize_ends: bool = False
    pitch_bends: str = "per_note"

    SPECS: ClassVar = POST_SPECS
    WHERE: ClassVar = "post options"
