"""The daemon: a ROUTER for clients, a ROUTER for its workers, one asyncio loop between them that never waits on inference.

Requests are checked and answered at once (hello, status, presets, cancel,
fetch, shutdown) or turned into jobs: queued (bounded, interactive before
batch), answered from the cache when the same audio, region, preset and
model were done before, or handed to an idle worker. Workers' progress,
results and errors are passed on to whichever client the job belongs to now
(a reconnecting client fetches it by id). Anything malformed gets an error
reply; a worker that sends one loses its job and is replaced. Every job ends
with one `result` or `error`: a worker that dies, hangs, stops advancing or
ignores a cancel is replaced and its job answered. Nothing stops the loop but
SIGINT, SIGTERM or a local `shutdown`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import zmq
import zmq.asyncio

from model.clip import Tempo
from model.errors import ModelError
from model.presets import available_presets, is_preset_path, read_preset, resolve_preset
from model.engines.basic_pitch.weights import MODEL_SHA256, find_model

from . import discovery
from . import protocol as p
from .cache import ResultCache
from .jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobTable, unknown_summary
from .protocol import Message, ProtocolError
from .security import check_path_allowed, clients_dir, enable_curve_server, is_local_endpoint, is_local_peer
from .workers import WorkerHandle, WorkerPool

log = logging.getLogger("midibridge.daemon")


class DaemonError(Exception):
    """The daemon cannot start; the message says why and what to do."""

    code = "daemon"


@dataclass(kw_only=True)
class DaemonConfig:
    endpoint: str = field(default_factory=discovery.default_endpoint)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
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

    @property
    def max_batch_regions(self) -> int:
        """A batch must fit the queue whole, or it would be refused `busy` for ever."""
        return min(p.MAX_BATCH_REGIONS, self.max_queued)


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        if not config.curve and not is_local_endpoint(config.endpoint):
            raise DaemonError(f"{config.endpoint} can be reached from other machines: serve it with --curve, so "
                              f"that only clients whose public key is in {clients_dir()} get in (and read only "
                              f"under --allow-root), or bind tcp://127.0.0.1:PORT or ipc://PATH instead")
        self.ipc = config.endpoint.startswith("ipc://")  # only this machine can reach it (its Peer-Address is no IP)
        try:
            self.model_path = str(find_model(config.model_path))
        except ModelError as error:
            raise DaemonError(str(error)) from error
        self.model_sha256 = MODEL_SHA256  # find_model() has just checked it
        self.table = JobTable(max_queued=config.max_queued, result_ttl_s=config.result_ttl_s)
        self.cache = ResultCache(entries=config.cache_entries, model_sha256=self.model_sha256)
        self.backend_endpoint = f"ipc://{discovery.runtime_dir()}/workers-{os.getpid()}.sock"
        self.pool = WorkerPool(count=config.workers, interactive=config.interactive_workers,
                               endpoint=self.backend_endpoint, threads=config.threads_per_worker,
                               model_path=self.model_path, progress_timeout_s=config.progress_timeout_s)
        self.context = zmq.asyncio.Context()
        self.frontend: zmq.asyncio.Socket | None = None
        self.backend: zmq.asyncio.Socket | None = None
        self.authenticator = None
        self.public_key: bytes | None = None
        self.stopping = asyncio.Event()
        self.accepting = True
        self.timers: set[asyncio.Task] = set()

    # Start and stop ---------------------------------------------------------

    def run(self) -> int:
        return asyncio.run(self._main())

    async def _main(self) -> int:
        self._refuse_second_daemon()
        discovery.runtime_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        self.frontend = self._bind_frontend()
        self.backend = self.context.socket(zmq.ROUTER)
        self.backend.setsockopt(zmq.LINGER, 0)
        self.backend.bind(self.backend_endpoint)
        self.pool.start()
        discovery.write_discovery({"endpoint": self.config.endpoint, "pid": os.getpid(),
                                   "protocol": p.PROTOCOL_ID.decode(),
                                   "public_key": self.public_key.decode() if self.public_key else None})
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        log.info("serving %s with %d workers and %d for interactive jobs (protocol %s)", self.config.endpoint,
                 self.config.workers, self.config.interactive_workers, p.PROTOCOL_ID.decode())
        tasks = [asyncio.create_task(t) for t in (self._serve_clients(), self._serve_workers(), self._supervise())]
        try:
            await self.stopping.wait()
            await self._drain()
        finally:
            for task in tasks:
                task.cancel()
            self.pool.stop()
            discovery.remove_discovery(self.config.endpoint, os.getpid())
            Path(self.backend_endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
            if self.authenticator:
                self.authenticator.stop()
            self.context.destroy(linger=0)
        return 0

    def _refuse_second_daemon(self) -> None:
        running = discovery.read_discovery(self.config.endpoint)
        if running:
            raise DaemonError(f"a midibridge daemon (pid {running['pid']}) already serves {self.config.endpoint}; "
                              f"stop it first, or serve another --endpoint")

    def _bind_frontend(self) -> zmq.asyncio.Socket:
        socket = self.context.socket(zmq.ROUTER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, self.config.max_frame_bytes)
        if self.config.curve:
            self.authenticator, self.public_key = enable_curve_server(socket, self.context)
        try:
            socket.bind(self.config.endpoint)
        except zmq.ZMQError as error:
            socket.close()
            holder = discovery.port_holder(self.config.endpoint)
            raise DaemonError(f"cannot serve {self.config.endpoint}: {error.strerror}"
                              f"{f'; it is held by {holder}' if holder else ''}. Stop that program, or serve "
                              f"another --endpoint.") from error
        return socket

    async def _drain(self) -> None:
        """Stop taking jobs; let running ones finish for grace_s; cancel the rest, each with an answer."""
        self.accepting = False
        log.info("stopping: finishing running jobs (up to %g s)", self.config.grace_s)
        for job in self.table.in_state(QUEUED):
            await self._fail(job, "shutting_down", "the daemon stopped before this job started")
        deadline = asyncio.get_running_loop().time() + self.config.grace_s
        while self.table.in_state(RUNNING) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for job in self.table.in_state(RUNNING):
            await self._fail(job, "shutting_down", f"the daemon stopped; the job ran past the {self.config.grace_s:g} "
                                                   f"s grace period and was cancelled")

    # Clients ----------------------------------------------------------------

    async def _serve_clients(self) -> None:
        while True:
            frames = await self.frontend.recv_multipart(copy=False)
            try:
                await self._handle(frames)
            except Exception as error:  # one bad request must never take the daemon down
                log.exception("unexpected failure handling a request")
                await self._reply(frames[0].bytes, p.ERROR, _request_id(frames), p.error_header(
                    "internal", f"the daemon failed on this request ({type(error).__name__}: {error}); "
                                f"its log has the details"))

    async def _handle(self, frames) -> None:
        identity = frames[0].bytes
        try:
            message = p.decode(frames, router=True)
            p.check_request(message, max_batch_regions=self.config.max_batch_regions)
        except ProtocolError as error:
            await self._reply(identity, p.ERROR, _request_id(frames), p.error_header(error.code, str(error)))
            return
        local = self.ipc or is_local_peer(_peer_address(frames[1]))
        handler = getattr(self, f"_on_{message.kind}")
        try:
            await handler(message, local)
        except (ProtocolError, ModelError) as error:
            await self._reply(identity, p.ERROR, message.request_id, p.error_header(error.code, str(error)))

    async def _reply(self, identity: bytes, kind: str, request_id: str, header: dict, buffers=()) -> None:
        await self.frontend.send_multipart([identity, *p.encode(kind, request_id, header, buffers)], copy=False)

    async def _on_hello(self, message: Message, local: bool) -> None:
        await self._reply(message.identity, p.HELLO, message.request_id, {
            "protocol": p.PROTOCOL_ID.decode(), "package_version": _package_version(),
            "model": {"name": "basic-pitch nmp.onnx", "sha256": self.model_sha256},
            "presets": sorted(available_presets()), "workers": self.config.workers,
            "interactive_workers": self.config.interactive_workers, "pid": os.getpid(),
            "limits": {"max_frame_bytes": self.config.max_frame_bytes, "max_header_bytes": p.MAX_HEADER_BYTES,
                       "max_region_s": p.MAX_REGION_S, "max_batch_regions": self.config.max_batch_regions,
                       "max_queued": self.config.max_queued, "result_ttl_s": self.config.result_ttl_s,
                       "progress_timeout_s": self.config.progress_timeout_s,
                       "cancel_timeout_s": self.config.cancel_timeout_s},
        })

    async def _on_presets(self, message: Message, local: bool) -> None:
        listed = [{"name": name, "source": source, "description": read_preset(path, source=source).description}
                  for name, (source, path) in sorted(available_presets().items())]
        await self._reply(message.identity, p.PRESETS, message.request_id, {"presets": listed})

    async def _on_status(self, message: Message, local: bool) -> None:
        wanted = message.header.get("job_ids")
        if wanted is None:  # every job not yet ended
            jobs = [job.summary() for job in self.table.jobs.values() if not job.finished]
        else:
            jobs = [self.table.jobs[i].summary() if i in self.table.jobs else unknown_summary(i) for i in wanted]
        await self._reply(message.identity, p.STATUS, message.request_id, {
            "jobs": jobs, "counts": self.table.counts(), "queued": self.table.waiting,
            "workers": self.pool.describe(), "workers_replaced": self.pool.replaced,
            "cache_entries": len(self.cache), "accepting": self.accepting})

    async def _on_cancel(self, message: Message, local: bool) -> None:
        states = {}
        for job_id in message.header["job_ids"]:
            job = self.table.jobs.get(job_id)
            if job is None:
                states[job_id] = "unknown"
                continue
            if job.state == QUEUED:
                await self._fail(job, "cancelled", "cancelled before it started", state=CANCELLED)
            elif job.state == RUNNING:
                await self._cancel_running(job)
            states[job_id] = "cancelling" if job.state == RUNNING else job.state
        await self._reply(message.identity, p.CANCEL, message.request_id, {"jobs": states})

    async def _on_fetch(self, message: Message, local: bool) -> None:
        job = self.table.jobs.get(message.header["job_id"])
        if job is None:
            raise ProtocolError("unknown_job", f"no job {message.header['job_id']!r} here: it never existed, or its "
                                               f"result was dropped after {self.config.result_ttl_s:g} s; submit it again")
        job.client, job.request_id = message.identity, message.request_id  # later replies go to the new socket
        if job.state == DONE:
            header, buffers = job.result
            await self._reply(job.client, p.RESULT, job.request_id, header, buffers)
        elif job.finished:
            await self._reply(job.client, p.ERROR, job.request_id, job.error)
        else:
            await self._reply(job.client, p.ACCEPTED, job.request_id, {"job_ids": [job.job_id]})

    async def _on_shutdown(self, message: Message, local: bool) -> None:
        if not local:
            raise ProtocolError("forbidden", "only a client on this machine may stop the daemon")
        self.accepting = False  # from this answer on: a job sent after it must not be accepted
        await self._reply(message.identity, p.SHUTDOWN, message.request_id, {"stopping": True})
        self.stopping.set()

    async def _on_transcribe(self, message: Message, local: bool) -> None:
        await self._accept(message, [message.header["region"]], local)

    async def _on_batch(self, message: Message, local: bool) -> None:
        await self._accept(message, message.header["regions"], local)

    async def _accept(self, message: Message, regions: list[dict], local: bool) -> None:
        if not self.accepting:
            raise ProtocolError("shutting_down", "the daemon is stopping and takes no new jobs")
        requested = message.header.get("preset")
        if not local and isinstance(requested, str) and is_preset_path(requested):
            raise ProtocolError("forbidden", "remote clients name a preset or send it inline, not a path")
        preset = resolve_preset(requested)
        tempo = Tempo.from_dict(message.header.get("tempo", {}))
        options = {"priority": message.header.get("priority", p.DEFAULT_PRIORITY[message.kind]),
                   "allow_truncated": message.header.get("allow_truncated", False)}
        jobs = []
        for region in map(dict, regions):  # copies: a region's own tempo is taken out of it
            if "path" in region and not local:
                check_path_allowed(region["path"], self.config.allowed_roots)
            buffers = [message.buffers[region["samples"]["frame"]]] if "samples" in region else []
            if buffers:
                region = {**region, "samples": {**region["samples"], "frame": 0}}
            own_tempo = Tempo.from_dict(region.pop("tempo")) if "tempo" in region else tempo
            job = Job(self.table.new_id(), message.identity, message.request_id, region, buffers,
                      preset.to_dict(), own_tempo.to_dict(), **options)
            job.cache_key = await asyncio.to_thread(self.cache.key, job.region, job.buffers, job.tempo,
                                                    {**job.preset, "allow_truncated": job.allow_truncated})
            jobs.append(job)
        self.table.submit(jobs)
        await self._reply(message.identity, p.ACCEPTED, message.request_id, {"job_ids": [j.job_id for j in jobs]})
        for job in jobs:
            hit = self.cache.get(job.cache_key)
            if hit is not None:
                header, buffers = hit
                header = {**header, "job_id": job.job_id, "cached": True}
                self.table.finish(job, header, buffers)
                await self._reply(job.client, p.RESULT, job.request_id, header, buffers)
        await self._dispatch()
        await self._tell_waiting(jobs)

    async def _tell_waiting(self, jobs: list[Job]) -> None:
        """A `queued` progress for each of `jobs` still waiting: how many jobs run before it."""
        for job in jobs:
            if job.state == QUEUED:
                await self._reply(job.client, p.PROGRESS, job.request_id, {
                    "job_id": job.job_id, "stage": p.QUEUED_STAGE, "fraction": 0.0,
                    "jobs_ahead": self.table.jobs_ahead(job)})

    async def _fail(self, job: Job, code: str, message: str, *, state: str = FAILED) -> None:
        header = p.error_header(code, message, job.job_id)
        self.table.fail(job, header, state=state)
        await self._reply(job.client, p.ERROR, job.request_id, header)

    # Workers ----------------------------------------------------------------

    async def _dispatch(self) -> None:
        for worker in self.pool.idle():
            job = self.table.next_queued(interactive_only=worker.interactive_only)
            if job is None:
                continue
            # Alone, a job may use every core; beside others, one thread each runs ~15 % faster in all
            # than workers fighting over the cores (measured by bridge.bench).
            crowded = bool(self.table.waiting) or self.pool.busy() > 0
            self.table.start(job, worker.identity)
            self.pool.assign(worker, job.job_id)
            header = {"region": job.region, "preset": job.preset, "tempo": job.tempo,
                      "allow_truncated": job.allow_truncated}
            if crowded and self.config.threads_per_worker == 0 and len(self.pool.workers) > 1:
                header["threads"] = 1
            await self._to_worker(worker.identity, p.W_JOB, job.job_id, header, job.buffers)

    async def _to_worker(self, identity: bytes, kind: str, job_id: str = "", header=None, buffers=()) -> None:
        frames = p.encode(kind, job_id, header, buffers, protocol_id=p.WORKER_PROTOCOL_ID)
        await self.backend.send_multipart([identity, *frames], copy=False)

    async def _serve_workers(self) -> None:
        while True:
            frames = await self.backend.recv_multipart(copy=False)
            try:
                await self._from_worker(frames)
            except Exception:  # a loop that dies would leave every job waiting
                log.exception("unexpected failure handling a worker's message")

    async def _from_worker(self, frames) -> None:
        worker = self.pool.heard(frames[0].bytes)
        if worker is None:
            return  # a worker already replaced; its word no longer counts
        try:
            message = p.decode(frames, router=True, protocol_id=p.WORKER_PROTOCOL_ID)
            p.check_worker_message(message)
        except ProtocolError as error:
            await self._lose_worker(worker, "internal", f"its worker sent a message the daemon cannot read "
                                                        f"({error}); the worker was replaced")
            return
        job = self.table.jobs.get(message.request_id) if message.request_id else None
        if job is not None and job.worker != worker.identity:
            job = None  # a late word about a job that has moved on
        if message.kind == p.W_READY:
            worker.ready = True
        elif message.kind == p.W_PROGRESS and job is not None and job.state == RUNNING:
            self.pool.progressed(worker)
            await self._reply(job.client, p.PROGRESS, job.request_id, {"job_id": job.job_id, **message.header})
        elif message.kind in (p.W_RESULT, p.W_ERROR):
            if job is not None and job.state == RUNNING:
                await self._finished(job, message)
            elif not message.request_id:
                log.error("worker %s cannot start: %s", worker.identity.decode(), message.header.get("message"))
            if worker.job_id == message.request_id:
                self.pool.assign(worker, None)
        await self._dispatch()

    async def _finished(self, job: Job, message: Message) -> None:
        if message.kind == p.W_RESULT:
            header = {"job_id": job.job_id, "cached": False, **message.header}
            buffers = [frame.bytes for frame in message.buffers]
            self.table.finish(job, header, buffers)
            self.cache.put(job.cache_key, (header, buffers))
            await self._reply(job.client, p.RESULT, job.request_id, header, buffers)
        else:
            cancelled = message.header["code"] == "cancelled"
            await self._fail(job, message.header["code"], message.header["message"],
                             state=CANCELLED if cancelled else FAILED)

    async def _cancel_running(self, job: Job) -> None:
        """Ask the worker to stop between model runs; a worker that has not within cancel_timeout_s is replaced."""
        if job.cancel_requested:
            return
        job.cancel_requested = True
        await self._to_worker(job.worker, p.W_CANCEL, job.job_id)
        enforcing = asyncio.create_task(self._enforce_cancel(job, job.attempts))
        self.timers.add(enforcing)  # the loop keeps only weak references to tasks
        enforcing.add_done_callback(self.timers.discard)

    async def _enforce_cancel(self, job: Job, attempt: int) -> None:
        await asyncio.sleep(self.config.cancel_timeout_s)
        worker = self.pool.workers.get(job.worker) if job.worker else None
        if job.state == RUNNING and job.attempts == attempt and worker is not None:
            log.warning("worker %s did not stop job %s within %g s of its cancel; replaced", worker.identity.decode(),
                        job.job_id, self.config.cancel_timeout_s)
            await self._lose_worker(worker, "cancelled", "cancelled; its worker was stopped")

    async def _lose_worker(self, worker: WorkerHandle, code: str, message: str) -> None:
        """Kill and replace `worker`, answering its job (if any) with `code`."""
        job = self.table.jobs.get(worker.job_id) if worker.job_id else None
        self.pool.replace(worker)
        if job is not None and job.state == RUNNING:
            await self._fail(job, code, message, state=CANCELLED if code == "cancelled" else FAILED)
        await self._dispatch()

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(p.HEARTBEAT_INTERVAL_S)
            try:
                await self._look_after_workers()
            except Exception:  # a loop that dies would leave hung workers unnoticed
                log.exception("unexpected failure looking after the workers")

    async def _look_after_workers(self) -> None:
        """Heartbeat the workers, replace the dead, hung and stalled (answering their jobs), tell waiting jobs
        where they stand, expire old results."""
        for worker in list(self.pool.workers.values()):
            await self._to_worker(worker.heartbeat_identity, p.W_HEARTBEAT)
        for lost in self.pool.reap():
            worker = lost.worker
            job = self.table.jobs.get(worker.job_id) if worker.job_id else None
            log.warning("worker %s (pid %d) %s; replaced", worker.identity.decode(), worker.pid, lost.reason)
            if job is None or job.state != RUNNING:
                continue
            if job.attempts <= self.config.job_retries:
                self.table.requeue_first(job)
            else:
                await self._fail(job, lost.code, f"the worker running this job {lost.reason} (pid {worker.pid}); "
                                                 f"the daemon replaced it. Other jobs go on.")
        self.table.expire()
        await self._dispatch()
        await self._tell_waiting(self.table.in_state(QUEUED))


def _request_id(frames) -> str:
    try:
        return frames[3].bytes.decode() if len(frames) > 3 else ""
    except UnicodeDecodeError:
        return ""


def _peer_address(frame) -> str | None:
    try:
        return frame.get("Peer-Address")
    except (zmq.ZMQError, AttributeError):
        return None


def _package_version() -> str:
    try:
        return metadata.version("midibridge")
    except metadata.PackageNotFoundError:
        return "unknown"
