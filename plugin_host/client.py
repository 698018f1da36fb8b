"""The thin client: find (or start) the daemon, send regions, get clips back. No numpy, no onnxruntime.

Reliability follows the ZeroMQ guide's Lazy Pirate: a request that gets no
answer in `timeout_s` closes its socket (linger 0), opens a new one and asks
again, `retries` times. While jobs run, a silent daemon is pinged with a
`status`; one that restarted has forgotten the jobs, which are sent again; a
reconnected socket takes its jobs back with `fetch`. A batch whose results
are no longer wanted (its iterator closed early) cancels its jobs.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing

import zmq

from midibridge.bridge import discovery
from midibridge.bridge import protocol as p
from midibridge.model.clip import Clip, Tempo
from midibridge.model.region import Region

from .results import ClientError, DaemonUnavailable, JobResult, Progress, ProgressCallback

PING_AFTER_S = 2.0  # silence while jobs run before asking the daemon whether it still has them
START_TIMEOUT_S = 60.0


class Client:
    """A connection to the daemon at `endpoint` (default: $MIDIBRIDGE_ENDPOINT, else the default endpoint)."""

    def __init__(self, endpoint: str | None = None, *, timeout_s: float = 5.0, retries: int = 3,
                 server_public_key: bytes | None = None, client_keys: tuple[bytes, bytes] | None = None):
        self.endpoint = endpoint or discovery.default_endpoint()
        record = discovery.read_discovery(self.endpoint) or {}
        if server_public_key is None and record.get("public_key"):
            server_public_key = record["public_key"].encode()
        self.server_public_key = server_public_key
        self.client_keys = client_keys or (zmq.curve_keypair() if server_public_key else None)
        self.timeout_s = timeout_s
        self.retries = retries
        self.context = zmq.Context.instance()
        self.socket = None
        self._ids = (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count(1))

    # Connection ---------------------------------------------------------------

    def _connect(self) -> zmq.Socket:
        if self.socket is None:
            socket = self.context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            if self.server_public_key:
                socket.curve_serverkey = self.server_public_key
                socket.curve_publickey, socket.curve_secretkey = self.client_keys
            socket.connect(self.endpoint)
            self.socket = socket
        return self.socket

    def _reconnect(self) -> None:
        """Lazy Pirate: a socket that got no answer may hold a half-sent request; throw it away."""
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None

    def close(self) -> None:
        self._reconnect()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, kind: str, header: dict | None = None, buffers=()) -> str:
        request_id = next(self._ids)
        self._connect().send_multipart(p.encode(kind, request_id, header, buffers), copy=False)
        return request_id

    def _receive(self, timeout_s: float) -> p.Message | None:
        socket = self._connect()
        if not socket.poll(timeout_s * 1000):
            return None
        try:
            return p.decode(socket.recv_multipart(copy=False))
        except p.ProtocolError as error:  # e.g. a daemon of another major version
            raise ClientError(error.code, str(error)) from error

    def request(self, kind: str, header: dict | None = None, buffers=()) -> p.Message:
        """Send a request and return its reply, with Lazy Pirate retries; an error reply raises ClientError."""
        for _ in range(self.retries + 1):
            request_id = self._send(kind, header, buffers)
            deadline = time.monotonic() + self.timeout_s
            while (left := deadline - time.monotonic()) > 0:
                reply = self._receive(left)
                if reply is None:
                    break
                if reply.request_id != request_id:
                    continue  # a late answer to an earlier attempt
                if reply.kind == p.ERROR:
                    raise ClientError(reply.header["code"], reply.header["message"], job_id=reply.header.get("job_id"))
                return reply
            self._reconnect()
        raise DaemonUnavailable(f"no answer from the midibridge daemon at {self.endpoint} after {self.retries + 1} "
                                f"tries of {self.timeout_s:g} s. Is it running? Start it with `midibridge serve`.")

    # Requests -------------------------------------------------------------------

    def hello(self) -> dict:
        return self.request(p.HELLO, {"client": f"midibridge-client/{p.PROTOCOL_ID.decode()}"}).header

    def status(self, job_ids: list[str] | None = None) -> dict:
        return self.request(p.STATUS, {} if job_ids is None else {"job_ids": list(job_ids)}).header

    def presets(self) -> list[dict]:
        return self.request(p.PRESETS).header["presets"]

    def cancel(self, job_ids: list[str]) -> dict:
        return self.request(p.CANCEL, {"job_ids": list(job_ids)}).header["jobs"]

    def shutdown(self) -> None:
        self.request(p.SHUTDOWN)

    def transcribe(self, region: Region, *, preset: str | dict | None = None, tempo: Tempo = Tempo(),
                   on_progress: ProgressCallback | None = None, allow_truncated: bool = False) -> JobResult:
        """The result of one region (its clip, and the MIDI file in `smf`); a failed job raises its ClientError."""
        with closing(self.batch([region], preset=preset, tempo=tempo, on_progress=on_progress,
                                allow_truncated=allow_truncated)) as results:
            result = next(results)
        if result.error is not None:
            raise result.error
        return result

    def batch(self, regions: Iterable[Region], *, preset: str | dict | None = None,
              tempo: Tempo | list[Tempo] = Tempo(), priority: str = p.INTERACTIVE, allow_truncated: bool = False,
              on_progress: ProgressCallback | None = None) -> Iterator[JobResult]:
        """One job per region; yields each result (or error) as it finishes, in finishing order.

        `tempo` is the host's tempo for all regions, or a list: one per region
        (each where its region sits). `priority` is "interactive" (someone
        waits for it: it runs before every batch job) or "batch". Closing the
        iterator before the last result cancels the jobs still outstanding.
        """
        regions = list(regions)
        tempos = tempo if isinstance(tempo, list) else [tempo] * len(regions)
        options = {"priority": priority, **({} if preset is None else {"preset": preset}),
                   **({"allow_truncated": True} if allow_truncated else {})}
        jobs = list(zip(regions, tempos))
        pending = dict(zip(self._submit(jobs, options), range(len(jobs))))  # job id -> index
        try:
            yield from self._collect(pending, jobs, options, on_progress)
        finally:
            if pending:
                self._abandon(list(pending))

    def _submit(self, jobs: list[tuple[Region, Tempo]], options: dict) -> list[str]:
        buffers: list = []
        wire = [{**p.region_to_wire(region, buffers), "tempo": tempo.to_dict()} for region, tempo in jobs]
        return self.request(p.BATCH, {"regions": wire, **options}, buffers).header["job_ids"]

    def _collect(self, pending: dict[str, int], jobs, options, on_progress) -> Iterator[JobResult]:
        failures = 0
        while pending:
            message = self._receive(PING_AFTER_S)
            if message is None:
                failures = 0 if self._check_on(pending, jobs, options) else failures + 1
                if failures > self.retries:
                    raise DaemonUnavailable(f"the midibridge daemon at {self.endpoint} stopped answering while "
                                            f"{len(pending)} job(s) ran")
                continue
            job_id = message.header.get("job_id")
            if job_id not in pending:
                continue
            index = pending[job_id]
            if message.kind == p.PROGRESS:
                if on_progress:
                    on_progress(Progress(index, job_id, message.header["stage"], message.header["fraction"],
                                         jobs_ahead=message.header.get("jobs_ahead")))
            elif message.kind == p.RESULT:
                del pending[job_id]
                smf, clip = message.buffers
                yield JobResult(index, job_id, Clip.from_dict(p.clip_from_buffer(clip)), smf.bytes,
                                cached=message.header.get("cached", False))
            elif message.kind == p.ERROR:
                del pending[job_id]
                yield JobResult(index, job_id, error=ClientError(message.header["code"], message.header["message"],
                                                                 job_id=job_id))

    def _abandon(self, job_ids: list[str]) -> None:
        """Cancel jobs nobody waits for any more; a daemon that does not answer at once is left to finish them."""
        try:
            with Client(self.endpoint, timeout_s=1.0, retries=0, server_public_key=self.server_public_key,
                        client_keys=self.client_keys) as canceller:
                canceller.cancel(job_ids)
        except ClientError:
            pass

    def _check_on(self, pending: dict[str, int], jobs, options) -> bool:
        """Ask whether the daemon still has our jobs; reattach or resend them. False when it does not answer."""
        try:
            known = {job["job_id"]: job["state"] for job in self.status(list(pending))["jobs"]}
        except DaemonUnavailable:
            return False
        lost = [job_id for job_id, state in known.items() if state == "unknown"]
        if lost:  # the daemon restarted: send those regions again
            indices = [pending.pop(job_id) for job_id in lost]
            pending.update(zip(self._submit([jobs[i] for i in indices], options), indices))
        for job_id in [j for j in pending if j not in lost]:
            self._send(p.FETCH, {"job_id": job_id})  # replies for it come to this socket from now on
        return True


def ensure_daemon(*, endpoint: str | None = None, timeout_s: float = START_TIMEOUT_S) -> dict:
    """The discovery record of the daemon serving `endpoint` (default: the default endpoint), starting
    `midibridge serve` in the background when none does.

    Two commands starting one at once both succeed: the daemon that wins the
    endpoint serves them both. A daemon that answers on the endpoint although
    its discovery file is gone is used as it is.
    """
    endpoint = endpoint or discovery.default_endpoint()
    record = discovery.read_discovery(endpoint) or _answering(endpoint)
    if record:
        return record
    runtime = discovery.runtime_dir()
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = runtime / "daemon.log"
    command = [sys.executable, "-m", "midibridge.plugin_host.cli", "serve", "--endpoint", endpoint]
    # A daemon outlives this command: it keeps its own copy of the log's handle, and holds no one's working folder.
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                   cwd=runtime)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = discovery.read_discovery(endpoint)
        if record:
            with Client(endpoint, timeout_s=5.0, retries=2) as client:
                client.hello()
            return record
        if process.poll() is not None:
            record = discovery.read_discovery(endpoint) or _answering(endpoint)  # another command's daemon won
            if record:
                return record
            said = log_path.read_text(errors="replace").strip().splitlines()
            raise DaemonUnavailable(f"could not start the midibridge daemon on {endpoint}: "
                                    f"{said[-1] if said else 'it exited'} (log: {log_path})")
        time.sleep(0.05)
    raise DaemonUnavailable(f"the midibridge daemon on {endpoint} did not start within {timeout_s:g} s "
                            f"(log: {log_path})")


def _answering(endpoint: str) -> dict | None:
    """A record for a midibridge daemon that answers `hello` on `endpoint` without a discovery file; else None."""
    try:
        with Client(endpoint, timeout_s=0.5, retries=0) as client:
            info = client.hello()
    except ClientError:
        return None
    return {"endpoint": endpoint, "pid": info["pid"], "protocol": info["protocol"], "public_key": None}
