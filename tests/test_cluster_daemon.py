"""One daemon whose workers are actors on a Ray cluster (`midibridge serve --cluster`), shared by a studio's DAWs
and batches: the same bytes as a local batch, a lost node's job run again, only its own actors let in; and what a
user is told when the cluster cannot be used."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from cluster_fixtures import (  # noqa: F401 (fixtures)
    MIDIBRIDGE,
    N_TAKES,
    batch,
    batch_losing_a_node,
    cluster,
    hold_control,
    local,
    outputs,
    preset_file,
    takes,
)
from daemon_helpers import DaemonProcess, free_port
from ray_cluster import ENV
from zmq.utils.monitor import recv_monitor_message

FAILED_HANDSHAKES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
}


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
