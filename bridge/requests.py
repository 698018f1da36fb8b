"""The daemon's client side: every request checked, then answered at once or turned into jobs.

hello, status, presets, cancel, fetch and shutdown are answered here and now;
stream goes to bridge.streams; transcribe and batch become jobs: queued whole or refused whole, answered from
the cache when the same audio, region, preset and weights were done before, or
handed on to the supervisor's workers.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import zmq

from midibridge.model.clip import Tempo
from midibridge.model.engines import DEFAULT_ENGINE, ENGINES
from midibridge.model.errors import MidibridgeError
from midibridge.model.presets import available_presets, is_preset_path, list_presets, resolve_preset
from midibridge.model.vocabulary import Code, JobState, Priority

from . import protocol as p
from .cache import ResultCache
from .headers import WireRegion, check_request
from .jobs import Job, JobTable, unknown_summary
from .outbox import Outbox
from .protocol import Message, ProtocolError
from .security import check_path_allowed, is_local_peer
from .streams import Streams
from .supervisor import Supervisor
from .worker_pool import WorkerPool


class Requests:
    """Handles client requests for a daemon: `lifecycle` says whether it accepts jobs and stops it."""

    def __init__(
        self,
        *,
        config,
        lifecycle,
        table: JobTable,
        cache: ResultCache,
        pool: WorkerPool,
        outbox: Outbox,
        supervisor: Supervisor,
    ):
        self.config = config
        self.lifecycle = lifecycle
        self.table = table
        self.cache = cache
        self.pool = pool
        self.outbox = outbox
        self.supervisor = supervisor
        self.streams = Streams(outbox)
        self.ipc = config.endpoint.startswith("ipc://")  # only this machine can reach it (its Peer-Address is no IP)

    async def handle(self, frames) -> None:
        """Answer one client message: an error reply for anything wrong with it, never an exception."""
        identity = frames[0].bytes
        try:
            message = p.decode(frames, router=True)
            check_request(message, max_batch_regions=self.config.max_batch_regions)
        except ProtocolError as error:
            await self.outbox.reply(identity, p.ERROR, request_id(frames), p.error_header(error.code, str(error)))
            return
        local = self.ipc or is_local_peer(_peer_address(frames[1]))
        handler = getattr(self, f"_on_{message.kind}")
        try:
            await handler(message, local)
        except MidibridgeError as error:
            await self.outbox.reply(identity, p.ERROR, message.request_id, p.error_header(error.code, str(error)))

    async def _answer(self, message: Message, header: p.Header) -> None:
        await self.outbox.reply(message.identity, message.kind, message.request_id, header)

    async def _on_hello(self, message: Message, local: bool) -> None:
        config, default = self.config, ENGINES[DEFAULT_ENGINE]
        await self._answer(
            message,
            {
                "protocol": p.PROTOCOL_ID.decode(),
                "package_version": p.package_version(),
                # `model`: the default engine's weights, as protocol 2.0 said them; `engines` (2.1): every engine's
                "model": {
                    "name": f"{DEFAULT_ENGINE} {default.weights.WEIGHTS_FILE_NAME}",
                    "sha256": default.weights_sha256,
                },
                "engines": {
                    name: {
                        "description": kind.description,
                        "weights": kind.weights.WEIGHTS_FILE_NAME,
                        "sha256": kind.weights_sha256,
                    }
                    for name, kind in ENGINES.items()
                },
                "presets": sorted(available_presets()),
                "workers": config.workers,
                "interactive_workers": config.interactive_workers,
                "pid": os.getpid(),
                "limits": {
                    "max_frame_bytes": config.max_frame_bytes,
                    "max_header_bytes": p.MAX_HEADER_BYTES,
                    "max_region_s": p.MAX_REGION_S,
                    "max_batch_regions": config.max_batch_regions,
                    "max_queued": config.max_queued,
                    "result_ttl_s": config.result_ttl_s,
                    "progress_timeout_s": config.progress_timeout_s,
                    "cancel_timeout_s": config.cancel_timeout_s,
                },
            },
        )

    async def _on_presets(self, message: Message, local: bool) -> None:
        await self._answer(message, {"presets": [preset.to_dict() for preset in list_presets()]})

    async def _on_status(self, message: Message, local: bool) -> None:
        wanted = message.header.get("job_ids")
        if wanted is None:  # every job not yet ended
            jobs = [job.summary() for job in self.table.jobs.values() if not job.finished]
        else:
            jobs = [self.table.jobs[i].summary() if i in self.table.jobs else unknown_summary(i) for i in wanted]
        await self._answer(
            message,
            {
                "jobs": jobs,
                "counts": self.table.counts(),
                "queued": self.table.waiting,
                "workers": self.pool.describe(),
                "workers_replaced": self.pool.replaced,
                "cache_entries": len(self.cache),
                "accepting": self.lifecycle.accepting,
            },
        )

    async def _on_cancel(self, message: Message, local: bool) -> None:
        states = {}
        for job_id in message.header["job_ids"]:
            job = self.table.jobs.get(job_id)
            if job is None:
                states[job_id] = JobState.UNKNOWN
                continue
            if job.state == JobState.QUEUED:
                await self.outbox.fail(job, Code.CANCELLED, "cancelled before it started", state=JobState.CANCELLED)
            elif job.state == JobState.RUNNING:
                await self.supervisor.cancel(job)
            states[job_id] = JobState.CANCELLING if job.state == JobState.RUNNING else job.state
        await self._answer(message, {"jobs": states})

    async def _on_fetch(self, message: Message, local: bool) -> None:
        job = self.table.jobs.get(message.header["job_id"])
        if job is None:
            raise ProtocolError(
                Code.UNKNOWN_JOB,
                f"no job {message.header['job_id']!r} here: it never existed, or its "
                f"result was dropped after {self.config.result_ttl_s:g} s; submit it again",
            )
        self.table.reattach(job, message.identity, message.request_id)  # later replies go to the new socket
        if job.state == JobState.DONE and job.result is not None:
            header, buffers = job.result
            await self.outbox.to_job(job, p.RESULT, header, buffers)
        elif job.finished and job.error is not None:
            await self.outbox.to_job(job, p.ERROR, job.error)
        else:
            await self.outbox.to_job(job, p.ACCEPTED, {"job_ids": [job.job_id]})

    async def _on_shutdown(self, message: Message, local: bool) -> None:
        if not local:
            raise ProtocolError(Code.FORBIDDEN, "only a client on this machine may stop the daemon")
        self.lifecycle.accepting = False  # from this answer on: a job sent after it must not be accepted
        await self._answer(message, {"stopping": True})
        self.lifecycle.stopping.set()

    async def _on_stream(self, message: Message, local: bool) -> None:
        if not self.lifecycle.accepting and message.header["action"] == "open":
            raise ProtocolError(Code.SHUTTING_DOWN, "the daemon is stopping and opens no new streams")
        await self.streams.handle(message, local=local)

    async def _on_transcribe(self, message: Message, local: bool) -> None:
        await self._accept(message, [message.header["region"]], local)

    async def _on_batch(self, message: Message, local: bool) -> None:
        await self._accept(message, message.header["regions"], local)

    async def _accept(self, message: Message, regions: list[WireRegion], local: bool) -> None:
        if not self.lifecycle.accepting:
            raise ProtocolError(Code.SHUTTING_DOWN, "the daemon is stopping and takes no new jobs")
        if self.supervisor.failure is not None:  # a private daemon whose workers cannot start
            raise self.supervisor.failure
        requested = message.header.get("preset")
        if not local and isinstance(requested, str) and is_preset_path(requested):
            raise ProtocolError(Code.FORBIDDEN, "remote clients name a preset or send it inline, not a path")
        preset = resolve_preset(requested).to_dict()
        jobs = [await self._job(message, region, preset, local) for region in regions]
        self.table.submit(jobs)
        await self.outbox.reply(
            message.identity, p.ACCEPTED, message.request_id, {"job_ids": [job.job_id for job in jobs]}
        )
        for job in jobs:
            hit = self.cache.get(job.cache_key)
            if hit is not None:
                header, buffers = hit
                await self.outbox.finish(job, {**header, "job_id": job.job_id, "cached": True}, buffers)
        await self.supervisor.dispatch()
        await self.outbox.tell_waiting(jobs)

    async def _job(self, message: Message, region: WireRegion, preset: dict[str, Any], local: bool) -> Job:
        """One region of a request as a job, checked (tempo, allowed paths) and keyed for the cache."""
        if "path" in region and not local:
            check_path_allowed(region["path"], self.config.allowed_roots)
        region = region.copy()  # its own tempo is taken out of it
        buffers = [message.buffers[region["samples"]["frame"]]] if "samples" in region else []
        if buffers:
            region["samples"] = {**region["samples"], "frame": 0}
        tempo = Tempo.from_dict(region.pop("tempo") if "tempo" in region else message.header.get("tempo", {}))
        job = Job(
            self.table.new_id(),
            message.identity,
            message.request_id,
            region,
            buffers,
            preset,
            tempo.to_dict(),
            priority=Priority(message.header.get("priority", p.DEFAULT_PRIORITY[message.kind])),
            allow_truncated=message.header.get("allow_truncated", False),
        )
        job.cache_key = await asyncio.to_thread(
            self.cache.key, job.region, job.buffers, job.tempo, job.preset, allow_truncated=job.allow_truncated
        )
        return job


def request_id(frames) -> str:
    """The request id of raw frames from a ROUTER (identity first), or "" when there is none to be read."""
    try:
        return frames[3].bytes.decode() if len(frames) > 3 else ""
    except UnicodeDecodeError:
        return ""


def _peer_address(frame) -> str | None:
    try:
        return frame.get("Peer-Address")
    except (zmq.ZMQError, AttributeError):
        return None
