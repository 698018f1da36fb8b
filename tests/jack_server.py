"""A real JACK server for tests (jackd2's dummy backend: no sound card, real time all the same) and the two clients
that stand where a musician and a DAW would: a player feeding a file into a port in real time, and a recorder keeping
every MIDI event with the JACK frame it arrived in. Also used by benchmarks/live.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE, PERIOD = 48000, 256
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Server:
    name: str
    env: dict  # for subprocesses: JACK_DEFAULT_SERVER is this server


@contextmanager
def jack_server() -> Iterator[Server]:
    """jackd (dummy backend, 48 kHz, 256-frame periods) under a name of its own, stopped by its pid."""
    if shutil.which("jackd") is None:
        raise RuntimeError("jackd is needed: run `make setup` (Debian jackd2)")
    name = f"midibridge-test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        # -S (synchronous): each cycle waits for every client, so a player late on a busy machine delays the cycle
        # instead of handing on a stale buffer (asynchronous mode repeats and skips its periods).
        ["jackd", "--no-realtime", "-S", "-n", name, "-d", "dummy", "-r", str(RATE), "-p", str(PERIOD)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name  # this process's clients (player, recorder) join it too
    try:
        _wait_for_server(process)
        yield Server(name, {**os.environ, "JACK_NO_START_SERVER": "1"})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _wait_for_server(process: subprocess.Popen) -> None:
    import jack

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jackd exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            jack.Client("probe", no_start_server=True).close()
            return
        except jack.JackOpenError:
            time.sleep(0.1)
    raise RuntimeError("jackd did not start in 15 s")


class Player:
    """A JACK client with one audio output that plays `audio` (mono float32 at RATE) once `play()` is called, from the
    start of a period; `start_frame` is that period's frame time."""

    def __init__(self, audio: np.ndarray, *, name: str = "player"):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.out = self.client.outports.register("out")
        self.audio = np.concatenate([audio.astype(np.float32), np.zeros(PERIOD, np.float32)])
        self.start_frame: int | None = None
        self.position = 0
        self.finished = threading.Event()
        self._playing = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def play(self) -> None:
        self._playing = True

    def _process(self, frames: int) -> None:
        buffer = self.out.get_array()
        if not self._playing or self.position >= len(self.audio):
            buffer[:] = 0.0
            if self._playing:
                self.finished.set()
            return
        if self.start_frame is None:
            self.start_frame = self.client.last_frame_time
        part = self.audio[self.position : self.position + frames]
        buffer[: len(part)] = part
        buffer[len(part) :] = 0.0
        self.position += frames

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Recorder:
    """A JACK client with one MIDI input that keeps (frame, message bytes) of everything it receives."""

    def __init__(self, *, name: str = "recorder"):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.port = self.client.midi_inports.register("in")
        self.events: list[tuple[int, bytes]] = []
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        now = self.client.last_frame_time
        for offset, data in self.port.incoming_midi_events():
            self.events.append((now + offset, bytes(data)))

    def note_ons(self) -> list[tuple[int, int]]:
        """(frame, pitch) of every note-on."""
        return [(frame, m[1]) for frame, m in self.events if m[0] & 0xF0 == 0x90 and m[2] > 0]

    def sounding(self) -> set[int]:
        """Pitches whose last note message was a note-on."""
        on: set[int] = set()
        for _, m in self.events:
            if m[0] & 0xF0 == 0x90 and m[2] > 0:
                on.add(m[1])
            elif m[0] & 0xF0 in (0x80, 0x90):
                on.discard(m[1])
        return on

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def start_live(server: Server, *args: str, name: str = "midibridge") -> subprocess.Popen:
    """`midibridge live --client-name NAME ARGS` on `server`, once its ports are there."""
    import jack

    process = subprocess.Popen(
        [sys.executable, "-m", "midibridge.plugin_host.cli", "live", "--client-name", name, *args],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    probe = jack.Client("port-probe", no_start_server=True)
    try:
        deadline = time.monotonic() + 60
        while not probe.get_ports(f"{name}:midi_out"):
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate(timeout=10) if process.poll() is not None else ("", "")
                raise RuntimeError(f"midibridge live did not start: {out}{err}")
            time.sleep(0.1)
    finally:
        probe.close()
    return process
