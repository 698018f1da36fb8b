"""Ardour sessions for the tests, built and read with ardour7-lua (headless): a placed take, a session, what Ardour
saved (regions, notes, undo steps) and `midibridge ardour convert` run against a test daemon."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import mido
import pytest
from conftest import Note, synthesize, write_audio

from midibridge.model.clip import Tempo
from midibridge.model.region import Region

HERE = Path(__file__).parent / "ardour"
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
BPM = 96.0
FRAME_S = 256 / 22050
TRUTH = [Note(60 + (i % 7) * 2, 0.5 + 0.5 * i, 0.9 + 0.5 * i, 100) for i in range(16)]

if shutil.which("ardour7-lua") is None:
    pytest.fail(
        "Ardour 7 is needed for these tests: run `make setup` (it installs the Debian package ardour)", pytrace=False
    )


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
    done = subprocess.run(
        ["ardour7-lua", str(HERE / "make_session.lua"), str(directory), "session", str(rate), str(BPM), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "SESSION OK" in done.stdout, done.stdout + done.stderr
    return directory


def take(directory: Path, rate: int, name: str = "take.wav", shift_semitones: int = 0) -> Path:
    notes = [Note(n.pitch + shift_semitones, n.start_s, n.end_s, n.velocity) for n in TRUTH]
    return write_audio(directory / name, synthesize(notes, sample_rate_hz=rate, length_s=9.0), rate)


def read_session(directory: Path) -> dict:
    done = subprocess.run(
        ["ardour7-lua", str(HERE / "read_session.lua"), str(directory), "session"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = {"audio": [], "midi": [], "notes": []}
    for line in done.stdout.splitlines():
        kind, *fields = line.split("|")
        if kind == "AREGION":
            found["audio"].append(
                {
                    "track": fields[0],
                    "position": int(fields[1]),
                    "start": int(fields[2]),
                    "length": int(fields[3]),
                    "path": fields[4],
                }
            )
        elif kind == "MREGION":
            found["midi"].append(
                {
                    "track": fields[0],
                    "position": int(fields[1]),
                    "length": int(fields[2]),
                    "start_ticks": int(fields[3]),
                    "smf": fields[4],
                }
            )
        elif kind == "NOTE":
            found["notes"].append(
                {
                    "track": fields[0],
                    "region": int(fields[1]),
                    "ticks": int(fields[2]),
                    "length_ticks": int(fields[3]),
                    "pitch": int(fields[4]),
                    "velocity": int(fields[5]),
                    "channel": int(fields[6]),
                    "sample": int(fields[7]),
                }
            )
    return found


def convert(daemon, session: Path, *args):
    return subprocess.run(
        [MIDIBRIDGE, "ardour", "convert", str(session), *args],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=300,
    )


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


def notes_said(done: subprocess.CompletedProcess) -> int:
    """The notes `ardour convert` says its one region got."""
    [count] = [int(line.split("\t")[2].split()[0]) for line in done.stdout.splitlines() if " notes" in line]
    return count


def midi_region_ids(session: Path) -> list[str]:
    """The ids of the MIDI regions on the session's playlists, as saved."""
    root = ElementTree.parse(session / "session.ardour").getroot()
    return [
        region.get("id")
        for playlist in root.iter("Playlist")
        if playlist.get("type") == "midi"
        for region in playlist.findall("Region")
    ]


def undo_region_changes(session: Path) -> list[tuple[list[str], list[str]]]:
    """(regions added, regions removed) by each playlist change of the session's last undo step."""
    *_, step = ElementTree.parse(session / "session.history").getroot().iter("UndoTransaction")
    return [
        ([a.get("id") for a in regions.iter("Add")], [r.get("id") for r in regions.iter("Remove")])
        for regions in step.iter("Regions")
    ]


def single_run(path: Path, *, start_s: float, duration_s: float, position_s: float):
    """What one conversion of that region gives with the default preset: its notes and its MIDI file's bends."""
    from midibridge.model.midi import clip_to_midi
    from midibridge.model.pipeline import Transcriber

    clip = Transcriber().transcribe(
        Region.from_file(path, start_s=start_s, duration_s=duration_s, position_s=position_s), tempo=Tempo(bpm=BPM)
    )
    return clip.notes, smf_bends(clip_to_midi(clip))


def undo_steps(session: Path) -> list[tuple[str, int]]:
    """(name, note diff commands) of each undo step Ardour saved in the session's history."""
    history = ElementTree.parse(session / "session.history").getroot()
    return [(step.get("name"), len(step.findall(".//NoteDiffCommand"))) for step in history.iter("UndoTransaction")]


def action_slots(*args, env=None) -> subprocess.CompletedProcess:
    """tests/ardour/action_slots.lua: write Ardour's saved action slots, or run one as Ardour restores it."""
    done = subprocess.run(
        ["ardour7-lua", str(HERE / "action_slots.lua"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0 and " OK" in done.stdout, done.stdout + done.stderr
    return done
