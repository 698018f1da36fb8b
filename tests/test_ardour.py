"""Ardour, for real (ardour7-lua, headless): a trimmed, placed audio region becomes a MIDI region at its position.

Sessions are built headless with tests/ardour/make_session.lua, converted by
`midibridge ardour convert` (the same Lua core the editor actions run, talking
to a real daemon), saved, reloaded, and read back both from Ardour and from
the .mid files Ardour wrote.
"""

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import mido
import pytest
from ardour_session import (
    BPM,
    FRAME_S,
    MIDIBRIDGE,
    TRUTH,
    Placed,
    convert,
    make_session,
    read_session,
    smf_bends,
    smf_notes,
    take,
    undo_steps,
)
from conftest import Note, matches
from daemon_helpers import DaemonProcess

from midibridge.model.clip import Tempo
from midibridge.model.region import Region


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("ardour-daemon"), workers=2)
    yield running
    running.stop()


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_trimmed_region_at_3_5_s_becomes_a_midi_region_at_3_5_s_with_the_trimmed_parts_notes(daemon, tmp_path, rate):
    placed = Placed("Keys", take(tmp_path, rate), position_s=3.5, trim_s=1.25, length_s=4.0)
    session = make_session(tmp_path / "session", rate, [placed])

    done = convert(daemon, session, "--preset", "default")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Keys\t3.500000 s\t" in done.stdout and list(session.glob("session.ardour.before-midibridge-*"))
    found = read_session(session)
    [audio] = found["audio"]
    [midi] = found["midi"]
    assert (midi["track"], midi["position"], midi["length"]) == ("Keys MIDI", audio["position"], audio["length"])
    assert audio["position"] == round(3.5 * rate) and audio["start"] == round(1.25 * rate)

    # What midibridge itself hears in that region: Ardour holds the same notes, to the tick, at the same samples.
    from midibridge.model.pipeline import Transcriber

    clip = Transcriber().transcribe(
        Region.from_file(placed.file, start_s=1.25, duration_s=4.0, position_s=3.5), tempo=Tempo(bpm=BPM)
    )
    samples_per_tick = rate * 60 / BPM / 1920
    heard = sorted((n.start_s, n.pitch) for n in clip.notes)
    in_ardour = sorted((n["ticks"], n["sample"], n["pitch"]) for n in found["notes"])
    in_file = smf_notes(midi["smf"])
    assert len(in_ardour) == len(heard) == len(in_file)
    for (start_s, pitch), (ticks, sample, in_ardour_pitch), (file_ticks, file_pitch) in zip(heard, in_ardour, in_file):
        assert pitch == in_ardour_pitch == file_pitch
        assert abs(round(start_s * BPM / 60 * 1920) - ticks) <= 1 and abs(ticks - file_ticks) <= 1
        assert abs(audio["position"] + start_s * rate - sample) <= samples_per_tick + 1

    # Its bends too: the pitch-wheel events midibridge's own MIDI file of that clip has, at the same beats.
    from midibridge.model.midi import clip_to_midi

    assert any(n.bends for n in clip.notes), "the takes's notes are bent a little"
    in_ardour, ours = smf_bends(mido.MidiFile(midi["smf"])), smf_bends(clip_to_midi(clip))
    assert len(in_ardour) == len(ours)
    for (ticks, channel, wheel), (our_ticks, our_channel, our_wheel) in zip(in_ardour, ours):
        assert channel == our_channel and abs(ticks - our_ticks) <= 1 and abs(wheel - our_wheel) <= 1

    # And the notes the audio really holds inside the trimmed region are there, at their pitch, on time.
    inside = [
        Note(n.pitch, n.start_s - 1.25, n.end_s - 1.25, n.velocity)
        for n in TRUTH
        if 1.25 + FRAME_S <= n.start_s and n.end_s <= 5.25
    ]
    found_notes = [
        Note(n["pitch"], (n["sample"] - audio["position"]) / rate, 0.0, n["velocity"]) for n in found["notes"]
    ]
    pairs = matches(found_notes, inside)
    assert len(pairs) == len(inside)
    assert sorted(abs(f.start_s - t.start_s) for t, f in pairs)[len(pairs) // 2] < FRAME_S


def test_the_batch_action_converts_every_audio_track_of_a_session(daemon, tmp_path):
    rate = 44100
    placed = [
        Placed("Bass", take(tmp_path, rate, "bass.wav", -24), 0.0, 0.0, 8.0),
        Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 2.0, 0.5, 6.0),
        Placed("Pad", take(tmp_path, rate, "pad.wav"), 10.0, 3.0, 4.5),
    ]
    session = make_session(tmp_path / "session", rate, placed)

    done = convert(daemon, session)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" notes") == 3 and "converted 3 of 3 regions" in done.stdout
    found = read_session(session)
    audio = {a["track"]: a for a in found["audio"]}
    midi = {m["track"]: m for m in found["midi"]}
    assert set(midi) == {"Bass MIDI", "Lead MIDI", "Pad MIDI"}
    for p in placed:
        assert midi[f"{p.track} MIDI"]["position"] == audio[p.track]["position"] == round(p.position_s * rate)
    lowest = {t: min(n["pitch"] for n in found["notes"] if n["track"] == t) for t in midi}
    assert lowest["Bass MIDI"] < lowest["Pad MIDI"] < lowest["Lead MIDI"]
    assert undo_steps(session) == [("midibridge: audio to MIDI", 3)], "one undo step holds all three regions"

    again = convert(daemon, session, "--tracks", "Pad")

    assert again.returncode == 0, again.stdout + again.stderr
    found = read_session(session)
    assert sorted(m["track"] for m in found["midi"]) == ["Bass MIDI", "Lead MIDI", "Pad MIDI"], (
        "a second run reuses the track it made, its region replacing the first run's"
    )
    assert undo_steps(session) == [("midibridge: audio to MIDI", 1)], "the second run is one undo step too"


def test_a_region_that_fails_is_reported_and_the_others_are_converted(daemon, tmp_path):
    rate = 48000
    placed = [
        Placed("Good", take(tmp_path, rate, "good.wav"), 1.0, 0.0, 4.0),
        Placed("Gone", take(tmp_path, rate, "gone.wav"), 2.0, 0.0, 4.0),
    ]
    session = make_session(tmp_path / "session", rate, placed)
    (tmp_path / "gone.wav").unlink()

    done = convert(daemon, session, "--tracks", "Good", "Gone")

    assert done.returncode == 1 and "converted 1 of 2 regions" in done.stdout
    assert "Gone\t2.000000 s\tFAILED" in done.stdout and "audio_not_found" in done.stdout
    assert [m["track"] for m in read_session(session)["midi"]] == ["Good MIDI"]


def test_batch_reads_a_session_file_without_touching_it(daemon, tmp_path):
    rate = 44100
    placed = [
        Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0),
        Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 0.75, 0.0, 8.0),
    ]
    session = make_session(tmp_path / "session", rate, placed)
    session_file = session / "session.ardour"
    before = hashlib.sha256(session_file.read_bytes()).hexdigest()
    out = tmp_path / "midi"

    done = subprocess.run(
        [MIDIBRIDGE, "batch", str(session_file), "-o", str(out)],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    index = {e["track"]: e for e in json.loads((out / "index.json").read_text())["regions"]}
    assert (index["Keys"]["position_s"], index["Keys"]["start_s"], index["Keys"]["duration_s"]) == (3.5, 1.25, 4.0)
    assert index["Lead"]["position_s"] == 0.75 and index["Keys"]["notes"] > 5
    tempo = mido.MidiFile(file=io.BytesIO(Path(index["Keys"]["midi"]).read_bytes())).tracks[0]
    assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 96 for m in tempo)
    assert hashlib.sha256(session_file.read_bytes()).hexdigest() == before


def test_ardour_convert_checks_tracks_and_preset_before_it_touches_the_session(daemon, tmp_path):
    """Issue 18.8: `--tracks Vocals` converted nothing and exited 0; `--preset voacl` started Ardour, backed up and
    saved the session, then failed each region."""
    rate = 44100
    placed = [
        Placed("Bass", take(tmp_path, rate), 0.0, 0.0, 4.0),
        Placed("Keys", take(tmp_path, rate, "keys.wav"), 0.0, 0.0, 4.0),
    ]
    session = make_session(tmp_path / "session", rate, placed)
    before = hashlib.sha256((session / "session.ardour").read_bytes()).hexdigest()

    no_track = convert(daemon, session, "--tracks", "Bass", "Vocals")
    no_preset = convert(daemon, session, "--preset", "voacl")

    assert no_track.returncode == 1 and no_track.stderr == (
        "midibridge: error [unknown_track]: session.ardour has no audio track named 'Vocals'; its audio tracks: "
        "Bass, Keys. Pass names as Ardour shows them, or leave out --tracks for all of them\n"
    )
    assert no_preset.returncode == 1 and no_preset.stderr.startswith(
        "midibridge: error [unknown_preset]: unknown preset 'voacl'; presets are: bass, default, drums"
    )
    assert no_track.stdout == no_preset.stdout == "", "nothing was backed up or converted"
    assert not list(session.glob("*.before-midibridge-*")), "no backup: the session was never opened"
    assert hashlib.sha256((session / "session.ardour").read_bytes()).hexdigest() == before


def test_ardour_convert_takes_the_session_file_as_well_as_its_folder(daemon, tmp_path):
    """Issue 18.8: `ardour convert song/song.ardour` said "holds 0 .ardour files"."""
    rate = 44100
    session = make_session(tmp_path / "session", rate, [Placed("Keys", take(tmp_path, rate), 1.0, 0.0, 4.0)])

    done = convert(daemon, session / "session.ardour")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted 1 of 1 regions" in done.stdout
    assert [m["track"] for m in read_session(session)["midi"]] == ["Keys MIDI"]

    # A folder with a snapshot beside the session holds two: which one is meant has to be said.
    shutil.copy(session / "session.ardour", session / "before-keys.ardour")
    for command in (["ardour", "convert", str(session)], ["batch", str(session), "-o", str(tmp_path / "midi")]):
        refused = subprocess.run([MIDIBRIDGE, *command], capture_output=True, text=True, env=daemon.env, timeout=60)
        assert refused.returncode == 1 and refused.stderr == (
            f"midibridge: error [ardour_session]: {session} holds 2 Ardour session files (before-keys.ardour, "
            f"session.ardour): pass the one you mean, e.g. {session / 'before-keys.ardour'}\n"
        )


def test_batch_takes_a_session_folder_as_it_takes_its_session_file(daemon, tmp_path):
    """Issue 18.8: `batch song/` converted the audio files in the session's folder, not its regions."""
    rate = 44100
    placed = [
        Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0),
        Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 0.75, 0.0, 8.0),
    ]
    session = make_session(tmp_path / "session", rate, placed)

    done = subprocess.run(
        [MIDIBRIDGE, "batch", str(session), "-o", str(tmp_path / "midi")],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    index = json.loads((tmp_path / "midi" / "index.json").read_text())["regions"]
    assert [(e["session"], e["track"], e["position_s"], e["start_s"], e["duration_s"]) for e in index] == [
        (str(session / "session.ardour"), "Keys", 3.5, 1.25, 4.0),
        (str(session / "session.ardour"), "Lead", 0.75, 0.0, 8.0),
    ]
