"""What the daemon sends its clients: replies to requests, and each job's progress and end.

A job's replies go to whichever client and request the job belongs to now (a
fetch after reconnecting moves it); ending a job here also ends it in the
JobTable, so that every job gets exactly one `result` or `error`.
"""

from __future__ import annotations

import zmq.asyncio

from midibridge.model.vocabulary import JobState, Stage

from . import protocol as p
from .jobs import Job, JobTable


class Outbox:
    def __init__(self, socket: zmq.asyncio.Socket, table: JobTable):
        self.socket = socket
        self.table = table

    async def reply(self, identity: bytes, kind: str, request_id: str, header: p.Header, buffers=()) -> None:
        await self.socket.send_multipart([identity, *p.encode(kind, request_id, header, buffers)], copy=False)

    async def to_job(self, job: Job, kind: str, header: p.Header, buffers=()) -> None:
        await self.reply(job.client, kind, job.request_id, header, buffers)

    async def finish(self, job: Job, header: p.Header, buffers: list) -> None:
        self.table.finish(job, header, buffers)
        await self.to_job(job, p.RESULT, header, buffers)

    async def fail(self, job: Job, code: str, message: str, *, state: JobState = JobState.FAILED) -> None:
        header = p.error_header(code, message, job.job_id)
        self.table.fail(job, header, state=state)
        await self.to_job(job, p.ERROR, header)

    async def tell_waiting(self, jobs: list[Job]) -> None:
        """A `queued` progress for each of `jobs` still waiting: how many jobs run before it."""
        for job in jobs:
            if job.state == JobState.QUEUED:
                await self.to_job(
                    job,
                    p.PROGRESS,
                    {
                        "job_id": job.job_id,
                        "stage": Stage.QUEUED,
                        "fraction": 0.0,
                        "jobs_ahead": self.table.jobs_ahead(job),
                    },
                )
