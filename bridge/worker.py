"""A worker process: loads the model once, then transcribes the jobs the daemon sends it, one at a time.

    python -m bridge.worker --endpoint ipc://… --identity W1 [--threads N] [--model PATH]

A job may ask for one onnxruntime thread: the daemon does so when other
jobs run beside it, as workers that all use every core slow each other down.

It talks to the daemon's worker ROUTER over one DEALER socket, used from
its main thread only. While idle it sends a heartbeat every interval; while
transcribing, its progress messages are the heartbeats, and between model
runs it looks for a cancel. When the daemon has been silent for
HEARTBEAT_LIVENESS intervals the worker exits: nobody is left to answer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import zmq

from model.clip import Tempo
from model.errors import Cancelled, ModelError
from model.midi import clip_to_bytes
from model.pipeline import Transcriber
from model.presets import Preset
from model.region import Region

from .protocol import (HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS, W_CANCEL, W_ERROR, W_HEARTBEAT, W_JOB, W_PROGRESS,
                       W_READY, W_RESULT, WORKER_PROTOCOL_ID, ProtocolError, decode, encode, error_header)

PROGRESS_EVERY_S = 0.1


def region_from_wire(region: dict, buffers: list) -> Region:
    """A model Region from its wire form; inline samples are interleaved little-endian float32."""
    place = {"start_s": float(region.get("start_s", 0.0)), "position_s": float(region.get("position_s", 0.0)),
             "duration_s": None if region.get("duration_s") is None else float(region["duration_s"])}
    if "path" in region:
        return Region.from_file(region["path"], **place)
    samples = region["samples"]
    data = memoryview(buffers[samples["frame"]]).cast("B")
    channels = samples["channels"]
    if channels < 1 or len(data) % (4 * channels):
        raise ModelError(f"inline samples: {len(data)} bytes are not whole frames of {channels} float32 "
                         f"channels", code="invalid_samples")
    audio = np.frombuffer(data, dtype="<f4").reshape(-1, channels).T
    return Region.from_samples(audio, sample_rate_hz=float(samples["sample_rate_hz"]), **place)


class Worker:
    def __init__(self, socket: zmq.Socket, transcriber: Transcriber, *, model_path: str | None):
        self.socket = socket
        self.transcriber = transcriber
        self.model_path = model_path
        self.single_threaded: Transcriber | None = None
        self.heard_s = time.monotonic()
        self.sent_s = 0.0

    def transcriber_for(self, threads: int) -> Transcriber:
        """The default transcriber, or (when the daemon has other jobs running) a one-thread one, made once."""
        if threads != 1:
            return self.transcriber
        if self.single_threaded is None:
            self.single_threaded = Transcriber(model_path=self.model_path, threads=1)
        return self.single_threaded

    def send(self, kind: str, job_id: str = "", header: dict | None = None, buffers=()) -> None:
        self.socket.send_multipart(encode(kind, job_id, header, buffers, protocol_id=WORKER_PROTOCOL_ID))
        self.sent_s = time.monotonic()

    def serve(self) -> None:
        self.send(W_READY, header={"pid": os.getpid(), "model_sha256": self.transcriber.model.sha256})
        while time.monotonic() - self.heard_s < HEARTBEAT_LIVENESS * HEARTBEAT_INTERVAL_S:
            if self.socket.poll(HEARTBEAT_INTERVAL_S * 1000):
                message = self.receive()
                if message is not None and message.kind == W_JOB:
                    self.run(message)
            if time.monotonic() - self.sent_s >= HEARTBEAT_INTERVAL_S:
                self.send(W_HEARTBEAT)

    def receive(self):
        self.heard_s = time.monotonic()
        try:
            return decode(self.socket.recv_multipart(), protocol_id=WORKER_PROTOCOL_ID)
        except ProtocolError:
            return None  # the daemon is the only peer; nothing it sends should be malformed

    def run(self, job) -> None:
        job_id = job.request_id
        last = {"stage": None, "at": 0.0}

        def on_progress(stage: str, fraction: float) -> None:
            now = time.monotonic()
            if stage != last["stage"] or now - last["at"] >= PROGRESS_EVERY_S:
                self.send(W_PROGRESS, job_id, {"stage": stage, "fraction": round(fraction, 4)})
                last.update(stage=stage, at=now)
            while self.socket.poll(0):
                message = self.receive()
                if message is not None and message.kind == W_CANCEL and message.request_id == job_id:
                    raise Cancelled("cancelled by the client")

        try:
            region = region_from_wire(job.header["region"], job.buffers)
            preset = Preset.from_dict(job.header["preset"], source="request")
            transcriber = self.transcriber_for(job.header.get("threads", 0))
            clip = transcriber.transcribe(region, preset=preset, tempo=Tempo.from_dict(job.header["tempo"]),
                                          on_progress=on_progress)
            self.send(W_RESULT, job_id, {"clip": clip.to_dict()}, [clip_to_bytes(clip)])
        except ModelError as error:
            self.send(W_ERROR, job_id, error_header(error.code, str(error)))
        except Exception as error:  # a job must end with an answer, whatever went wrong
            self.send(W_ERROR, job_id, error_header("internal", f"{type(error).__name__}: {error}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge.worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, args.identity.encode())
    socket.connect(args.endpoint)
    try:
        transcriber = Transcriber(model_path=args.model, threads=args.threads)
    except ModelError as error:
        socket.send_multipart(encode(W_ERROR, "", error_header(error.code, str(error)),
                                     protocol_id=WORKER_PROTOCOL_ID))
        return 1
    try:
        Worker(socket, transcriber, model_path=args.model).serve()
    finally:
        socket.close()
        context.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
