"""Musical post-processing of a clip's notes, aware of the host: velocity, transpose, scale, merge, one voice, quantise.

The steps run in that order: velocity is read from the audio at the notes'
own times, pitch edits come before merging (which joins notes of one pitch),
one voice decides between notes as they were played, and quantising comes
last so that nothing moves a note off the grid again.

Whatever the steps did, the clip then holds no two notes of one pitch
sounding at once, and a monophonic clip one note at a time (`untangled`):
pitch edits and the grid can pull notes together. In time order, a note still
sounding when the next one of its pitch (of any pitch, monophonic) starts
ends there, as a re-struck key does, its bends past that point dropped. Two
that start together (on one tick of the MIDI file) become one: of one pitch,
the longer, as loud as the louder; in one voice, the one `monophonic` keeps
(the stronger or the higher), as one voice does for notes played together.
Nothing else is dropped: a trimmed note keeps its start, however short.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .clip import Bend, Clip, Note, Tempo
from .midi import to_ticks
from .options import GRIDS, KEYS, SCALES, PostOptions

# How hard a note was played shows in its attack; averaging over a long
# note's decay would rank short notes above long ones played as hard.
LOUDNESS_ATTACK_S = 0.1
RIVAL_ONSET_S = 0.05  # notes starting this close together compete for one place in a single voice


@dataclass(frozen=True)
class Loudness:
    """RMS of the audio the model heard, in dB, in blocks of `block_s` from the clip's start."""

    rms_db: np.ndarray
    block_s: float

    def over(self, start_s: float, end_s: float) -> float:
        first = int(start_s / self.block_s)
        last = max(int(math.ceil(end_s / self.block_s)), first + 1)
        blocks = self.rms_db[first:last]
        if blocks.size == 0:
            return -math.inf
        return float(10 * np.log10(np.mean(10 ** (blocks / 10))))  # mean power, not mean dB


class LoudnessMeter:
    """Measures the RMS of an audio stream in blocks as it flows past, for velocity from loudness."""

    def __init__(self, *, block_samples: int, sample_rate_hz: float):
        self._block = block_samples
        self._rate = sample_rate_hz
        self._energy: list[np.ndarray] = []
        self._carry = np.zeros(0, dtype=np.float32)

    def tap(self, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            joined = np.concatenate([self._carry, chunk])
            whole = joined.shape[0] // self._block * self._block
            squares = joined[:whole].astype(np.float64) ** 2
            self._energy.append(squares.reshape(-1, self._block).mean(axis=1))
            self._carry = joined[whole:]
            yield chunk

    def result(self) -> Loudness | None:
        """The blocks measured (the last one partial), or None when nothing flowed past."""
        tail = [np.mean(self._carry.astype(np.float64) ** 2, keepdims=True)] if self._carry.size else []
        if not self._energy and not tail:
            return None
        with np.errstate(divide="ignore"):  # silence is -inf dB
            return Loudness(10 * np.log10(np.concatenate(self._energy + tail)), self._block / self._rate)


def postprocess(clip: Clip, options: PostOptions, *, tempo: Tempo, loudness: Loudness | None = None) -> Clip:
    """`clip` with `options` applied, quantised to `tempo`'s grid at the clip's timeline position."""
    notes = list(clip.notes)
    notes = _velocities(notes, options, loudness)
    notes = [_transposed(n, options.transpose_semitones) for n in notes]
    notes = [n for n in (_in_scale(n, options) for n in notes) if n is not None]
    if options.merge_gap_ms > 0:
        notes = merge_close(notes, gap_s=options.merge_gap_ms / 1000)
    if options.monophonic != "off":
        notes = one_voice(notes, keep=options.monophonic)
    if options.min_length_ms > 0:
        notes = [n for n in notes if n.end_s - n.start_s >= options.min_length_ms / 1000]
    if options.shift_ms:
        notes = [n for n in (_shifted(n, options.shift_ms / 1000) for n in notes) if n.end_s > 0]
    if options.quantize_grid != "off":
        notes = [
            quantized(
                n,
                grid_beats=GRIDS[options.quantize_grid],
                strength=options.quantize_strength_pct / 100,
                ends=options.quantize_ends,
                tempo=tempo,
                position_s=clip.position_s,
            )
            for n in notes
        ]
    notes = untangled(notes, keep=options.monophonic, bpm=clip.bpm)
    if options.pitch_bends == "off":
        notes = [dataclasses.replace(n, bends=()) for n in notes]
    notes.sort(key=lambda n: (n.start_s, n.pitch))
    return dataclasses.replace(clip, notes=tuple(notes), mpe=options.pitch_bends == "mpe")


def _velocities(notes: list[Note], options: PostOptions, loudness: Loudness | None) -> list[Note]:
    if options.velocity == "fixed":
        return [dataclasses.replace(n, velocity=options.fixed_velocity) for n in notes]
    if options.velocity == "loudness" and loudness is not None:
        floor = options.loudness_floor_db

        def velocity(note: Note) -> int:
            attack_end = min(note.end_s, note.start_s + LOUDNESS_ATTACK_S)
            level = min(max((loudness.over(note.start_s, attack_end) - floor) / -floor, 0.0), 1.0)
            return 1 + round(126 * level)

        return [dataclasses.replace(n, velocity=velocity(n)) for n in notes]
    return notes


def _transposed(note: Note, semitones: int) -> Note:
    return dataclasses.replace(note, pitch=min(max(note.pitch + semitones, 0), 127)) if semitones else note


def _in_scale(note: Note, options: PostOptions) -> Note | None:
    allowed = {(KEYS[options.scale_key] + step) % 12 for step in SCALES[options.scale]}
    if note.pitch % 12 in allowed:
        return note
    if options.scale_mode == "remove":
        return None
    # No scale here has a step over 3 semitones, so a neighbour is always in it; the lower wins a tie.
    for pitch in (note.pitch - 1, note.pitch + 1):
        if pitch % 12 in allowed and 0 <= pitch <= 127:
            return dataclasses.replace(note, pitch=pitch)
    return None


def merge_close(notes: list[Note], *, gap_s: float) -> list[Note]:
    """Join notes of one pitch whose gap is shorter than `gap_s` (re-onsets of one held note)."""
    merged: dict[int, Note] = {}
    out = []
    for note in sorted(notes, key=lambda n: (n.pitch, n.start_s)):
        last = merged.get(note.pitch)
        if last is not None and note.start_s - last.end_s < gap_s:
            merged[note.pitch] = Note(
                note.pitch,
                last.start_s,
                max(last.end_s, note.end_s),
                max(last.velocity, note.velocity),
                last.bends + note.bends,
            )
            continue
        if last is not None:
            out.append(last)
        merged[note.pitch] = note
    return out + list(merged.values())


def one_voice(notes: list[Note], *, keep: str) -> list[Note]:
    """At most one note at a time, as a voice or a bass line plays.

    Notes starting together (within RIVAL_ONSET_S) are rivals: the stronger
    (keep="strongest") or the higher (keep="highest") stays. A later note that
    ends inside a held note and loses to it is an overtone or a ghost, and goes.
    Otherwise the line moves on: the held note ends where the new one starts.
    """
    out: list[Note] = []
    for note in sorted(notes, key=lambda n: (n.start_s, -n.pitch)):
        current = out[-1] if out and out[-1].end_s > note.start_s else None
        if current is None:
            out.append(note)
        elif note.start_s - current.start_s < RIVAL_ONSET_S:
            if _wins(note, current, keep=keep):
                out[-1] = note
        elif note.end_s <= current.end_s and _wins(current, note, keep=keep):
            continue
        else:
            out[-1] = _trimmed(current, end_s=note.start_s)
            out.append(note)
    return out


def _wins(a: Note, b: Note, *, keep: str) -> bool:
    """Whether one voice keeps `a` over `b`, of two notes it cannot both play."""
    if keep == "strongest":
        return (a.velocity, a.pitch) > (b.velocity, b.pitch)
    return (a.pitch, a.velocity) > (b.pitch, b.velocity)


def untangled(notes: list[Note], *, keep: str, bpm: float) -> list[Note]:
    """`notes` with no two of one pitch sounding at once, and one at a time unless `keep` is "off" (the module's
    rule); `bpm` is the MIDI file's, whose ticks tell which notes start together."""
    last: dict[int, int] = {}  # lane (a pitch, or 0 for one voice) -> index in `out` of its latest note
    out: list[Note] = []
    for note in sorted(notes, key=lambda n: (n.start_s, n.pitch)):
        lane = note.pitch if keep == "off" else 0
        held = out[last[lane]] if lane in last else None
        if held is not None and to_ticks(held.start_s, bpm=bpm) == to_ticks(note.start_s, bpm=bpm):
            out[last[lane]] = _together(held, note, keep=keep)
            continue
        if held is not None and held.end_s > note.start_s:
            out[last[lane]] = _trimmed(held, end_s=note.start_s)
        last[lane] = len(out)
        out.append(note)
    return out


def _together(a: Note, b: Note, *, keep: str) -> Note:
    """The one note left of `a` and `b`, which start together (`a` not later)."""
    if a.pitch != b.pitch:
        return a if _wins(a, b, keep=keep) else b
    longer = max(a, b, key=lambda n: n.end_s)
    return Note(a.pitch, a.start_s, longer.end_s, max(a.velocity, b.velocity), longer.bends)


def _shifted(note: Note, shift_s: float) -> Note:
    """`note` moved by `shift_s`, cut at the clip's start."""
    moved = Note(
        note.pitch,
        note.start_s + shift_s,
        note.end_s + shift_s,
        note.velocity,
        tuple(Bend(b.time_s + shift_s, b.semitones) for b in note.bends),
    )
    return _trimmed(moved, start_s=0.0) if moved.start_s < 0 else moved


def _trimmed(note: Note, *, start_s: float | None = None, end_s: float | None = None) -> Note:
    start_s = note.start_s if start_s is None else start_s
    end_s = note.end_s if end_s is None else end_s
    bends = tuple(b for b in note.bends if start_s <= b.time_s < end_s)
    return Note(note.pitch, start_s, end_s, note.velocity, bends)


def quantized(note: Note, *, grid_beats: float, strength: float, ends: bool, tempo: Tempo, position_s: float) -> Note:
    """`note` pulled `strength` of the way to the nearest line of the host's grid; lines restart at every bar line."""
    beats_per_s = tempo.bpm / 60.0
    offset = tempo.bar_offset_at(position_s)

    def snap(time_s: float) -> float:
        beats = offset + time_s * beats_per_s
        bar_start = math.floor(beats / tempo.beats_per_bar) * tempo.beats_per_bar
        line = bar_start + round((beats - bar_start) / grid_beats) * grid_beats
        return time_s + strength * (line - beats) / beats_per_s

    start = max(snap(note.start_s), 0.0)  # a grid line before the clip's start: the note starts with the clip
    end = note.end_s + (start - note.start_s)
    if ends:
        end = snap(note.end_s)
        if end <= start:
            end = start + grid_beats / beats_per_s
    shift = start - note.start_s
    bends = tuple(Bend(b.time_s + shift, b.semitones) for b in note.bends if b.time_s + shift < end)
    return Note(note.pitch, start, end, note.velocity, bends)
