"""Post-processing on hand-built notes, as a producer would check it against the DAW's grid and keyboard."""

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from midibridge.model.clip import Bend, Clip, Note, Tempo
from midibridge.model.midi import MPE_BEND_RANGE_SEMITONES, clip_from_bytes, clip_to_bytes
from midibridge.model.options import GRIDS, PostOptions
from midibridge.model.postprocess import Loudness, postprocess


def post(notes, position_s=0.0, tempo=Tempo(), loudness=None, **options):
    clip = Clip(notes=tuple(notes), position_s=position_s, duration_s=10.0, bpm=tempo.bpm)
    return postprocess(clip, PostOptions(**options), tempo=tempo, loudness=loudness)


def starts(clip):
    return [round(n.start_s, 4) for n in clip.notes]


def test_a_region_starting_mid_bar_at_90_bpm_snaps_to_the_songs_grid_not_the_regions():
    # At 90 BPM a beat is 2/3 s; a region at 6.8667 s starts 10.3 beats in, 2.3 beats into bar 3.
    tempo, position_s = Tempo(bpm=90.0), 10.3 / 1.5
    note = Note(60, 0.25, 0.6, 100)  # song beat 10.675

    clip = post([note], position_s=position_s, tempo=tempo, quantize_grid="1/8")

    assert starts(clip) == [round((10.5 - 10.3) / 1.5, 4)], "to beat 10.5, the song's eighth, not the region's"
    assert clip.notes[0].end_s - clip.notes[0].start_s == pytest.approx(0.35), "length kept"


def test_the_host_can_say_where_the_bar_lines_are():
    # After tempo changes the host knows best: 0.5 beats past a bar line, whatever the position says.
    clip = post(
        [Note(60, 0.3, 0.5, 100)], position_s=100.0, tempo=Tempo(bpm=120.0, bar_offset_beats=0.5), quantize_grid="1/4"
    )

    assert starts(clip) == [0.25], "beat 1.1 of the bar goes to beat 1.0, 0.25 s into the clip"


def test_strength_moves_part_of_the_way_and_triplets_and_ends_snap_too():
    note = Note(60, 0.1, 0.4, 100)  # 0.2 beats at 120 BPM

    assert starts(post([note], quantize_grid="1/4", quantize_strength_pct=50.0)) == [0.05]
    assert starts(post([Note(60, 0.2, 0.4, 100)], quantize_grid="1/8t")) == [round(1 / 6, 4)]
    ended = post([note], quantize_grid="1/8", quantize_ends=True).notes[0]
    assert (ended.start_s, ended.end_s) == pytest.approx((0.0, 0.5))


def test_quantising_carries_a_notes_bends_along_with_it():
    clip = post([Note(60, 0.1, 0.9, 100, (Bend(0.3, 0.5),))], quantize_grid="1/4")

    assert clip.notes[0].bends == (Bend(pytest.approx(0.2), 0.5),)


def test_scale_snap_moves_or_removes_notes_outside_the_key():
    chromatic = [Note(p, i * 0.5, i * 0.5 + 0.4, 100) for i, p in enumerate(range(60, 72))]

    nearest = post(chromatic, scale="major", scale_key="C", scale_mode="nearest")
    removed = post(chromatic, scale="minor_pentatonic", scale_key="A", scale_mode="remove")
    f_sharp = post(chromatic, scale="major", scale_key="F#", scale_mode="remove")

    assert [n.pitch for n in nearest.notes] == [60, 60, 62, 62, 64, 65, 65, 67, 67, 69, 69, 71], "ties go down"
    assert {n.pitch % 12 for n in removed.notes} == {9, 0, 2, 4, 7}
    assert {n.pitch % 12 for n in f_sharp.notes} == {6, 8, 10, 11, 1, 3, 5}


def test_one_voice_keeps_the_line_and_drops_ghosts():
    line = [
        Note(48, 0.0, 1.1, 90),
        Note(50, 1.0, 2.0, 80),  # legato: the held note gives way
        Note(60, 1.0, 1.5, 40),  # a weak overtone starting with it: a rival, loses
        Note(55, 1.4, 1.7, 30),  # a weak note inside the held one: a ghost
        Note(43, 2.5, 3.0, 60),
        Note(67, 2.5, 3.0, 50),
    ]  # a chord: one of them

    strongest = post(line, monophonic="strongest")
    highest = post(line, monophonic="highest")

    assert [(n.pitch, n.start_s, n.end_s) for n in strongest.notes] == [(48, 0.0, 1.0), (50, 1.0, 2.0), (43, 2.5, 3.0)]
    assert [n.pitch for n in highest.notes][-1] == 67
    assert all(a.end_s <= b.start_s for a, b in zip(highest.notes, highest.notes[1:]))


def test_velocity_can_be_fixed_or_follow_the_audio_loudness():
    notes = [Note(60, 0.0, 0.5, 10), Note(62, 1.0, 1.5, 10), Note(64, 2.0, 2.5, 10)]
    # -60 dB, -30 dB, 0 dB blocks of 0.5 s, with silence between.
    levels = np.repeat([-60.0, -np.inf, -30.0, -np.inf, 0.0, -np.inf], 50)
    loudness = Loudness(levels, 0.01)

    assert {n.velocity for n in post(notes, velocity="fixed", fixed_velocity=77).notes} == {77}
    assert [n.velocity for n in post(notes, velocity="loudness", loudness=loudness).notes] == [1, 64, 127]
    long_note = [Note(60, 0.0, 2.5, 10)]  # struck at -60 dB: its loud neighbours later do not count
    assert post(long_note, velocity="loudness", loudness=loudness).notes[0].velocity == 1


def test_merge_short_gaps_drop_short_notes_transpose_and_shift():
    notes = [Note(60, 0.0, 0.5, 80), Note(60, 0.55, 1.0, 90), Note(60, 1.5, 2.0, 70), Note(72, 3.0, 3.03, 100)]

    merged = post(notes, merge_gap_ms=100.0)
    assert [(n.start_s, n.end_s, n.velocity) for n in merged.notes][:2] == [(0.0, 1.0, 90), (1.5, 2.0, 70)]
    assert [n.pitch for n in post(notes, min_length_ms=50.0, transpose_semitones=-12).notes] == [48, 48, 48]
    shifted = post(notes, shift_ms=-40.0)
    assert starts(shifted)[:2] == [0.0, 0.51] and shifted.notes[0].end_s == pytest.approx(0.46)


def test_bends_can_be_dropped_or_sent_as_mpe():
    notes = [
        Note(60, 0.0, 1.0, 90, (Bend(0.2, 1.0),)),
        Note(64, 0.5, 1.5, 90, (Bend(0.6, -0.5),)),
        Note(67, 0.5, 1.5, 90, (Bend(0.7, 0.25),)),
    ]

    assert all(n.bends == () for n in post(notes, pitch_bends="off").notes)
    mpe = post(notes, pitch_bends="mpe")
    assert mpe.mpe

    midi = mido.MidiFile(file=io.BytesIO(clip_to_bytes(mpe)))
    messages = [m for m in midi.tracks[1] if not m.is_meta]
    rpn_by_channel = {}
    for m in messages:
        if m.type == "control_change":
            rpn_by_channel.setdefault(m.channel, []).append((m.control, m.value))
    assert rpn_by_channel[0][:3] == [(101, 0), (100, 6), (6, 15)], "MPE configuration: 15 member channels"
    note_channels = [m.channel for m in messages if m.type == "note_on"]
    assert len(set(note_channels)) == 3 and all(1 <= c <= 15 for c in note_channels), "a member channel per note"
    assert all((6, MPE_BEND_RANGE_SEMITONES) in rpn_by_channel[c] for c in note_channels)
    back = clip_from_bytes(clip_to_bytes(mpe))
    assert back.mpe and [n.bends[0].semitones for n in back.notes] == pytest.approx([1.0, -0.5, 0.25], abs=0.01)


def test_loud_and_soft_playing_come_back_loud_and_soft_with_loudness_velocity(transcriber, audio_dir):
    from conftest import render

    from midibridge.model.presets import Preset
    from midibridge.model.region import Region

    played = [Note(60, 0.5, 1.2, 30), Note(64, 1.5, 2.2, 120), Note(67, 2.5, 3.2, 60)]
    path = render(played, audio_dir / "dynamics.wav")
    preset = Preset(name="dynamics", post=PostOptions(velocity="loudness"))

    clip = transcriber.transcribe(Region.from_file(path), preset=preset)

    by_pitch = {n.pitch: n.velocity for n in clip.notes if n.pitch in (60, 64, 67)}
    assert by_pitch[60] < by_pitch[67] < by_pitch[64]


# Whatever the steps do, the clip plays as written: no key struck while it still sounds, one voice one note at a time.


def sounding_together(notes, *, one_voice):
    """Pairs of notes that sound at once: of one pitch, or (one voice) of any."""
    lanes = {}
    for note in notes:
        lanes.setdefault(0 if one_voice else note.pitch, []).append(note)
    return [
        (a, b)
        for lane in lanes.values()
        for a, b in zip(sorted(lane, key=lambda n: n.start_s), sorted(lane, key=lambda n: n.start_s)[1:])
        if a.end_s > b.start_s
    ]


def keys_struck_while_sounding(smf: bytes, *, one_voice):
    """Note-ons in a MIDI file for a key still sounding on its channel (one voice: while any note sounds)."""
    sounding, struck = set(), []
    for message in mido.merge_tracks(mido.MidiFile(file=io.BytesIO(smf)).tracks):
        key = (message.channel, message.note) if message.type in ("note_on", "note_off") else None
        if message.type == "note_on" and message.velocity > 0:
            if key in sounding or (one_voice and sounding):
                struck.append(key)
            sounding.add(key)
        elif key is not None:
            sounding.discard(key)
    return struck


@st.composite
def played_notes(draw):
    """Notes as an engine might find them: lines, chords, and re-struck or doubled notes of one pitch."""
    notes = []
    for _ in range(draw(st.integers(0, 16))):
        start_s = draw(st.floats(0.0, 6.0))
        length_s = draw(st.sampled_from([0.0005, 0.01, 0.05]) | st.floats(0.001, 2.0))
        pitch = draw(st.integers(58, 66) | st.sampled_from([1, 126]))  # few pitches: many of one pitch meet
        bends = tuple(
            Bend(start_s + length_s * f, draw(st.floats(-2.0, 2.0)))
            for f in sorted(draw(st.lists(st.floats(0.0, 0.99), max_size=3)))
        )
        notes.append(Note(pitch, start_s, start_s + length_s, draw(st.integers(1, 127)), bends))
        if draw(st.booleans()):  # a chord, or the same key again soon
            again = draw(st.integers(-4, 1))
            shift_s = draw(st.sampled_from([0.0, 0.0001, 0.02]) | st.floats(0.0, 0.6))
            notes.append(
                Note(
                    min(max(pitch + again, 0), 127),
                    start_s + shift_s,
                    start_s + shift_s + draw(st.floats(0.001, 1.0)),
                    draw(st.integers(1, 127)),
                )
            )
    return notes


post_options = st.builds(
    PostOptions,
    velocity=st.sampled_from(["confidence", "fixed"]),
    transpose_semitones=st.sampled_from([0, 0, 5, -12, 48, -48]),  # ±48 pins some pitches to 127 or 0
    scale=st.sampled_from(["chromatic", "major", "minor_pentatonic"]),
    scale_mode=st.sampled_from(["nearest", "remove"]),
    merge_gap_ms=st.sampled_from([0.0, 0.0, 50.0, 300.0]),
    monophonic=st.sampled_from(["off", "strongest", "highest"]),
    min_length_ms=st.sampled_from([0.0, 0.0, 30.0]),
    shift_ms=st.sampled_from([0.0, 0.0, -40.0, 25.0]),
    quantize_grid=st.sampled_from(["off", *GRIDS]),
    quantize_strength_pct=st.sampled_from([100.0, 100.0, 50.0, 99.9]) | st.floats(0.0, 100.0),
    quantize_ends=st.booleans(),
    pitch_bends=st.sampled_from(["per_note", "per_note", "mpe", "off"]),
)

host_tempos = st.builds(
    Tempo,
    bpm=st.sampled_from([120.0, 96.0, 4.0, 1000.0]) | st.floats(20.0, 300.0),
    beats_per_bar=st.sampled_from([4.0, 3.0, 3.5, 2.5, 6.0, 0.25]),
    bar_offset_beats=st.none() | st.floats(0.0, 0.2),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes=played_notes(), options=post_options, tempo=host_tempos, position_s=st.floats(0.0, 600.0))
def test_after_every_post_step_no_key_sounds_twice_and_one_voice_plays_one_note_at_a_time(
    notes, options, tempo, position_s
):
    """Quantising, shifting, transposing and scale snapping pull notes together; the clip and its MIDI file still
    hold no two notes of one pitch at once, a monophonic clip one note at a time, and a cut note keeps its bends
    inside it."""
    one_voice = options.monophonic != "off"
    clip = postprocess(
        Clip(notes=tuple(notes), position_s=position_s, duration_s=8.0, bpm=tempo.bpm), options, tempo=tempo
    )

    assert sounding_together(clip.notes, one_voice=one_voice) == []
    for note in clip.notes:
        assert 0.0 <= note.start_s < note.end_s
        assert all(note.start_s - 1e-9 <= b.time_s < note.end_s for b in note.bends), "bends stay inside their note"
    smf = clip_to_bytes(clip)
    assert keys_struck_while_sounding(smf, one_voice=one_voice) == []
    assert len(clip_from_bytes(smf).notes) == len(clip.notes), "every note is in the file"


@settings(max_examples=100, deadline=None)
@given(notes=played_notes(), grid=st.sampled_from(list(GRIDS)), tempo=host_tempos, position_s=st.floats(0.0, 60.0))
def test_quantising_loses_no_note_the_user_played(notes, grid, tempo, position_s):
    """A note is cut short or joined with another of its pitch on one grid line, never lost: every note played still
    has a note of its pitch struck on the grid line nearest to it."""
    clip = postprocess(
        Clip(notes=tuple(notes), position_s=position_s, duration_s=8.0, bpm=tempo.bpm),
        PostOptions(quantize_grid=grid),
        tempo=tempo,
    )

    half_line_s = GRIDS[grid] / 2 * 60 / tempo.bpm
    for played in notes:
        assert any(
            n.pitch == played.pitch and abs(n.start_s - played.start_s) <= half_line_s + 1e-9 for n in clip.notes
        ), played


def test_two_notes_of_one_key_quantised_onto_one_line_become_one_and_a_held_note_ends_at_the_next_strike():
    # 1/4 at 120 BPM: lines every 0.5 s. The two C4s both go to 1.0 s; the held E4 is struck again at 1.5 s.
    notes = [
        Note(60, 0.9, 1.2, 70),
        Note(60, 1.1, 1.8, 100),
        Note(64, 0.5, 2.0, 80, (Bend(1.7, 0.5),)),
        Note(64, 1.6, 2.1, 90),
    ]

    clip = post(notes, quantize_grid="1/4")

    assert [(n.pitch, n.start_s, n.end_s, n.velocity) for n in clip.notes] == [
        (64, 0.5, 1.5, 80),
        (60, 1.0, pytest.approx(1.7), 100),
        (64, 1.5, pytest.approx(2.0), 90),
    ]
    assert clip.notes[0].bends == (), "the bend after the re-strike went with the cut"


def test_a_monophonic_line_quantised_onto_one_line_keeps_the_note_it_prefers():
    # A soft pickup just before the beat and the strong note on it land on one eighth (0.25 s at 120 BPM).
    notes = [Note(67, 0.16, 0.30, 40), Note(60, 0.24, 0.9, 100), Note(62, 0.9, 1.4, 90)]

    strongest = post(notes, quantize_grid="1/8", monophonic="strongest")
    highest = post(notes, quantize_grid="1/8", monophonic="highest")

    assert [(n.pitch, n.start_s, n.end_s) for n in strongest.notes] == [
        (60, 0.25, pytest.approx(0.91)),
        (62, 1.0, pytest.approx(1.5)),
    ]
    assert [(n.pitch, n.start_s) for n in highest.notes] == [(67, 0.25), (62, 1.0)]


def test_a_note_the_grid_would_pull_before_the_region_starts_with_it():
    # Region 0.3 s into the song at 120 BPM: its start lies 0.1 s past an eighth line.
    clip = post([Note(60, 0.02, 0.5, 100)], position_s=0.3, quantize_grid="1/8")

    assert [(n.start_s, n.end_s) for n in clip.notes] == [(0.0, 0.48)]
    assert clip_from_bytes(clip_to_bytes(clip)).notes[0].start_s == 0.0


@pytest.mark.parametrize("monophonic", ["off", "strongest"])
def test_a_preset_that_quantises_to_eighths_writes_a_file_that_plays_every_key_once(tmp_path, monophonic):
    """A user's preset holding only an eighth-note grid (and perhaps one voice), on the bundled piano example placed
    0.3 s into the song: no key is struck while it still sounds, and one voice never sounds two notes."""
    preset = tmp_path / "q8.toml"
    preset.write_text(f'schema = 2\n\n[post]\nquantize_grid = "1/8"\nmonophonic = "{monophonic}"\n')
    example = Path(__file__).parent.parent / "examples" / "ode_to_joy_piano.flac"

    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "midibridge"),
            "convert",
            str(example),
            "--preset",
            str(preset),
            "--position",
            "0.3",
            "-o",
            str(tmp_path / "x.mid"),
            "--in-process",
        ],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr
    smf = (tmp_path / "x.mid").read_bytes()
    assert keys_struck_while_sounding(smf, one_voice=monophonic != "off") == []
    assert len(clip_from_bytes(smf).notes) > 20
