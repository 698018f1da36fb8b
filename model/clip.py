"""What comes back: a MIDI clip as notes in seconds, placed on the host's timeline.

Standard library only: the daemon's wire protocol and thin clients share
these types. `to_dict`/`from_dict` are the JSON form (the `--json` output and
the notes of a daemon reply); model.midi writes and reads the SMF form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .options import TEMPO_SPECS, OptionGroup

DEFAULT_BPM = 120.0
DEFAULT_BEATS_PER_BAR = 4.0
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch: int) -> str:
    """MIDI pitch as a name, middle C (60) = C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


@dataclass(frozen=True)
class Bend:
    """From `time_s` (clip time) on, the note sounds `semitones` away from its pitch."""

    time_s: float
    semitones: float


@dataclass(frozen=True)
class Note:
    """One note; times in seconds from the start of the clip."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int
    bends: tuple[Bend, ...] = ()

    def to_dict(self) -> dict:
        return {
            "pitch": self.pitch,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "velocity": self.velocity,
            "bends": [{"time_s": b.time_s, "semitones": b.semitones} for b in self.bends],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Note:
        bends = tuple(Bend(float(b["time_s"]), float(b["semitones"])) for b in data.get("bends", ()))
        return cls(int(data["pitch"]), float(data["start_s"]), float(data["end_s"]), int(data["velocity"]), bends)


@dataclass(frozen=True)
class LiveEvent:
    """One event of a live stream (model.live), decided as the audio came in. `time_s`: where it belongs in the stream's
    audio, from its first sample; `kind` a model.vocabulary.EventKind; `velocity` for a note-on, `semitones` for a
    bend."""

    kind: str
    time_s: float
    pitch: int
    velocity: int = 0
    semitones: float = 0.0

    def to_dict(self) -> dict:
        return {
            "kind": str(self.kind),
            "time_s": self.time_s,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "semitones": self.semitones,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LiveEvent:
        return cls(
            str(data["kind"]),
            float(data["time_s"]),
            int(data["pitch"]),
            int(data.get("velocity", 0)),
            float(data.get("semitones", 0.0)),
        )


@dataclass(frozen=True, kw_only=True)
class Tempo(OptionGroup):
    """The host's tempo and bars where the clip goes, taken as constant over the clip.

    `bar_offset_beats`: how far (in beats) the clip's start lies past the bar
    line before it; None means bars of `beats_per_bar` from timeline 0 at this
    tempo. Quantising snaps to the host's bars through it. Its dict form is a
    request's `tempo`, checked field by field like an option group.
    """

    bpm: float = DEFAULT_BPM
    beats_per_bar: float = DEFAULT_BEATS_PER_BAR
    bar_offset_beats: float | None = None

    SPECS: ClassVar = TEMPO_SPECS
    WHERE: ClassVar = "host tempo"

    def bar_offset_at(self, position_s: float) -> float:
        if self.bar_offset_beats is not None:
            return self.bar_offset_beats
        return (position_s * self.bpm / 60.0) % self.beats_per_bar


@dataclass(frozen=True)
class Clip:
    """Notes of one region, the region's timeline position and length, and the host tempo and bar (in quarter notes)
    they were written for."""

    notes: tuple[Note, ...] = ()
    position_s: float = 0.0
    duration_s: float = 0.0
    bpm: float = DEFAULT_BPM
    mpe: bool = False  # bends are per note on MPE member channels
    drums: bool = False  # notes are General MIDI drum sounds, written on the drum channel (10)
    # Clip time where the audio of a truncated file stops (transcribed with allow_truncated); None: whole.
    truncated_at_s: float | None = None
    beats_per_bar: float = DEFAULT_BEATS_PER_BAR  # the MIDI file's time signature says it

    def to_dict(self) -> dict:
        truncated = {} if self.truncated_at_s is None else {"truncated_at_s": self.truncated_at_s}
        drums = {"drums": True} if self.drums else {}
        bar = {} if self.beats_per_bar == DEFAULT_BEATS_PER_BAR else {"beats_per_bar": self.beats_per_bar}
        return {
            "position_s": self.position_s,
            "duration_s": self.duration_s,
            "bpm": self.bpm,
            **bar,  # only when not 4 quarter notes, like drums and truncated_at_s
            "mpe": self.mpe,
            **drums,
            **truncated,  # only when set (drums too), so other clips' JSON is as it always was
            "notes": [note.to_dict() for note in self.notes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Clip:
        return cls(
            notes=tuple(Note.from_dict(n) for n in data.get("notes", ())),
            position_s=float(data.get("position_s", 0.0)),
            duration_s=float(data.get("duration_s", 0.0)),
            bpm=float(data.get("bpm", DEFAULT_BPM)),
            mpe=bool(data.get("mpe", False)),
            drums=bool(data.get("drums", False)),
            truncated_at_s=None if data.get("truncated_at_s") is None else float(data["truncated_at_s"]),
            beats_per_bar=float(data.get("beats_per_bar", DEFAULT_BEATS_PER_BAR)),
        )
