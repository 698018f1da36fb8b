"""A real daemon in a subprocess, on real sockets, for the daemon's tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import zmq

from midibridge.bridge import discovery
from midibridge.bridge import protocol as p
from midibridge.plugin_host.client import Client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the route a UDP socket would take; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


FAULTS = Path(__file__).parent / "faults"


class DaemonProcess:
    """`midibridge serve` with its own runtime and config dirs; `client()` talks to it."""

    def __init__(
        self,
        home: Path,
        *args: str,
        endpoint: str | None = None,
        workers: int = 1,
        client_keys=None,
        cwd: Path | None = None,
        fault: str | None = None,
    ):
        self.home = home
        self.client_keys = client_keys  # with CURVE on, the keys this helper's own clients use
        self.endpoint = endpoint or f"tcp://127.0.0.1:{free_port()}"
        # Commands run with this env find this daemon as a user's find theirs: by the endpoint they are told.
        self.env = dict(
            os.environ,
            XDG_RUNTIME_DIR=str(home / "run"),
            XDG_CONFIG_HOME=str(home / "config"),
            MIDIBRIDGE_ENDPOINT=self.endpoint,
        )
        if fault:  # tests/faults/sitecustomize.py makes the daemon's workers misbehave so
            self.env.update(
                MIDIBRIDGE_TEST_FAULT=fault,
                PYTHONPATH=os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
            )
        (home / "run").mkdir(parents=True, exist_ok=True)
        self.log = home / "daemon.log"
        command = [
            str(Path(sys.executable).parent / "midibridge"),
            "serve",
            "--endpoint",
            self.endpoint,
            "--workers",
            str(workers),
            *args,
        ]
        self.process = subprocess.Popen(
            command, env=self.env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, cwd=cwd
        )
        self.record = self._wait_until_serving()

    @property
    def discovery_file(self) -> Path:
        return self.home / "run" / "midibridge" / discovery.discovery_path(self.endpoint).name

    def _wait_until_serving(self, timeout_s: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited: {self.log.read_text()}")
            if self.discovery_file.is_file():
                record = json.loads(self.discovery_file.read_text())
                with self.client(timeout_s=5.0, retries=0, record=record) as client:
                    if all(w["ready"] for w in client.status()["workers"]):
                        return record
            time.sleep(0.1)
        raise RuntimeError(f"the daemon did not start: {self.log.read_text()}")

    def client(
        self,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        record: dict | None = None,
        server_public_key: bytes | None = None,
        client_keys=None,
    ) -> Client:
        record = record or self.record
        if server_public_key is None and record.get("public_key"):
            server_public_key = record["public_key"].encode()
        return Client(
            self.endpoint,
            timeout_s=timeout_s,
            retries=retries,
            server_public_key=server_public_key,
            client_keys=client_keys or self.client_keys,
        )

    def raw(self) -> zmq.Socket:
        """A bare DEALER for sending frames the client never would."""
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def worker_pids(self) -> list[int]:
        with self.client() as client:
            return [w["pid"] for w in client.status()["workers"]]

    def worker_pid_of(self, job_id: str) -> int:
        with self.client() as client:
            [pid] = [w["pid"] for w in client.status()["workers"] if w["job_id"] == job_id]
        return pid

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout_s)


def exchange(sock: zmq.Socket, frames: list, timeout_s: float = 5.0) -> p.Message | None:
    sock.send_multipart(frames)
    if not sock.poll(timeout_s * 1000):
        return None
    return p.decode(sock.recv_multipart())


def submit_raw(sock, region_path, request_id=b"r1"):
    """Send a transcribe on a bare socket; returns the job id once accepted."""
    sock.send_multipart(p.encode(p.TRANSCRIBE, request_id.decode(), {"region": {"path": str(region_path)}}))
    while True:  # earlier jobs' progress may come first
        assert sock.poll(30_000), "the daemon did not answer a transcribe within 30 s"
        accepted = p.decode(sock.recv_multipart())
        if accepted.request_id == request_id.decode():
            break
    assert accepted.kind == p.ACCEPTED, accepted.header
    return accepted.header["job_ids"][0]


def wait_for(sock, kinds, job_id, timeout_s=60.0):
    """The first message of one of `kinds` for `job_id` on a bare socket."""
    deadline = time.monotonic() + timeout_s
    while sock.poll(max(deadline - time.monotonic(), 0) * 1000):
        message = p.decode(sock.recv_multipart())
        if message.kind in kinds and message.header.get("job_id") == job_id:
            return message
    raise AssertionError(f"no {kinds} for {job_id}")
