"""What the cluster tests share: a real two-node Ray cluster on loopback, a folder of takes, a user's preset file,
the same batch run locally (what every cluster run must write, to the byte), and a batch that loses a node."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NYLON_GUITAR, PIANO, melody, render, synthesize, wait_while_running, write_audio
from daemon_helpers import FAULTS
from ray_cluster import ENV, LoopbackCluster

from midibridge.model.clip import Note

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
N_TAKES = 8


def batch(*args, cwd: Path, env: dict = ENV) -> subprocess.CompletedProcess:
    """`midibridge batch ARGS -o midi` in `cwd`: index.json names its .mid files as midi/NAME, the same from any run."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [MIDIBRIDGE, "batch", *map(str, args), "-o", "midi"], cwd=cwd, env=env, capture_output=True, text=True
    )


def outputs(cwd: Path) -> dict[str, bytes]:
    """What a batch leaves a user with, but for the report (which says where it ran): index.json and the .mid files."""
    return {p.name: p.read_bytes() for p in sorted((cwd / "midi").iterdir()) if p.suffix != ".html"}


@pytest.fixture(scope="module")
def takes(tmp_path_factory) -> Path:
    """A folder of a session's takes: 30 s synthesised lines, two rendered instruments and a file that is no audio."""
    folder = tmp_path_factory.mktemp("takes")
    for n in range(N_TAKES - 2):
        notes = [Note(48 + (7 * i + n) % 24, 0.3 + 0.45 * i, 0.7 + 0.45 * i, 70 + (i * 13) % 50) for i in range(64)]
        write_audio(folder / f"take{n}.flac", synthesize(notes, sample_rate_hz=44100, length_s=30.0), 44100)
    render(melody([60, 64, 67, 72, 67, 64], start_s=0.4, step_s=0.5, length_s=0.45), folder / "keys.wav", program=PIANO)
    render(
        melody([40, 43, 45, 47], start_s=0.2, step_s=0.6, length_s=0.5),
        folder / "guitar.aiff",
        program=NYLON_GUITAR,
        sample_rate_hz=48000,
    )
    (folder / "notes.wav").write_text("a text file someone named .wav")
    return folder


@pytest.fixture(scope="module")
def preset_file(tmp_path_factory) -> Path:
    """A user's own preset, which only this machine has: it must travel to the nodes as a table."""
    shown = subprocess.run([MIDIBRIDGE, "presets", "show", "piano"], capture_output=True, text=True, check=True)
    path = tmp_path_factory.mktemp("presets") / "my-keys.toml"
    path.write_text(shown.stdout.replace('name = "piano"', 'name = "my-keys"'))
    return path


@pytest.fixture(scope="module")
def local(takes, preset_file, tmp_path_factory) -> dict[str, bytes]:
    """The same batch in this process: what every cluster run must write, to the byte."""
    cwd = tmp_path_factory.mktemp("local")
    done = batch(takes, "--preset", preset_file, "--in-process", cwd=cwd)
    assert done.returncode == 1 and f"converted {N_TAKES} of {N_TAKES + 1} regions" in done.stdout, done.stderr
    return outputs(cwd)


@pytest.fixture(scope="module")
def hold_control(tmp_path_factory) -> Path:
    """Where a test tells the nodes to hold a region (tests/faults/sitecustomize.py, hold_on_node)."""
    return tmp_path_factory.mktemp("hold")


@pytest.fixture(scope="module")
def cluster(hold_control):
    running = LoopbackCluster(
        nodes=2,
        env={
            **ENV,
            "MIDIBRIDGE_TEST_FAULT": f"hold_on_node:{hold_control}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), ENV.get("PYTHONPATH")])),
        },
    )
    yield running
    running.stop()


def first_mid_of(cwd: Path, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    wait_while_running(
        process, lambda: any((cwd / "midi").glob("*.mid")), timeout_s=timeout_s, what="no region finished"
    )


def batch_losing_a_node(
    cluster: LoopbackCluster, control: Path, *args, cwd: Path, env: dict = ENV
) -> subprocess.CompletedProcess:
    """`batch ARGS -o midi`, killing the cluster's second node while it runs a region: the node holds the first
    region it gets (and the other node waits for that) until it is killed; a new second node joins after."""
    second = cluster.nodes[1]
    (control / "hold").write_text(cluster.ips[second])
    running = subprocess.Popen(
        [MIDIBRIDGE, "batch", *map(str, args), "-o", "midi"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_while_running(
            running, (control / "held").exists, timeout_s=120, what="the second node never took a region"
        )
        cluster.kill(second)
        (control / "hold").unlink()
        stdout, stderr = running.communicate(timeout=300)
    finally:
        running.kill()
        for left in ("hold", "held"):
            (control / left).unlink(missing_ok=True)
        cluster.nodes.remove(second)
        cluster.add_node()
    return subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr)
