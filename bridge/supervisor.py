"""The daemon's worker side: hands queued jobs to idle workers, passes on what workers say, and replaces those
that die, hang, stall or garble, answering their jobs.

Every job that reaches a worker ends with one answer: its result or error;
`worker_died`, `worker_hung` or `internal` when its worker is lost (or it
runs again, with `job_retries`); `cancelled` within `cancel_timeout_s` of a
cancel, by force if need be. With `ship_audio` a job's file goes to its
worker with the job, for workers on nodes that may not see it.

A worker that cannot start (an engine does not load, its midibridge is
another version, it dies before it is ready) is logged and replaced. A
private daemon's (`serve --private`: one batch's, on a cluster) ends its
batch instead: every job fails `cluster_mismatch` and so does any new
request, as no region of it would run alike; and when no worker at all has
been ready for START_TIMEOUT_S its waiting jobs fail `cluster_unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import zmq.asyncio

from midibridge.model.vocabulary import Code, JobState

from . import protocol as p
from .cache import ResultCache
from .headers import WireRegion, check_worker_message
from .jobs import Job, JobTable
from .outbox import Outbox
from .protocol import BridgeError, Message, ProtocolError
from .worker_pool import Lost, WorkerHandle, WorkerPool

START_TIMEOUT_S = 120.0  # how long a private daemon's jobs wait for a first ready worker
START_FAILURES = 3  # a private daemon gives up after more workers than this, per ready one, died before ready
log = logging.getLogger("midibridge.daemon")


class Supervisor:
    def __init__(
        self,
        *,
        config,
        socket: zmq.asyncio.Socket,
        pool: WorkerPool,
        table: JobTable,
        cache: ResultCache,
        outbox: Outbox,
    ):
        self.config = config
        self.socket = socket
        self.pool = pool
        self.table = table
        self.cache = cache
        self.outbox = outbox
        self.timers: set[asyncio.Task] = set()
        self.failure: BridgeError | None = None  # why a private daemon's workers cannot start: every job's answer
        self.start_failures = 0
        self.unserved_since: float | None = None  # since when a private daemon's jobs wait with no worker ready

    async def dispatch(self) -> None:
        """Give each idle worker the next job it may take: interactive ones first, batch ones on general workers."""
        for worker in self.pool.idle():
            if worker.job_id is not None or worker.identity not in self.pool.workers:
                continue  # given a job, or lost, while a file was read for another
            job = self.table.next_queued(interactive_only=worker.interactive_only)
            if job is None:
                continue
            # Alone, a job may use every core; beside others, one thread each runs ~15 % faster in all
            # than workers fighting over the cores (measured by benchmarks.daemon).
            crowded = bool(self.table.waiting) or self.pool.busy() > 0
            self.table.start(job, worker.identity)
            self.pool.assign(worker, job.job_id)
            header = {
                "region": job.region,
                "preset": job.preset,
                "tempo": job.tempo,
                "allow_truncated": job.allow_truncated,
            }
            if crowded and self.config.threads_per_worker == 0 and len(self.pool.workers) > 1:
                header["threads"] = 1
            buffers = job.buffers
            if self.config.ship_audio and "path" in job.region:
                attempt = job.attempts
                shipped = await asyncio.to_thread(_file_bytes, job.region["path"])
                if job.state != JobState.RUNNING or job.attempts != attempt:
                    continue  # its worker was lost meanwhile: it is answered, or queued again
                if shipped is not None:  # else the worker tries the path, and says why it cannot read it
                    header["shipped"], buffers = True, [shipped]
            await self._send(worker.identity, p.W_JOB, job.job_id, header, buffers)

    async def heard(self, frames) -> None:
        """One message from a worker (or its heartbeat socket)."""
        worker = self.pool.heard(frames[0].bytes)
        if worker is None:
            return  # a worker already replaced; its word no longer counts
        try:
            message = p.decode(frames, router=True, protocol_id=p.WORKER_PROTOCOL_ID)
            check_worker_message(message)
        except ProtocolError as error:
            await self._lose(
                worker,
                Code.INTERNAL,
                f"its worker sent a message the daemon cannot read ({error}); the worker was replaced",
            )
            return
        job = self.table.jobs.get(message.request_id) if message.request_id else None
        if job is not None and job.worker != worker.identity:
            job = None  # a late word about a job that has moved on
        if message.kind == p.W_READY:
            await self._ready(worker, message.header)
        elif message.kind == p.W_PROGRESS and job is not None and job.state == JobState.RUNNING:
            self.pool.progressed(worker)
            # The daemon's fields last: a worker's header cannot rename the job (nor, below, claim a cached answer).
            await self.outbox.to_job(job, p.PROGRESS, {**message.header, "job_id": job.job_id})
        elif message.kind in (p.W_RESULT, p.W_ERROR):
            if job is not None and job.state == JobState.RUNNING:
                await self._finished(job, message, worker)
            elif not message.request_id:  # it exits: the pool replaces it
                await self._cannot_start(worker, message.header["message"])
            if worker.job_id == message.request_id:
                self.pool.assign(worker, None)
        await self.dispatch()

    async def _ready(self, worker: WorkerHandle, header: p.Header) -> None:
        if header["package_version"] != p.package_version():
            await self._cannot_start(
                worker,
                f"node {header['node']} runs midibridge {header['package_version']}, "
                f"this machine {p.package_version()}: install the same version on "
                f"every node, so every region is transcribed alike",
            )
            self.pool.replace(worker)
        else:
            self.pool.mark_ready(worker, node=header["node"])

    async def _cannot_start(self, worker: WorkerHandle, why: str) -> None:
        if not self.config.private:
            log.error("worker %s cannot start: %s", worker.identity.decode(), why)
        elif self.failure is None:
            self.failure = BridgeError(Code.CLUSTER_MISMATCH, why)
            for job in [*self.table.in_state(JobState.QUEUED), *self.table.in_state(JobState.RUNNING)]:
                await self.outbox.fail(job, self.failure.code, why)

    async def cancel(self, job: Job) -> None:
        """Ask the worker to stop between model runs; a worker that has not within cancel_timeout_s is replaced."""
        if job.cancel_requested:
            return
        job.cancel_requested = True
        if job.worker is not None:  # a queued job has no worker to tell; it leaves the queue as it is cancelled
            await self._send(job.worker, p.W_CANCEL, job.job_id)
        enforcing = asyncio.create_task(self._enforce_cancel(job, job.attempts))
        self.timers.add(enforcing)  # the loop keeps only weak references to tasks
        enforcing.add_done_callback(self.timers.discard)

    async def look_after_workers(self) -> None:
        """Heartbeat the workers, replace the dead, hung and stalled (answering their jobs), tell waiting jobs
        where they stand, expire old results."""
        for worker in list(self.pool.workers.values()):
            await self._send(worker.heartbeat_identity, p.W_HEARTBEAT)
        for lost in self.pool.reap():
            worker = lost.worker
            job = self.table.jobs.get(worker.job_id) if worker.job_id else None
            log.warning("worker %s (pid %s) %s; replaced", worker.identity.decode(), worker.pid, lost.reason)
            if not worker.ready and lost.code == Code.WORKER_DIED:
                await self._died_starting(lost)
            if job is None or job.state != JobState.RUNNING:
                continue
            if job.attempts <= self.config.job_retries:
                log.warning(
                    "lost the worker running %s (%s); it runs again on another (try %d of %d)",
                    _region_name(job.region),
                    lost.reason,
                    job.attempts + 1,
                    self.config.job_retries + 1,
                )
                self.table.requeue_first(job)
            else:
                await self.outbox.fail(
                    job,
                    lost.code,
                    f"the worker running this job {lost.reason} (pid "
                    f"{worker.pid}); the daemon replaced it. Other jobs go on.",
                )
        if self.config.private:
            await self._give_up_waiting()
        self.table.expire()
        await self.dispatch()
        await self.outbox.tell_waiting(self.table.in_state(JobState.QUEUED))

    async def _died_starting(self, lost: Lost) -> None:
        self.start_failures += 1
        ready = sum(worker.ready for worker in self.pool.workers.values())
        if self.config.private and self.start_failures > START_FAILURES * max(ready, 1):
            await self._cannot_start(
                lost.worker,
                f"midibridge workers keep failing to start on the cluster: "
                f"{lost.reason}. Install midibridge[cluster] and its model "
                f"(`midibridge model install`) on every node",
            )

    async def _give_up_waiting(self) -> None:
        """A private daemon's queued jobs fail cluster_unavailable after START_TIMEOUT_S without a ready worker."""
        if not self.table.waiting or any(worker.ready for worker in self.pool.workers.values()):
            self.unserved_since = None
            return
        now = time.monotonic()
        self.unserved_since = self.unserved_since or now
        if now - self.unserved_since < START_TIMEOUT_S:
            return
        for job in self.table.in_state(JobState.QUEUED):
            await self.outbox.fail(
                job,
                Code.CLUSTER_UNAVAILABLE,
                f"no midibridge worker could start on the cluster "
                f"within {START_TIMEOUT_S:g} s (every node that had one is gone, or its CPU slots "
                f"are taken). Rerun the batch into the same directory when the cluster has room: "
                f"the regions that finished are kept",
            )

    async def _send(
        self, identity: bytes, kind: str, job_id: str = "", header: p.Header | None = None, buffers=()
    ) -> None:
        frames = p.encode(kind, job_id, header, buffers, protocol_id=p.WORKER_PROTOCOL_ID)
        await self.socket.send_multipart([identity, *frames], copy=False)

    async def _finished(self, job: Job, message: Message, worker: WorkerHandle) -> None:
        if message.kind == p.W_RESULT:
            header = {**message.header, "job_id": job.job_id, "cached": False}
            buffers = [frame.bytes for frame in message.buffers]
            self.cache.put(job.cache_key, (header, buffers))
            await self.outbox.finish(job, header, buffers)
            return
        code, said = message.header["code"], message.header["message"]
        if code == Code.AUDIO_NOT_FOUND and self._unseen_there(job):
            said += (
                f" (read on node {worker.node}, which does not see the file this machine sees: every node must "
                f"see it at the same path, or use --ship-audio to send it from here)"
            )
        await self.outbox.fail(job, code, said, state=JobState.CANCELLED if code == Code.CANCELLED else JobState.FAILED)

    def _unseen_there(self, job: Job) -> bool:
        """A file this machine sees that a worker on the cluster did not find: its node does not share the path."""
        return (
            bool(self.config.cluster)
            and not self.config.ship_audio
            and "path" in job.region
            and os.path.exists(job.region["path"])
        )

    async def _enforce_cancel(self, job: Job, attempt: int) -> None:
        await asyncio.sleep(self.config.cancel_timeout_s)
        worker = self.pool.workers.get(job.worker) if job.worker else None
        if job.state == JobState.RUNNING and job.attempts == attempt and worker is not None:
            log.warning(
                "worker %s did not stop job %s within %g s of its cancel; replaced",
                worker.identity.decode(),
                job.job_id,
                self.config.cancel_timeout_s,
            )
            await self._lose(worker, Code.CANCELLED, "cancelled; its worker was stopped")

    async def _lose(self, worker: WorkerHandle, code: Code, message: str) -> None:
        """Kill and replace `worker`, answering its job (if any) with `code`."""
        job = self.table.jobs.get(worker.job_id) if worker.job_id else None
        self.pool.replace(worker)
        if job is not None and job.state == JobState.RUNNING:
            state = JobState.CANCELLED if code == Code.CANCELLED else JobState.FAILED
            await self.outbox.fail(job, code, message, state=state)
        await self.dispatch()


def _file_bytes(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _region_name(region: WireRegion) -> str:
    """A job's region for the log: its file (or inline samples) and, past its start, where it starts."""
    source, start_s = region.get("path", "inline samples"), region.get("start_s", 0.0)
    return f"{source} from {start_s:g} s" if start_s else source
