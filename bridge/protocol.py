"""midibridge's wire protocol: the one module the client, the daemon and its workers share.

Standard library and pyzmq only, so that thin clients stay thin. Every
message is a multipart ZeroMQ message:

    [protocol id, message type, request id, JSON header, binary buffer …]

A client's DEALER talks to the daemon's ROUTER (which sees the peer's
identity first); the daemon's workers talk to a second ROUTER with the same
framing under their own protocol id. The header of every message type is
checked against one spec table (MESSAGES). bridge/PROTOCOL.md documents it all.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOL_NAME = "midibridge"
PROTOCOL_VERSION = (1, 0)  # major.minor; a peer of another major version is refused
PROTOCOL_ID = f"{PROTOCOL_NAME}/{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}".encode()
WORKER_PROTOCOL_ID = f"{PROTOCOL_NAME}-worker/{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}".encode()

DEFAULT_PORT = 5591
DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_PORT}"
ENDPOINT_ENV = "MIDIBRIDGE_ENDPOINT"
MAX_HEADER_BYTES = 1 << 20
MAX_FRAME_BYTES = 256 << 20  # ZMQ_MAXMSGSIZE: a larger frame disconnects its sender
MAX_REGION_S = 4 * 3600.0
MAX_BATCH_REGIONS = 256

HEARTBEAT_INTERVAL_S = 1.0  # daemon <-> workers
HEARTBEAT_LIVENESS = 5  # intervals without a word before a worker counts as hung

# Requests a client sends, and the replies it gets. Every reply's request id
# is the id of the request it answers; job replies also carry the job id.
HELLO, TRANSCRIBE, BATCH, STATUS, CANCEL, PRESETS, FETCH, SHUTDOWN = (
    "hello", "transcribe", "batch", "status", "cancel", "presets", "fetch", "shutdown")
ACCEPTED, PROGRESS, RESULT, ERROR = "accepted", "progress", "result", "error"
# Between the daemon and a worker.
W_READY, W_HEARTBEAT, W_JOB, W_CANCEL, W_PROGRESS, W_RESULT, W_ERROR = (
    "ready", "heartbeat", "job", "cancel", "progress", "result", "error")

# Error codes the daemon sends (the model's own codes pass through unchanged:
# audio_not_found, audio_unreadable, region_outside_source, region_empty,
# audio_not_finite, invalid_sample_rate, invalid_samples, invalid_preset,
# unknown_preset, plugin_unavailable, invalid_option, model_missing, …).
ERROR_CODES = {
    "malformed": "the message does not have the protocol's frames, or its header is not a JSON object",
    "version_mismatch": "the peer speaks another major version of the protocol",
    "unknown_type": "no such message type",
    "invalid_header": "a header field is missing, of the wrong type or out of range",
    "too_large": "a header or buffer is over the daemon's limits",
    "busy": "the job queue is full; try again later",
    "unknown_job": "no job with that id (never existed, or its result expired)",
    "cancelled": "the job was cancelled",
    "worker_died": "the worker running the job exited",
    "worker_hung": "the worker running the job stopped answering and was replaced",
    "forbidden": "remote clients may not do this (shutdown, or a path outside the allowed roots)",
    "shutting_down": "the daemon is stopping and takes no new jobs",
    "internal": "the daemon failed unexpectedly; the message says how",
}


class ProtocolError(Exception):
    """A message that cannot be accepted; `code` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# Header specs: field -> (types, required). One table checks every message.
_NUM = (int, float)
_REGION = {"path": ((str,), False), "samples": ((dict,), False), "start_s": (_NUM, False),
           "duration_s": (_NUM + (type(None),), False), "position_s": (_NUM, False), "tempo": ((dict,), False)}
_SAMPLES = {"frame": ((int,), True), "sample_rate_hz": (_NUM, True), "channels": ((int,), True)}
_TEMPO = {"bpm": (_NUM, False), "beats_per_bar": (_NUM, False), "bar_offset_beats": (_NUM + (type(None),), False)}
_JOB_OPTIONS = {"tempo": ((dict,), False), "preset": ((str, dict), False)}
MESSAGES: dict[str, dict[str, tuple[tuple, bool]]] = {
    HELLO: {"client": ((str,), False)},
    TRANSCRIBE: {"region": ((dict,), True), **_JOB_OPTIONS},
    BATCH: {"regions": ((list,), True), **_JOB_OPTIONS},
    STATUS: {"job_ids": ((list,), False)},
    CANCEL: {"job_ids": ((list,), True)},
    PRESETS: {},
    FETCH: {"job_id": ((str,), True)},
    SHUTDOWN: {},
}


@dataclass
class Message:
    """One decoded message: its type, request id, header and binary buffers (and the sender's identity, on a ROUTER)."""

    kind: str
    request_id: str
    header: dict = field(default_factory=dict)
    buffers: list = field(default_factory=list)
    identity: bytes | None = None


def encode(kind: str, request_id: str, header: dict | None = None, buffers=(), *,
           protocol_id: bytes = PROTOCOL_ID) -> list:
    """The frames of a message, header first as compact JSON, buffers after as they are."""
    body = json.dumps(header or {}, separators=(",", ":"), allow_nan=False).encode()
    return [protocol_id, kind.encode(), request_id.encode(), body, *buffers]


def decode(frames: list, *, router: bool = False, protocol_id: bytes = PROTOCOL_ID) -> Message:
    """Parse frames (after the identity frame on a ROUTER) into a Message; ProtocolError says what is wrong."""
    identity = None
    if router:
        if not frames:
            raise ProtocolError("malformed", "an empty message")
        identity, frames = _bytes(frames[0]), frames[1:]
    if len(frames) < 4:
        raise ProtocolError("malformed", f"a message has at least 4 frames (protocol, type, request id, "
                                         f"header), this one has {len(frames)}")
    check_protocol(_bytes(frames[0]), protocol_id)
    try:
        kind, request_id = _bytes(frames[1]).decode(), _bytes(frames[2]).decode()
    except UnicodeDecodeError as error:
        raise ProtocolError("malformed", "the type and request id frames must be UTF-8 text") from error
    raw = _bytes(frames[3])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("too_large", f"the header is {len(raw)} bytes; at most {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError("malformed", f"the header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ProtocolError("malformed", "the header must be a JSON object")
    return Message(kind, request_id, header, list(frames[4:]), identity)


def check_protocol(frame: bytes, expected: bytes = PROTOCOL_ID) -> None:
    name, _, version = expected.decode().partition("/")
    got_name, _, got_version = frame.decode(errors="replace").partition("/")
    if got_name != name:
        raise ProtocolError("malformed", f"the first frame must be the protocol id {expected.decode()!r}")
    if got_version.split(".")[0] != version.split(".")[0]:
        raise ProtocolError("version_mismatch", f"this peer speaks {name} protocol {version}, the other "
                                                f"{got_version or '?'}; upgrade the older side")


def check_request(message: Message) -> None:
    """Check a client request's header against MESSAGES (regions and tempo included)."""
    if message.kind not in MESSAGES:
        raise ProtocolError("unknown_type", f"unknown message type {message.kind!r}; requests are "
                                            f"{', '.join(MESSAGES)}")
    check_fields(message.header, MESSAGES[message.kind], message.kind)
    job_ids = message.header.get("job_ids", [])
    if not all(isinstance(job_id, str) for job_id in job_ids):
        raise ProtocolError("invalid_header", f"{message.kind}: job_ids must be a list of job id strings")
    regions = [message.header["region"]] if message.kind == TRANSCRIBE else message.header.get("regions", [])
    if len(regions) > MAX_BATCH_REGIONS:
        raise ProtocolError("too_large", f"a batch holds at most {MAX_BATCH_REGIONS} regions, not {len(regions)}")
    for index, region in enumerate(regions):
        check_region(region, f"{message.kind} region {index}", len(message.buffers))
    if "tempo" in message.header:
        check_fields(message.header["tempo"], _TEMPO, f"{message.kind} tempo")


def check_region(region, where: str, n_buffers: int) -> None:
    if not isinstance(region, dict):
        raise ProtocolError("invalid_header", f"{where}: a region is an object")
    check_fields(region, _REGION, where)
    if ("path" in region) == ("samples" in region):
        raise ProtocolError("invalid_header", f"{where}: give exactly one of path and samples")
    if "samples" in region:
        check_fields(region["samples"], _SAMPLES, f"{where} samples")
        if not 0 <= region["samples"]["frame"] < n_buffers:
            raise ProtocolError("invalid_header", f"{where}: samples.frame {region['samples']['frame']} names no "
                                                  f"buffer (the message has {n_buffers})")
    if (region.get("duration_s") or 0) > MAX_REGION_S:
        raise ProtocolError("too_large", f"{where}: regions last at most {MAX_REGION_S:g} s")
    if "tempo" in region:
        check_fields(region["tempo"], _TEMPO, f"{where} tempo")


def check_fields(header: dict, spec: dict, where: str) -> None:
    for name, (types, required) in spec.items():
        if name not in header:
            if required:
                raise ProtocolError("invalid_header", f"{where}: {name} is required")
            continue
        value = header[name]
        if isinstance(value, bool) or not isinstance(value, types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ProtocolError("invalid_header", f"{where}: {name} must be {allowed}, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError("invalid_header", f"{where}: {name} must be finite")


def region_to_wire(region, buffers: list) -> dict:
    """A model.region.Region as a request's region; inline samples go to `buffers` as interleaved little-endian float32.

    Samples may be a numpy-like array shaped (n,) or (channels, n) (its own
    methods do the conversion: no numpy import here) or any buffer of mono
    float32.
    """
    wire = {"start_s": region.start_s, "duration_s": region.duration_s, "position_s": region.position_s}
    if region.path is not None:
        return {"path": os.path.abspath(region.path), **wire}
    samples = region.samples
    if hasattr(samples, "ndim"):
        channels = 1 if samples.ndim == 1 else samples.shape[0]
        data = (samples if samples.ndim == 1 else samples.T).astype("<f4").tobytes()
    else:
        channels, data = 1, memoryview(samples).cast("B")
    buffers.append(data)
    return {"samples": {"frame": len(buffers) - 1, "sample_rate_hz": region.sample_rate_hz, "channels": channels},
            **wire}


def error_header(code: str, message: str, job_id: str | None = None) -> dict:
    header = {"code": code, "message": message}
    if job_id is not None:
        header["job_id"] = job_id
    return header


# Discovery ------------------------------------------------------------------


def default_endpoint() -> str:
    """$MIDIBRIDGE_ENDPOINT, or DEFAULT_ENDPOINT: where `serve` binds and clients look when told nothing else."""
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def runtime_dir() -> Path:
    """Where a running daemon leaves its discovery file: $XDG_RUNTIME_DIR/midibridge, or a private temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "midibridge"
    return Path(tempfile.gettempdir()) / f"midibridge-{os.getuid()}"


def discovery_path() -> Path:
    return runtime_dir() / "daemon.json"


def read_discovery() -> dict | None:
    """The running daemon's discovery record ({endpoint, pid, protocol, public_key}), or None when there is no live one."""
    try:
        record = json.loads(discovery_path().read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record


def _bytes(frame) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)
