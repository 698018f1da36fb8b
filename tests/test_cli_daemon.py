"""The command line with a daemon running: the same clips as in-process, found without being told, batches isolated."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import DaemonProcess, free_port

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("cli-daemon"), workers=2)
    yield running
    running.stop()


def run(daemon, *args):
    return subprocess.run([MIDIBRIDGE, *map(str, args)], capture_output=True, text=True, env=daemon.env)


def test_convert_through_the_daemon_writes_what_in_process_writes(daemon, piano_line, tmp_path):
    region = ["--start", 1.0, "--duration", 4.0, "--position", 8.0, "--bpm", 100, "--preset", "vocal", "--json"]

    found = run(daemon, "convert", piano_line, *region, "-o", tmp_path / "daemon.mid")
    local = run(daemon, "convert", piano_line, *region, "-o", tmp_path / "local.mid", "--in-process")

    assert found.returncode == local.returncode == 0, found.stderr + local.stderr
    assert found.stdout == local.stdout
    assert (tmp_path / "daemon.mid").read_bytes() == (tmp_path / "local.mid").read_bytes()
    with daemon.client() as client:
        assert client.status()["counts"]["done"] >= 1, "the first one went through the daemon"


def test_ping_and_status_describe_the_daemon(daemon):
    pinged, status = run(daemon, "ping"), run(daemon, "status")

    assert pinged.returncode == 0 and f"midibridge daemon at {daemon.endpoint}" in pinged.stdout
    assert "round trip" in pinged.stdout and "midibridge/2.1" in pinged.stdout
    assert status.returncode == 0 and status.stdout.count("  worker ") == 3, "two, and one for interactive jobs"


def test_batch_converts_a_directory_and_reports_the_one_that_failed(daemon, piano_line, tmp_path):
    inputs = tmp_path / "takes"
    inputs.mkdir()
    for name in ("a.wav", "b.wav"):
        (inputs / name).write_bytes(piano_line.read_bytes())
    (inputs / "broken.wav").write_text("not audio")
    out = tmp_path / "midi"

    done = run(daemon, "batch", inputs, "-o", out, "--preset", "piano")

    index = json.loads((out / "index.json").read_text())
    assert done.returncode == 1 and "converted 2 of 3 regions" in done.stdout and "(daemon)" in done.stdout
    assert "broken.wav: [audio_unreadable]" in done.stderr
    assert sorted(p.name for p in out.glob("*.mid")) == ["a.mid", "b.mid"]
    assert {Path(e["input"]).name: e.get("notes", 0) > 0 for e in index["regions"]} == {
        "a.wav": True,
        "b.wav": True,
        "broken.wav": False,
    }
    through_daemon = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".html"}
    out.rename(tmp_path / "through-daemon")  # the same -o again, from scratch: index.json names its .mid files
    assert run(daemon, "batch", inputs, "-o", out, "--preset", "piano", "--in-process").returncode == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".html"} == through_daemon, (
        "index.json and the .mid files are the same bytes however the batch ran"
    )


def test_without_a_daemon_the_commands_say_so_and_convert_runs_in_process(piano_line, tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), MIDIBRIDGE_ENDPOINT=f"tcp://127.0.0.1:{free_port()}")
    ping = subprocess.run([MIDIBRIDGE, "ping"], capture_output=True, text=True, env=env)
    converted = subprocess.run(
        [MIDIBRIDGE, "convert", piano_line, "-o", tmp_path / "x.mid"], capture_output=True, text=True, env=env
    )

    assert ping.returncode == 1 and "no midibridge daemon is running" in ping.stdout
    assert converted.returncode == 0 and not list((tmp_path / "midibridge").glob("daemon-*.json"))


def test_convert_daemon_starts_a_daemon_when_none_runs(piano_line, tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), MIDIBRIDGE_ENDPOINT=f"tcp://127.0.0.1:{free_port()}")
    converted = subprocess.run(
        [MIDIBRIDGE, "convert", piano_line, "-o", tmp_path / "x.mid", "--daemon"],
        capture_output=True,
        text=True,
        env=env,
    )
    [discovered] = (tmp_path / "midibridge").glob("daemon-*.json")
    record = json.loads(discovered.read_text())
    stopped = subprocess.run(
        [sys.executable, "-c", "from midibridge.plugin_host.client import Client; Client().shutdown()"],
        env=env,
        capture_output=True,
        text=True,
    )

    assert converted.returncode == 0, converted.stderr
    assert record["endpoint"] == env["MIDIBRIDGE_ENDPOINT"] and stopped.returncode == 0


@pytest.mark.parametrize(
    "bad",
    [
        ["--position", "-1"],
        ["--start", "nan"],
        ["--duration", "inf"],
        ["--position", "inf"],
        ["--duration", "0"],
        ["--bpm", "nan"],
        ["--beats-per-bar", "inf"],
    ],
)
def test_a_bad_number_is_refused_the_same_way_with_or_without_a_daemon(daemon, piano_line, tmp_path, bad):
    """Whether a daemon runs changes nothing a user sees: the same refusal, before any work, naming the number."""
    through_daemon = run(daemon, "convert", piano_line, *bad, "-o", tmp_path / "d.mid")
    in_process = run(daemon, "convert", piano_line, *bad, "-o", tmp_path / "p.mid", "--in-process")

    assert through_daemon.returncode == in_process.returncode == 1
    assert through_daemon.stderr == in_process.stderr and through_daemon.stderr.startswith("midibridge: error [")
    assert "batch region" not in through_daemon.stderr and "Traceback" not in through_daemon.stderr
    assert not (tmp_path / "d.mid").exists() and not (tmp_path / "p.mid").exists()


def test_a_batch_larger_than_the_daemons_queue_converts_everything_into_one_index(tmp_path):
    """`serve --queue 4` takes at most 4 regions a request: batch sends ten files in parts, through one bar and
    one index, the same bytes as in-process."""
    from conftest import synthesize, write_audio

    from midibridge.model.clip import Note

    takes = tmp_path / "takes"
    takes.mkdir()
    for n in range(10):  # each its own note, so that none is answered from the daemon's cache
        write_audio(takes / f"take{n:02d}.wav", synthesize([Note(48 + n, 0.1, 0.8, 100)], length_s=1.0), 44100)
    small = DaemonProcess(tmp_path / "home", "--queue", "4", workers=1)
    out = tmp_path / "midi"
    try:
        done = run(small, "batch", takes, "-o", out)
    finally:
        small.stop()

    assert done.returncode == 0, done.stderr
    assert "converted 10 of 10 regions" in done.stdout and "(daemon)" in done.stdout
    assert len(json.loads((out / "index.json").read_text())["regions"]) == 10
    through_daemon = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".html"}
    out.rename(tmp_path / "through-daemon")
    assert run(small, "batch", takes, "-o", out, "--in-process").returncode == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".html"} == through_daemon, (
        "index.json and the .mid files alike"
    )
