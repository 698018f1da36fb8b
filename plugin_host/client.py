"""The thin client: send regions to the daemon (plugin_host.autostart finds or starts it), get clips back. No numpy.

Reliability follows the ZeroMQ guide's Lazy Pirate: a request that gets no
answer in `timeout_s` closes its socket (linger 0), opens a new one and asks
again, `retries` times. An endpoint that no daemon is known to serve (no
discovery file) and where nothing answers a quick `hello` fails at once
instead. A batch goes in parts the daemon takes (its `hello` limits), never
more outstanding than its queue holds; a full queue (`busy`) is waited out.
While jobs run, a silent daemon is pinged with a `status`; one that restarted
has forgotten the jobs, which are sent again; a reconnected socket takes its
jobs back with `fetch`. Jobs a stopping daemon gives back (`shutting_down`)
wait for the next daemon on the endpoint, up to START_TIMEOUT_S. A batch whose
results are no longer wanted (its iterator closed early) cancels its jobs.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field

import zmq

from midibridge.bridge import discovery
from midibridge.bridge import protocol as p
from midibridge.model.clip import Clip, Tempo
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, JobState, Priority

from .results import ClientError, DaemonUnavailable, Progress, ProgressCallback, RegionResult

PING_AFTER_S = 2.0  # silence while jobs run before asking the daemon whether it still has them
START_TIMEOUT_S = 60.0  # for a daemon to start, or for the next one when the daemon stops under our jobs
PROBE_TIMEOUT_S = 1.0  # a daemon answers `hello` at once, whatever its workers are doing
RESEND_AFTER_S = 0.5  # before sending again what a full queue or a stopping daemon refused
CLIENT_NAME = f"midibridge-client/{p.PROTOCOL_ID.decode()}"


class Client:
    """A connection to the daemon at `endpoint` (default: $MIDIBRIDGE_ENDPOINT, else the default endpoint)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        server_public_key: bytes | None = None,
        client_keys: tuple[bytes, bytes] | None = None,
    ):
        self.endpoint = endpoint or discovery.default_endpoint()
        record = discovery.read_discovery(self.endpoint) or {}
        if server_public_key is None and record.get("public_key"):
            server_public_key = record["public_key"].encode()
        self.server_public_key = server_public_key
        self.client_keys = client_keys or (zmq.curve_keypair() if server_public_key else None)
        self.timeout_s = timeout_s
        self.retries = retries
        self.context: zmq.Context = zmq.Context.instance()
        self.socket: zmq.Socket | None = None
        self._ids = (f"{uuid.uuid4().hex[:8]}-{n}" for n in itertools.count(1))
        self._answered = False  # a daemon answered here: from then on a silence is a slow daemon, retried
        self._limits: dict | None = None
        self._stray: deque[p.Message] = deque()  # job results that came while a request waited for its reply

    # Connection ---------------------------------------------------------------

    def _connect(self) -> zmq.Socket:
        if self.socket is None:
            socket = self.context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            if self.server_public_key and self.client_keys:
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
        """The next message for this client: one kept while a request waited, else the socket's next."""
        return self._stray.popleft() if self._stray else self._poll(timeout_s)

    def _poll(self, timeout_s: float) -> p.Message | None:
        socket = self._connect()
        if not socket.poll(int(timeout_s * 1000)):
            return None
        try:
            return p.decode(socket.recv_multipart(copy=False))
        except p.ProtocolError as error:  # e.g. a daemon of another major version (a Client raises ClientErrors)
            raise ClientError(error.code, str(error)) from error

    def _exchange(self, kind: str, header: dict | None, buffers, timeout_s: float) -> p.Message | None:
        """One try of a request: its reply, or None after `timeout_s` without one (the socket is then thrown away).
        A job's result or error that comes meanwhile is kept for the batch waiting for it."""
        request_id = self._send(kind, header, buffers)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            reply = self._poll(left)
            if reply is None:
                break
            if reply.request_id == request_id:
                self._answered = True
                return reply
            if reply.kind in (p.RESULT, p.ERROR) and reply.header.get("job_id"):
                self._stray.append(reply)
            # else: a late answer to an earlier try, or a job's progress (the next one makes up for it)
        self._reconnect()
        return None

    def request(self, kind: str, header: dict | None = None, buffers=()) -> p.Message:
        """Send a request and return its reply, with Lazy Pirate retries; an error reply raises ClientError."""
        if not self._answered and not discovery.read_discovery(self.endpoint):
            self._probe()
        for _ in range(self.retries + 1):
            reply = self._exchange(kind, header, buffers, self.timeout_s)
            if reply is None:
                continue
            if reply.kind == p.ERROR:
                raise ClientError(reply.header["code"], reply.header["message"], job_id=reply.header.get("job_id"))
            return reply
        raise DaemonUnavailable(
            f"no answer from the midibridge daemon at {self.endpoint} after {self.retries + 1} "
            f"tries of {self.timeout_s:g} s. Is it running? Start it with `midibridge serve`."
        )

    def _probe(self) -> None:
        """No daemon says it serves this endpoint: one quick `hello` tells whether one answers all the same (on
        another machine, or without its discovery file) before anyone waits through the retries."""
        if self._exchange(p.HELLO, {"client": CLIENT_NAME}, (), min(self.timeout_s, PROBE_TIMEOUT_S)) is None:
            raise DaemonUnavailable(
                f"no midibridge daemon is running on {self.endpoint}: none on this machine serves it, and nothing "
                f"answered there within {min(self.timeout_s, PROBE_TIMEOUT_S):g} s. Start one with `midibridge "
                f"serve` (a daemon on another machine: check the endpoint, and its --curve keys)"
            )

    # Requests -------------------------------------------------------------------

    def hello(self) -> dict:
        return self.request(p.HELLO, {"client": CLIENT_NAME}).header

    def status(self, job_ids: list[str] | None = None) -> dict:
        return self.request(p.STATUS, {} if job_ids is None else {"job_ids": list(job_ids)}).header

    def presets(self) -> list[dict]:
        return self.request(p.PRESETS).header["presets"]

    def cancel(self, job_ids: list[str]) -> dict:
        return self.request(p.CANCEL, {"job_ids": list(job_ids)}).header["jobs"]

    def shutdown(self) -> None:
        self.request(p.SHUTDOWN)

    def transcribe(
        self,
        region: Region,
        *,
        preset: str | dict | None = None,
        tempo: Tempo = Tempo(),
        on_progress: ProgressCallback | None = None,
        allow_truncated: bool = False,
    ) -> RegionResult:
        """The result of one region (its clip, and the MIDI file in `smf`); a failed job raises its ClientError."""
        with closing(
            self.batch([region], preset=preset, tempo=tempo, on_progress=on_progress, allow_truncated=allow_truncated)
        ) as results:
            result = next(results)
        if result.error is not None:
            raise result.error
        return result

    def batch(
        self,
        regions: Iterable[Region],
        *,
        preset: str | dict | None = None,
        tempo: Tempo | list[Tempo] = Tempo(),
        priority: str = Priority.INTERACTIVE,
        allow_truncated: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Generator[RegionResult, None, None]:
        """One job per region, any number of them; yields each result (or error) as it finishes, in finishing order.

        `tempo` is the host's tempo for all regions, or a list: one per region
        (each where its region sits). `priority` is "interactive" (someone
        waits for it: it runs before every batch job) or "batch". The regions
        go in parts the daemon takes, as its queue has room; a daemon that
        stops hands them to the next one on the endpoint. Closing the iterator
        before the last result cancels the jobs still outstanding.
        """
        regions = list(regions)
        tempos = tempo if isinstance(tempo, list) else [tempo] * len(regions)
        options = {
            "priority": priority,
            **({} if preset is None else {"preset": preset}),
            **({"allow_truncated": True} if allow_truncated else {}),
        }
        run = _Run(
            jobs=list(zip(regions, tempos)), options=options, on_progress=on_progress, unsent=deque(range(len(regions)))
        )
        try:
            yield from self._run(run)
        finally:
            if run.pending:
                self._abandon(list(run.pending))

    def _run(self, run: _Run) -> Iterator[RegionResult]:
        heard_s = time.monotonic()
        failures = 0
        while run.pending or run.unsent:
            if run.unsent and time.monotonic() >= run.resend_at_s and self._send_part(run):
                heard_s = time.monotonic()
                continue
            wait_s = PING_AFTER_S
            if run.unsent and run.resend_at_s > time.monotonic():  # a part was refused: send it again soon
                wait_s = min(run.resend_at_s - time.monotonic(), PING_AFTER_S)
            message = self._receive(wait_s)
            if message is None:
                if run.pending and time.monotonic() - heard_s >= PING_AFTER_S:
                    failures = 0 if self._check_on(run) else failures + 1
                    heard_s = time.monotonic()
                    if failures > self.retries:
                        raise DaemonUnavailable(
                            f"the midibridge daemon at {self.endpoint} stopped answering while "
                            f"{len(run.pending)} job(s) ran"
                        )
                continue
            heard_s = time.monotonic()
            index = run.pending.get(message.header.get("job_id", ""))
            if index is None:
                continue
            job_id = message.header["job_id"]
            if message.kind == p.PROGRESS:
                if run.on_progress:
                    run.on_progress(
                        Progress(
                            index,
                            job_id,
                            message.header["stage"],
                            message.header["fraction"],
                            jobs_ahead=message.header.get("jobs_ahead"),
                        )
                    )
            elif message.kind == p.RESULT:
                del run.pending[job_id]
                smf, clip = message.buffers
                yield RegionResult(
                    index,
                    job_id,
                    Clip.from_dict(p.clip_from_buffer(clip)),
                    smf.bytes,
                    cached=message.header.get("cached", False),
                )
            elif message.kind == p.ERROR and message.header["code"] == Code.SHUTTING_DOWN:
                self._give_back(run, [job_id])  # the daemon stops: the next one on this endpoint runs it
            elif message.kind == p.ERROR:
                del run.pending[job_id]
                yield RegionResult(
                    index, job_id, error=ClientError(message.header["code"], message.header["message"], job_id=job_id)
                )

    def _send_part(self, run: _Run) -> bool:
        """Send the next regions the daemon has room for: at most `max_batch_regions` in one request, and never more
        outstanding than its queue holds. False when none went: no room yet, or refused for now (`resend_at_s`)."""
        try:
            if self._limits is None:
                self._limits = self.hello()["limits"]
            room = min(self._limits["max_batch_regions"], self._limits["max_queued"] - len(run.pending))
            part = list(itertools.islice(run.unsent, max(room, 0)))
            if not part:
                return False
            buffers: list = []
            wire = [
                {**p.region_to_wire(region, buffers), "tempo": tempo.to_dict()}
                for region, tempo in (run.jobs[i] for i in part)
            ]
            job_ids = self.request(p.BATCH, {"regions": wire, **run.options}, buffers).header["job_ids"]
        except ClientError as error:
            if error.code == Code.SHUTTING_DOWN or (
                run.restart_by_s is not None and error.code == Code.DAEMON_UNAVAILABLE
            ):
                self._wait_for_next_daemon(run)
            elif error.code != Code.BUSY:  # busy: the queue holds other clients' jobs too; some will finish
                raise
            run.resend_at_s = time.monotonic() + RESEND_AFTER_S
            return False
        for _ in part:
            run.unsent.popleft()
        run.pending.update(zip(job_ids, part))
        run.restart_by_s = None
        return True

    def _give_back(self, run: _Run, job_ids: list[str]) -> None:
        """Jobs a daemon dropped (it stopped, or restarted and forgot them): sent again first, to the next daemon."""
        run.unsent.extendleft(reversed([run.pending.pop(job_id) for job_id in job_ids]))
        self._wait_for_next_daemon(run)

    def _wait_for_next_daemon(self, run: _Run) -> None:
        if run.restart_by_s is None:
            run.restart_by_s = time.monotonic() + START_TIMEOUT_S
            self._limits = None  # the next daemon may have other limits
        elif time.monotonic() > run.restart_by_s:
            raise DaemonUnavailable(
                f"the midibridge daemon at {self.endpoint} stopped, and no other took its place "
                f"within {START_TIMEOUT_S:g} s. Start one with `midibridge serve`."
            )

    def _abandon(self, job_ids: list[str]) -> None:
        """Cancel jobs nobody waits for any more; a daemon that does not answer at once is left to finish them."""
        try:
            with Client(
                self.endpoint,
                timeout_s=1.0,
                retries=0,
                server_public_key=self.server_public_key,
                client_keys=self.client_keys,
            ) as canceller:
                canceller.cancel(job_ids)
        except ClientError:
            pass

    def _check_on(self, run: _Run) -> bool:
        """Ask whether the daemon still has our jobs; reattach or send them again. False when it does not answer."""
        try:
            known = {job["job_id"]: job["state"] for job in self.status(list(run.pending))["jobs"]}
        except DaemonUnavailable:
            return False
        lost = [job_id for job_id, state in known.items() if state == JobState.UNKNOWN]
        if lost:  # the daemon restarted
            self._give_back(run, lost)
        for job_id in run.pending:
            self._send(p.FETCH, {"job_id": job_id})  # replies for it come to this socket from now on
        return True


@dataclass
class _Run:
    """A batch on its way: every job (region, tempo), those not yet accepted by a daemon (indices, in the order to
    send them), those accepted (job id -> index), and when to send again."""

    jobs: list[tuple[Region, Tempo]]
    options: dict
    on_progress: ProgressCallback | None
    unsent: deque[int]
    pending: dict[str, int] = field(default_factory=dict)
    resend_at_s: float = 0.0
    restart_by_s: float | None = None  # set while waiting for the next daemon: until when
