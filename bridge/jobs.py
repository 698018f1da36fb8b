"""The daemon's jobs: bounded queues by priority, and the table of every job by id, finished ones kept for a while.

Plain bookkeeping with no I/O: the daemon's event loop is its only user, and
every change of a job's state goes through JobTable.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from midibridge.model.vocabulary import Code, JobState, Priority

from .headers import ErrorHeader, JobSummary, WireRegion
from .protocol import Header, ProtocolError

ENDED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
HELD = (JobState.QUEUED, JobState.RUNNING, *ENDED)  # the states a job is in (`unknown`, `cancelling` are only said)


@dataclass
class Job:
    """One region to transcribe, who asked for it, and how it ended."""

    job_id: str
    client: bytes  # the DEALER identity replies go to; a fetch after reconnecting moves it
    request_id: str
    region: WireRegion  # samples frame renumbered to 0, its tempo taken out
    buffers: list
    preset: dict[str, Any]  # model.presets.Preset's dict form
    tempo: dict[str, Any]  # model.clip.Tempo's
    priority: Priority = Priority.INTERACTIVE
    allow_truncated: bool = False
    cache_key: str | None = None
    state: JobState = JobState.QUEUED
    worker: bytes | None = None
    attempts: int = 0
    cancel_requested: bool = False
    submitted_s: float = field(default_factory=time.monotonic)
    finished_s: float | None = None
    result: tuple[Header, list] | None = None  # (header, buffers: the SMF and the clip's JSON)
    error: ErrorHeader | None = None

    @property
    def finished(self) -> bool:
        return self.state in ENDED

    def summary(self) -> JobSummary:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "priority": self.priority,
            "attempts": self.attempts,
            "age_s": round(time.monotonic() - self.submitted_s, 3),
            "error": self.error,
        }


def unknown_summary(job_id: str) -> JobSummary:
    """What `status` says of a job id it does not know: the same fields as a known job's."""
    return {"job_id": job_id, "state": JobState.UNKNOWN, "priority": None, "attempts": 0, "age_s": None, "error": None}


class JobTable:
    """Every job by id. At most `max_queued` wait; finished ones are kept `result_ttl_s` for fetching."""

    def __init__(self, *, max_queued: int, result_ttl_s: float):
        self.max_queued = max_queued
        self.result_ttl_s = result_ttl_s
        self.jobs: dict[str, Job] = {}
        self.queues: dict[Priority, deque[str]] = {priority: deque() for priority in Priority}
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}"  # ids stay unique across daemon restarts

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    @property
    def waiting(self) -> int:
        return sum(map(len, self.queues.values()))

    def submit(self, jobs: list[Job]) -> None:
        """Queue all of `jobs` or none: a full queue refuses the whole request with `busy`."""
        if self.waiting + len(jobs) > self.max_queued:
            raise ProtocolError(
                Code.BUSY,
                f"the queue holds {self.waiting} of {self.max_queued} jobs; "
                f"{len(jobs)} more do not fit. Try again when some have finished.",
            )
        for job in jobs:
            self.jobs[job.job_id] = job
            self.queues[job.priority].append(job.job_id)

    def next_queued(self, *, interactive_only: bool = False) -> Job | None:
        """The job to run next: interactive ones first, in order."""
        for priority in (Priority.INTERACTIVE,) if interactive_only else Priority:
            queue = self.queues[priority]
            while queue:
                job = self.jobs.get(queue.popleft())
                if job is not None and job.state == JobState.QUEUED:
                    return job
        return None

    def jobs_ahead(self, job: Job) -> int:
        """How many waiting jobs run before `job`: every interactive one before it, and for a batch job every
        interactive one too."""
        before = self.queues[job.priority].index(job.job_id)
        return before + (len(self.queues[Priority.INTERACTIVE]) if job.priority == Priority.BATCH else 0)

    def in_state(self, state: JobState) -> list[Job]:
        return [job for job in self.jobs.values() if job.state == state]

    def start(self, job: Job, worker: bytes) -> None:
        job.state, job.worker, job.cancel_requested = JobState.RUNNING, worker, False
        job.attempts += 1

    def reattach(self, job: Job, client: bytes, request_id: str) -> None:
        """The job's later replies go to `client`, under `request_id` (a fetch from a new socket)."""
        job.client, job.request_id = client, request_id

    def requeue_first(self, job: Job) -> None:
        job.state, job.worker = JobState.QUEUED, None
        self.queues[job.priority].appendleft(job.job_id)

    def finish(self, job: Job, header: Header, buffers: list) -> None:
        job.state, job.result, job.finished_s, job.buffers = JobState.DONE, (header, buffers), time.monotonic(), []

    def fail(self, job: Job, error: ErrorHeader, *, state: JobState = JobState.FAILED) -> None:
        job.state, job.error, job.finished_s, job.buffers = state, error, time.monotonic(), []
        if job.job_id in self.queues[job.priority]:
            self.queues[job.priority].remove(job.job_id)

    def expire(self) -> None:
        """Forget finished jobs older than result_ttl_s."""
        now = time.monotonic()
        stale = [
            i
            for i, j in self.jobs.items()
            if j.finished and j.finished_s is not None and now - j.finished_s > self.result_ttl_s
        ]
        for job_id in stale:
            del self.jobs[job_id]

    def counts(self) -> dict:
        counts = dict.fromkeys(HELD, 0)
        for job in self.jobs.values():
            counts[job.state] += 1
        return counts
