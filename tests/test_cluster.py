"""A studio's batch on a Ray cluster: a real two-node cluster on loopback (`ray start`, one CPU slot each), the
`midibridge batch --cluster` a user types, and the files it writes compared byte for byte with a local batch; through
the private `serve --cluster` daemon it starts for itself, which never outlives it."""

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cluster_fixtures import (  # noqa: F401 (fixtures)
    MIDIBRIDGE,
    N_TAKES,
    batch,
    batch_losing_a_node,
    cluster,
    first_mid_of,
    hold_control,
    local,
    outputs,
    preset_file,
    takes,
)
from daemon_helpers import DaemonProcess
from ray_cluster import ENV, LoopbackCluster

from midibridge.model.clip import Tempo
from midibridge.model.region import Region
from midibridge.plugin_host.results import RegionResult
from midibridge.plugin_host.runner import Cluster, Daemon, InProcess, Job


def test_a_batch_on_the_cluster_writes_the_same_bytes_as_a_local_batch(cluster, takes, preset_file, local, tmp_path):
    done = batch(takes, "--preset", preset_file, "--cluster", cluster.address, cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    assert f"converted {N_TAKES} of {N_TAKES + 1} regions" in done.stdout
    assert f"on the Ray cluster at {cluster.address}" in done.stdout
    assert "notes.wav: [audio_unreadable]" in done.stderr, "the broken take fails alone, saying why"
    assert outputs(tmp_path) == local
    assert "on the Ray cluster" in (tmp_path / "midi" / "index.html").read_text()


def test_losing_a_node_mid_batch_runs_its_region_elsewhere_and_loses_none(
    cluster, hold_control, takes, preset_file, local, tmp_path
):
    done = batch_losing_a_node(
        cluster, hold_control, takes, "--preset", preset_file, "--cluster", cluster.address, cwd=tmp_path
    )

    assert done.returncode == 1 and f"converted {N_TAKES} of {N_TAKES + 1} regions" in done.stdout, done.stderr
    assert "it runs again on another" in done.stderr
    regions = json.loads((tmp_path / "midi" / "index.json").read_text())["regions"]
    assert sorted(Path(entry["input"]).name for entry in regions) == sorted(p.name for p in takes.iterdir()), (
        "every region once"
    )
    assert outputs(tmp_path) == local


def test_ctrl_c_stops_the_cluster_work_keeps_finished_files_and_a_rerun_does_only_the_rest(
    cluster, hold_control, takes, preset_file, local, tmp_path
):
    # The second node holds its first region until it is stopped: the batch is still running when Ctrl-C comes,
    # however fast the rest converts.
    (hold_control / "hold").write_text(cluster.ips[cluster.nodes[1]])
    terminal, stderr_end = pty.openpty()  # stderr a terminal, as a user's is: the progress bar draws
    running = subprocess.Popen(
        [MIDIBRIDGE, "batch", takes, "--preset", preset_file, "--cluster", cluster.address, "-o", "midi"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=stderr_end,
        # Ctrl-C as on a user's terminal: a runner started in the background (`cmd &` in a script) passes SIGINT
        # on ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    os.close(stderr_end)
    # Read as it is drawn: a terminal holds a few kB, and a batch whose bar fills it would block on its next draw.
    with ThreadPoolExecutor(1) as reader:
        drawn = reader.submit(read_all, terminal)
        try:
            first_mid_of(tmp_path, running)
            running.send_signal(signal.SIGINT)
            running.wait(timeout=60)
        finally:
            running.kill()
            for left in ("hold", "held"):
                (hold_control / left).unlink(missing_ok=True)
        screen = drawn.result(timeout=60)

    assert running.returncode == 130, screen
    kept = sorted(p.name for p in (tmp_path / "midi").glob("*.mid"))
    assert 1 <= len(kept) < N_TAKES, "finished regions are kept, the rest were stopped"
    assert "regions, " in screen and " s of audio" in screen, screen
    assert f"interrupted: {len(kept)} of {N_TAKES + 1} regions converted" in screen
    index = json.loads((tmp_path / "midi" / "index.json").read_text())["regions"]
    assert sorted(Path(e["midi"]).name for e in index if "midi" in e) == kept
    assert {e["error"]["code"] for e in index if "midi" not in e} <= {"cancelled", "audio_unreadable"}
    assert cluster.wait_for(free_cpus=2.0, timeout_s=30)["free_cpus"] == 2.0, "no actor left holding a CPU slot"

    again = batch(takes, "--preset", preset_file, "--cluster", cluster.address, cwd=tmp_path)

    assert f"{len(kept)} unchanged since the last run, skipped" in again.stdout, again.stdout + again.stderr
    assert outputs(tmp_path) == local


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed: all of it has been read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def private_mount_works() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True).returncode
        == 0
    )


@pytest.mark.skipif(
    not private_mount_works(), reason="needs `unshare --mount` (root, util-linux) to hide files from the nodes"
)
def test_files_only_this_machine_sees_fail_with_the_fix_and_travel_with_ship_audio(
    cluster, takes, preset_file, local, tmp_path
):
    # The takes sit on a tmpfs mounted in a mount namespace of this command's own: the nodes cannot see them.
    private = tmp_path / "private"
    private.mkdir()
    command = f"{MIDIBRIDGE} batch {private}/takes --preset {preset_file} --cluster {cluster.address} -o midi"
    script = (
        f"mount -t tmpfs none {private} && cp -r {takes} {private}/takes && mkdir unseen shipped && "
        f"(cd unseen && {command}; cd ../shipped && {command} --ship-audio)"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
    )

    assert "converted 0 of" in done.stdout and f"converted {N_TAKES} of {N_TAKES + 1}" in done.stdout, (
        done.stdout + done.stderr
    )
    unseen = json.loads((tmp_path / "unseen" / "midi" / "index.json").read_text())["regions"]
    assert {e["error"]["code"] for e in unseen} == {"audio_not_found"}
    assert all("use --ship-audio" in e["error"]["message"] for e in unseen)
    shipped = outputs(tmp_path / "shipped")
    index = json.loads(shipped.pop("index.json"))["regions"]
    assert shipped == {name: data for name, data in local.items() if name != "index.json"}
    expected = json.loads(local["index.json"])["regions"]
    for entry in expected + index:
        entry["input"] = Path(entry["input"]).name  # the one difference: where this machine had the files
        entry.get("error", {}).pop("message", None)
    assert index == expected


def batch_daemons(run_dir: Path) -> list[int]:
    """The daemons running with `run_dir` as their runtime dir, as a batch's own daemon inherits it: their pids."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables, command = environ.read_bytes().split(b"\0"), (environ.parent / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if f"XDG_RUNTIME_DIR={run_dir}".encode() in variables and b"\0serve\0" in command:
            found.append(int(environ.parent.name))
    return found


def nothing_left(cluster: LoopbackCluster, run_dir: Path, *, within_s: float = 0.0) -> None:
    """No daemon of the batch runs (at once, or `within_s`), none is listed for clients, every CPU slot is free."""
    deadline = time.monotonic() + within_s
    while batch_daemons(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert batch_daemons(run_dir) == [], "the batch's own daemon still runs"
    assert list(run_dir.glob("midibridge/daemon-*.json")) == [], "nor is it listed for clients to find"
    assert cluster.wait_for(free_cpus=2.0, timeout_s=30)["free_cpus"] == 2.0, "its workers freed their CPU slots"


def test_a_batch_on_the_cluster_leaves_no_daemon_behind_when_it_ends_or_is_killed(cluster, takes, tmp_path):
    env = {**ENV, "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    for folder in ("run", "ended", "killed"):
        (tmp_path / folder).mkdir()

    done = batch(takes / "keys.wav", "--cluster", cluster.address, cwd=tmp_path / "ended", env=env)

    assert done.returncode == 0, done.stderr
    nothing_left(cluster, tmp_path / "run")

    killed = subprocess.Popen(
        [MIDIBRIDGE, "batch", takes, "--cluster", cluster.address, "-o", "midi"],
        cwd=tmp_path / "killed",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first_mid_of(tmp_path / "killed", killed)
        assert batch_daemons(tmp_path / "run"), "a daemon of the batch's own runs its regions"
        killed.kill()  # no Ctrl-C, no cleanup: the daemon finds its batch gone by itself
    finally:
        killed.kill()
        killed.wait()

    nothing_left(cluster, tmp_path / "run", within_s=30)


def test_a_node_that_cannot_load_the_preset_s_engine_stops_the_batch_before_anything_runs(
    cluster, hold_control, takes, tmp_path
):
    env = {**ENV, "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    (tmp_path / "run").mkdir()
    (hold_control / "refuse").write_text("drums")  # tests/faults/sitecustomize.py: no node can load it
    try:
        done = batch(takes, "--preset", "drums", "--cluster", cluster.address, cwd=tmp_path, env=env)
    finally:
        (hold_control / "refuse").unlink()

    assert done.returncode == 1
    assert re.search(
        r"^midibridge: error \[cluster_mismatch\]: node 127\.0\.0\.\d+ cannot run midibridge: "
        r"\[model_missing\] drums's weights are not installed on this node",
        done.stderr,
        re.M,
    ), done.stderr
    assert list((tmp_path / "midi").iterdir()) == [], "nothing ran, nothing was written"
    nothing_left(cluster, tmp_path / "run")


def as_seen(result: RegionResult) -> tuple:
    """What a result says of its region: all of it but the job id, which each backend gives its own way."""
    return (
        result.index,
        result.clip and result.clip.to_dict(),
        result.smf,
        result.cached,
        result.error and (result.error.code, str(result.error)),
    )


@pytest.mark.parametrize("preset", ["piano", "piano-hq"])
def test_every_backend_gives_the_same_results_for_the_same_jobs(cluster, takes, tmp_path, preset):
    jobs = [
        Job(Region.from_file(takes / "keys.wav")),
        Job(Region.from_file(takes / "guitar.aiff", start_s=0.5, position_s=4.0), Tempo(bpm=96)),
        Job(Region.from_file(takes / "notes.wav")),
    ]
    daemon = DaemonProcess(tmp_path / "daemon")
    try:
        backends = [InProcess(), Daemon(endpoint=daemon.endpoint), Cluster(address=cluster.address)]
        seen = {
            backend.where: sorted(map(as_seen, backend.run(jobs, preset=preset)), key=lambda r: r[0])
            for backend in backends
        }
    finally:
        daemon.stop()

    first = seen["in-process"]
    assert [(index, error and error[0]) for index, *_, error in first] == [
        (0, None),
        (1, None),
        (2, "audio_unreadable"),
    ]
    assert first[0][1]["notes"] and first[1][1]["position_s"] == 4.0 and first[1][1]["bpm"] == 96
    assert seen == dict.fromkeys(seen, first), "the same clips, MIDI files and errors everywhere"
