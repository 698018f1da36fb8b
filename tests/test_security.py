"""Security: who may talk to the daemon, and what a remote client may ask of it."""

import subprocess
import sys

import numpy as np
import pytest
import zmq
import zmq.auth
from daemon_helpers import DaemonProcess, free_port, non_loopback_address

from midibridge.model.region import Region
from midibridge.plugin_host.client import Client, ClientError, DaemonUnavailable


def test_a_non_loopback_bind_without_curve_refuses_to_start(tmp_path, figures):
    done = subprocess.run(
        [sys.executable, "-m", "midibridge.plugin_host.cli", "serve", "--endpoint", f"tcp://0.0.0.0:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"XDG_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )

    assert done.returncode == 1 and "serve it with --curve" in done.stderr
    figures["refused binds"] = figures.get("refused binds", 0) + 1


@pytest.fixture
def exposed(tmp_path):
    """A daemon bound to a non-loopback address with CURVE; one client key allowed; one root allowed."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    allowed = tmp_path / "keys"
    allowed.mkdir()
    public_file, secret_file = zmq.auth.create_certificates(str(allowed), "studio")
    clients = tmp_path / "home" / "config" / "midibridge" / "curve" / "clients"
    clients.mkdir(parents=True)
    (clients / "studio.key").write_bytes(open(public_file, "rb").read())
    root = tmp_path / "shared-audio"
    root.mkdir()
    keys = zmq.auth.load_certificate(secret_file)
    running = DaemonProcess(
        tmp_path / "home",
        "--curve",
        "--allow-root",
        str(root),
        workers=1,
        endpoint=f"tcp://{address}:{free_port()}",
        client_keys=keys,
    )
    running.keys = keys
    running.root = root
    yield running
    running.stop()


def test_curve_refuses_clients_without_an_allowed_key(exposed, figures):
    assert exposed.record["public_key"], "the discovery file gives the server key to local clients"

    with Client(exposed.endpoint, timeout_s=1.0, retries=0) as plain:
        with pytest.raises(DaemonUnavailable):
            plain.hello()
    with exposed.client(timeout_s=1.0, retries=0, client_keys=zmq.curve_keypair()) as stranger:
        with pytest.raises(DaemonUnavailable):
            stranger.hello()
    with exposed.client(client_keys=exposed.keys) as friend:
        assert friend.hello()["protocol"] == "midibridge/2.1"
    figures["clients refused"] = figures.get("clients refused", 0) + 2


def test_a_remote_client_reads_only_under_the_allowed_roots_and_cannot_shut_down(exposed, piano_line, figures):
    inside = exposed.root / "take.wav"
    inside.write_bytes(piano_line.read_bytes())
    with exposed.client(client_keys=exposed.keys) as remote:
        assert remote.transcribe(Region.from_file(inside, duration_s=2.0)).clip.notes
        with pytest.raises(ClientError) as outside:
            remote.transcribe(Region.from_file(piano_line))
        with pytest.raises(ClientError) as sneaky:
            remote.transcribe(Region.from_file(exposed.root / ".." / piano_line.name))
        with pytest.raises(ClientError) as stop:
            remote.shutdown()
        with pytest.raises(ClientError) as preset_file:
            remote.transcribe(Region.from_file(inside, duration_s=2.0), preset="/etc/midibridge-secret.toml")
        samples = np.zeros(44100, np.float32)
        assert remote.transcribe(Region.from_samples(samples, sample_rate_hz=44100)).clip.notes == ()
        assert remote.hello()["workers"] == 1, "still serving"

    assert outside.value.code == sneaky.value.code == stop.value.code == preset_file.value.code == "forbidden"
    assert "allowed roots" in str(outside.value)
    figures["remote requests refused"] = figures.get("remote requests refused", 0) + 4
