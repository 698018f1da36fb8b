"""Clips as standard MIDI files: `clip_to_bytes`/`clip_from_bytes` and their mido forms.

The note track's channel messages are encoded as one numpy array (mido's
writer makes and encodes one Message object at a time: 10 us a message,
the largest part of a clip's time after its notes are decoded); the meta
messages, the status bytes and every reading are mido's, and a test holds
the bytes to what mido writes.

Ticks count beats of the host tempo (960 per quarter note), so a file
imported at the region's position lands on the host's grid. Bends declare a
±2 semitone range (RPN 0) on every channel that carries them and return to 0
after each note. A bent note needs a channel of its own while it sounds, so
overlapping bent notes go to separate channels (never the drum channel). An
MPE clip puts every note on a member channel of the lower zone (channels
2-16) with MPE's ±48 semitone range, announced by the MPE configuration message. A
drum clip puts every note on the General MIDI drum channel (10), unbent.

The time signature is the host's bar (`Clip.beats_per_bar`, quarter notes):
3 → 3/4, 3.5 → 7/8, 0.75 → 3/16. A bar length says nothing of how it is
divided, so 6/8 is written as the 3/4 it lasts. A bar no time signature of up
to 64th notes holds exactly (3.3 quarter notes) is written as the nearest
(53/64); the notes and ticks do not depend on it.
"""

from __future__ import annotations

import io
import struct
from collections import defaultdict

import mido
import numpy as np
from mido.messages.specs import SPEC_BY_TYPE

from .clip import DEFAULT_BEATS_PER_BAR, Bend, Clip, Note

TICKS_PER_BEAT = 960
BEND_RANGE_SEMITONES = 2
DRUM_CHANNEL = 9
CHANNELS = tuple(c for c in range(16) if c != DRUM_CHANNEL)
# MPE lower zone: channel 1 (index 0) is the master, channels 2-16 carry one note each.
MPE_MASTER_CHANNEL = 0
MPE_MEMBER_CHANNELS = tuple(range(1, 16))
MPE_BEND_RANGE_SEMITONES = 48  # MPE's default for member channels
BEND_RANGE_RPN, MCM_RPN = 0, 6  # pitch bend sensitivity; MPE configuration message
# The controllers that select a registered parameter and set its value; 127/127 selects none.
RPN_MSB_CC, RPN_LSB_CC, DATA_ENTRY_MSB_CC, DATA_ENTRY_LSB_CC = 101, 100, 6, 38
NULL_RPN = 127
TRACK_NAME = "midibridge"
DEFAULT_TEMPO_US = 500_000  # per beat, MIDI's default: 120 BPM
DENOMINATORS = (4, 8, 16, 32, 64)  # time signature units, quarter notes first: 3/4 rather than 6/8 or 12/16
MAX_NUMERATOR = 255

# Status bytes on channel 1 (index 0), from mido's table; a note-off's release velocity is MIDI's "none measured".
NOTE_ON_STATUS, NOTE_OFF_STATUS, CONTROL_CHANGE_STATUS, PITCHWHEEL_STATUS = (
    SPEC_BY_TYPE[kind]["status_byte"] for kind in ("note_on", "note_off", "control_change", "pitchwheel")
)
NOTE_OFF_VELOCITY = 64
# Order of events that share a tick: release, reset the bend, bend the next note, then strike it.
_NOTE_OFF, _BEND_RESET, _BEND, _NOTE_ON = range(4)


def to_ticks(time_s: float, *, bpm: float) -> int:
    """The tick of the file at `bpm` where `time_s` falls: notes that start on one tick are struck together."""
    return round(time_s * bpm / 60.0 * TICKS_PER_BEAT)


def clip_to_bytes(clip: Clip) -> bytes:
    """A type 1 standard MIDI file: a conductor track (tempo, time signature) and one track of notes, ending at the
    clip's end."""
    _check_notes(clip.notes)
    ticks, messages = _channel_events(clip)
    last_tick = int(ticks[-1]) if len(ticks) else 0
    end_tick = max(last_tick, to_ticks(clip.duration_s, bpm=clip.bpm))
    numerator, denominator = time_signature(clip.beats_per_bar)
    name = mido.MetaMessage("track_name", name=TRACK_NAME)
    conductor = [
        name,
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(clip.bpm)),
        mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator),
    ]
    return (
        struct.pack(">4sLHHH", b"MThd", 6, 1, 2, TICKS_PER_BEAT)
        + _track(_metas(conductor), end_delta=end_tick)
        + _track(_metas([name]) + _encode(ticks, messages), end_delta=end_tick - last_tick)
    )


def clip_to_midi(clip: Clip) -> mido.MidiFile:
    """`clip_to_bytes`'s file, as mido reads it."""
    return mido.MidiFile(file=io.BytesIO(clip_to_bytes(clip)))


def _check_notes(notes: tuple[Note, ...]) -> None:
    for note in notes:
        if not (0 <= note.pitch <= 127 and 0 <= note.velocity <= 127):
            raise ValueError(f"a MIDI note's pitch and velocity are 0-127, got {note}")


def _channel_events(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """The note track's channel messages in the order they are written: (n,) int64 ticks and (n, 3) int64 status and
    data bytes."""

    def tick(time_s: float) -> int:
        return to_ticks(time_s, bpm=clip.bpm)

    placement = note_channels(clip)
    bend_range = MPE_BEND_RANGE_SEMITONES if clip.mpe else BEND_RANGE_SEMITONES
    rows: list[tuple[int, ...]] = []  # (tick, rank, status, data, data)
    bent_channels = set()
    for note, (channel, bent) in zip(clip.notes, placement):
        start = tick(note.start_s)
        if start < 0:
            raise ValueError(f"a MIDI file's notes start at the clip's start (0 s) or later, got {note}")
        end = max(tick(note.end_s), start + 1)
        rows.append((start, _NOTE_ON, NOTE_ON_STATUS | channel, note.pitch, note.velocity))
        rows.append((end, _NOTE_OFF, NOTE_OFF_STATUS | channel, note.pitch, NOTE_OFF_VELOCITY))
        if not bent:
            continue
        bent_channels.add(channel)
        for bend in note.bends:
            at = max(tick(bend.time_s), start)
            if at < end:
                rows.append((at, _BEND, *_pitchwheel(channel, bend_to_pitchwheel(bend.semitones, bend_range))))
        rows.append((end, _BEND_RESET, *_pitchwheel(channel, 0)))
    setup = rpn(MPE_MASTER_CHANNEL, MCM_RPN, len(MPE_MEMBER_CHANNELS)) if clip.mpe else []
    for channel in sorted(bent_channels):
        setup += rpn(channel, BEND_RANGE_RPN, bend_range)
    rows[:0] = [(0, -1, CONTROL_CHANGE_STATUS | cc["channel"], cc["control"], cc["value"]) for cc in setup]
    table = np.array(rows, np.int64).reshape(-1, 5)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]  # stable: one tick's events of one rank keep their order
    return table[:, 0], table[:, 2:]


def _pitchwheel(channel: int, pitch: int) -> tuple[int, int, int]:
    """A pitch wheel message's status and data bytes: the wheel's 14 bits from 0 (centre 8192), low 7 bits first."""
    value = pitch + 8192
    return PITCHWHEEL_STATUS | channel, value & 0x7F, value >> 7


def _encode(ticks: np.ndarray, messages: np.ndarray) -> bytes:
    """Channel messages (n, 3) at ascending `ticks` (n,) as track data: each one's delta time, then its bytes, the
    status byte left out where it repeats the one before (running status, as mido writes)."""
    if not len(ticks):
        return b""
    groups, written = _variable_ints(np.diff(ticks, prepend=0))
    status_written = np.ones((len(ticks), 1), bool)
    status_written[1:, 0] = messages[1:, 0] != messages[:-1, 0]
    rows = np.concatenate([groups, messages.astype(np.uint8)], axis=1)
    kept = np.concatenate([written, status_written, np.ones((len(ticks), 2), bool)], axis=1)
    return rows[kept].tobytes()  # row by row: each event's bytes in order


def _variable_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MIDI's variable-length quantities of `values` (n,) >= 0: (n, k) uint8 groups of 7 bits, most significant
    first, each but the last with its top bit set, and (n, k) bool, the groups written (leading zeros are not)."""
    shifts = 7 * np.arange(-(-max(int(values.max()).bit_length(), 1) // 7) - 1, -1, -1)
    parts = values[:, np.newaxis] >> shifts
    groups = (parts & 0x7F) | np.where(shifts > 0, 0x80, 0)
    written = parts > 0
    written[:, -1] = True
    return groups.astype(np.uint8), written


def _metas(messages: list[mido.MetaMessage]) -> bytes:
    """Meta messages at delta time 0, in mido's encoding."""
    return b"".join(b"\x00" + bytes(message.bytes()) for message in messages)


def _track(data: bytes, *, end_delta: int) -> bytes:
    """A track chunk of `data` and the end of track `end_delta` ticks after its last event."""
    groups, written = _variable_ints(np.array([end_delta], np.int64))
    data += groups[written].tobytes() + bytes(mido.MetaMessage("end_of_track").bytes())
    return struct.pack(">4sL", b"MTrk", len(data)) + data


def clip_from_midi(midi: mido.MidiFile, *, position_s: float = 0.0) -> Clip:
    """Read notes, bends and the first tempo and time signature back from a MIDI file (any tempo map), as a clip at
    `position_s`; notes all on the drum channel make a drum clip."""
    tempo_us = beats_per_bar = None
    bend_range: defaultdict[int, float] = defaultdict(lambda: BEND_RANGE_SEMITONES)  # channel -> semitones
    selected_rpn: dict[int, int] = {}
    open_notes = defaultdict(list)  # (channel, pitch) -> [(start_s, velocity)]
    wheel = defaultdict(list)  # channel -> [(time_s, semitones)]
    found = []  # (channel, Note without bends)
    now_s, current_tempo = 0.0, DEFAULT_TEMPO_US
    mpe = False
    for message in mido.merge_tracks(midi.tracks):
        now_s += mido.tick2second(message.time, midi.ticks_per_beat, current_tempo)
        if message.type == "set_tempo":
            current_tempo = message.tempo
            tempo_us = tempo_us or message.tempo
        elif message.type == "time_signature" and beats_per_bar is None:
            beats_per_bar = message.numerator * 4 / message.denominator
        elif message.type == "note_on" and message.velocity > 0:
            open_notes[(message.channel, message.note)].append((now_s, message.velocity))
        elif message.type in ("note_on", "note_off") and open_notes[(message.channel, message.note)]:
            start_s, velocity = open_notes[(message.channel, message.note)].pop(0)
            found.append((message.channel, Note(message.note, start_s, now_s, velocity)))
        elif message.type == "pitchwheel":
            wheel[message.channel].append((now_s, message.pitch / 8192 * bend_range[message.channel]))
        elif message.type == "control_change":
            members = _follow_rpn(message, selected_rpn, bend_range)
            mpe = mpe if members is None else members > 0
    notes = sorted((_with_bends(note, wheel[channel]) for channel, note in found), key=lambda n: (n.start_s, n.pitch))
    drums = bool(found) and all(channel == DRUM_CHANNEL for channel, _ in found)
    return Clip(
        notes=tuple(notes),
        position_s=position_s,
        duration_s=now_s,
        bpm=mido.tempo2bpm(tempo_us or DEFAULT_TEMPO_US),
        mpe=mpe,
        drums=drums,
        beats_per_bar=beats_per_bar or DEFAULT_BEATS_PER_BAR,
    )


def clip_from_bytes(data: bytes, *, position_s: float = 0.0) -> Clip:
    return clip_from_midi(mido.MidiFile(file=io.BytesIO(data)), position_s=position_s)


def time_signature(beats_per_bar: float) -> tuple[int, int]:
    """(numerator, denominator) of the bar nearest `beats_per_bar` quarter notes, in the first unit of DENOMINATORS
    that comes nearest (exact for a bar of whole 64th notes); a numerator is one byte in the file."""
    candidates = [(max(1, round(beats_per_bar * d / 4)), d) for d in DENOMINATORS]
    return min(
        (c for c in candidates if c[0] <= MAX_NUMERATOR), key=lambda c: round(abs(c[0] * 4 / c[1] - beats_per_bar), 9)
    )  # to 1e-9: float noise is no nearer


def note_channels(clip: Clip) -> list[tuple[int, bool]]:
    """(channel, whether its bends are written) for each of the clip's notes: the drum channel for a drum clip, a
    member channel for an MPE clip, else `assign_channels`."""
    if clip.drums:
        return [(DRUM_CHANNEL, False)] * len(clip.notes)
    if clip.mpe:
        return [(channel, True) for channel in assign_mpe_channels(clip.notes)]
    return assign_channels(clip.notes)


def assign_channels(notes: tuple[Note, ...]) -> list[tuple[int, bool]]:
    """(channel, whether its bends are written) for each note.

    A bent note takes the lowest channel where nothing sounds; an unbent note
    the lowest channel where no bent note sounds. When every channel is
    taken, a bent note is written unbent rather than bending its neighbours.
    """
    busy_until = dict.fromkeys(CHANNELS, float("-inf"))
    bent_until = dict.fromkeys(CHANNELS, float("-inf"))
    chosen: dict[int, tuple[int, bool]] = {}
    for index in sorted(range(len(notes)), key=lambda i: (notes[i].start_s, notes[i].pitch)):
        note = notes[index]
        free = next((c for c in CHANNELS if busy_until[c] <= note.start_s), None) if note.bends else None
        channel = (
            free if free is not None else next((c for c in CHANNELS if bent_until[c] <= note.start_s), CHANNELS[0])
        )
        busy_until[channel] = max(busy_until[channel], note.end_s)
        if free is not None:
            bent_until[channel] = note.end_s
        chosen[index] = (channel, free is not None)
    return [chosen[index] for index in range(len(notes))]


def assign_mpe_channels(notes: tuple[Note, ...]) -> list[int]:
    """A member channel per note: the free one released longest ago; with all 15 busy, the one that frees first."""
    busy_until = dict.fromkeys(MPE_MEMBER_CHANNELS, float("-inf"))
    chosen = [0] * len(notes)
    for index in sorted(range(len(notes)), key=lambda i: (notes[i].start_s, notes[i].pitch)):
        note = notes[index]
        channel = min(MPE_MEMBER_CHANNELS, key=lambda c: busy_until[c])
        busy_until[channel] = note.end_s
        chosen[index] = channel
    return chosen


def bend_to_pitchwheel(semitones: float, bend_range: float = BEND_RANGE_SEMITONES) -> int:
    return max(-8192, min(8191, round(semitones * 8192 / bend_range)))


def rpn(channel: int, number: int, value: int) -> list[dict]:
    """The control changes (their fields) that set registered parameter `number` to `value` (coarse), then select the
    null RPN so that later data entry changes nothing."""
    return [
        {"channel": channel, "control": control, "value": data}
        for control, data in (
            (RPN_MSB_CC, 0),
            (RPN_LSB_CC, number),
            (DATA_ENTRY_MSB_CC, value),
            (DATA_ENTRY_LSB_CC, 0),
            (RPN_MSB_CC, NULL_RPN),
            (RPN_LSB_CC, NULL_RPN),
        )
    ]


def _follow_rpn(message: mido.Message, selected_rpn: dict, bend_range: dict) -> int | None:
    """Track RPN selection and data entry; returns the member count when this message completes an MPE configuration."""
    selected = selected_rpn.setdefault(message.channel, [NULL_RPN, NULL_RPN])
    if message.control == RPN_MSB_CC:
        selected[0] = message.value
    elif message.control == RPN_LSB_CC:
        selected[1] = message.value
    elif message.control == DATA_ENTRY_MSB_CC and selected == [0, BEND_RANGE_RPN]:
        bend_range[message.channel] = message.value
    elif message.control == DATA_ENTRY_MSB_CC and selected == [0, MCM_RPN] and message.channel == MPE_MASTER_CHANNEL:
        return message.value
    return None


def _with_bends(note: Note, wheel: list[tuple[float, float]]) -> Note:
    bends, previous = [], 0.0
    for time_s, semitones in wheel:
        if note.start_s <= time_s < note.end_s and semitones != previous:
            bends.append(Bend(time_s, semitones))
            previous = semitones
    return Note(note.pitch, note.start_s, note.end_s, note.velocity, tuple(bends))
