"""A studio's batch on a Ray cluster: a real two-node cluster on loopback (`ray start`, one CPU slot each), the
`midibridge` command a user types, and the files it writes compared byte for byte with a local batch; then the
same through one daemon whose workers are actors on the cluster (`serve --cluster`), which is what a batch's
`--cluster` starts for itself, privately."""

import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from conftest import NYLON_GUITAR, PIANO, melody, render, synthesize, write_audio
from daemon_helpers import FAULTS, DaemonProcess, free_port
from ray_cluster import ENV, LoopbackCluster
from zmq.utils.monitor import recv_monitor_message

from midibridge.model.clip import Note, Tempo
from midibridge.model.region import Region
from midibridge.plugin_host.results import RegionResult
from midibridge.plugin_host.runner import Cluster, Daemon, InProcess, Job

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
N_TAKES = 8
FAILED_HANDSHAKES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
}


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
    deadline = time.monotonic() + timeout_s
    while not list((cwd / "midi").glob("*.mid")):
        assert process.poll() is None, "the batch ended before any region finished"
        assert time.monotonic() < deadline, "no region finished"
        time.sleep(0.05)


def test_a_batch_on_the_cluster_writes_the_same_bytes_as_a_local_batch(cluster, takes, preset_file, local, tmp_path):
    done = batch(takes, "--preset", preset_file, "--cluster", cluster.address, cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    assert f"converted {N_TAKES} of {N_TAKES + 1} regions" in done.stdout
    assert f"on the Ray cluster at {cluster.address}" in done.stdout
    assert "notes.wav: [audio_unreadable]" in done.stderr, "the broken take fails alone, saying why"
    assert outputs(tmp_path) == local
    assert "on the Ray cluster" in (tmp_path / "midi" / "index.html").read_text()


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
        deadline = time.monotonic() + 120
        while not (control / "held").exists():
            assert running.poll() is None and time.monotonic() < deadline, "the second node never took a region"
            time.sleep(0.05)
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
    cluster, takes, preset_file, local, tmp_path
):
    terminal, stderr_end = pty.openpty()  # stderr a terminal, as a user's is: the progress bar draws
    running = subprocess.Popen(
        [MIDIBRIDGE, "batch", takes, "--preset", preset_file, "--cluster", cluster.address, "-o", "midi"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=stderr_end,
    )
    os.close(stderr_end)
    try:
        first_mid_of(tmp_path, running)
        running.send_signal(signal.SIGINT)
        running.wait(timeout=60)
    finally:
        running.kill()
    screen = read_all(terminal)

    assert running.returncode == 130
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


def test_every_backend_gives_the_same_results_for_the_same_jobs(cluster, takes, tmp_path):
    jobs = [
        Job(Region.from_file(takes / "keys.wav")),
        Job(Region.from_file(takes / "guitar.aiff", start_s=0.5, position_s=4.0), Tempo(bpm=96)),
        Job(Region.from_file(takes / "notes.wav")),
    ]
    daemon = DaemonProcess(tmp_path / "daemon")
    try:
        backends = [InProcess(), Daemon(endpoint=daemon.endpoint), Cluster(address=cluster.address)]
        seen = {
            backend.where: sorted(map(as_seen, backend.run(jobs, preset="piano")), key=lambda r: r[0])
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


def test_without_cluster_nothing_of_ray_is_imported(takes, tmp_path):
    script = (
        "import sys; from midibridge.plugin_host.cli import main; import midibridge.bridge.daemon; "
        f"code = main(['batch', {str(takes / 'keys.wav')!r}, '-o', {str(tmp_path)!r}, '--in-process']); "
        "print(code, 'ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr


def without_ray(folder: Path) -> dict:
    """An environment where `import ray` fails, as where the `cluster` extra is not installed: for the command and
    for the daemon it starts."""
    (folder / "no-ray").mkdir()
    (folder / "no-ray" / "ray.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    return {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder / "no-ray"), ENV.get("PYTHONPATH")]))}


def test_cluster_mistakes_are_named_with_their_fix(takes, tmp_path):
    no_ray = subprocess.run(
        [MIDIBRIDGE, "batch", takes, "--cluster", "127.0.0.2:1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=without_ray(tmp_path),
    )
    nobody = batch(takes, "--cluster", "127.0.0.2:1", cwd=tmp_path)
    unset = subprocess.run(
        [MIDIBRIDGE, "batch", takes, "--cluster", "auto"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in ENV.items() if k != "RAY_ADDRESS"},
    )
    lonely = subprocess.run([MIDIBRIDGE, "batch", takes, "--ship-audio"], capture_output=True, text=True)
    no_head = subprocess.run(
        [MIDIBRIDGE, "serve", "--cluster", "127.0.0.2:1", "--endpoint", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "XDG_RUNTIME_DIR": str(tmp_path)},
    )

    assert no_ray.returncode == 1 and "[cluster_not_installed]" in no_ray.stderr
    assert "pip install 'midibridge[cluster]'" in no_ray.stderr
    assert nobody.returncode == 1 and "[cluster_unavailable]: no Ray cluster answers at 127.0.0.2:1" in nobody.stderr
    assert unset.returncode == 1 and "RAY_ADDRESS, which is not set" in unset.stderr
    assert lonely.returncode == 2 and "give --cluster ADDRESS as well" in lonely.stderr
    assert no_head.returncode == 1 and "[cluster_unavailable] no Ray cluster answers at 127.0.0.2:1" in no_head.stderr
    assert not (tmp_path / "midi").exists() or not list((tmp_path / "midi").glob("*.mid")), "nothing ran"


@pytest.fixture
def cluster_daemon(cluster, tmp_path):
    """`midibridge serve --cluster`: both CPU slots are its workers (none kept for interactive jobs)."""
    daemon = DaemonProcess(tmp_path / "daemon", "--cluster", cluster.address, "--interactive-workers", "0", workers=2)
    yield daemon
    daemon.stop()


def test_a_daemon_whose_workers_are_cluster_actors_converts_as_a_local_batch(
    cluster, cluster_daemon, takes, preset_file, local, tmp_path
):
    status = subprocess.run([MIDIBRIDGE, "status"], env=cluster_daemon.env, capture_output=True, text=True)
    done = batch(takes, "--preset", preset_file, "--daemon", cwd=tmp_path, env=cluster_daemon.env)

    assert status.stdout.count("  worker ") == 2 and status.stdout.count(": idle") == 2, status.stdout
    assert done.returncode == 1 and "(daemon)" in done.stdout, done.stderr
    assert outputs(tmp_path) == local
    assert cluster.state()["free_cpus"] == 0.0, "the daemon's two workers hold the cluster's two slots"
    cluster_daemon.stop()
    assert cluster.wait_for(free_cpus=2.0, timeout_s=30)["free_cpus"] == 2.0, "a stopped daemon frees them"


def test_a_cluster_daemon_that_loses_a_node_runs_its_job_again_on_the_other(
    cluster, hold_control, cluster_daemon, takes, preset_file, local, tmp_path
):
    done = batch_losing_a_node(
        cluster, hold_control, takes, "--preset", preset_file, "--daemon", cwd=tmp_path, env=cluster_daemon.env
    )

    assert done.returncode == 1 and f"converted {N_TAKES} of {N_TAKES + 1} regions" in done.stdout, done.stderr
    assert outputs(tmp_path) == local
    assert "replaced" in cluster_daemon.log.read_text(), "the daemon replaced the worker it lost"


def test_only_the_daemons_own_actors_get_in_as_cluster_workers(cluster_daemon, takes, tmp_path):
    """Its worker socket listens where the cluster reaches it: a stranger posing as a worker, with no CURVE or with
    a key of its own, fails the handshake and hears nothing, and the daemon goes on serving."""
    endpoint = re.search(r"they connect to (tcp://\S+)\)", cluster_daemon.log.read_text()).group(1)
    context = zmq.Context.instance()
    handshakes = []
    for keys in (None, zmq.curve_keypair()):
        stranger = context.socket(zmq.DEALER)
        stranger.setsockopt(zmq.LINGER, 0)
        if keys:
            stranger.curve_serverkey = zmq.curve_keypair()[0]
            stranger.curve_publickey, stranger.curve_secretkey = keys
        events = stranger.get_monitor_socket()
        stranger.connect(endpoint)
        seen, deadline = set(), time.monotonic() + 10
        while not seen & FAILED_HANDSHAKES and time.monotonic() < deadline:
            if events.poll(500):
                seen.add(recv_monitor_message(events)["event"])
        handshakes.append(seen)
        assert not stranger.poll(200), "nothing reached the stranger"
        stranger.disable_monitor()
        stranger.close()

    done = batch(takes / "keys.wav", "--daemon", cwd=tmp_path, env=cluster_daemon.env)

    assert all(seen & FAILED_HANDSHAKES and zmq.EVENT_HANDSHAKE_SUCCEEDED not in seen for seen in handshakes), (
        handshakes
    )
    assert done.returncode == 0, done.stderr
