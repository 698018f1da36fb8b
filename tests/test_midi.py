"""Clips written as standard MIDI files with mido and read back: notes, tempo, bends, channels, the host's grid."""

import io

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from midibridge.model.clip import Bend, Clip, Note
from midibridge.model.midi import (
    BEND_RANGE_SEMITONES,
    DRUM_CHANNEL,
    TICKS_PER_BEAT,
    assign_channels,
    clip_from_bytes,
    clip_to_bytes,
    clip_to_midi,
)


def read(clip: Clip) -> mido.MidiFile:
    return mido.MidiFile(file=io.BytesIO(clip_to_bytes(clip)))


def test_notes_tempo_and_bends_survive_a_round_trip_through_a_midi_file():
    clip = Clip(
        notes=(
            Note(60, 0.5, 1.0, 100),
            Note(64, 1.0, 2.0, 80, (Bend(1.25, 1 / 3), Bend(1.5, -0.5))),
            Note(67, 2.5, 3.0, 1),
        ),
        position_s=12.5,
        duration_s=4.0,
        bpm=96.0,
    )

    back = clip_from_bytes(clip_to_bytes(clip), position_s=12.5)

    assert back.bpm == pytest.approx(96.0) and back.position_s == 12.5
    assert back.duration_s == pytest.approx(4.0, abs=1e-3)
    for written, read_back in zip(clip.notes, back.notes, strict=True):
        assert (read_back.pitch, read_back.velocity) == (written.pitch, written.velocity)
        assert read_back.start_s == pytest.approx(written.start_s, abs=1e-3)
        assert read_back.end_s == pytest.approx(written.end_s, abs=1e-3)
        assert [b.time_s for b in read_back.bends] == pytest.approx([b.time_s for b in written.bends], abs=1e-3)
        assert [b.semitones for b in read_back.bends] == pytest.approx(
            [b.semitones for b in written.bends], abs=1 / 4096
        )


def test_ticks_count_beats_of_the_host_tempo():
    # At 96 BPM a beat lasts 0.625 s: a note on beat 2 starts at tick 960.
    midi = read(Clip(notes=(Note(60, 0.625, 1.25, 90),), bpm=96.0, duration_s=2.5))

    assert midi.ticks_per_beat == TICKS_PER_BEAT
    tempo = next(m for m in midi.tracks[0] if m.type == "set_tempo")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(96.0)
    ticks, on_off = 0, []
    for message in midi.tracks[1]:
        ticks += message.time
        if message.type in ("note_on", "note_off"):
            on_off.append((message.type, ticks))
    assert on_off == [("note_on", 960), ("note_off", 1920)]
    assert ticks == 4 * 960, "the track ends where the region ends"


def test_bent_notes_declare_the_bend_range_and_are_reset_when_they_end():
    midi = read(Clip(notes=(Note(60, 0.0, 1.0, 90, (Bend(0.0, 0.5),)), Note(62, 1.0, 2.0, 90)), duration_s=2.0))

    messages = [m for m in midi.tracks[1] if not m.is_meta]
    rpn = [(m.control, m.value) for m in messages if m.type == "control_change"]
    assert rpn[:4] == [(101, 0), (100, 0), (6, BEND_RANGE_SEMITONES), (38, 0)], "RPN 0: ±2 semitones"
    wheel = [m.pitch for m in messages if m.type == "pitchwheel"]
    assert wheel == [2048, 0], "bent half a semitone, then back to rest"
    kinds = [m.type for m in messages if m.type != "control_change"]
    assert kinds == ["pitchwheel", "note_on", "note_off", "pitchwheel", "note_on", "note_off"], (
        "the bend comes before its note, the reset after it, both before the next note"
    )


def test_overlapping_bent_notes_get_channels_of_their_own():
    notes = (
        Note(60, 0.0, 2.0, 90, (Bend(0.5, 0.3),)),
        Note(64, 0.5, 1.5, 90, (Bend(0.7, -0.3),)),
        Note(67, 0.5, 1.0, 90),
        Note(72, 2.0, 3.0, 90, (Bend(2.1, 1.0),)),
    )

    channels = assign_channels(notes)

    assert channels[0][0] != channels[1][0], "two bent notes sounding together bend separate channels"
    assert channels[2][0] not in (channels[0][0], channels[1][0]), "an unbent note stays off a bending channel"
    assert channels[3] == (channels[0][0], True), "a channel is free again once its note has ended"
    back = clip_from_bytes(clip_to_bytes(Clip(notes=notes, duration_s=3.0)))
    assert [len(n.bends) for n in back.notes] == [1, 1, 0, 1]


def test_more_bent_notes_than_channels_keep_their_notes_and_drop_only_bends():
    notes = tuple(Note(40 + i, 0.0, 1.0, 90, (Bend(0.1, 0.5),)) for i in range(20))

    channels = assign_channels(notes)

    assert sum(bent for _, bent in channels) == 15
    assert DRUM_CHANNEL not in {c for c, _ in channels}
    assert len(clip_from_bytes(clip_to_bytes(Clip(notes=notes, duration_s=1.0))).notes) == 20


def test_an_empty_clip_is_a_valid_file_as_long_as_its_region():
    midi = clip_to_midi(Clip(duration_s=2.0, bpm=120.0))

    assert midi.length == pytest.approx(2.0)
    assert clip_from_bytes(clip_to_bytes(Clip(duration_s=2.0))).notes == ()


@pytest.mark.parametrize("note", [Note(128, 0.0, 1.0, 100), Note(60, 0.0, 1.0, 128), Note(-1, 0.0, 1.0, 1)])
def test_a_note_no_midi_file_can_hold_is_refused_not_written(note):
    with pytest.raises(ValueError, match="pitch and velocity are 0-127"):
        clip_to_bytes(Clip(notes=(note,), duration_s=2.0))


def test_a_note_before_the_clip_starts_is_refused_not_written():
    with pytest.raises(ValueError, match="start at the clip's start"):
        clip_to_bytes(Clip(notes=(Note(60, -0.5, 1.0, 100),), duration_s=2.0))


def test_the_json_form_round_trips():
    clip = Clip(notes=(Note(60, 0.5, 1.0, 100, (Bend(0.6, 0.25),)),), position_s=3.0, duration_s=2.0, bpm=140.0)

    assert Clip.from_dict(clip.to_dict()) == clip


def test_a_key_struck_again_as_it_is_released_is_released_first():
    # Back to back on one key, the first bent (its bend reset as it ends): off, then on, at tick 960.
    clip = Clip(
        notes=(Note(60, 0.0, 0.5, 90, (Bend(0.2, 0.5),)), Note(60, 0.5, 1.0, 80), Note(60, 1.0, 1.5, 70)),
        duration_s=1.5,
    )

    ticks, events = 0, []
    for message in read(clip).tracks[1]:
        ticks += message.time
        if message.type in ("note_on", "note_off", "pitchwheel"):
            events.append((ticks, message.type))

    assert events == [
        (0, "note_on"),
        (384, "pitchwheel"),
        (960, "note_off"),
        (960, "pitchwheel"),
        (960, "note_on"),
        (1920, "note_off"),
        (1920, "note_on"),
        (2880, "note_off"),
    ]
    assert [(n.start_s, n.end_s) for n in clip_from_bytes(clip_to_bytes(clip)).notes] == [
        (0.0, 0.5),
        (0.5, 1.0),
        (1.0, 1.5),
    ]


@pytest.mark.parametrize(
    "beats_per_bar, signature",
    [
        (4.0, (4, 4)),
        (3.0, (3, 4)),
        (3.5, (7, 8)),
        (2.5, (5, 8)),
        (6.0, (6, 4)),
        (0.75, (3, 16)),
        (64.0, (64, 4)),
        (3.3, (53, 64)),  # no time signature lasts 3.3 quarter notes: the nearest in 64th notes
    ],
)
def test_the_time_signature_is_the_hosts_bar(beats_per_bar, signature):
    clip = Clip(notes=(Note(60, 0.0, 0.5, 90),), duration_s=1.0, beats_per_bar=beats_per_bar)

    [meter] = [m for m in read(clip).tracks[0] if m.type == "time_signature"]

    assert (meter.numerator, meter.denominator) == signature
    back = clip_from_bytes(clip_to_bytes(clip))
    assert back.beats_per_bar == signature[0] * 4 / signature[1]
    assert Clip.from_dict(clip.to_dict()) == clip
    assert ("beats_per_bar" in clip.to_dict()) == (beats_per_bar != 4.0), "4/4 clips' JSON is as it always was"


bends = st.lists(st.builds(Bend, st.floats(-0.1, 3.0), st.floats(-60.0, 60.0)), max_size=4).map(tuple)
notes = st.builds(Note, st.integers(0, 127), st.floats(0.0, 2.0), st.floats(0.0, 3.0), st.integers(0, 127), bends)


@settings(max_examples=150, deadline=None)
@given(
    notes=st.lists(notes, max_size=30).map(tuple),
    duration_s=st.sampled_from([0.0, 2.0, 3.0e4]),  # long enough for a 4-byte end of track
    bpm=st.sampled_from([120.0, 33.3, 300.0]),
    mpe=st.booleans(),
    drums=st.booleans(),
)
def test_the_file_is_byte_for_byte_what_mido_writes(notes, duration_s, bpm, mpe, drums):
    # midibridge writes its note track in numpy (mido's writer, a message at a time, took 10 us a message); mido
    # reading the file and writing it again must give the same bytes: delta times, running status, meta messages.
    data = clip_to_bytes(Clip(notes=notes, duration_s=duration_s, bpm=bpm, mpe=mpe, drums=drums and not mpe))

    again = io.BytesIO()
    mido.MidiFile(file=io.BytesIO(data)).save(file=again)

    assert again.getvalue() == data
