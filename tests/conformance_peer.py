"""A midibridge client written from bridge/PROTOCOL.md alone, for tests/test_conformance_*.py: the daemon started as a
user starts it, frames by hand with json and pyzmq (nothing from midibridge), and audio to send it."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
from pedalboard.io import AudioFile

PROTOCOL = b"midibridge/2.1"
RATE_HZ = 22050
JOB_TERMINAL = ("result", "error")
PROVOKED: set[str] = set()  # the error codes the daemon answered with, for RELIABILITY.md's table


# The daemon, as a user starts it ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """`midibridge serve` with a private runtime and config dir, found through its discovery file."""

    def __init__(self, home: Path, endpoint: str, *args: str):
        self.home, self.endpoint = home, endpoint
        env = dict(os.environ, XDG_RUNTIME_DIR=str(home / "run"), XDG_CONFIG_HOME=str(home / "config"))
        (home / "run").mkdir(parents=True, exist_ok=True)
        # "every run of characters other than letters, digits, . and - made _"
        self.discovery_file = home / "run" / "midibridge" / f"daemon-{re.sub(r'[^A-Za-z0-9.-]+', '_', endpoint)}.json"
        self.log = home / "daemon.log"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "midibridge"), "serve", "--endpoint", endpoint, *args],
            env=env,
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while not self.discovery_file.is_file():
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)
        self.record = json.loads(self.discovery_file.read_text())

    def socket(self, curve_keys=None) -> "Peer":
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if curve_keys:
            sock.curve_publickey, sock.curve_secretkey = curve_keys
            sock.curve_serverkey = self.record["public_key"].encode()
        sock.connect(self.endpoint)
        return Peer(sock)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(30)


# Frames, by hand ----------------------------------------------------------------------------------


def frames(kind: str, request_id: str, header: dict | None = None, *buffers: bytes) -> list[bytes]:
    return [PROTOCOL, kind.encode(), request_id.encode(), json.dumps(header or {}).encode(), *buffers]


class Reply:
    def __init__(self, parts: list[bytes]):
        assert len(parts) >= 4 and parts[0] == PROTOCOL, parts[:4]
        self.kind, self.request_id = parts[1].decode(), parts[2].decode()
        self.header = json.loads(parts[3])
        self.buffers = parts[4:]

    def __repr__(self):
        return f"Reply({self.kind}, {self.request_id!r}, {self.header})"


class Peer:
    """A DEALER, and the replies that came while it waited for another (a job's end may overtake an answer)."""

    def __init__(self, sock: zmq.Socket):
        self.sock, self.backlog = sock, []

    def send(self, raw: list[bytes]) -> None:
        self.sock.send_multipart(raw)

    def read(self, timeout_s: float) -> Reply:
        assert self.sock.poll(timeout_s * 1000), "the daemon did not answer"
        return Reply(self.sock.recv_multipart())

    def close(self) -> None:
        self.sock.close()


def receive(peer: Peer, timeout_s: float = 30.0) -> Reply:
    return peer.backlog.pop(0) if peer.backlog else peer.read(timeout_s)


def ask(peer: Peer, raw: list[bytes], timeout_s: float = 30.0) -> Reply:
    """Send one message; its answer (not a job's progress). Replies to others wait in the backlog."""
    peer.send(raw)
    request_id = raw[2].decode("utf-8", "replace") if len(raw) > 2 else ""
    while True:
        reply = peer.read(timeout_s)
        if reply.request_id == request_id and reply.kind != "progress":
            return reply
        peer.backlog.append(reply)


def refused(sock, raw: list[bytes]) -> dict:
    """The error header of a request refused at once (instead of `accepted`)."""
    reply = ask(sock, raw)
    assert reply.kind == "error" and "job_id" not in reply.header, reply
    PROVOKED.add(reply.header["code"])
    assert reply.header["message"], "every error says what is wrong"
    return reply.header


def job_replies(sock, job_ids: list[str], timeout_s: float = 60.0) -> dict[str, list[Reply]]:
    """Every reply for each job, up to and including its one result or error."""
    replies = {job_id: [] for job_id in job_ids}
    open_jobs = set(job_ids)
    while open_jobs:
        reply = receive(sock, timeout_s)
        job_id = reply.header.get("job_id")
        if job_id in replies:
            assert job_id in open_jobs, f"a reply after the job's end: {reply}"
            replies[job_id].append(reply)
            if reply.kind in JOB_TERMINAL:
                open_jobs.discard(job_id)
                PROVOKED.add(reply.header.get("code"))
    return replies


def submit(sock, request_id: str, header: dict, *buffers: bytes, kind: str = "transcribe") -> list[str]:
    accepted = ask(sock, frames(kind, request_id, header, *buffers))
    assert accepted.kind == "accepted", accepted
    return accepted.header["job_ids"]


def run(sock, request_id: str, header: dict, *buffers: bytes) -> Reply:
    """A transcribe, to its end: its result or error."""
    [job_id] = submit(sock, request_id, header, *buffers)
    end = job_replies(sock, [job_id])[job_id][-1]
    assert end.request_id == request_id and end.header["job_id"] == job_id
    return end


def job_error(sock, request_id: str, header: dict, *buffers: bytes) -> dict:
    end = run(sock, request_id, header, *buffers)
    assert end.kind == "error" and end.header["message"], end
    return end.header


# Audio ---------------------------------------------------------------------------------------------


def tones(notes: list[tuple[int, float, float]], length_s: float) -> np.ndarray:
    """Plucked harmonic tones (pitch, start s, end s), mono float32."""
    audio = np.zeros(int(length_s * RATE_HZ), np.float32)
    for pitch, start_s, end_s in notes:
        t = np.arange(int((end_s - start_s) * RATE_HZ)) / RATE_HZ
        voice = sum(np.sin(2 * np.pi * k * 440 * 2 ** ((pitch - 69) / 12) * t) / k for k in range(1, 5))
        first = int(start_s * RATE_HZ)
        audio[first : first + t.size] += 0.3 * np.exp(-t / 0.8) * np.minimum(t / 0.005, 1) * voice
    return audio


def write(path: Path, audio: np.ndarray, rate_hz: float = RATE_HZ) -> Path:
    with AudioFile(str(path), "w", samplerate=rate_hz, num_channels=1, bit_depth=16) as sink:
        sink.write(audio[np.newaxis, :])
    return path


def raw_wav(path: Path, rate_hz: int, n_frames: int) -> Path:
    """A 16-bit mono WAV written by the standard library: any rate, any length (zero too)."""
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(rate_hz)
        sink.writeframes(b"\0\0" * n_frames)
    return path


# The daemon both conformance modules talk to: one per module, as a user starts it ---------------------


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("conformance-audio")
    melody = [(64, 2.0, 2.5), (67, 3.0, 3.5), (60, 4.0, 4.6)]
    files = {
        "melody": write(folder / "melody.wav", tones(melody, 6.0)),
        # Five minutes: a job that keeps the one worker busy until it is cancelled.
        "long": write(folder / "long.flac", tones([(48 + i % 24, 0.5 * i, 0.5 * i + 0.4) for i in range(600)], 300.0)),
        "too_fast": raw_wav(folder / "too_fast.wav", 800_000, 8000),
        "silent_nothing": raw_wav(folder / "no_audio.wav", RATE_HZ, 0),
        "garbage": folder / "garbage.wav",
        "cut": folder / "cut.flac",
    }
    files["garbage"].write_text("this is not audio, whatever its name says\n" * 50)
    whole = write(folder / "whole.flac", tones(melody * 4, 24.0)).read_bytes()
    files["cut"].write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    return files


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    served = Served(
        tmp_path_factory.mktemp("conformance"),
        f"tcp://127.0.0.1:{free_port()}",
        "--workers",
        "1",
        "--interactive-workers",
        "0",
        "--queue",
        "2",
        "--grace",
        "1",
    )
    with_worker = served.socket()
    deadline = time.monotonic() + 90
    while not all(w["ready"] for w in ask(with_worker, frames("status", "ready?")).header["workers"]):
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.2)
    with_worker.close()
    yield served
    served.stop()


@pytest.fixture
def sock(daemon):
    sock = daemon.socket()
    yield sock
    sock.close()
