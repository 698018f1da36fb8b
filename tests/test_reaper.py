"""REAPER's actions, run against a fake of the RPR_ API (REAPER cannot run here: tests/fake_reaper.py says
what is faked), with a real daemon doing the transcription."""

import pytest
from conftest import Note, render, synthesize, write_audio
from daemon_helpers import DaemonProcess
from fake_reaper import PPQ, FakeReaper, FakeTake

from midibridge.model.clip import Tempo
from midibridge.model.midi import DRUM_CHANNEL
from midibridge.model.region import Region
from midibridge.plugin_host.reaper_adapter import assemble, install_scripts

TRUTH = [Note(57 + (i % 5) * 2, 0.5 + 0.45 * i, 0.85 + 0.45 * i, 100) for i in range(18)]
BPM = 100.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("reaper-daemon"), workers=2)
    yield running
    running.stop()


@pytest.fixture
def take_file(tmp_path):
    return write_audio(tmp_path / "take.wav", synthesize(TRUTH, sample_rate_hz=44100, length_s=9.0), 44100)


def run_action(reaper: FakeReaper, scope: str, daemon, monkeypatch, preset=None):
    for name in ("XDG_RUNTIME_DIR", "MIDIBRIDGE_ENDPOINT"):  # the script's midibridge finds the test's daemon
        monkeypatch.setenv(name, daemon.env[name])
    from midibridge.plugin_host.scripts import midibridge_command

    exec(
        compile(assemble(scope, command=midibridge_command(), preset=preset), "midibridge_reaper.py", "exec"),
        reaper.functions(),
    )


def expected_ppq(path, *, offset, length, rate):
    from midibridge.model.pipeline import Transcriber

    clip = Transcriber().transcribe(
        Region.from_file(path, start_s=offset, duration_s=length * rate), tempo=Tempo(bpm=BPM)
    )
    return [(round(n.start_s / rate * BPM / 60 * PPQ), n.pitch) for n in clip.notes]


def test_a_selected_item_becomes_a_midi_item_at_its_position_below_its_track(daemon, take_file, monkeypatch):
    reaper = FakeReaper(bpm=BPM)
    keys = reaper.add_track("Keys")
    reaper.add_track("Drums")
    reaper.add_item(keys, position=5.0, length=4.0, take=FakeTake(str(take_file), offset=1.25), selected=True)

    run_action(reaper, "selected", daemon, monkeypatch)

    assert [t.name for t in reaper.tracks] == ["Keys", "Keys MIDI", "Drums"]
    [midi_item] = reaper.tracks[1].items
    assert (midi_item.position, midi_item.length) == (5.0, 4.0) and midi_item.take.midi
    notes = [(round(start), pitch) for start, _, _, pitch, _ in midi_item.take.notes]
    expected = expected_ppq(take_file, offset=1.25, length=4.0, rate=1.0)
    assert len(notes) == len(expected) and all(
        abs(a[0] - b[0]) <= 1 and a[1] == b[1] for a, b in zip(sorted(notes), sorted(expected))
    )
    assert reaper.undo_blocks == ["midibridge: audio to MIDI"]
    assert "Keys at 5.000 s:" in reaper.console[-1]


def test_all_tracks_follow_play_rate_and_pitch_and_skip_midi_items(daemon, take_file, monkeypatch):
    reaper = FakeReaper(bpm=BPM, time_signature=(6, 8))
    lead, keys = reaper.add_track("Lead"), reaper.add_track("Keys")
    reaper.add_item(lead, position=2.0, length=3.0, take=FakeTake(str(take_file), rate=2.0, keeps_pitch=False))
    reaper.add_item(keys, position=0.5, length=6.0, take=FakeTake(str(take_file)))
    reaper.add_item(keys, position=8.0, length=1.0, take=FakeTake("", midi=True))

    run_action(reaper, "all", daemon, monkeypatch)

    tracks = {t.name: t for t in reaper.tracks}
    assert set(tracks) == {"Lead", "Lead MIDI", "Keys", "Keys MIDI"}
    [fast] = tracks["Lead MIDI"].items
    heard = expected_ppq(take_file, offset=0.0, length=3.0, rate=2.0)
    written = sorted((round(start), pitch) for start, _, _, pitch, _ in fast.take.notes)
    assert [p for _, p in written] == [p + 12 for _, p in sorted(heard)], "twice as fast, an octave up"
    assert all(abs(a[0] - b[0]) <= 1 for a, b in zip(written, sorted(heard)))
    assert len(tracks["Keys MIDI"].items) == 1, "the MIDI item was left alone"


def test_a_missing_source_is_reported_and_the_other_items_converted(daemon, take_file, monkeypatch, tmp_path):
    reaper = FakeReaper(bpm=BPM)
    track = reaper.add_track("Vox")
    reaper.add_item(track, position=0.0, length=2.0, take=FakeTake(str(tmp_path / "gone.wav")), selected=True)
    reaper.add_item(track, position=3.0, length=2.0, take=FakeTake(str(take_file)), selected=True)

    run_action(reaper, "selected", daemon, monkeypatch, preset="vocal")

    report = reaper.console[-1]
    assert "Vox at 0.000 s: FAILED [audio_not_found]" in report and "Vox at 3.000 s:" in report
    assert [i.position for i in reaper.tracks[1].items] == [3.0]


def test_nothing_selected_says_so(daemon, monkeypatch):
    reaper = FakeReaper()
    reaper.add_track("Empty")

    run_action(reaper, "selected", daemon, monkeypatch)

    assert reaper.messages == ["Select one or more audio items first."] and reaper.undo_blocks == []


def test_install_writes_both_actions_with_this_installations_command(tmp_path):
    written = install_scripts(tmp_path, preset="piano")

    assert sorted(p.name for p in written) == [
        "midibridge_convert_all_tracks.py",
        "midibridge_convert_selected_items.py",
    ]
    for path in written:
        text = path.read_text()
        compile(text, str(path), "exec")
        assert "host transcribe" in text.split("MB_COMMAND = ")[-1] and "preset='piano'" in text


def test_a_drum_item_lands_on_a_drums_track_on_channel_10(daemon, monkeypatch, tmp_path):
    beat = [Note(36 if i % 2 == 0 else 38, 0.5 + 0.5 * i, 0.6 + 0.5 * i, 110) for i in range(8)]
    take = render(beat, tmp_path / "beat.wav", drums=True)
    reaper = FakeReaper(bpm=BPM)
    kit = reaper.add_track("Kit")
    reaper.add_item(kit, position=4.0, length=5.0, take=FakeTake(str(take), pitch=2.0), selected=True)

    run_action(reaper, "selected", daemon, monkeypatch, preset="drums")

    assert [t.name for t in reaper.tracks] == ["Kit", "Kit Drums"]
    [item] = reaper.tracks[1].items
    assert item.position == 4.0
    assert {channel for _, _, channel, _, _ in item.take.notes} == {DRUM_CHANNEL}
    assert [pitch for _, _, _, pitch, _ in sorted(item.take.notes)] == [n.pitch for n in beat], "never transposed"


def test_converting_an_item_again_replaces_the_midi_item_made_from_it_unless_it_was_moved(
    daemon, take_file, monkeypatch
):
    """Issue 18.1, in REAPER (the fake of tests/fake_reaper.py: REAPER's items keep a GUID and P_EXT strings, and
    the fake does too). A second run stacked a second MIDI item on the first."""
    reaper = FakeReaper(bpm=BPM)
    keys = reaper.add_track("Keys")
    reaper.add_item(keys, position=5.0, length=4.0, take=FakeTake(str(take_file), offset=1.25), selected=True)
    run_action(reaper, "selected", daemon, monkeypatch, preset="bass")
    [first] = reaper.tracks[1].items

    run_action(reaper, "selected", daemon, monkeypatch)

    [again] = reaper.tracks[1].items
    assert again is not first and (again.position, again.length) == (5.0, 4.0)
    expected = expected_ppq(take_file, offset=1.25, length=4.0, rate=1.0)
    assert len(again.take.notes) == len(expected), "the new item holds this run's notes only"
    assert reaper.undo_blocks == ["midibridge: audio to MIDI"] * 2, "each run is one undo step"
    assert (
        f"Keys at 5.000 s: {len(expected)} notes, replacing the MIDI item(s) an earlier run made from it"
        in reaper.console[-1]
    )

    # A MIDI item the user moved is theirs now: a third run leaves it alone.
    again.position = 20.0
    run_action(reaper, "selected", daemon, monkeypatch)

    assert sorted(i.position for i in reaper.tracks[1].items) == [5.0, 20.0]
    assert "replacing" not in reaper.console[-1]
