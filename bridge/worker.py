"""A worker process: loads each engine once, then transcribes the jobs the daemon sends it, one at a time (the
daemon's side of it is bridge.worker_pool).

    python -m midibridge.bridge.worker --endpoint ipc://… --identity W1 [--threads N] [--model PATH] [--preload E]

The default engine (and any --preload engine) loads before the worker says
it is ready, with its package version and node, for the daemon to check (the
jobs most ask for do not wait on it, and missing weights fail the worker at
once); the others load when a job first asks for them. A job may ask for one
onnxruntime thread: the daemon does so when other jobs run beside it, as
workers that all use every core slow each other down. A job may bring its
file's bytes (`shipped`: the worker's node may not see the file): the worker
reads them from a private copy named like the file, and its messages name
the file as the daemon did.

The main thread talks to the daemon's worker ROUTER over one DEALER socket:
jobs in; progress, results and errors out; between model runs it looks for
a cancel. A second thread heartbeats on a socket of its own, so a long model
run or a stuck read never looks like a dead process (the daemon judges a
job by its progress). When the daemon has been silent for
HEARTBEAT_LIVENESS intervals the worker exits: nobody is left to answer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from socket import gethostname

import zmq

from midibridge.model.clip import Tempo
from midibridge.model.engines import DEFAULT_ENGINE, ENGINES
from midibridge.model.errors import Cancelled, MidibridgeError, ModelError
from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import resolve_preset
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code

from .headers import check_worker_message
from .protocol import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_LIVENESS,
    W_CANCEL,
    W_ERROR,
    W_HEARTBEAT,
    W_JOB,
    W_PROGRESS,
    W_READY,
    W_RESULT,
    WORKER_PROTOCOL_ID,
    Header,
    Message,
    ProtocolError,
    clip_buffer,
    decode,
    encode,
    error_header,
    frame_bytes,
    package_version,
    region_from_wire,
)
from .security import WorkerKeys
from .worker_pool import HEARTBEAT_SUFFIX

PROGRESS_EVERY_S = 0.1


@dataclass
class _LastProgress:
    """The last progress a job sent: a new stage, the end, or PROGRESS_EVERY_S later sends the next."""

    stage: str | None = None
    at_s: float = 0.0


class Worker:
    def __init__(self, socket: zmq.Socket, transcriber: Transcriber, *, model_path: str | None, node: str):
        self.socket = socket
        self.transcriber = transcriber
        self.model_path = model_path
        self.node = node
        self.single_threaded: Transcriber | None = None

    def transcriber_for(self, threads: int) -> Transcriber:
        """The default transcriber, or (when the daemon has other jobs running) a one-thread one, made once."""
        if threads != 1:
            return self.transcriber
        if self.single_threaded is None:
            self.single_threaded = Transcriber(model_path=self.model_path, threads=1)
        return self.single_threaded

    def send(self, kind: str, job_id: str = "", header: Header | None = None, buffers=()) -> None:
        self.socket.send_multipart(encode(kind, job_id, header, buffers, protocol_id=WORKER_PROTOCOL_ID))

    def serve(self) -> None:
        """Run jobs until the process ends (the daemon terminates it, or the heartbeat finds the daemon gone)."""
        self.send(
            W_READY,
            header={
                "pid": os.getpid(),
                "model_sha256": ENGINES[DEFAULT_ENGINE].weights_sha256,
                "package_version": package_version(),
                "node": self.node,
            },
        )
        while True:
            message = self.receive()
            if message is not None and message.kind == W_JOB:
                self.run(message)

    def receive(self) -> Message | None:
        try:
            message = decode(self.socket.recv_multipart(), protocol_id=WORKER_PROTOCOL_ID)
            check_worker_message(message)
        except ProtocolError as error:  # the daemon is the only peer: say so in its log, and go on
            print(f"midibridge worker: ignored a malformed message from the daemon: {error}", file=sys.stderr)
            return None
        return message

    def run(self, job: Message) -> None:
        job_id = job.request_id
        last = _LastProgress()

        def on_progress(stage: str, fraction: float) -> None:
            now = time.monotonic()
            if stage != last.stage or fraction >= 1.0 or now - last.at_s >= PROGRESS_EVERY_S:
                self.send(W_PROGRESS, job_id, {"stage": stage, "fraction": round(fraction, 4)})
                last.stage, last.at_s = stage, now
            while self.socket.poll(0):
                message = self.receive()
                if message is not None and message.kind == W_CANCEL and message.request_id == job_id:
                    raise Cancelled("cancelled by the client")

        shipped = job.buffers[0] if job.header.get("shipped") else None
        region = read = None
        try:
            region = region_from_wire(job.header["region"], [] if shipped is not None else job.buffers)
            with readable(region, shipped) as read:
                transcriber = self.transcriber_for(job.header.get("threads", 0))
                done = transcriber.convert(
                    read,
                    preset=resolve_preset(job.header["preset"]),
                    tempo=Tempo.from_dict(job.header["tempo"]),
                    on_progress=on_progress,
                    allow_truncated=job.header.get("allow_truncated", False),
                )
            self.send(
                W_RESULT, job_id, {"note_count": len(done.clip.notes)}, [done.smf, clip_buffer(done.clip.to_dict())]
            )
        except MidibridgeError as error:
            self.send(W_ERROR, job_id, error_header(error.code, named(str(error), read, region)))
        except Exception as error:  # a job must end with an answer, whatever went wrong
            self.send(
                W_ERROR, job_id, error_header(Code.INTERNAL, named(f"{type(error).__name__}: {error}", read, region))
            )


@contextmanager
def readable(region: Region, shipped) -> Iterator[Region]:
    """The region to read: as it came, or (its file `shipped`) the same region of a private copy of the file under
    the file's own name, so that its format is known; the copy is gone after."""
    if shipped is None:
        yield region
        return
    folder = tempfile.mkdtemp(prefix="midibridge-")
    try:
        copy = os.path.join(folder, os.path.basename(region.path or "audio"))
        Path(copy).write_bytes(frame_bytes(shipped))
        yield replace(region, path=copy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def named(message: str, read: Region | None, region: Region | None) -> str:
    """`message` naming the file as the daemon named it, not the private copy it was read from (if it was)."""
    if read is None or region is None or read is region or read.path is None or region.path is None:
        return message
    return message.replace(read.path, region.path)


def heartbeat(context: zmq.Context, endpoint: str, identity: bytes, keys: WorkerKeys | None = None) -> None:
    """Heartbeat the daemon every interval from a socket of this thread's own, and hear its heartbeats.

    When the daemon has been silent for HEARTBEAT_LIVENESS intervals the
    process exits at once: a job stuck in a read would never notice.
    """
    socket = _connect(context, endpoint, identity + HEARTBEAT_SUFFIX, keys)
    heard_s = time.monotonic()
    while time.monotonic() - heard_s < HEARTBEAT_LIVENESS * HEARTBEAT_INTERVAL_S:
        socket.send_multipart(encode(W_HEARTBEAT, "", protocol_id=WORKER_PROTOCOL_ID))
        deadline = time.monotonic() + HEARTBEAT_INTERVAL_S
        while (left := deadline - time.monotonic()) > 0:
            if socket.poll(int(left * 1000)):
                socket.recv_multipart()
                heard_s = time.monotonic()
    print("midibridge worker: the daemon is gone; exiting", file=sys.stderr)
    os._exit(1)


def run(
    endpoint: str,
    identity: str,
    *,
    threads: int = 0,
    model_path: str | None = None,
    keys: WorkerKeys | None = None,
    preload: tuple[str, ...] = (),
    node: str | None = None,
) -> int:
    """Be a worker of the daemon at `endpoint` until the process ends, the default engine and the `preload` ones
    loaded first; `keys` when its worker socket is CURVE (a daemon whose workers are Ray actors on other machines),
    `node` what the daemon calls the machine it runs on (default: its host name)."""
    node = node or gethostname()
    context = zmq.Context()
    socket = _connect(context, endpoint, identity.encode(), keys)
    threading.Thread(
        target=heartbeat, args=(context, endpoint, identity.encode(), keys), name="heartbeat", daemon=True
    ).start()
    try:
        transcriber = Transcriber(model_path=model_path, threads=threads)
        for engine in (DEFAULT_ENGINE, *preload):
            transcriber.engine_for(engine)
    except ModelError as error:  # without a job id: this worker cannot start
        socket.send_multipart(
            encode(
                W_ERROR,
                "",
                error_header(error.code, f"node {node} cannot run midibridge: [{error.code}] {error}"),
                protocol_id=WORKER_PROTOCOL_ID,
            )
        )
        return 1
    Worker(socket, transcriber, model_path=model_path, node=node).serve()
    return 0


def _connect(context: zmq.Context, endpoint: str, identity: bytes, keys: WorkerKeys | None) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, identity)
    if keys is not None:
        keys.secure_worker(socket)
    socket.connect(endpoint)
    return socket


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m midibridge.bridge.worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--preload", action="append", default=[], choices=sorted(ENGINES))
    args = parser.parse_args(argv)
    return run(args.endpoint, args.identity, threads=args.threads, model_path=args.model, preload=tuple(args.preload))


if __name__ == "__main__":
    sys.exit(main())
