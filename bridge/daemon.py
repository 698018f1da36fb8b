"""The daemon: a ROUTER for clients, one for its workers, one asyncio loop between them that never waits on inference.

This module owns the daemon's life: its configuration, binding, discovery,
the three loops and stopping with every job answered. What a request gets
is bridge.requests'; what happens to jobs among the workers,
bridge.supervisor's; what goes back to clients, bridge.outbox's. Nothing
stops the loop but SIGINT, SIGTERM or a local `shutdown`, and for a
private daemon its stdin closing.

A private daemon (`serve --private`) is one command's (`batch --cluster`),
on an endpoint of its own: it says on stdout, as one JSON line, that it
serves ({"serving": endpoint}) or why it cannot ({"code", "message"}: the
cluster's own code when that is why), and stops when its stdin closes, so it
never outlives the command that started it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio

from midibridge.model.engines import DEFAULT_ENGINE, ENGINES
from midibridge.model.errors import MidibridgeError, ModelError
from midibridge.model.vocabulary import Code, JobState

from . import discovery
from . import protocol as p
from .cache import ResultCache
from .jobs import JobTable
from .outbox import Outbox
from .protocol import BridgeError
from .requests import Requests, request_id
from .security import clients_dir, enable_curve_server, is_local_endpoint
from .supervisor import Supervisor
from .worker_pool import WorkerPool

log = logging.getLogger("midibridge.daemon")


class DaemonError(BridgeError):
    """The daemon cannot start (code `cannot_serve`); the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__(Code.CANNOT_SERVE, message)


@dataclass(kw_only=True)
class DaemonConfig:
    endpoint: str = field(default_factory=discovery.default_endpoint)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # 0 with `cluster`: one per free CPU slot
    interactive_workers: int = 1  # kept idle for interactive jobs, so a right-click never waits behind a batch
    threads_per_worker: int = 0
    max_queued: int = p.MAX_BATCH_REGIONS
    result_ttl_s: float = 600.0
    cache_entries: int = 256
    max_frame_bytes: int = p.MAX_FRAME_BYTES
    allowed_roots: list[str] = field(default_factory=list)
    curve: bool = False  # required for any endpoint that is not loopback or ipc
    job_retries: int = 0
    grace_s: float = 10.0
    progress_timeout_s: float = 60.0  # a running job silent this long is failed worker_hung
    cancel_timeout_s: float = 1.0  # a running job not ended this long after its cancel is ended by force
    model_path: str | None = None
    preload: tuple[str, ...] = ()  # engines every worker loads before it is ready, beside the default one
    cluster: str | None = None  # a Ray address: the workers are actors there (bridge.ray_workers)
    ship_audio: bool = False  # a job's file goes to its worker with it (a node may not see the file)
    private: bool = False  # one command's daemon: see the module's docstring

    def __post_init__(self) -> None:
        if self.cluster:  # an actor holds one CPU slot: one thread, and no per-job thread hints from the supervisor
            self.threads_per_worker = 1

    @property
    def max_batch_regions(self) -> int:
        """A batch must fit the queue whole, or it would be refused `busy` for ever."""
        return min(p.MAX_BATCH_REGIONS, self.max_queued)


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        if config.private and not stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
            raise DaemonError(
                "serve --private stops when its stdin closes, so its stdin must be a pipe from the "
                "command that starts it (as `batch --cluster` does); serve without --private instead"
            )
        if not config.curve and not is_local_endpoint(config.endpoint):
            raise DaemonError(
                f"{config.endpoint} can be reached from other machines: serve it with --curve, so "
                f"that only clients whose public key is in {clients_dir()} get in (and read only "
                f"under --allow-root), or bind tcp://127.0.0.1:PORT or ipc://PATH instead"
            )
        try:  # a cluster's nodes find their own weights: their workers say so when they cannot
            model_path = (
                None if config.cluster else str(ENGINES[DEFAULT_ENGINE].weights.find_weights(config.model_path))
            )
        except ModelError as error:
            raise DaemonError(str(error)) from error
        self.table = JobTable(max_queued=config.max_queued, result_ttl_s=config.result_ttl_s)
        self.cache = ResultCache(entries=config.cache_entries)
        self.cluster = self._join_cluster(config.cluster) if config.cluster else None
        self.backend_endpoint = (
            self.cluster.endpoint if self.cluster else f"ipc://{discovery.runtime_dir()}/workers-{os.getpid()}.sock"
        )
        count = config.workers
        if self.cluster:  # never more workers than CPU slots: an actor holds one
            slots = self.cluster.slots()
            count = min(count, slots) if count else max(slots - config.interactive_workers, 1)
        self.pool = WorkerPool(
            count=count,
            interactive=config.interactive_workers,
            endpoint=self.backend_endpoint,
            threads=config.threads_per_worker,
            model_path=model_path,
            progress_timeout_s=config.progress_timeout_s,
            preload=config.preload,
            launch=self._launch_on_cluster if self.cluster else None,
        )
        self.context = zmq.asyncio.Context()
        self.authenticator = None
        self.public_key: bytes | None = None
        self.frontend, self.backend = self.context.socket(zmq.ROUTER), self.context.socket(zmq.ROUTER)
        for socket in (self.frontend, self.backend):
            socket.setsockopt(zmq.LINGER, 0)
        self.frontend.setsockopt(zmq.MAXMSGSIZE, config.max_frame_bytes)
        self.outbox = Outbox(self.frontend, self.table)
        self.supervisor = Supervisor(
            config=config, socket=self.backend, pool=self.pool, table=self.table, cache=self.cache, outbox=self.outbox
        )
        self.requests = Requests(
            config=config,
            lifecycle=self,
            table=self.table,
            cache=self.cache,
            pool=self.pool,
            outbox=self.outbox,
            supervisor=self.supervisor,
        )
        self.stopping = asyncio.Event()
        self.accepting = True

    # Start and stop ---------------------------------------------------------

    def run(self) -> int:
        return asyncio.run(self._main())

    async def _main(self) -> int:
        discovery.runtime_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        self._bind_frontend()
        if self.cluster:
            self.authenticator = self.cluster.keys.secure_daemon(self.backend, self.context, self.authenticator)
        self.backend.bind(self.backend_endpoint)
        self.pool.endpoint = self.backend.get_string(zmq.LAST_ENDPOINT)  # a cluster's tcp://HOST:* got its port
        self.pool.start()
        discovery.write_discovery(
            {
                "endpoint": self.config.endpoint,
                "pid": os.getpid(),
                "protocol": p.PROTOCOL_ID.decode(),
                "public_key": self.public_key.decode() if self.public_key else None,
            }
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        log.info(
            "serving %s with %d workers and %d for interactive jobs%s (protocol %s)",
            self.config.endpoint,
            self.pool.count,
            self.config.interactive_workers,
            f", as actors on the Ray cluster at {self.config.cluster} (they connect to {self.pool.endpoint})"
            if self.cluster
            else "",
            p.PROTOCOL_ID.decode(),
        )
        tasks = [asyncio.create_task(t) for t in (self._serve_clients(), self._serve_workers(), self._supervise())]
        try:
            if self.config.private:
                loop.add_reader(sys.stdin.fileno(), self._hear_owner)
                _tell_owner({"serving": self.config.endpoint})
            await self.stopping.wait()
            await self._drain()
        finally:
            for task in tasks:
                task.cancel()
            self.pool.stop()
            if self.cluster:
                self.cluster.close()
            discovery.remove_discovery(self.config.endpoint, os.getpid())
            if self.backend_endpoint.startswith("ipc://"):
                Path(self.backend_endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
            if self.authenticator:
                self.authenticator.stop()
            self.context.destroy(linger=0)
        return 0

    def _join_cluster(self, address: str):
        from .ray_workers import ClusterWorkers  # Ray only for serve --cluster

        try:
            return ClusterWorkers(address)
        except BridgeError as error:
            raise DaemonError(f"[{error.code}] {error}") from error

    def _launch_on_cluster(self, identity: bytes):
        assert self.cluster is not None, "the pool launches on a cluster only when the daemon joined one"
        return self.cluster.launch(identity, self.pool.endpoint, preload=self.config.preload)

    def _hear_owner(self) -> None:
        """A private daemon's stdin: the command that started it holds the other end, so end of file means it has
        ended (whether it stopped the daemon or was killed)."""
        if not os.read(sys.stdin.fileno(), 4096):
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            self.stopping.set()

    def _bind_frontend(self) -> None:
        """Bind the clients' ROUTER; a second daemon for the endpoint, or a port held by another program, is
        refused with what to do."""
        running = discovery.read_discovery(self.config.endpoint)
        if running:
            raise DaemonError(
                f"a midibridge daemon (pid {running['pid']}) already serves {self.config.endpoint}; "
                f"stop it first, or serve another --endpoint"
            )
        if self.config.curve:
            self.authenticator, self.public_key = enable_curve_server(self.frontend, self.context)
        try:
            self.frontend.bind(self.config.endpoint)
        except zmq.ZMQError as error:
            holder = discovery.port_holder(self.config.endpoint)
            raise DaemonError(
                f"cannot serve {self.config.endpoint}: {error.strerror}"
                f"{f'; it is held by {holder}' if holder else ''}. Stop that program, or serve "
                f"another --endpoint."
            ) from error

    async def _drain(self) -> None:
        """Stop taking jobs; let running ones finish for grace_s; cancel the rest, each with an answer."""
        self.accepting = False
        await self.requests.streams.close_all()  # a live stream has nothing to finish
        log.info("stopping: finishing running jobs (up to %g s)", self.config.grace_s)
        for job in self.table.in_state(JobState.QUEUED):
            await self.outbox.fail(job, Code.SHUTTING_DOWN, "the daemon stopped before this job started")
        deadline = asyncio.get_running_loop().time() + self.config.grace_s
        while self.table.in_state(JobState.RUNNING) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for job in self.table.in_state(JobState.RUNNING):
            await self.outbox.fail(
                job,
                Code.SHUTTING_DOWN,
                f"the daemon stopped; the job ran past the {self.config.grace_s:g} s grace period and was cancelled",
            )

    # The three loops ---------------------------------------------------------

    async def _serve_clients(self) -> None:
        while True:
            frames = await self.frontend.recv_multipart(copy=False)
            try:
                await self.requests.handle(frames)
            except Exception as error:  # one bad request must never take the daemon down
                log.exception("unexpected failure handling a request")
                await self.outbox.reply(
                    frames[0].bytes,
                    p.ERROR,
                    request_id(frames),
                    p.error_header(
                        Code.INTERNAL,
                        f"the daemon failed on this request ({type(error).__name__}: {error}); its log has the details",
                    ),
                )

    async def _serve_workers(self) -> None:
        while True:
            frames = await self.backend.recv_multipart(copy=False)
            try:
                await self.supervisor.heard(frames)
            except Exception:  # a loop that dies would leave every job waiting
                log.exception("unexpected failure handling a worker's message")

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(p.HEARTBEAT_INTERVAL_S)
            try:
                await self.supervisor.look_after_workers()
            except Exception:  # a loop that dies would leave hung workers unnoticed
                log.exception("unexpected failure looking after the workers")


def serve(config: DaemonConfig) -> int:
    """Run a daemon until it stops. A private one says why it cannot start on stdout, in its owner's terms: the
    cluster's own error rather than `cannot_serve`."""
    try:
        return Daemon(config).run()
    except MidibridgeError as error:
        if not config.private:
            raise
        why = error.__cause__ if isinstance(error.__cause__, MidibridgeError) else error
        _tell_owner({"code": why.code, "message": str(why)})
        return 1


def _tell_owner(said: dict) -> None:
    sys.stdout.write(json.dumps(said) + "\n")
    sys.stdout.flush()
