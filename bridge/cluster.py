"""A batch on a Ray cluster: one actor per CPU slot, each holding one Transcriber with one onnxruntime thread.

Imported only by `midibridge batch --cluster` (and, for `connect`, by
`serve --cluster`'s bridge.cluster_workers): nothing else loads Ray. This
process (Ray's driver) hands each idle actor one region at a time and takes
back its clip and MIDI file, so results come in finishing order and every
file is written here, once. An actor that is lost with its node gives its
region back: another actor runs it, and it fails `worker_died` only after
MAX_ATTEMPTS losses. A lost actor is replaced; the replacement starts when
the cluster has a free slot for it (a node that joins, or rejoins).

Files are read on the nodes, at their absolute paths here: every node must
see them there. `ship_audio` sends each file's bytes through Ray's object
store instead (put once, freed after its last region), and the actor reads
them from a private temporary copy. Either way the actor runs the same
`Transcriber.convert` as a local batch, so the MIDI files are the same bytes;
error messages name the path as it was given here.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from midibridge.model.clip import Clip, Tempo
from midibridge.model.region import Region

from .protocol import BridgeError, package_version

try:
    import ray
    from ray.exceptions import RayActorError, RayError
except ImportError:  # the `cluster` extra is not installed: connect() says how to install it
    ray = RayActorError = RayError = None

MAX_ATTEMPTS = 3  # times a region may lose its actor before it fails worker_died
START_TIMEOUT_S = 120.0  # how long a batch waits for an actor when none is working for it
CONNECT_TIMEOUT_S = 5.0
WAIT_S = 0.25  # ray.wait in slices, so Ctrl-C is heard at once
log = logging.getLogger("midibridge.cluster")


class ClusterError(BridgeError):
    """A cluster that cannot run the batch at all. `code`: cluster_not_installed (no Ray here: the `cluster`
    extra), cluster_unavailable (no Ray cluster at the address, or no CPU slot in it), cluster_mismatch (a node
    runs another midibridge version, or cannot load the model)."""


@dataclass(frozen=True)
class ClusterJob:
    """One region of the batch and the host's tempo where it sits."""

    region: Region
    tempo: Tempo


@dataclass(frozen=True)
class ClusterResult:
    """How one region ended: its clip and MIDI file, or the error that stopped it."""

    index: int
    job_id: str
    clip: Clip | None = None
    smf: bytes | None = None
    error: BridgeError | None = None


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": $RAY_ADDRESS) as its driver."""
    if ray is None:
        raise ClusterError("cluster_not_installed", "--cluster needs Ray, which is not installed here. Install the "
                                                    "extra: pip install 'midibridge[cluster]'")
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise ClusterError("cluster_unavailable", "--cluster auto takes the address from RAY_ADDRESS, which is "
                                                      "not set. Set it (host:port of the head node), or give the "
                                                      "address")
    _check_reachable(address)
    # The driver's own task events only list its submissions in Ray's dashboard; flushing them held every batch's
    # exit for 0.25 s. The actors' events (what ran where) are still reported.
    os.environ.setdefault("RAY_task_events_report_interval_ms", "0")
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError("cluster_unavailable", f"cannot join a Ray cluster at {address}: {error}. Start one with "
                                                  f"`ray start --head`, or check the address") from error


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at `address`: Ray itself retries an absent head for minutes."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except ValueError:
        raise ClusterError("cluster_unavailable", f"{address!r} is not a Ray address: give HOST:PORT of the head "
                                                  f"node (as `ray start --head` prints it), or auto") from None
    except OSError as error:
        raise ClusterError("cluster_unavailable", f"no Ray cluster answers at {address} ({error.strerror or error}). "
                                                  f"Start one with `ray start --head`, or check the address") \
            from None


def run(jobs: list[ClusterJob], *, address: str, preset: dict, engine: str, allow_truncated: bool = False,
        ship_audio: bool = False) -> Iterator[ClusterResult]:
    """Transcribe `jobs` on the Ray cluster at `address` through `preset` (a preset's whole table, so a user's
    preset need not exist on the nodes) with its `engine`; yields each result as it finishes. Closing the
    iterator stops the actors, and with them every region still running."""
    connect(address)
    dispatch = _Dispatch(jobs, preset=preset, engine=engine, allow_truncated=allow_truncated,
                         shipper=_Shipper(jobs, ship_audio))
    try:
        dispatch.start()
        yield from dispatch.results()
    finally:
        dispatch.stop()
        ray.shutdown()


class _Shipper:
    """With --ship-audio, each file's bytes in Ray's object store while some region of it is still to run."""

    def __init__(self, jobs: list[ClusterJob], enabled: bool):
        self.enabled = enabled
        self.left = Counter(job.region.path for job in jobs)
        self.refs: dict[str, object] = {}

    def audio_for(self, region: Region):
        if not self.enabled:
            return None
        if region.path not in self.refs:
            try:
                self.refs[region.path] = ray.put(Path(region.path).read_bytes())
            except OSError:  # unreadable here too: the actor tries the path and says why, as a local run would
                self.refs[region.path] = None
        return self.refs[region.path]

    def done_with(self, region: Region) -> None:
        self.left[region.path] -= 1
        if self.left[region.path] == 0:
            self.refs.pop(region.path, None)  # the last reference: Ray frees the object


class _Dispatch:
    """The driver's side: actors starting, idle and busy, and the regions still to give out."""

    def __init__(self, jobs: list[ClusterJob], *, preset: dict, engine: str, allow_truncated: bool,
                 shipper: _Shipper):
        self.jobs, self.preset, self.engine = jobs, preset, engine
        self.allow_truncated, self.shipper = allow_truncated, shipper
        # Longest first: the last regions to finish are short ones, so no slot idles long at the end of a batch.
        self.todo = deque(sorted(range(len(jobs)), key=lambda i: -_work_estimate(jobs[i].region)))
        self.losses: Counter[int] = Counter()
        self.starting: dict[object, object] = {}  # ready() ref -> actor
        self.running: dict[object, tuple[object, int]] = {}  # convert() ref -> (actor, job index)
        self.idle: list[object] = []
        self.runs = self.start_failures = 0

    def start(self) -> None:
        slots = int(ray.cluster_resources().get("CPU", 0))
        if slots < 1:
            raise ClusterError("cluster_unavailable", "the Ray cluster has no CPU slots: start its nodes with "
                                                      "--num-cpus of at least 1")
        for _ in range(min(slots, len(self.jobs))):
            self._start_actor()

    def _start_actor(self) -> None:
        actor = _RemoteActor.remote(self.engine)
        self.starting[actor.ready.remote()] = actor

    def results(self) -> Iterator[ClusterResult]:
        waited_s = 0.0
        while self.todo or self.running:
            while self.idle and self.todo:
                self._give(self.idle.pop(), self.todo.popleft())
            done, _ = ray.wait([*self.starting, *self.running], num_returns=1, timeout=WAIT_S)
            if not done:
                waited_s = 0.0 if self.running else waited_s + WAIT_S
                if waited_s >= START_TIMEOUT_S:
                    yield from self._fail_the_rest()
                continue
            waited_s = 0.0
            ref = done[0]
            if ref in self.starting:
                self._started(ref)
            else:
                result = self._finished(ref)
                if result is not None:
                    yield result

    def _give(self, actor, index: int) -> None:
        region = self.jobs[index].region
        self.runs += 1
        ref = actor.convert.remote(region, _read_path(region), self.jobs[index].tempo, self.preset,
                                   self.allow_truncated, self.shipper.audio_for(region), f"cluster-{self.runs}")
        self.running[ref] = (actor, index)

    def _started(self, ref) -> None:
        actor = self.starting.pop(ref)
        try:
            node = ray.get(ref)
        except RayError as error:  # its node went while it started, or the node cannot import midibridge
            self.start_failures += 1
            if self.start_failures > MAX_ATTEMPTS * max(len(self.idle) + len(self.running), 1):
                raise ClusterError("cluster_mismatch", f"midibridge actors keep failing to start on the cluster: "
                                                       f"{_first_line(error)}. Install midibridge[cluster] and its "
                                                       f"model (`midibridge model install`) on every node") from None
            log.warning("a midibridge actor could not start (%s); starting another", _first_line(error))
            self._start_actor()
            return
        if node.failure is not None:
            raise ClusterError("cluster_mismatch", f"node {node.address} cannot run midibridge: {node.failure}")
        if node.version != package_version():
            raise ClusterError("cluster_mismatch", f"node {node.address} runs midibridge {node.version}, this "
                                                   f"client {package_version()}: install the same version on "
                                                   f"every node, so every region is transcribed alike")
        self.idle.append(actor)

    def _finished(self, ref) -> ClusterResult | None:
        actor, index = self.running.pop(ref)
        job = self.jobs[index]
        try:
            outcome: _Outcome = ray.get(ref)
        except RayActorError as error:
            ray.kill(actor, no_restart=True)
            self._start_actor()
            self.losses[index] += 1
            if self.losses[index] < MAX_ATTEMPTS:
                log.warning("lost the midibridge actor running %s (%s); it runs again on another",
                            job.region.describe(), _first_line(error))
                self.todo.appendleft(index)
                return None
            outcome = _Outcome(node=None, error_code="worker_died",
                               error_message=f"the actor running this region was lost {MAX_ATTEMPTS} times (its "
                                             f"node died or it crashed): {_first_line(error)}")
        except RayError as error:  # the call itself failed on a live actor: say how, and go on
            self.idle.append(actor)
            outcome = _Outcome(node=None, error_code="internal", error_message=f"{type(error).__name__}: "
                                                                               f"{_first_line(error)}")
        else:
            self.idle.append(actor)
        self.shipper.done_with(job.region)
        if outcome.error_code is None:
            return ClusterResult(index, outcome.job_id, outcome.clip, outcome.smf)
        message = outcome.error_message
        if outcome.file_missing and os.path.exists(_read_path(job.region)):
            message += (f" (read on node {outcome.node}, which does not see the file this machine sees: every node "
                        f"must see it at the same path, or use --ship-audio to send it from here)")
        return ClusterResult(index, outcome.job_id, error=BridgeError(outcome.error_code, message))

    def _fail_the_rest(self) -> Iterator[ClusterResult]:
        reason = (f"no midibridge actor could start on the cluster within {START_TIMEOUT_S:g} s (every node that "
                  f"had one is gone, or its CPU slots are taken). Rerun the batch into the same directory when the "
                  f"cluster has room: the regions that finished are kept")
        while self.todo:
            index = self.todo.popleft()
            self.shipper.done_with(self.jobs[index].region)
            yield ClusterResult(index, "", error=BridgeError("cluster_unavailable", reason))

    def stop(self) -> None:
        for actor in [*self.idle, *self.starting.values(), *(actor for actor, _ in self.running.values())]:
            ray.kill(actor, no_restart=True)
        self.idle, self.starting, self.running = [], {}, {}


def _work_estimate(region: Region) -> float:
    """How long a region will take, relatively: its duration, else its file's size (0 for a file not there)."""
    if region.duration_s is not None:
        return region.duration_s
    try:
        return os.path.getsize(region.path) / 1e5  # ~ seconds of 16-bit mono at 44.1 kHz; only the order matters
    except OSError:
        return 0.0


def _read_path(region: Region) -> str:
    return os.path.abspath(region.path)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@dataclass(frozen=True)
class _Node:
    """What an actor says when it has started: where it runs, its package version, and why it cannot work."""

    address: str
    version: str
    failure: str | None


@dataclass(frozen=True)
class _Outcome:
    """What an actor gives back for a region."""

    node: str | None
    job_id: str = ""
    clip: Clip | None = None
    smf: bytes | None = None
    error_code: str | None = None
    error_message: str = ""
    file_missing: bool = False  # the node found no file at the path this machine reads


class _RegionActor:
    """Runs on a node: one Transcriber (the preset's engine loaded up front, one thread), one region at a time."""

    def __init__(self, engine: str):
        from midibridge.model.errors import ModelError
        from midibridge.model.pipeline import Transcriber

        self.address = ray.util.get_node_ip_address()
        self.failure = None
        try:
            self.transcriber = Transcriber(threads=1)
            self.transcriber.engine_for(engine)
        except ModelError as error:
            self.failure = f"[{error.code}] {error}"

    def ready(self) -> _Node:
        return _Node(self.address, package_version(), self.failure)

    def convert(self, region: Region, read_path: str, tempo: Tempo, preset: dict, allow_truncated: bool,
                audio: bytes | None, job_id: str) -> _Outcome:
        from midibridge.model.errors import ModelError
        from midibridge.model.presets import resolve_preset

        copy_dir = None
        if audio is not None:  # shipped: a private copy under the file's own name, so its format is known
            copy_dir = tempfile.mkdtemp(prefix="midibridge-")
            read_path = os.path.join(copy_dir, os.path.basename(region.path))
            Path(read_path).write_bytes(audio)
        try:
            done = self.transcriber.convert(replace(region, path=read_path), preset=resolve_preset(preset),
                                            tempo=tempo, allow_truncated=allow_truncated)
        except ModelError as error:
            return _Outcome(self.address, job_id, error_code=error.code,
                            error_message=str(error).replace(read_path, region.path),
                            file_missing=not os.path.exists(read_path))
        except Exception as error:  # a region must end with an answer, whatever went wrong
            return _Outcome(self.address, job_id, error_code="internal",
                            error_message=f"{type(error).__name__}: {error}".replace(read_path, region.path))
        finally:
            if copy_dir is not None:
                shutil.rmtree(copy_dir, ignore_errors=True)
        return _Outcome(self.address, job_id, done.clip, done.smf)


# One CPU slot each; never restarted by Ray: a lost actor is replaced by _Dispatch, which gives its region out again.
_RemoteActor = None if ray is None else ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_RegionActor)
