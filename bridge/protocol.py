"""midibridge's wire protocol: the one module the client, the daemon and its workers share.

Standard library, pyzmq and the model's plain types only (numpy is
imported by region_from_wire, on the worker's side), so that thin clients
stay thin. Every message is a multipart ZeroMQ message:

    [protocol id, message type, request id, JSON header, binary buffer …]

A client's DEALER talks to the daemon's ROUTER (which sees the peer's
identity first); the daemon's workers talk to a second ROUTER with the same
framing under their own protocol id. This module holds the names, the
framing and the codec; what each header holds, for both dialects and every
reply, is bridge.headers' tables, which check every message. Bulk data
(samples, MIDI files, notes) travels in buffers, never in a header.
bridge/PROTOCOL.md documents it all.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from midibridge.model.errors import MidibridgeError
from midibridge.model.vocabulary import Code, Priority

if TYPE_CHECKING:  # bridge.headers builds on this module
    from .headers import ErrorHeader, WireRegion

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
    "hello",
    "transcribe",
    "batch",
    "status",
    "cancel",
    "presets",
    "fetch",
    "shutdown",
)
ACCEPTED, PROGRESS, RESULT, ERROR = "accepted", "progress", "result", "error"
STREAM = "stream"  # a live stream (2.2): the request and its replies share the name
STREAM_ACTIONS = ("open", "audio", "close")
# A job's priority (model.vocabulary.Priority) when the request names none: interactive jobs (a DAW's right-click,
# `convert`) run before any waiting batch job.
DEFAULT_PRIORITY = {TRANSCRIBE: Priority.INTERACTIVE, BATCH: Priority.BATCH}
# Between the daemon and a worker.
W_READY, W_HEARTBEAT, W_JOB, W_CANCEL, W_PROGRESS, W_RESULT, W_ERROR = (
    "ready",
    "heartbeat",
    "job",
    "cancel",
    "progress",
    "result",
    "error",
)


def package_version() -> str:
    """midibridge's own version, which `hello` reports beside the protocol's (they move separately)."""
    # Imported here: importlib.metadata (with email and socket) was 17 ms of every command's start, convert's too.
    from importlib import metadata

    try:
        return metadata.version("midibridge")
    except metadata.PackageNotFoundError:
        return "unknown"


class BridgeError(MidibridgeError):
    """Base of bridge's errors: `code` says what went wrong, the message what to do."""


class ProtocolError(BridgeError):
    """A message that cannot be accepted (bridge/PROTOCOL.md's table of codes says which)."""


# A header as sent or received: a JSON object. What each message type's holds is bridge.headers' tables.
Header = Mapping[str, Any]


@dataclass
class Message:
    """One decoded message: its type, request id, header and binary buffers (and the sender's identity, on a ROUTER)."""

    kind: str
    request_id: str
    header: dict[str, Any] = field(default_factory=dict)
    buffers: list = field(default_factory=list)
    identity: bytes = b""  # empty when it did not come through a ROUTER


def encode(
    kind: str, request_id: str, header: Header | None = None, buffers=(), *, protocol_id: bytes = PROTOCOL_ID
) -> list:
    """The frames of a message, header first as compact JSON, buffers after as they are."""
    body = json.dumps(header or {}, separators=(",", ":"), allow_nan=False).encode()
    return [protocol_id, kind.encode(), request_id.encode(), body, *buffers]


def decode(frames: list, *, router: bool = False, protocol_id: bytes = PROTOCOL_ID) -> Message:
    """Parse frames (after the identity frame on a ROUTER) into a Message; ProtocolError says what is wrong."""
    identity = b""
    if router:
        if not frames:
            raise ProtocolError(Code.MALFORMED, "an empty message")
        identity, frames = frame_bytes(frames[0]), frames[1:]
    if len(frames) < 4:
        raise ProtocolError(
            Code.MALFORMED,
            f"a message has at least 4 frames (protocol, type, request id, header), this one has {len(frames)}",
        )
    check_protocol(frame_bytes(frames[0]), protocol_id)
    try:
        kind, request_id = frame_bytes(frames[1]).decode(), frame_bytes(frames[2]).decode()
    except UnicodeDecodeError as error:
        raise ProtocolError(Code.MALFORMED, "the type and request id frames must be UTF-8 text") from error
    raw = frame_bytes(frames[3])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(Code.TOO_LARGE, f"the header is {len(raw)} bytes; at most {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw, parse_constant=_not_finite, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as error:
        said = "empty: an empty header is {}" if not raw else f"not JSON: {error}"
        raise ProtocolError(Code.MALFORMED, f"the header is {said}") from error
    if not isinstance(header, dict):
        raise ProtocolError(Code.MALFORMED, "the header must be a JSON object")
    return Message(kind, request_id, header, list(frames[4:]), identity)


def _not_finite(text: str):
    """JSON has no NaN or Infinity, though Python's json reads them: a header holding one, in any field, is refused
    (the daemon could not pass it on to a worker or a client)."""
    raise ProtocolError(Code.INVALID_HEADER, f"the header holds {text}: numbers must be finite")


def _finite(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else _not_finite(text)


def check_protocol(frame: bytes, expected: bytes = PROTOCOL_ID) -> None:
    name, _, version = expected.decode().partition("/")
    got_name, _, got_version = frame.decode(errors="replace").partition("/")
    if got_name != name:
        raise ProtocolError(Code.MALFORMED, f"the first frame must be the protocol id {expected.decode()!r}")
    if got_version.split(".")[0] != version.split(".")[0]:
        raise ProtocolError(
            Code.VERSION_MISMATCH,
            f"this peer speaks {name} protocol {version}, the other {got_version or '?'}; upgrade the older side",
        )


def clip_buffer(clip: dict) -> bytes:
    """A clip's JSON form (model.clip.Clip.to_dict) as a result's second buffer."""
    return json.dumps(clip, separators=(",", ":"), allow_nan=False).encode()


def clip_from_buffer(frame) -> dict:
    return json.loads(frame_bytes(frame))


# The codec: regions and clips to and from their wire form, for the client's and the worker's side.


def region_to_wire(region, buffers: list) -> WireRegion:
    """A model.region.Region as a request's region; inline samples go to `buffers` as interleaved little-endian float32.

    Samples may be a numpy-like array shaped (n,) or (channels, n) (its own
    methods do the conversion: no numpy import here) or any buffer of mono
    float32.
    """
    place: WireRegion = {"start_s": region.start_s, "duration_s": region.duration_s, "position_s": region.position_s}
    if region.path is not None:
        return {"path": os.path.abspath(region.path), **place}
    samples = region.samples
    if hasattr(samples, "ndim"):
        channels = 1 if samples.ndim == 1 else samples.shape[0]
        data = (samples if samples.ndim == 1 else samples.T).astype("<f4").tobytes()
    else:
        channels, data = 1, memoryview(samples).cast("B")
    buffers.append(data)
    return {
        "samples": {"frame": len(buffers) - 1, "sample_rate_hz": region.sample_rate_hz, "channels": channels},
        **place,
    }


def region_from_wire(region: WireRegion, buffers: list):
    """A model.region.Region from its wire form (checked by bridge.headers); inline samples become a (channels, n)
    float32 array, so numpy is imported here, on the worker's side only."""
    from midibridge.model.region import Region

    start_s, position_s = float(region.get("start_s", 0.0)), float(region.get("position_s", 0.0))
    duration = region.get("duration_s")
    duration_s = None if duration is None else float(duration)
    if "path" in region:
        return Region.from_file(region["path"], start_s=start_s, position_s=position_s, duration_s=duration_s)
    import numpy as np

    samples = region["samples"]
    data = memoryview(buffers[samples["frame"]]).cast("B")
    audio = np.frombuffer(data, dtype="<f4").reshape(-1, samples["channels"]).T
    return Region.from_samples(
        audio,
        sample_rate_hz=float(samples["sample_rate_hz"]),
        start_s=start_s,
        position_s=position_s,
        duration_s=duration_s,
    )


def error_header(code: str, message: str, job_id: str | None = None) -> ErrorHeader:
    header: ErrorHeader = {"code": code, "message": message}
    if job_id is not None:
        header["job_id"] = job_id
    return header


def frame_bytes(frame) -> bytes:
    """A frame's bytes, whether pyzmq gave a Frame (copy=False) or bytes."""
    return frame.bytes if hasattr(frame, "bytes") else bytes(frame)
