"""The daemon's jobs: a bounded queue, and the table of every job by id, finished ones kept for a while.

Plain bookkeeping with no I/O: the daemon's event loop is its only user.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field

from .protocol import ProtocolError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@dataclass
class Job:
    """One region to transcribe, who asked for it, and how it ended."""

    job_id: str
    client: bytes  # the DEALER identity replies go to; a fetch after reconnecting moves it
    request_id: str
    region: dict  # wire form, samples frame renumbered to 0
    buffers: list
    preset: dict
    tempo: dict
    cache_key: str | None = None
    state: str = QUEUED
    worker: bytes | None = None
    attempts: int = 0
    cancel_requested: bool = False
    submitted_s: float = field(default_factory=time.monotonic)
    finished_s: float | None = None
    result: tuple[dict, bytes] | None = None  # (header, SMF bytes)
    error: dict | None = None

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    def summary(self) -> dict:
        return {"job_id": self.job_id, "state": self.state, "attempts": self.attempts,
                "age_s": round(time.monotonic() - self.submitted_s, 3),
                "error": self.error}


class JobTable:
    """Every job by id. At most `max_queued` wait; finished ones are kept `result_ttl_s` for fetching."""

    def __init__(self, *, max_queued: int, result_ttl_s: float):
        self.max_queued = max_queued
        self.result_ttl_s = result_ttl_s
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}"  # ids stay unique across daemon restarts

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def submit(self, jobs: list[Job]) -> None:
        """Queue all of `jobs` or none: a full queue refuses the whole request with `busy`."""
        waiting = len(self.queue)
        if waiting + len(jobs) > self.max_queued:
            raise ProtocolError("busy", f"the queue holds {waiting} of {self.max_queued} jobs; "
                                        f"{len(jobs)} more do not fit. Try again when some have finished.")
        for job in jobs:
            self.jobs[job.job_id] = job
            self.queue.append(job.job_id)

    def requeue_first(self, job: Job) -> None:
        job.state, job.worker = QUEUED, None
        self.queue.appendleft(job.job_id)

    def next_queued(self) -> Job | None:
        while self.queue:
            job = self.jobs.get(self.queue.popleft())
            if job is not None and job.state == QUEUED:
                return job
        return None

    def finish(self, job: Job, header: dict, smf: bytes) -> None:
        job.state, job.result, job.finished_s, job.buffers = DONE, (header, smf), time.monotonic(), []

    def fail(self, job: Job, error: dict, *, state: str = FAILED) -> None:
        job.state, job.error, job.finished_s, job.buffers = state, error, time.monotonic(), []

    def expire(self) -> None:
        """Forget finished jobs older than result_ttl_s."""
        now = time.monotonic()
        stale = [i for i, j in self.jobs.items() if j.finished and now - j.finished_s > self.result_ttl_s]
        for job_id in stale:
            del self.jobs[job_id]

    def counts(self) -> dict:
        counts = dict.fromkeys((QUEUED, RUNNING, DONE, FAILED, CANCELLED), 0)
        for job in self.jobs.values():
            counts[job.state] += 1
        return counts
