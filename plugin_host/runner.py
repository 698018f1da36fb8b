"""Where transcription runs for the host side: three backends, each an object with one method, `run(jobs)`.

    InProcess(model_path=, threads=)   this process (the only place plugin_host loads the model's heavy parts)
    Daemon(priority=, endpoint=)       the daemon (started when none serves the default endpoint)
    Cluster(address=, ship_audio=)     a Ray cluster, through a private daemon whose workers are actors there

Every backend gives RegionResults (plugin_host.results) in the order the
jobs finish, a region's error in its result, so a batch isolates its
failures the same way wherever it runs; an error about the whole run is
raised. The same jobs give the same clips and MIDI files on every backend.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Protocol

from midibridge.bridge import discovery
from midibridge.model.clip import Tempo
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, Priority

from .results import ClientError, Progress, ProgressCallback, RegionResult


@dataclass(frozen=True)
class Job:
    """One region to transcribe, at the host's tempo where it sits. What applies to every job of a run (the preset,
    allow_truncated) is an option of `run`, as it is of a request on the wire."""

    region: Region
    tempo: Tempo = Tempo()


class Backend(Protocol):
    @property
    def where(self) -> str:
        """Where it runs, for people: "in-process", "daemon", "on the Ray cluster at HOST:PORT"."""
        ...

    def run(
        self,
        jobs: list[Job],
        *,
        preset: str | None = None,
        allow_truncated: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Generator[RegionResult, None, None]:
        """Transcribe `jobs` with `preset` (a name or a preset file; None: the default); `allow_truncated`: see
        model.pipeline.Transcriber.transcribe. Closing the iterator early stops what still runs."""
        ...


def choose(*, daemon: bool | None, priority: Priority = Priority.INTERACTIVE) -> InProcess | Daemon:
    """Through the daemon (its jobs at `priority`) or in this process: as asked, else the daemon when one runs."""
    if daemon is None:
        daemon = discovery.read_discovery() is not None
    return Daemon(priority=priority) if daemon else InProcess()


@dataclass(frozen=True, kw_only=True)
class InProcess:
    """In this process: the model loaded here, from `model_path` (None: where it is installed), on `threads`
    onnxruntime threads (0: one per core)."""

    model_path: str | None = None
    threads: int = 0

    @property
    def where(self) -> str:
        return "in-process"

    def run(
        self,
        jobs: list[Job],
        *,
        preset: str | None = None,
        allow_truncated: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Generator[RegionResult, None, None]:
        from midibridge.model.engines import load_engine
        from midibridge.model.presets import resolve_preset

        chosen = resolve_preset(preset)  # a bad preset stops everything, as the daemon refuses the whole request
        # Its engine loads first (missing weights stop everything too, before any region runs): its onnxruntime
        # sessions build, without the GIL, while the rest of the pipeline imports (a 10 s convert 25 ms sooner).
        engine = load_engine(chosen.engine, model_path=self.model_path, threads=self.threads)
        from midibridge.model.errors import ModelError
        from midibridge.model.pipeline import Transcriber

        transcriber = Transcriber(model_path=self.model_path, threads=self.threads, loaded={chosen.engine: engine})
        for index, job in enumerate(jobs):
            job_id = f"local-{index + 1}"

            def progress(stage: str, fraction: float, index: int = index, job_id: str = job_id) -> None:
                if on_progress:
                    on_progress(Progress(index, job_id, stage, fraction))

            try:
                done = transcriber.convert(
                    job.region, preset=chosen, tempo=job.tempo, on_progress=progress, allow_truncated=allow_truncated
                )
            except ModelError as error:
                yield RegionResult(index, job_id, error=ClientError(error.code, str(error), job_id=job_id))
                continue
            yield RegionResult(index, job_id, done.clip, done.smf)


@dataclass(frozen=True, kw_only=True)
class Daemon:
    """Through the midibridge daemon at `endpoint`, its jobs at `priority` (interactive ones run before any batch
    job). None: the default endpoint's daemon, started in the background when none runs."""

    priority: Priority = Priority.INTERACTIVE
    endpoint: str | None = None

    @property
    def where(self) -> str:
        return "daemon" if self.endpoint is None else f"daemon at {self.endpoint}"

    def run(
        self,
        jobs: list[Job],
        *,
        preset: str | None = None,
        allow_truncated: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Generator[RegionResult, None, None]:
        from .autostart import ensure_daemon  # ZeroMQ only when it is used
        from .client import Client

        if self.endpoint is None:
            ensure_daemon()
        with Client(self.endpoint) as client:
            yield from client.batch(
                [job.region for job in jobs],
                preset=_for_the_wire(preset),
                tempo=[job.tempo for job in jobs],
                priority=self.priority,
                allow_truncated=allow_truncated,
                on_progress=on_progress,
            )


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """On the Ray cluster whose head is at `address` (HOST:PORT; "auto": $RAY_ADDRESS), through a private daemon
    (`serve --cluster --private`) started for the run: its workers are actors there, one per CPU slot (at most one
    per job), and a job whose worker is lost runs again on another (twice at most, as `serve --cluster`'s). The nodes
    read each file at its absolute path here, unless `ship_audio`: then its bytes go to the node with its job."""

    address: str
    ship_audio: bool = False

    @property
    def where(self) -> str:
        return f"on the Ray cluster at {self.address}"

    def run(
        self,
        jobs: list[Job],
        *,
        preset: str | None = None,
        allow_truncated: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Generator[RegionResult, None, None]:
        from midibridge.model.presets import load_preset

        from .private_daemon import private_daemon

        if not jobs:
            return
        engine = load_preset(preset).engine  # every worker loads it before it is ready: a node that cannot, says so
        options = [
            "--cluster",
            self.address,
            "--workers",
            str(len(jobs)),
            "--interactive-workers",
            "0",
            "--grace",
            "0",
            "--preload",
            engine,
            *(["--ship-audio"] if self.ship_audio else []),
        ]
        # Longest first: the last regions to finish are short ones, so no slot idles long at the end of the run.
        order = sorted(range(len(jobs)), key=lambda i: -_work_estimate(jobs[i].region))

        def progress(seen: Progress) -> None:
            if on_progress:
                on_progress(replace(seen, index=order[seen.index]))

        with private_daemon(*options) as endpoint:
            for result in Daemon(priority=Priority.BATCH, endpoint=endpoint).run(
                [jobs[i] for i in order], preset=preset, allow_truncated=allow_truncated, on_progress=progress
            ):
                if result.error is not None and result.error.code == Code.CLUSTER_MISMATCH:
                    raise result.error  # a node cannot run midibridge alike: the whole run stops, as it started
                yield replace(result, index=order[result.index])


def _work_estimate(region: Region) -> float:
    """How long a region takes, relatively: its duration, else its file's size (0 for a file not there)."""
    if region.duration_s is not None:
        return region.duration_s
    try:
        return os.path.getsize(region.path or "") / 1e5  # ~ seconds of 16-bit mono at 44.1 kHz; only the order matters
    except (OSError, TypeError):  # no file there, or inline samples of no stated length
        return 0.0


def _for_the_wire(preset: str | None) -> str | dict | None:
    """A preset file travels inline (the daemon may not see this machine's files); a name goes as a name."""
    from midibridge.model.presets import is_preset_path, load_preset

    if preset is None or not is_preset_path(preset):
        return preset
    return load_preset(preset).to_dict()
