"""The daemon's side of its workers (bridge.worker is the other): a pool of processes, started, watched by heartbeat
and by their jobs' progress, and replaced.

Workers run in their own session, so a Ctrl-C meant for the daemon does not
kill jobs under it: the daemon decides whether they finish or are cancelled.

A worker heartbeats from a thread of its own, on a second socket whose
identity is the worker's plus HEARTBEAT_SUFFIX, so its heartbeats say only
that the process lives. Whether its job advances is told by the job's
progress: a job silent for `progress_timeout_s` while heartbeats go on (a
read stuck on a dead network mount, a plugin that never returns) counts as
hung all the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from midibridge.model.vocabulary import Code

from .protocol import HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS

STARTUP_GRACE_S = 60.0  # a worker importing onnxruntime on a loaded machine is silent for a while
HEARTBEAT_SUFFIX = b"/heartbeat"


@dataclass
class WorkerHandle:
    identity: bytes
    process: Any  # a subprocess.Popen, or what stands for one (bridge.ray_workers.ActorProcess)
    interactive_only: bool = False  # kept free for interactive jobs, so they never wait behind a batch
    started_s: float = field(default_factory=time.monotonic)
    heard_s: float = field(default_factory=time.monotonic)
    ready: bool = False  # its default engine is loaded: it said READY
    node: str | None = None  # the machine it runs on, as it said when ready
    progress_s: float = 0.0  # when its job last advanced
    job_id: str | None = None

    @property
    def pid(self) -> int | None:  # None: an actor on a cluster that has not started yet
        return self.process.pid

    @property
    def heartbeat_identity(self) -> bytes:
        return self.identity + HEARTBEAT_SUFFIX


@dataclass(frozen=True)
class Lost:
    """A worker the pool killed and replaced, and why: `code` is worker_died or worker_hung."""

    worker: WorkerHandle
    code: Code
    reason: str


class WorkerPool:
    """`count` workers for any job plus `interactive` kept for interactive ones, connected to `endpoint`.

    `launch(identity)` starts one and returns its process (poll, kill, terminate, wait and pid, as Popen has, and
    `failure`, what ended it, when it can say more than its status); by default a `python -m
    midibridge.bridge.worker` process here, loading the `preload` engines before it is ready.
    """

    def __init__(
        self,
        *,
        count: int,
        interactive: int,
        endpoint: str,
        threads: int,
        model_path: str | None,
        progress_timeout_s: float,
        preload: tuple[str, ...] = (),
        launch: Callable[[bytes], Any] | None = None,
    ):
        self.count = count
        self.interactive = interactive
        self.endpoint = endpoint
        self.threads = threads
        self.model_path = model_path
        self.preload = preload
        self.progress_timeout_s = progress_timeout_s
        self.launch = launch or self._local_process
        self.workers: dict[bytes, WorkerHandle] = {}
        self._serial = 0
        self.replaced = 0

    def start(self) -> None:
        for interactive_only, wanted in ((False, self.count), (True, self.interactive)):
            running = sum(w.interactive_only == interactive_only for w in self.workers.values())
            for _ in range(wanted - running):
                self._spawn(interactive_only=interactive_only)

    def _spawn(self, *, interactive_only: bool) -> WorkerHandle:
        self._serial += 1
        identity = f"W{os.getpid()}-{self._serial}".encode()
        handle = WorkerHandle(identity, self.launch(identity), interactive_only)
        self.workers[identity] = handle
        return handle

    def _local_process(self, identity: bytes) -> subprocess.Popen:
        command = [
            sys.executable,
            "-m",
            "midibridge.bridge.worker",
            "--endpoint",
            self.endpoint,
            "--identity",
            identity.decode(),
            "--threads",
            str(self.threads),
        ]
        if self.model_path:
            command += ["--model", self.model_path]
        for engine in self.preload:
            command += ["--preload", engine]
        return subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)

    def heard(self, identity: bytes) -> WorkerHandle | None:
        """The worker that sent a message from `identity` (its own or its heartbeat socket's), now heard from."""
        handle = self.workers.get(identity.removesuffix(HEARTBEAT_SUFFIX))
        if handle is not None:
            handle.heard_s = time.monotonic()
        return handle

    def mark_ready(self, handle: WorkerHandle, *, node: str) -> None:
        handle.ready, handle.node = True, node

    def assign(self, handle: WorkerHandle, job_id: str | None) -> None:
        handle.job_id, handle.progress_s = job_id, time.monotonic()

    def progressed(self, handle: WorkerHandle) -> None:
        handle.progress_s = time.monotonic()

    def idle(self) -> list[WorkerHandle]:
        """Ready workers without a job, those for any job first."""
        free = [w for w in self.workers.values() if w.ready and w.job_id is None and w.process.poll() is None]
        return sorted(free, key=lambda w: w.interactive_only)

    def busy(self) -> int:
        return sum(w.job_id is not None for w in self.workers.values())

    def reap(self) -> list[Lost]:
        """Kill and replace every worker that exited, went silent, or whose job stopped advancing."""
        now = time.monotonic()
        lost = []
        for handle in list(self.workers.values()):
            if handle.process.poll() is not None:
                lost.append(
                    Lost(
                        handle,
                        Code.WORKER_DIED,
                        getattr(handle.process, "failure", None) or f"exited with status {handle.process.returncode}",
                    )
                )
            elif handle.ready and now - handle.heard_s > HEARTBEAT_LIVENESS * HEARTBEAT_INTERVAL_S:
                lost.append(Lost(handle, Code.WORKER_HUNG, f"sent no heartbeat for {now - handle.heard_s:.0f} s"))
            elif not handle.ready and now - handle.started_s > STARTUP_GRACE_S:
                lost.append(Lost(handle, Code.WORKER_HUNG, f"did not start within {STARTUP_GRACE_S:g} s"))
            elif handle.job_id and now - handle.progress_s > self.progress_timeout_s:
                lost.append(
                    Lost(
                        handle,
                        Code.WORKER_HUNG,
                        f"made no progress on its job for {now - handle.progress_s:.0f} s (serve --progress-timeout)",
                    )
                )
        for gone in lost:
            self.replace(gone.worker)
        return lost

    def replace(self, handle: WorkerHandle) -> None:
        """Kill a worker (whatever it is doing) and start another in its place."""
        self._kill(handle)
        del self.workers[handle.identity]
        self.replaced += 1
        self.start()

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
            handle.process.kill()  # SIGKILL: works on a stopped process too
        except ProcessLookupError:
            pass
        handle.process.wait()

    def describe(self) -> list[dict]:
        return [
            {
                "identity": h.identity.decode(),
                "pid": h.pid,
                "ready": h.ready,
                "job_id": h.job_id,
                "interactive_only": h.interactive_only,
            }
            for h in self.workers.values()
        ]
