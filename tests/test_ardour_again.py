"""Ardour again (ardour7-lua, headless): converting a region a second time replaces its MIDI region in one undo step
(or keeps both, asked), a drum region lands on a Drums track, and an installed editor action runs as Ardour keeps it.
"""

import subprocess

import mido
import pytest
from ardour_session import (
    MIDIBRIDGE,
    Placed,
    action_slots,
    convert,
    make_session,
    midi_region_ids,
    notes_said,
    read_session,
    single_run,
    smf_bends,
    smf_notes,
    take,
    undo_region_changes,
    undo_steps,
)
from conftest import Note, render
from daemon_helpers import DaemonProcess


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("ardour-daemon"), workers=2)
    yield running
    running.stop()


def test_converting_a_region_again_replaces_its_midi_region_in_one_undo_step(daemon, tmp_path):
    """Issue 18.1: the second run's region held both runs' notes (and the first's pitch-wheel events), stacked on
    the first region."""
    rate = 44100
    placed = Placed("Bass", take(tmp_path, rate, "bass.wav", -12), 1.0, 0.5, 6.0)
    session = make_session(tmp_path / "session", rate, [placed])
    first = convert(daemon, session, "--tracks", "Bass", "--preset", "bass")
    assert first.returncode == 0, first.stdout + first.stderr
    [earlier] = midi_region_ids(session)

    again = convert(daemon, session, "--tracks", "Bass")

    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        "Bass\t1.000000 s\t" in again.stdout
        and "; replaced the MIDI region an earlier run made from it" in again.stdout
        and "one Edit > Undo in Ardour brings back what it replaced" in again.stdout
    )
    found = read_session(session)
    [audio] = found["audio"]
    [midi] = found["midi"]
    assert (midi["track"], midi["position"], midi["length"]) == ("Bass MIDI", audio["position"], audio["length"])
    notes, bends = single_run(placed.file, start_s=0.5, duration_s=6.0, position_s=1.0)
    assert notes_said(again) == len(notes) == len(found["notes"]), "the region holds this run's notes only"
    assert sorted(pitch for _, pitch in smf_notes(midi["smf"])) == sorted(n.pitch for n in notes)
    assert bends and len(smf_bends(mido.MidiFile(midi["smf"]))) == len(bends), "and its own bends only"
    [now] = midi_region_ids(session)
    assert undo_steps(session) == [("midibridge: audio to MIDI", 1)]
    assert undo_region_changes(session) == [([now], [earlier])], (
        "one undo step removes the new region and brings the first run's back"
    )


def test_keep_previous_keeps_the_earlier_region_beside_the_new_one_each_with_its_own_notes(daemon, tmp_path):
    """Issue 18.1: both regions stay where they were made, and neither holds the other's notes."""
    rate = 44100
    placed = Placed("Bass", take(tmp_path, rate, "bass.wav", -12), 1.0, 0.5, 6.0)
    session = make_session(tmp_path / "session", rate, [placed])
    first = convert(daemon, session, "--preset", "bass")
    [earlier] = read_session(session)["midi"]
    earlier_notes = smf_notes(earlier["smf"])

    again = convert(daemon, session, "--keep-previous")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "; kept the MIDI region an earlier run made from it beside the new one" in again.stdout
    regions = read_session(session)["midi"]
    assert [(m["track"], m["position"]) for m in regions] == [("Bass MIDI", earlier["position"])] * 2
    [kept] = [m for m in regions if m["smf"] == earlier["smf"]]
    [new] = [m for m in regions if m["smf"] != earlier["smf"]]
    assert smf_notes(kept["smf"]) == earlier_notes and len(earlier_notes) == notes_said(first)
    notes, bends = single_run(placed.file, start_s=0.5, duration_s=6.0, position_s=1.0)
    assert len(smf_notes(new["smf"])) == notes_said(again) == len(notes), "the new region holds its own notes only"
    assert len(smf_bends(mido.MidiFile(new["smf"]))) == len(bends)


def test_a_drum_region_lands_on_a_drums_track_with_its_notes_on_channel_10(daemon, tmp_path):
    rate = 44100
    beat = [Note((36, 42, 38, 42)[i % 4], 0.5 + 0.3125 * i, 0.6 + 0.3125 * i, 110) for i in range(24)]
    kit = render(beat, tmp_path / "kit.wav", sample_rate_hz=rate, drums=True, tail_s=2.0)
    session = make_session(tmp_path / "session", rate, [Placed("Kit", kit, 2.0, 0.0, 8.0)])

    done = convert(daemon, session, "--preset", "drums")

    assert done.returncode == 0, done.stdout + done.stderr
    found = read_session(session)
    [midi] = found["midi"]
    assert (midi["track"], midi["position"]) == ("Kit Drums", round(2.0 * rate))
    assert len(found["notes"]) >= len(beat) - 1 and {n["channel"] for n in found["notes"]} == {9}
    assert {n["pitch"] for n in found["notes"]} <= {36, 38, 42, 46}
    in_file = mido.MidiFile(midi["smf"])
    assert {m.channel for m in in_file.tracks[0] if m.type == "note_on"} == {9}


def test_an_installed_action_works_from_its_dumped_factory_alone_as_ardour_keeps_it(daemon, tmp_path):
    rate = 48000
    session = make_session(tmp_path / "session", rate, [Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0)])
    installed = subprocess.run(
        [MIDIBRIDGE, "install", "ardour", "--scripts-dir", str(tmp_path / "scripts")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Script Manager" in installed.stdout
    for script in (tmp_path / "scripts").glob("*.lua"):
        description = script.read_text().split("description = [[")[1].split("]]")[0]
        assert "\n" not in description, "Ardour's Add/Set dialog wraps descriptions itself"

    # Set in a slot, as Ardour saves it: the script text and its factory dumped to bytecode. Ardour
    # runs only that factory, in a fresh state: nothing else of the file is there.
    state = tmp_path / "ui_scripts.lua"
    action_slots("write", state, 1, tmp_path / "scripts" / "midibridge_convert_all.lua", "default")
    ran = action_slots("run", state, 1, session, "session", env=daemon.env)

    assert "DIALOG midibridge: report\nConverted 1 of 1 region(s)." in ran.stdout, ran.stdout
    # 3.5 s at 96 bpm is 5.6 beats: bar 2, beat 2 and 0.6 of 1920 ticks.
    assert "Keys take  (track Keys)\n    at bar 2|2|1152 = 3.500 s:  " in ran.stdout
    assert ' notes → track "Keys MIDI"' in ran.stdout
    assert "EDITOR redo 1" in ran.stdout, "Undo is made clickable in the editor"
    [audio] = (found := read_session(session))["audio"]
    [midi] = found["midi"]
    assert (midi["track"], midi["position"], midi["length"]) == ("Keys MIDI", audio["position"], audio["length"])
    assert len(found["notes"]) > 5 and undo_steps(session) == [("midibridge: audio to MIDI", 1)]

    again = action_slots("run", state, 1, session, "session", env=daemon.env)

    assert (
        "DIALOG midibridge: report\nConverted 1 of 1 region(s).  Edit › Undo removes them all and brings back "
        "what they replaced." in again.stdout
    ), again.stdout
    assert ' notes → track "Keys MIDI", replacing the region an earlier run made from it' in again.stdout
    assert len(read_session(session)["midi"]) == 1


def test_an_action_that_fails_says_why_and_stays_in_its_slot(daemon, tmp_path):
    session = make_session(tmp_path / "session", 48000, [Placed("Keys", take(tmp_path, 48000), 0.0, 0.0, 4.0)])
    subprocess.run(
        [MIDIBRIDGE, "install", "ardour", "--scripts-dir", str(tmp_path / "scripts")], check=True, capture_output=True
    )
    state = tmp_path / "ui_scripts.lua"
    action_slots("write", state, 1, tmp_path / "scripts" / "midibridge_convert_selected.lua", "default")

    # Headless, the editor has no selection to give: the action fails inside.
    ran = action_slots("run", state, 1, session, "session", env=daemon.env)

    # Ardour drops an action that raises from its slot; this one shows the error and returns.
    assert "DIALOG midibridge: failed\nmidibridge stopped with an error:\n" in ran.stdout
    assert "get_selection" in ran.stdout and "RAN OK" in ran.stdout
    assert read_session(session)["midi"] == []
