"""The daemon's worker side: hands queued jobs to idle workers, passes on what workers say, and replaces those
that die, hang, stall or garble, answering their jobs.

Every job that reaches a worker ends with one answer: its result or error;
`worker_died`, `worker_hung` or `internal` when its worker is lost (or it
runs again, with `job_retries`); `cancelled` within `cancel_timeout_s` of a
cancel, by force if need be.
"""

from __future__ import annotations

import asyncio
import logging

import zmq.asyncio

from midibridge.model.vocabulary import Code, JobState

from . import protocol as p
from .cache import ResultCache
from .headers import check_worker_message
from .jobs import Job, JobTable
from .outbox import Outbox
from .protocol import Message, ProtocolError
from .worker_pool import WorkerHandle, WorkerPool

log = logging.getLogger("midibridge.daemon")


class Supervisor:
    def __init__(self, *, config, socket: zmq.asyncio.Socket, pool: WorkerPool, table: JobTable,
                 cache: ResultCache, outbox: Outbox):
        self.config = config
        self.socket = socket
        self.pool = pool
        self.table = table
        self.cache = cache
        self.outbox = outbox
        self.timers: set[asyncio.Task] = set()

    async def dispatch(self) -> None:
        """Give each idle worker the next job it may take: interactive ones first, batch ones on general workers."""
        for worker in self.pool.idle():
            job = self.table.next_queued(interactive_only=worker.interactive_only)
            if job is None:
                continue
            # Alone, a job may use every core; beside others, one thread each runs ~15 % faster in all
            # than workers fighting over the cores (measured by benchmarks.daemon).
            crowded = bool(self.table.waiting) or self.pool.busy() > 0
            self.table.start(job, worker.identity)
            self.pool.assign(worker, job.job_id)
            header = {"region": job.region, "preset": job.preset, "tempo": job.tempo,
                      "allow_truncated": job.allow_truncated}
            if crowded and self.config.threads_per_worker == 0 and len(self.pool.workers) > 1:
                header["threads"] = 1
            await self._send(worker.identity, p.W_JOB, job.job_id, header, job.buffers)

    async def heard(self, frames) -> None:
        """One message from a worker (or its heartbeat socket)."""
        worker = self.pool.heard(frames[0].bytes)
        if worker is None:
            return  # a worker already replaced; its word no longer counts
        try:
            message = p.decode(frames, router=True, protocol_id=p.WORKER_PROTOCOL_ID)
            check_worker_message(message)
        except ProtocolError as error:
            await self._lose(worker, Code.INTERNAL, f"its worker sent a message the daemon cannot read ({error}); "
                                                    f"the worker was replaced")
            return
        job = self.table.jobs.get(message.request_id) if message.request_id else None
        if job is not None and job.worker != worker.identity:
            job = None  # a late word about a job that has moved on
        if message.kind == p.W_READY:
            self.pool.mark_ready(worker)
        elif message.kind == p.W_PROGRESS and job is not None and job.state == JobState.RUNNING:
            self.pool.progressed(worker)
            # The daemon's fields last: a worker's header cannot rename the job (nor, below, claim a cached answer).
            await self.outbox.to_job(job, p.PROGRESS, {**message.header, "job_id": job.job_id})
        elif message.kind in (p.W_RESULT, p.W_ERROR):
            if job is not None and job.state == JobState.RUNNING:
                await self._finished(job, message)
            elif not message.request_id:
                log.error("worker %s cannot start: %s", worker.identity.decode(), message.header.get("message"))
            if worker.job_id == message.request_id:
                self.pool.assign(worker, None)
        await self.dispatch()

    async def cancel(self, job: Job) -> None:
        """Ask the worker to stop between model runs; a worker that has not within cancel_timeout_s is replaced."""
        if job.cancel_requested:
            return
        job.cancel_requested = True
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
            if job is None or job.state != JobState.RUNNING:
                continue
            if job.attempts <= self.config.job_retries:
                self.table.requeue_first(job)
            else:
                await self.outbox.fail(job, lost.code, f"the worker running this job {lost.reason} (pid "
                                                       f"{worker.pid}); the daemon replaced it. Other jobs go on.")
        self.table.expire()
        await self.dispatch()
        await self.outbox.tell_waiting(self.table.in_state(JobState.QUEUED))

    async def _send(self, identity: bytes, kind: str, job_id: str = "", header: p.Header | None = None,
                    buffers=()) -> None:
        frames = p.encode(kind, job_id, header, buffers, protocol_id=p.WORKER_PROTOCOL_ID)
        await self.socket.send_multipart([identity, *frames], copy=False)

    async def _finished(self, job: Job, message: Message) -> None:
        if message.kind == p.W_RESULT:
            header = {**message.header, "job_id": job.job_id, "cached": False}
            buffers = [frame.bytes for frame in message.buffers]
            self.cache.put(job.cache_key, (header, buffers))
            await self.outbox.finish(job, header, buffers)
        else:
            cancelled = message.header["code"] == Code.CANCELLED
            await self.outbox.fail(job, message.header["code"], message.header["message"],
                                   state=JobState.CANCELLED if cancelled else JobState.FAILED)

    async def _enforce_cancel(self, job: Job, attempt: int) -> None:
        await asyncio.sleep(self.config.cancel_timeout_s)
        worker = self.pool.workers.get(job.worker) if job.worker else None
        if job.state == JobState.RUNNING and job.attempts == attempt and worker is not None:
            log.warning("worker %s did not stop job %s within %g s of its cancel; replaced", worker.identity.decode(),
                        job.job_id, self.config.cancel_timeout_s)
            await self._lose(worker, Code.CANCELLED, "cancelled; its worker was stopped")

    async def _lose(self, worker: WorkerHandle, code: Code, message: str) -> None:
        """Kill and replace `worker`, answering its job (if any) with `code`."""
        job = self.table.jobs.get(worker.job_id) if worker.job_id else None
        self.pool.replace(worker)
        if job is not None and job.state == JobState.RUNNING:
            state = JobState.CANCELLED if code == Code.CANCELLED else JobState.FAILED
            await self.outbox.fail(job, code, message, state=state)
        await self.dispatch()
