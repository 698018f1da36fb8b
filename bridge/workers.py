"""The daemon's worker processes: started, watched by heartbeat, and replaced when they die or hang.

Workers run in their own session, so a Ctrl-C meant for the daemon does not
kill jobs under it: the daemon decides whether they finish or are cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .protocol import HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS, runtime_dir

STARTUP_GRACE_S = 60.0  # a worker importing onnxruntime on a loaded machine is silent for a while


@dataclass
class WorkerHandle:
    identity: bytes
    process: subprocess.Popen
    started_s: float = field(default_factory=time.monotonic)
    heard_s: float | None = None  # None until its READY
    job_id: str | None = None

    @property
    def ready(self) -> bool:
        return self.heard_s is not None

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerPool:
    """`count` worker processes connected to `endpoint`; `reap()` finds the dead and hung and starts replacements."""

    def __init__(self, *, count: int, endpoint: str, threads: int, model_path: str | None):
        self.count = count
        self.endpoint = endpoint
        self.threads = threads
        self.model_path = model_path
        self.workers: dict[bytes, WorkerHandle] = {}
        self._serial = 0
        self.replaced = 0

    def start(self) -> None:
        while len(self.workers) < self.count:
            self._spawn()

    def _spawn(self) -> WorkerHandle:
        self._serial += 1
        identity = f"W{os.getpid()}-{self._serial}".encode()
        command = [sys.executable, "-m", "bridge.worker", "--endpoint", self.endpoint,
                   "--identity", identity.decode(), "--threads", str(self.threads)]
        if self.model_path:
            command += ["--model", self.model_path]
        # `python -m` puts its working directory first on sys.path: run where no folder can shadow our packages.
        process = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL, cwd=runtime_dir())
        handle = WorkerHandle(identity, process)
        self.workers[identity] = handle
        return handle

    def heard(self, identity: bytes) -> WorkerHandle | None:
        handle = self.workers.get(identity)
        if handle is not None:
            handle.heard_s = time.monotonic()
        return handle

    def idle(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.ready and w.job_id is None and w.process.poll() is None]

    def reap(self) -> list[tuple[WorkerHandle, str]]:
        """Kill and replace every worker that exited or went silent; returns them with "worker_died"/"worker_hung"."""
        now = time.monotonic()
        gone = []
        for handle in list(self.workers.values()):
            if handle.process.poll() is not None:
                gone.append((handle, "worker_died"))
            elif handle.ready and now - handle.heard_s > HEARTBEAT_LIVENESS * HEARTBEAT_INTERVAL_S:
                gone.append((handle, "worker_hung"))
            elif not handle.ready and now - handle.started_s > STARTUP_GRACE_S:
                gone.append((handle, "worker_hung"))
        for handle, _ in gone:
            self._kill(handle)
            del self.workers[handle.identity]
            self.replaced += 1
        self.start()
        return gone

    def stop(self, *, timeout_s: float = 2.0) -> None:
        for handle in self.workers.values():
            if handle.process.poll() is None:
                handle.process.terminate()
        deadline = time.monotonic() + timeout_s
        for handle in self.workers.values():
            try:
                handle.process.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                self._kill(handle)
        self.workers.clear()

    @staticmethod
    def _kill(handle: WorkerHandle) -> None:
        try:
            os.kill(handle.pid, signal.SIGKILL)  # works on a stopped process too
        except ProcessLookupError:
            pass
        handle.process.wait()

    def describe(self) -> list[dict]:
        return [{"identity": h.identity.decode(), "pid": h.pid, "ready": h.ready, "job_id": h.job_id}
                for h in self.workers.values()]
