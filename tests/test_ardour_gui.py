"""Ardour's real editor (on Xvfb), as a user has it: `midibridge install ardour`, the actions set in two slots.

The session is made headless (48 kHz, 96 bpm, an audio region at 3.5 s
playing its take from 1.25 s on), opened in the editor, changed there only
through Ardour's own actions, saved, and read back headless. Screenshots of
the windows a user sees are kept in bench-out/ardour-gui/.
"""

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ardour_gui import ArdourEditor, missing_tools, saved_action_slots, write_action_slots
from conftest import Note, matches
from daemon_helpers import DaemonProcess
from test_ardour import FRAME_S, MIDIBRIDGE, TRUTH, Placed, make_session, read_session, take, undo_steps

from midibridge.model.region import Region

RATE = 48000
SHOTS = Path(__file__).parents[1] / "bench-out" / "ardour-gui"

if missing_tools():
    pytest.fail(
        f"the Ardour GUI tests need the Debian packages {' '.join(missing_tools())}: run `make setup`", pytrace=False
    )


@pytest.fixture
def daemon(tmp_path):
    """The test's own daemon (nothing cached): one worker, and one kept for interactive jobs such as the DAW's."""
    running = DaemonProcess(tmp_path / "daemon", workers=1)
    yield running
    running.stop()


@pytest.fixture
def editor(daemon, tmp_path):
    """The session open in Ardour, with midibridge installed as a user does and both actions in slots 1 and 2."""
    session = make_session(tmp_path / "session", RATE, [Placed("Keys", take(tmp_path, RATE), 3.5, 1.25, 4.0)])
    config = tmp_path / "config"
    env = dict(daemon.env, MIDIBRIDGE_ENDPOINT=daemon.endpoint, XDG_CONFIG_HOME=str(config))
    subprocess.run([MIDIBRIDGE, "install", "ardour"], env=env, check=True, capture_output=True)
    scripts = config / "ardour7" / "scripts"
    write_action_slots(
        config,
        {
            1: (scripts / "midibridge_convert_selected.lua", "default"),
            2: (scripts / "midibridge_convert_all.lua", "default"),
        },
    )
    with ArdourEditor(session, config=config, env=env, log=tmp_path / "ardour.log", rate=RATE) as running:
        yield running


def keep(shot: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / shot.name)


def test_converting_the_selected_region_in_the_editor_then_one_undo_removes_it(editor, tmp_path):
    editor.do("Editor/select-all-objects")
    editor.do("LuaAction/script-1")
    report = editor.window("midibridge: report")
    keep(editor.screenshot(tmp_path / "report.png"))
    editor.press(report, "Return")
    editor.save()

    found = read_session(editor.session)
    [audio] = found["audio"]
    [midi] = found["midi"]
    assert (midi["track"], midi["position"], midi["length"]) == ("Keys MIDI", audio["position"], audio["length"])
    assert audio["position"] == round(3.5 * RATE) and audio["start"] == round(1.25 * RATE)
    # The notes the audio holds inside the trimmed region, at their pitch, on time.
    inside = [
        Note(n.pitch, n.start_s - 1.25, n.end_s - 1.25, n.velocity)
        for n in TRUTH
        if 1.25 + FRAME_S <= n.start_s and n.end_s <= 5.25
    ]
    heard = [Note(n["pitch"], (n["sample"] - audio["position"]) / RATE, 0.0, n["velocity"]) for n in found["notes"]]
    assert len(matches(heard, inside)) == len(inside)
    assert undo_steps(editor.session) == [("midibridge: audio to MIDI", 1)]
    assert "midibridge 1" in (slots := saved_action_slots(tmp_path / "config")) and "midibridge 2" in slots

    editor.do("Editor/undo")
    editor.save()

    found = read_session(editor.session)
    assert found["midi"] == [] and found["audio"] == [audio], "one Undo removed the whole run"
    keep(editor.screenshot(tmp_path / "after-undo.png"))


def test_converting_the_region_again_in_the_editor_replaces_its_midi_region_and_one_undo_brings_it_back(
    editor, tmp_path
):
    """Issue 18.1 in the editor: a second conversion stacked a region holding both runs' notes on the first."""
    editor.do("Editor/select-all-objects")
    editor.do("LuaAction/script-1")
    editor.press(editor.window("midibridge: report"), "Return")
    editor.save()
    first = read_session(editor.session)
    [first_region] = first["midi"]

    editor.do("LuaAction/script-2")  # the batch action: every audio region, this one among them
    report = editor.window("midibridge: report")
    keep(editor.screenshot(tmp_path / "report-replacing.png"))
    editor.press(report, "Return")
    editor.save()

    again = read_session(editor.session)
    [region] = again["midi"]
    assert region["smf"] != first_region["smf"] and (region["position"], region["length"]) == (
        first_region["position"],
        first_region["length"],
    ), "a new region in the first one's place"
    assert sorted((n["ticks"], n["pitch"]) for n in again["notes"]) == sorted(
        (n["ticks"], n["pitch"]) for n in first["notes"]
    ), "holding this run's notes, once"
    assert undo_steps(editor.session)[-1] == ("midibridge: audio to MIDI", 1)

    editor.do("Editor/undo")
    editor.save()

    assert read_session(editor.session) == first, "one Undo brought the first run's region back, as it was"


def test_after_ardour_convert_replaced_a_region_one_undo_in_the_editor_brings_it_back(daemon, tmp_path):
    """What `ardour convert` says when it replaced a region ("one Edit > Undo in Ardour brings back what it
    replaced") holds in the editor, on the history the headless run saved."""
    session = make_session(tmp_path / "session", RATE, [Placed("Keys", take(tmp_path, RATE), 3.5, 1.25, 4.0)])
    regions = []
    for preset in ("bass", "default"):
        done = subprocess.run(
            [MIDIBRIDGE, "ardour", "convert", str(session), "--preset", preset],
            capture_output=True,
            text=True,
            env=daemon.env,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        regions += read_session(session)["midi"]
    assert "one Edit > Undo in Ardour brings back what it replaced" in done.stdout
    bass, default = regions

    with ArdourEditor(
        session, config=tmp_path / "config", env=daemon.env, log=tmp_path / "ardour.log", rate=RATE
    ) as editor:
        editor.do("Editor/undo")
        editor.save()

    assert read_session(session)["midi"] == [bass] and default["smf"] != bass["smf"], "the bass run's region is back"


def test_cancel_while_the_daemon_is_busy_stops_the_job_and_leaves_the_session_as_it_was(
    editor, daemon, long_audio, tmp_path
):
    before = read_session(editor.session)
    watch = daemon.client()
    cancelled_before = watch.status()["counts"]["cancelled"]
    # Someone else keeps both workers busy with long jobs: ours has to wait.
    others = threading.Thread(target=_transcribe_at_length, args=(daemon, long_audio), daemon=True)
    others.start()
    try:
        _wait_for(lambda: watch.status()["counts"]["running"] == 2, "the others' jobs to run")
        editor.do("LuaAction/script-2")
        progress = editor.window("midibridge: audio to MIDI")
        _wait_for(lambda: watch.status()["counts"]["queued"] == 1, "our job to wait")
        keep(editor.screenshot(tmp_path / "waiting.png"))

        editor.press(progress, "Return")  # Cancel: the window's only button
        cancelled = editor.window("midibridge: cancelled")

        _wait_for(lambda: watch.status()["counts"]["cancelled"] == cancelled_before + 1, "our job to be cancelled")
        assert watch.status()["counts"]["queued"] == 0 and watch.status()["counts"]["running"] == 2, (
            "ours is gone, the others' jobs go on"
        )
        editor.press(cancelled, "Return")
        editor.save()
    finally:
        watch.cancel([job["job_id"] for job in watch.status()["jobs"] if job["state"] in ("queued", "running")])
        watch.close()
        others.join(timeout=60)

    assert read_session(editor.session) == before, "the session is as it was"
    history = editor.session / "session.history"
    assert not history.exists() or undo_steps(editor.session) == [], "and there is nothing to undo"


def _transcribe_at_length(daemon, audio: Path) -> None:
    with daemon.client() as client:
        for _ in client.batch([Region.from_file(audio, start_s=start) for start in (0.0, 0.5)]):
            pass


def _wait_for(condition, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:g} s for {what}"
        time.sleep(0.1)
