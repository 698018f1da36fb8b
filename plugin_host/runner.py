"""Where transcription runs for the command line: through the daemon, in this process, or on a Ray cluster (a
batch's `--cluster`). Same results every way.

Each gives JobResults (plugin_host.results) in the order jobs finish, errors
included, so a batch isolates its failures the same way on every path. The
in-process path is the only place plugin_host imports the model's heavy
parts, and the cluster path the only place Ray is imported, each only when
it runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from midibridge.bridge import discovery
from midibridge.bridge.protocol import INTERACTIVE
from midibridge.model.clip import Tempo
from midibridge.model.region import Region

from .results import ClientError, JobResult, Progress, ProgressCallback


def choose(*, daemon: bool | None) -> str:
    """"daemon" or "in-process": as asked, else the daemon when one is running."""
    if daemon is None:
        return "daemon" if discovery.read_discovery() else "in-process"
    return "daemon" if daemon else "in-process"


def run(regions: list[Region], *, where: str, preset: str | None, tempo: Tempo | list[Tempo],
        on_progress: ProgressCallback | None = None, priority: str = INTERACTIVE, model_path: str | None = None,
        threads: int = 0, allow_truncated: bool = False, cluster: str | None = None,
        ship_audio: bool = False) -> Iterator[JobResult]:
    """Transcribe `regions` (at one `tempo`, or one each) `where`: "daemon", "in-process" or "cluster" (the Ray
    cluster at the address `cluster`, `ship_audio` sending the files' bytes). `priority` applies through the
    daemon, `model_path` and `threads` in-process only. `allow_truncated`: see Transcriber.transcribe."""
    tempos = tempo if isinstance(tempo, list) else [tempo] * len(regions)
    if where == "cluster":
        yield from _on_cluster(regions, preset=preset, tempos=tempos, address=cluster,
                               allow_truncated=allow_truncated, ship_audio=ship_audio)
    elif where == "daemon":
        from .client import Client, ensure_daemon  # ZeroMQ only when it is used

        ensure_daemon()
        with Client() as client:
            yield from client.batch(regions, preset=_for_the_wire(preset), tempo=tempo, priority=priority,
                                    allow_truncated=allow_truncated, on_progress=on_progress)
    else:
        yield from _in_process(regions, preset=preset, tempos=tempos, on_progress=on_progress,
                               model_path=model_path, threads=threads, allow_truncated=allow_truncated)


def _for_the_wire(preset: str | None) -> str | dict | None:
    """A preset file travels inline (the daemon may not see this machine's files); a name goes as a name."""
    from midibridge.model.presets import is_preset_path, load_preset

    if preset is None or not is_preset_path(preset):
        return preset
    return load_preset(preset).to_dict()


def _on_cluster(regions, *, preset, tempos, address, allow_truncated, ship_audio) -> Iterator[JobResult]:
    from midibridge.bridge import cluster
    from midibridge.model.presets import resolve_preset

    chosen = resolve_preset(preset)  # as a whole table: the nodes may not have this machine's preset files
    jobs = [cluster.ClusterJob(region, tempo) for region, tempo in zip(regions, tempos)]
    try:
        for done in cluster.run(jobs, address=address, preset=chosen.to_dict(), engine=chosen.engine,
                                allow_truncated=allow_truncated, ship_audio=ship_audio):
            error = None if done.error is None else ClientError(done.error.code, str(done.error), job_id=done.job_id)
            yield JobResult(done.index, done.job_id, done.clip, done.smf, error=error)
    except cluster.ClusterError as error:
        raise ClientError(error.code, str(error)) from error


def _in_process(regions, *, preset, tempos, on_progress, model_path, threads, allow_truncated) -> Iterator[JobResult]:
    from midibridge.model.errors import ModelError
    from midibridge.model.pipeline import Transcriber
    from midibridge.model.presets import resolve_preset

    chosen = resolve_preset(preset)  # a bad preset stops everything, as the daemon refuses the whole request
    transcriber = Transcriber(model_path=model_path, threads=threads)
    transcriber.engine_for(chosen.engine)  # missing weights stop everything too, before any region runs
    for index, (region, tempo_here) in enumerate(zip(regions, tempos)):
        job_id = f"local-{index + 1}"

        def progress(stage: str, fraction: float) -> None:
            if on_progress:
                on_progress(Progress(index, job_id, stage, fraction))

        try:
            done = transcriber.convert(region, preset=chosen, tempo=tempo_here, on_progress=progress,
                                       allow_truncated=allow_truncated)
        except ModelError as error:
            yield JobResult(index, job_id, error=ClientError(error.code, str(error), job_id=job_id))
            continue
        yield JobResult(index, job_id, done.clip, done.smf)
