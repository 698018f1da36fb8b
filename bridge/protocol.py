"""midibridge's wire protocol: the one module the client, the daemon and its workers share.

Standard library, pyzmq and the model's plain types only (numpy is
imported by region_from_wire, on the worker's side), so that thin clients
stay thin. Every message is a multipart ZeroMQ message:

    [protocol id, message type, request id, JSON header, binary buffer …]

A client's DEALER talks to the daemon's ROUTER (which sees the peer's
identity first); the daemon's workers talk to a second ROUTER with the same
framing under their own protocol id. Each dialect has its own command table
(MESSAGES for clients, WORKER_MESSAGES for workers) that checks every header;
bulk data (samples, MIDI files, notes) travels in buffers, never in a header.
bridge/PROTOCOL.md documents it all.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import metadata

from midibridge.model.region import MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ

PROTOCOL_NAME = "midibridge"
# major.minor; a peer of another major version is refused. 2.0: a result's notes travel in a buffer;
# 2.1: `hello` lists every engine's weights (`engines`).
PROTOCOL_VERSION = (2, 1)
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
# A job's priority: interactive jobs (a DAW's right-click, `convert`) run before any waiting batch job.
INTERACTIVE, BACKGROUND = "interactive", "batch"
PRIORITIES = (INTERACTIVE, BACKGROUND)
DEFAULT_PRIORITY = {TRANSCRIBE: INTERACTIVE, BATCH: BACKGROUND}
# The progress stage of a job still waiting for a worker; its header says how many jobs run before it.
QUEUED_STAGE = "queued"
# Between the daemon and a worker.
W_READY, W_HEARTBEAT, W_JOB, W_CANCEL, W_PROGRESS, W_RESULT, W_ERROR = (
    "ready", "heartbeat", "job", "cancel", "progress", "result", "error")

# Error codes the daemon sends (the model's own codes pass through unchanged:
# audio_not_found, audio_unreadable, audio_truncated, region_outside_source,
# region_empty, audio_not_finite, invalid_preset, unknown_preset,
# plugin_unavailable, invalid_option, model_missing, …).
ERROR_CODES = {
    "malformed": "the message does not have the protocol's frames, or its header is not a JSON object",
    "version_mismatch": "the peer speaks another major version of the protocol",
    "unknown_type": "no such message type",
    "invalid_header": "a header field is missing, of the wrong type or out of range",
    "invalid_samples": "an inline samples buffer is not whole frames of float32 channels",
    "invalid_sample_rate": "an inline samples rate outside 1 kHz to 768 kHz",
    "region_outside_source": "a region starts before 0 s (or, as a job's error, past its source's end)",
    "region_empty": "a region's duration is not above 0 s (or, as a job's error, it holds no sample)",
    "too_large": "a header or buffer is over the daemon's limits",
    "busy": "the job queue is full; try again later",
    "unknown_job": "no job with that id (never existed, or its result expired)",
    "cancelled": "the job was cancelled",
    "worker_died": "the worker running the job exited",
    "worker_hung": "the worker running the job stopped answering, or made no progress, and was replaced",
    "forbidden": "remote clients may not do this (shutdown, or a path outside the allowed roots)",
    "shutting_down": "the daemon is stopping and takes no new jobs",
    "internal": "the daemon failed unexpectedly; the message says how",
}


def package_version() -> str:
    """midibridge's own version, which `hello` reports beside the protocol's (they move separately)."""
    try:
        return metadata.version("midibridge")
    except metadata.PackageNotFoundError:
        return "unknown"


class BridgeError(Exception):
    """The one error root of bridge: `code` says what went wrong, the message what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ProtocolError(BridgeError):
    """A message that cannot be accepted; `code` is one of ERROR_CODES."""


# Header specs: field -> (types, required). One table checks every message of a dialect.
_NUM = (int, float)
_REGION = {"path": ((str,), False), "samples": ((dict,), False), "start_s": (_NUM, False),
           "duration_s": (_NUM + (type(None),), False), "position_s": (_NUM, False), "tempo": ((dict,), False)}
_SAMPLES = {"frame": ((int,), True), "sample_rate_hz": (_NUM, True), "channels": ((int,), True)}
_JOB_OPTIONS = {"tempo": ((dict,), False), "preset": ((str, dict), False), "priority": ((str,), False),
                "allow_truncated": ((bool,), False)}
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
# The worker dialect: kind -> (header spec, how many buffers). Frame 2 holds the job id.
WORKER_MESSAGES: dict[str, tuple[dict[str, tuple[tuple, bool]], int]] = {
    W_READY: ({"pid": ((int,), True), "model_sha256": ((str,), True)}, 0),
    W_HEARTBEAT: ({}, 0),
    W_JOB: ({"region": ((dict,), True), "preset": ((dict,), True), "tempo": ((dict,), True),
             "threads": ((int,), False), "allow_truncated": ((bool,), False)}, -1),  # -1: its samples, if any
    W_CANCEL: ({}, 0),
    W_PROGRESS: ({"stage": ((str,), True), "fraction": (_NUM, True)}, 0),
    W_RESULT: ({"note_count": ((int,), True)}, 2),  # the standard MIDI file, the clip as JSON
    W_ERROR: ({"code": ((str,), True), "message": ((str,), True)}, 0),
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
        header = json.loads(raw, parse_constant=_not_finite, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as error:
        said = "empty: an empty header is {}" if not raw else f"not JSON: {error}"
        raise ProtocolError("malformed", f"the header is {said}") from error
    if not isinstance(header, dict):
        raise ProtocolError("malformed", "the header must be a JSON object")
    return Message(kind, request_id, header, list(frames[4:]), identity)


def _not_finite(text: str):
    """JSON has no NaN or Infinity, though Python's json reads them: a header holding one, in any field, is refused
    (the daemon could not pass it on to a worker or a client)."""
    raise ProtocolError("invalid_header", f"the header holds {text}: numbers must be finite")


def _finite(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _not_finite(text)


def check_protocol(frame: bytes, expected: bytes = PROTOCOL_ID) -> None:
    name, _, version = expected.decode().partition("/")
    got_name, _, got_version = frame.decode(errors="replace").partition("/")
    if got_name != name:
        raise ProtocolError("malformed", f"the first frame must be the protocol id {expected.decode()!r}")
    if got_version.split(".")[0] != version.split(".")[0]:
        raise ProtocolError("version_mismatch", f"this peer speaks {name} protocol {version}, the other "
                                                f"{got_version or '?'}; upgrade the older side")


def check_request(message: Message, *, max_batch_regions: int = MAX_BATCH_REGIONS) -> None:
    """Check a client request against MESSAGES: its header, regions and inline samples. A tempo's values are the
    model's to check (model.clip.Tempo.from_dict, one table for every path)."""
    if message.kind not in MESSAGES:
        raise ProtocolError("unknown_type", f"unknown message type {message.kind!r}; requests are "
                                            f"{', '.join(MESSAGES)}")
    check_fields(message.header, MESSAGES[message.kind], message.kind)
    job_ids = message.header.get("job_ids", [])
    if not all(isinstance(job_id, str) for job_id in job_ids):
        raise ProtocolError("invalid_header", f"{message.kind}: job_ids must be a list of job id strings")
    if message.header.get("priority", INTERACTIVE) not in PRIORITIES:
        raise ProtocolError("invalid_header", f"{message.kind}: priority must be one of {', '.join(PRIORITIES)}, "
                                              f"not {message.header['priority']!r}")
    regions = [message.header["region"]] if message.kind == TRANSCRIBE else message.header.get("regions", [])
    if message.kind == BATCH and not regions:
        raise ProtocolError("invalid_header", "batch: regions is empty; send at least one region")
    if len(regions) > max_batch_regions:
        raise ProtocolError("too_large", f"a batch holds at most {max_batch_regions} regions (this daemon's queue "
                                         f"size), not {len(regions)}; send it in parts")
    for index, region in enumerate(regions):
        check_region(region, f"{message.kind} region {index}", message.buffers)


def check_region(region, where: str, buffers: list) -> None:
    if not isinstance(region, dict):
        raise ProtocolError("invalid_header", f"{where}: a region is an object")
    check_fields(region, _REGION, where)
    if ("path" in region) == ("samples" in region):
        raise ProtocolError("invalid_header", f"{where}: give exactly one of path and samples")
    if "path" in region and not os.path.isabs(region["path"]):
        raise ProtocolError("invalid_header", f"{where}: path {region['path']!r} is relative; send an absolute path "
                                              f"(the daemon does not share your working directory)")
    if "samples" in region:
        check_samples(region["samples"], where, buffers)
    # The model's own codes, so that a client gets the same answer in-process and through the daemon.
    if region.get("start_s", 0) < 0 or region.get("position_s", 0) < 0:
        raise ProtocolError("region_outside_source", f"{where}: start_s and position_s must be ≥ 0")
    duration_s = region.get("duration_s")
    if duration_s is not None and duration_s <= 0:
        raise ProtocolError("region_empty", f"{where}: duration_s must be > 0, or null for \"to the end\"")
    if (duration_s or 0) > MAX_REGION_S:
        raise ProtocolError("too_large", f"{where}: regions last at most {MAX_REGION_S:g} s")


def check_samples(samples, where: str, buffers: list) -> None:
    """Inline samples: a buffer that is there and holds whole frames of float32 channels, at a usable rate."""
    check_fields(samples, _SAMPLES, f"{where} samples")
    frame, channels, rate = samples["frame"], samples["channels"], samples["sample_rate_hz"]
    if not 0 <= frame < len(buffers):
        raise ProtocolError("invalid_header", f"{where}: samples.frame {frame} names no buffer (the message has "
                                              f"{len(buffers)}; frame 0 is the one after the header)")
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise ProtocolError("invalid_sample_rate", f"{where}: sample rate {rate:g} Hz is outside "
                                                   f"{MIN_SAMPLE_RATE_HZ:g}…{MAX_SAMPLE_RATE_HZ:g} Hz")
    size = len(_bytes(buffers[frame]))
    if not 1 <= channels <= MAX_CHANNELS or size == 0 or size % (4 * channels):
        raise ProtocolError("invalid_samples", f"{where}: {size} bytes are not whole frames of {channels} float32 "
                                               f"channel(s) (1 to {MAX_CHANNELS} channels, interleaved)")


def check_worker_message(message: Message) -> None:
    """Check a worker-dialect message against WORKER_MESSAGES: its kind, header fields and buffer count."""
    if message.kind not in WORKER_MESSAGES:
        raise ProtocolError("unknown_type", f"unknown worker message type {message.kind!r}")
    spec, n_buffers = WORKER_MESSAGES[message.kind]
    check_fields(message.header, spec, f"worker {message.kind}")
    if n_buffers >= 0 and len(message.buffers) != n_buffers:
        raise ProtocolError("malformed", f"worker {message.kind}: {len(message.buffers)} buffers, not {n_buffers}")
    if message.kind == W_RESULT:
        check_result_buffers(message.header["note_count"], message.buffers)


def check_result_buffers(note_count: int, buffers: list) -> None:
    """A result's buffers as its client will read them: a standard MIDI file, and the clip's JSON with its notes."""
    try:
        notes = json.loads(_bytes(buffers[1])).get("notes")
    except (ValueError, UnicodeDecodeError, AttributeError):
        notes = None
    if not _bytes(buffers[0]).startswith(b"MThd") or not isinstance(notes, list) or len(notes) != note_count:
        raise ProtocolError("malformed", f"worker result: its buffers are not a MIDI file and the JSON of a clip "
                                         f"of {note_count} notes")


def check_fields(header: dict, spec: dict, where: str) -> None:
    for name, (types, required) in spec.items():
        if name not in header:
            if required:
                raise ProtocolError("invalid_header", f"{where}: {name} is required")
            continue
        value = header[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ProtocolError("invalid_header", f"{where}: {name} must be {allowed}, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError("invalid_header", f"{where}: {name} must be finite")


def clip_buffer(clip: dict) -> bytes:
    """A clip's JSON form (model.clip.Clip.to_dict) as a result's second buffer."""
    return json.dumps(clip, separators=(",", ":"), allow_nan=False).encode()


def clip_from_buffer(frame) -> dict:
    return json.loads(_bytes(frame))


# The codec: regions and clips to and from their wire form, for the client's and the worker's side.


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


def region_from_wire(region: dict, buffers: list):
    """A model.region.Region from its wire form (checked by check_region); inline samples become a (channels, n)
    float32 array, so numpy is imported here, on the worker's side only."""
    from midibridge.model.region import Region

    place = {"start_s": float(region.get("start_s", 0.0)), "position_s": float(region.get("position_s", 0.0)),
             "duration_s": None if region.get("duration_s") is None else float(region["duration_s"])}
    if "path" in region:
        return Region.from_file(region["path"], **place)
    import numpy as np

    samples = region["samples"]
    data = memoryview(buffers[samples["frame"]]).cast("B")
    audio = np.frombuffer(data, dtype="<f4").reshape(-1, samples["channels"]).T
    return Region.from_samples(audio, sample_rate_hz=float(samples["sample_rate_hz"]), **place)


def error_header(code: str, message: str, job_id: str | None = None) -> dict:
    header = {"code": code, "message": message}
    if job_id is not None:
        header["job_id"] = job_id
    return header


def _bytes(frame) -> bytes:
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)
