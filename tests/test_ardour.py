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
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import mido
import pytest
from conftest import Note, matches, render, synthesize, write_audio
from daemon_helpers import DaemonProcess

from midibridge.model.clip import Tempo
from midibridge.model.region import Region

HERE = Path(__file__).parent / "ardour"
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
BPM = 96.0
FRAME_S = 256 / 22050
TRUTH = [Note(60 + (i % 7) * 2, 0.5 + 0.5 * i, 0.9 + 0.5 * i, 100) for i in range(16)]

if shutil.which("ardour7-lua") is None:
    pytest.fail("Ardour 7 is needed for these tests: run `make setup` (it installs the Debian package ardour)",
                pytrace=False)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("ardour-daemon"), workers=2)
    yield running
    running.stop()


@dataclass
class Placed:
    track: str
    file: Path
    position_s: float
    trim_s: float
    length_s: float


def make_session(directory: Path, rate: int, placed: list[Placed]) -> Path:
    args = []
    for p in placed:
        frames = int(9.0 * rate)
        args += [p.track, str(p.file), str(frames), "1", str(p.position_s), str(p.trim_s), str(p.length_s)]
    done = subprocess.run(["ardour7-lua", str(HERE / "make_session.lua"), str(directory), "session", str(rate),
                           str(BPM), *args], capture_output=True, text=True, timeout=120)
    assert "SESSION OK" in done.stdout, done.stdout + done.stderr
    return directory


def take(directory: Path, rate: int, name: str = "take.wav", shift_semitones: int = 0) -> Path:
    notes = [Note(n.pitch + shift_semitones, n.start_s, n.end_s, n.velocity) for n in TRUTH]
    return write_audio(directory / name, synthesize(notes, sample_rate_hz=rate, length_s=9.0), rate)


def read_session(directory: Path) -> dict:
    done = subprocess.run(["ardour7-lua", str(HERE / "read_session.lua"), str(directory), "session"],
                          capture_output=True, text=True, timeout=120)
    found = {"audio": [], "midi": [], "notes": []}
    for line in done.stdout.splitlines():
        kind, *fields = line.split("|")
        if kind == "AREGION":
            found["audio"].append({"track": fields[0], "position": int(fields[1]), "start": int(fields[2]),
                                   "length": int(fields[3]), "path": fields[4]})
        elif kind == "MREGION":
            found["midi"].append({"track": fields[0], "position": int(fields[1]), "length": int(fields[2]),
                                  "start_ticks": int(fields[3]), "smf": fields[4]})
        elif kind == "NOTE":
            found["notes"].append({"track": fields[0], "region": int(fields[1]), "ticks": int(fields[2]),
                                   "length_ticks": int(fields[3]), "pitch": int(fields[4]),
                                   "velocity": int(fields[5]), "channel": int(fields[6]), "sample": int(fields[7])})
    return found


def convert(daemon, session: Path, *args):
    return subprocess.run([MIDIBRIDGE, "ardour", "convert", str(session), *args], capture_output=True, text=True,
                          env=daemon.env, timeout=300)


def smf_bends(midi: mido.MidiFile) -> list[tuple[int, int, int]]:
    """(tick at 1920 a beat, channel, pitch-wheel value) of every pitch-wheel event in a MIDI file."""
    found = []
    for track in midi.tracks:
        now = 0
        for message in track:
            now += message.time
            if message.type == "pitchwheel":
                found.append((round(now * 1920 / midi.ticks_per_beat), message.channel, message.pitch))
    return sorted(found)


def smf_notes(path: str) -> list[tuple[int, int]]:
    """(onset tick at 1920 a beat, pitch) of every note in one of Ardour's MIDI files (type 0, 19200 a beat)."""
    midi = mido.MidiFile(path)
    now, found = 0, []
    for message in midi.tracks[0]:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            found.append((round(now * 1920 / midi.ticks_per_beat), message.note))
    return sorted(found)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_trimmed_region_at_3_5_s_becomes_a_midi_region_at_3_5_s_with_the_trimmed_parts_notes(daemon, tmp_path,
                                                                                                rate):
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
    clip = Transcriber().transcribe(Region.from_file(placed.file, start_s=1.25, duration_s=4.0, position_s=3.5),
                                    tempo=Tempo(bpm=BPM))
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
    inside = [Note(n.pitch, n.start_s - 1.25, n.end_s - 1.25, n.velocity) for n in TRUTH
              if 1.25 + FRAME_S <= n.start_s and n.end_s <= 5.25]
    found_notes = [Note(n["pitch"], (n["sample"] - audio["position"]) / rate, 0.0, n["velocity"])
                   for n in found["notes"]]
    pairs = matches(found_notes, inside)
    assert len(pairs) == len(inside)
    assert sorted(abs(f.start_s - t.start_s) for t, f in pairs)[len(pairs) // 2] < FRAME_S


def test_the_batch_action_converts_every_audio_track_of_a_session(daemon, tmp_path):
    rate = 44100
    placed = [Placed("Bass", take(tmp_path, rate, "bass.wav", -24), 0.0, 0.0, 8.0),
              Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 2.0, 0.5, 6.0),
              Placed("Pad", take(tmp_path, rate, "pad.wav"), 10.0, 3.0, 4.5)]
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
    assert sorted(m["track"] for m in found["midi"]) == ["Bass MIDI", "Lead MIDI", "Pad MIDI"], \
        "a second run reuses the track it made, its region replacing the first run's"
    assert undo_steps(session) == [("midibridge: audio to MIDI", 1)], "the second run is one undo step too"


def notes_said(done: subprocess.CompletedProcess) -> int:
    """The notes `ardour convert` says its one region got."""
    [count] = [int(line.split("\t")[2].split()[0]) for line in done.stdout.splitlines() if " notes" in line]
    return count


def midi_region_ids(session: Path) -> list[str]:
    """The ids of the MIDI regions on the session's playlists, as saved."""
    root = ElementTree.parse(session / "session.ardour").getroot()
    return [region.get("id") for playlist in root.iter("Playlist") if playlist.get("type") == "midi"
            for region in playlist.findall("Region")]


def undo_region_changes(session: Path) -> list[tuple[list[str], list[str]]]:
    """(regions added, regions removed) by each playlist change of the session's last undo step."""
    *_, step = ElementTree.parse(session / "session.history").getroot().iter("UndoTransaction")
    return [([a.get("id") for a in regions.iter("Add")], [r.get("id") for r in regions.iter("Remove")])
            for regions in step.iter("Regions")]


def single_run(path: Path, *, start_s: float, duration_s: float, position_s: float):
    """What one conversion of that region gives with the default preset: its notes and its MIDI file's bends."""
    from midibridge.model.midi import clip_to_midi
    from midibridge.model.pipeline import Transcriber

    clip = Transcriber().transcribe(Region.from_file(path, start_s=start_s, duration_s=duration_s,
                                                     position_s=position_s), tempo=Tempo(bpm=BPM))
    return clip.notes, smf_bends(clip_to_midi(clip))


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
    assert "Bass\t1.000000 s\t" in again.stdout and "; replaced the MIDI region an earlier run made from it" in \
        again.stdout and "one Edit > Undo in Ardour brings back what it replaced" in again.stdout
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
    assert undo_region_changes(session) == [([now], [earlier])], \
        "one undo step removes the new region and brings the first run's back"


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


def undo_steps(session: Path) -> list[tuple[str, int]]:
    """(name, note diff commands) of each undo step Ardour saved in the session's history."""
    history = ElementTree.parse(session / "session.history").getroot()
    return [(step.get("name"), len(step.findall(".//NoteDiffCommand"))) for step in history.iter("UndoTransaction")]


def test_a_region_that_fails_is_reported_and_the_others_are_converted(daemon, tmp_path):
    rate = 48000
    placed = [Placed("Good", take(tmp_path, rate, "good.wav"), 1.0, 0.0, 4.0),
              Placed("Gone", take(tmp_path, rate, "gone.wav"), 2.0, 0.0, 4.0)]
    session = make_session(tmp_path / "session", rate, placed)
    (tmp_path / "gone.wav").unlink()

    done = convert(daemon, session, "--tracks", "Good", "Gone")

    assert done.returncode == 1 and "converted 1 of 2 regions" in done.stdout
    assert "Gone\t2.000000 s\tFAILED" in done.stdout and "audio_not_found" in done.stdout
    assert [m["track"] for m in read_session(session)["midi"]] == ["Good MIDI"]


def test_batch_reads_a_session_file_without_touching_it(daemon, tmp_path):
    rate = 44100
    placed = [Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0),
              Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 0.75, 0.0, 8.0)]
    session = make_session(tmp_path / "session", rate, placed)
    session_file = session / "session.ardour"
    before = hashlib.sha256(session_file.read_bytes()).hexdigest()
    out = tmp_path / "midi"

    done = subprocess.run([MIDIBRIDGE, "batch", str(session_file), "-o", str(out)], capture_output=True, text=True,
                          env=daemon.env, timeout=300)

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
    placed = [Placed("Bass", take(tmp_path, rate), 0.0, 0.0, 4.0),
              Placed("Keys", take(tmp_path, rate, "keys.wav"), 0.0, 0.0, 4.0)]
    session = make_session(tmp_path / "session", rate, placed)
    before = hashlib.sha256((session / "session.ardour").read_bytes()).hexdigest()

    no_track = convert(daemon, session, "--tracks", "Bass", "Vocals")
    no_preset = convert(daemon, session, "--preset", "voacl")

    assert no_track.returncode == 1 and no_track.stderr == (
        "midibridge: error [unknown_track]: session.ardour has no audio track named 'Vocals'; its audio tracks: "
        "Bass, Keys. Pass names as Ardour shows them, or leave out --tracks for all of them\n")
    assert no_preset.returncode == 1 and no_preset.stderr.startswith(
        "midibridge: error [unknown_preset]: unknown preset 'voacl'; presets are: bass, default, drums")
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
            f"session.ardour): pass the one you mean, e.g. {session / 'before-keys.ardour'}\n")


def test_batch_takes_a_session_folder_as_it_takes_its_session_file(daemon, tmp_path):
    """Issue 18.8: `batch song/` converted the audio files in the session's folder, not its regions."""
    rate = 44100
    placed = [Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0),
              Placed("Lead", take(tmp_path, rate, "lead.wav", 12), 0.75, 0.0, 8.0)]
    session = make_session(tmp_path / "session", rate, placed)

    done = subprocess.run([MIDIBRIDGE, "batch", str(session), "-o", str(tmp_path / "midi")], capture_output=True,
                          text=True, env=daemon.env, timeout=300)

    assert done.returncode == 0, done.stderr
    index = json.loads((tmp_path / "midi" / "index.json").read_text())["regions"]
    assert [(e["session"], e["track"], e["position_s"], e["start_s"], e["duration_s"]) for e in index] == [
        (str(session / "session.ardour"), "Keys", 3.5, 1.25, 4.0),
        (str(session / "session.ardour"), "Lead", 0.75, 0.0, 8.0)]


def action_slots(*args, env=None) -> subprocess.CompletedProcess:
    """tests/ardour/action_slots.lua: write Ardour's saved action slots, or run one as Ardour restores it."""
    done = subprocess.run(["ardour7-lua", str(HERE / "action_slots.lua"), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0 and " OK" in done.stdout, done.stdout + done.stderr
    return done


def test_an_installed_action_works_from_its_dumped_factory_alone_as_ardour_keeps_it(daemon, tmp_path):
    rate = 48000
    session = make_session(tmp_path / "session", rate, [Placed("Keys", take(tmp_path, rate), 3.5, 1.25, 4.0)])
    installed = subprocess.run([MIDIBRIDGE, "install", "ardour", "--scripts-dir", str(tmp_path / "scripts")],
                               capture_output=True, text=True, check=True)
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
    assert 'Keys take  (track Keys)\n    at bar 2|2|1152 = 3.500 s:  ' in ran.stdout
    assert ' notes → track "Keys MIDI"' in ran.stdout
    assert "EDITOR redo 1" in ran.stdout, "Undo is made clickable in the editor"
    [audio] = (found := read_session(session))["audio"]
    [midi] = found["midi"]
    assert (midi["track"], midi["position"], midi["length"]) == ("Keys MIDI", audio["position"], audio["length"])
    assert len(found["notes"]) > 5 and undo_steps(session) == [("midibridge: audio to MIDI", 1)]

    again = action_slots("run", state, 1, session, "session", env=daemon.env)

    assert "DIALOG midibridge: report\nConverted 1 of 1 region(s).  Edit › Undo removes them all and brings back " \
           "what they replaced." in again.stdout, again.stdout
    assert ' notes → track "Keys MIDI", replacing the region an earlier run made from it' in again.stdout
    assert len(read_session(session)["midi"]) == 1


def test_an_action_that_fails_says_why_and_stays_in_its_slot(daemon, tmp_path):
    session = make_session(tmp_path / "session", 48000, [Placed("Keys", take(tmp_path, 48000), 0.0, 0.0, 4.0)])
    subprocess.run([MIDIBRIDGE, "install", "ardour", "--scripts-dir", str(tmp_path / "scripts")], check=True,
                   capture_output=True)
    state = tmp_path / "ui_scripts.lua"
    action_slots("write", state, 1, tmp_path / "scripts" / "midibridge_convert_selected.lua", "default")

    # Headless, the editor has no selection to give: the action fails inside.
    ran = action_slots("run", state, 1, session, "session", env=daemon.env)

    # Ardour drops an action that raises from its slot; this one shows the error and returns.
    assert "DIALOG midibridge: failed\nmidibridge stopped with an error:\n" in ran.stdout
    assert "get_selection" in ran.stdout and "RAN OK" in ran.stdout
    assert read_session(session)["midi"] == []
