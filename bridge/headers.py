"""What every header of the wire holds, and the checks: one spec table per message type, for both dialects (a
client's requests and the daemon's replies; the daemon and its workers), and the shapes the code builds.

The tables are model.options Spec tables, checked by model.options.check_table:
the same specs and the same check as presets, option groups and tempos.
Headers are open: a field a table does not name is let through (a newer minor
version may add one, as PROTOCOL.md promises). A request's tempo and preset
are the model's tables to check (model.clip.Tempo, model.presets.Preset), so
that a client gets the same answer in-process and through the daemon.
bridge/PROTOCOL.md documents every table here.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any, TypedDict

from midibridge.model.options import Spec, check_table, required
from midibridge.model.region import MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
from midibridge.model.vocabulary import Code, EventKind, JobState, Priority, Stage

from .protocol import (
    ACCEPTED,
    BATCH,
    CANCEL,
    ERROR,
    FETCH,
    HELLO,
    MAX_BATCH_REGIONS,
    MAX_REGION_S,
    PRESETS,
    PROGRESS,
    RESULT,
    SHUTDOWN,
    STATUS,
    STREAM,
    STREAM_ACTIONS,
    TRANSCRIBE,
    W_CANCEL,
    W_ERROR,
    W_HEARTBEAT,
    W_JOB,
    W_PROGRESS,
    W_READY,
    W_RESULT,
    Message,
    ProtocolError,
    frame_bytes,
)

_TEXT, _NUMBER, _FLAG, _TABLE = Spec(str), Spec(float), Spec(bool), Spec(dict)
_COUNT = Spec(int, strict=True)  # a JSON integer: it counts or indexes something
_TEXTS = Spec(list, items=_TEXT)
# The vocabulary's words, in both dialects: a stage, code, priority or state outside it is refused.
_STAGE, _CODE = Spec(str, choices=tuple(Stage)), Spec(str, choices=tuple(Code))
_PRIORITY, _STATE = Spec(str, choices=tuple(Priority)), Spec(str, choices=tuple(JobState))


def _table(fields: dict[str, Spec], **options) -> Spec:
    return Spec(dict, fields=fields, **options)


def _list_of(fields: dict[str, Spec]) -> Spec:
    """A required list of tables, each with `fields`."""
    return Spec(list, required=True, items=_table(fields))


# Requests ---------------------------------------------------------------------------------------------------------

SAMPLES = {"frame": required(_COUNT), "sample_rate_hz": required(_NUMBER), "channels": required(_COUNT)}
REGION = {
    "path": _TEXT,
    "samples": _table(SAMPLES),
    "start_s": _NUMBER,
    "duration_s": Spec(float, optional=True),
    "position_s": _NUMBER,
    "tempo": _TABLE,
}
JOB_OPTIONS = {"tempo": _TABLE, "preset": Spec((str, dict)), "priority": _PRIORITY, "allow_truncated": _FLAG}
MESSAGES: dict[str, dict[str, Spec]] = {
    HELLO: {"client": _TEXT},
    TRANSCRIBE: {"region": _table(REGION, required=True), **JOB_OPTIONS},
    BATCH: {"regions": _list_of(REGION), **JOB_OPTIONS},
    STATUS: {"job_ids": _TEXTS},
    CANCEL: {"job_ids": required(_TEXTS)},
    PRESETS: {},
    FETCH: {"job_id": required(_TEXT)},
    SHUTDOWN: {},
    # open: preset, sample_rate_hz; audio: stream_id, seq and buffer 0 (mono float32); close: stream_id
    STREAM: {
        "action": Spec(str, choices=STREAM_ACTIONS, required=True),
        "stream_id": _TEXT,
        "seq": _COUNT,
        "preset": Spec((str, dict)),
        "sample_rate_hz": _NUMBER,
    },
}
STREAM_NEEDS = {"open": ("sample_rate_hz",), "audio": ("stream_id", "seq"), "close": ("stream_id",)}

# The daemon and its workers: type -> (header spec, how many buffers; -1: any). Frame 2 holds the job id. -----------

_PROGRESS = {"stage": required(_STAGE), "fraction": required(_NUMBER)}
_RESULT = {"note_count": required(_COUNT)}
_ERROR = {"code": required(_CODE), "message": required(_TEXT)}
WORKER_MESSAGES: dict[str, tuple[dict[str, Spec], int]] = {
    W_READY: (
        {
            "pid": required(_COUNT),
            "model_sha256": required(_TEXT),
            "package_version": required(_TEXT),
            "node": required(_TEXT),
        },
        0,
    ),
    W_HEARTBEAT: ({}, 0),
    # Its buffer: the region's inline samples, or with `shipped` the bytes of the file at the region's path.
    W_JOB: (
        {
            "region": _table(REGION, required=True),
            "preset": required(_TABLE),
            "tempo": required(_TABLE),
            "threads": _COUNT,
            "allow_truncated": _FLAG,
            "shipped": _FLAG,
        },
        -1,
    ),
    W_CANCEL: ({}, 0),
    W_PROGRESS: (_PROGRESS, 0),
    W_RESULT: (_RESULT, 2),  # the standard MIDI file, the clip as JSON
    W_ERROR: (_ERROR, 0),
}

# Replies to clients: type -> (header spec, buffers). ---------------------------------------------------------------

ERROR_HEADER = {**_ERROR, "job_id": _TEXT}  # job_id: a job's error
_COUNTS, _NUMBERS = required(_COUNT), required(_NUMBER)
LIMITS = {
    "max_frame_bytes": _COUNTS,
    "max_header_bytes": _COUNTS,
    "max_region_s": _NUMBERS,
    "max_batch_regions": _COUNTS,
    "max_queued": _COUNTS,
    "result_ttl_s": _NUMBERS,
    "progress_timeout_s": _NUMBERS,
    "cancel_timeout_s": _NUMBERS,
}
JOB_SUMMARY = {
    "job_id": required(_TEXT),
    "state": required(_STATE),
    "priority": replace(_PRIORITY, optional=True, required=True),
    "attempts": required(_COUNT),
    "age_s": Spec(float, optional=True, required=True),
    "error": _table(ERROR_HEADER, optional=True, required=True),
}
WORKER_SUMMARY = {
    "identity": required(_TEXT),
    "pid": Spec(int, strict=True, optional=True, required=True),
    "ready": required(_FLAG),
    "job_id": Spec(str, optional=True, required=True),
    "interactive_only": required(_FLAG),
}
PRESET_LISTING = {
    "name": required(_TEXT),
    "source": Spec(str, choices=("built-in", "user"), required=True),
    "description": required(_TEXT),
    "error": _table(_ERROR),
}
EVENT = {
    "kind": Spec(str, choices=tuple(EventKind), required=True),
    "time_s": _NUMBERS,
    "pitch": _COUNTS,
    "velocity": _COUNTS,
    "semitones": _NUMBERS,
}
REPLIES: dict[str, tuple[dict[str, Spec], int]] = {
    HELLO: (
        {
            "protocol": required(_TEXT),
            "package_version": required(_TEXT),
            "model": _table({"name": required(_TEXT), "sha256": required(_TEXT)}, required=True),
            "presets": required(_TEXTS),
            "workers": required(_COUNT),
            "interactive_workers": required(_COUNT),
            "pid": required(_COUNT),
            "limits": _table(LIMITS, required=True),
        },
        0,
    ),
    STATUS: (
        {
            "jobs": _list_of(JOB_SUMMARY),
            "counts": Spec(dict, required=True, items=_COUNT),
            "queued": required(_COUNT),
            "workers": _list_of(WORKER_SUMMARY),
            "workers_replaced": required(_COUNT),
            "cache_entries": required(_COUNT),
            "accepting": required(_FLAG),
        },
        0,
    ),
    CANCEL: ({"jobs": Spec(dict, required=True, items=_STATE)}, 0),  # job id -> its state
    PRESETS: ({"presets": _list_of(PRESET_LISTING)}, 0),
    SHUTDOWN: ({"stopping": required(_FLAG)}, 0),
    ACCEPTED: ({"job_ids": required(_TEXTS)}, 0),
    PROGRESS: ({"job_id": required(_TEXT), **_PROGRESS, "jobs_ahead": _COUNT}, 0),  # jobs_ahead: stage queued
    RESULT: ({"job_id": required(_TEXT), **_RESULT, "cached": required(_FLAG)}, 2),
    ERROR: (ERROR_HEADER, 0),
    STREAM: (
        {
            "action": Spec(str, choices=STREAM_ACTIONS, required=True),
            "stream_id": required(_TEXT),
            "seq": _COUNT,  # audio: the block answered
            "sample_rate_hz": _NUMBER,  # open
            "lookahead_s": _NUMBER,  # open
            "events": Spec(list, required=True, items=_table(EVENT)),
        },
        0,
    ),
}


# The shapes the code builds and reads (tests/test_headers.py holds each to its table above). ---------------------


class WireSamples(TypedDict):
    frame: int  # the buffer holding them: buffer 0 is frame 4
    sample_rate_hz: float
    channels: int


class WireRegion(TypedDict, total=False):
    """A request's region: `path` or `samples`, and where it is (model.region.Region's wire form)."""

    path: str
    samples: WireSamples
    start_s: float
    duration_s: float | None
    position_s: float
    tempo: dict[str, Any]  # model.clip.Tempo's dict form


class _ErrorFields(TypedDict):
    code: str
    message: str


class ErrorHeader(_ErrorFields, total=False):
    job_id: str


class JobSummary(TypedDict):
    job_id: str
    state: JobState
    priority: Priority | None
    attempts: int
    age_s: float | None
    error: ErrorHeader | None


# The checks --------------------------------------------------------------------------------------------------------


def check_request(message: Message, *, max_batch_regions: int = MAX_BATCH_REGIONS) -> None:
    """Check a client request against MESSAGES, then what a table cannot say: its regions and inline samples."""
    if message.kind not in MESSAGES:
        raise ProtocolError(
            Code.UNKNOWN_TYPE, f"unknown message type {message.kind!r}; requests are {', '.join(MESSAGES)}"
        )
    check_table(message.header, MESSAGES[message.kind], where=message.kind, closed=False, fail=_invalid_header)
    if message.kind == STREAM:
        check_stream(message)
        return
    if message.kind == TRANSCRIBE:
        regions = {f"{TRANSCRIBE} region": message.header["region"]}
    else:
        regions = {f"{BATCH} regions[{i}]": region for i, region in enumerate(message.header.get("regions", []))}
    if message.kind == BATCH and not regions:
        raise ProtocolError(Code.INVALID_HEADER, "batch: regions is empty; send at least one region")
    if len(regions) > max_batch_regions:
        raise ProtocolError(
            Code.TOO_LARGE,
            f"a batch holds at most {max_batch_regions} regions (this daemon's queue "
            f"size), not {len(regions)}; send it in parts",
        )
    for where, region in regions.items():
        check_region(region, where, message.buffers)


def check_stream(message: Message) -> None:
    """A stream request has the fields of its action, and audio its one buffer."""
    action = message.header["action"]
    missing = [name for name in STREAM_NEEDS[action] if name not in message.header]
    if missing:
        raise ProtocolError(Code.INVALID_HEADER, f"stream {action}: {', '.join(missing)} missing")
    if (action == "audio") != bool(message.buffers):
        raise ProtocolError(Code.INVALID_HEADER, f"stream {action}: audio sends one buffer of samples, the rest none")


def check_region(region: WireRegion, where: str, buffers: list) -> None:
    """A region whose fields are of their types: one source, an absolute path, a place the model can take."""
    if ("path" in region) == ("samples" in region):
        raise ProtocolError(Code.INVALID_HEADER, f"{where}: give exactly one of path and samples")
    if "path" in region and not os.path.isabs(region["path"]):
        raise ProtocolError(
            Code.INVALID_HEADER,
            f"{where}: path {region['path']!r} is relative; send an absolute path "
            f"(the daemon does not share your working directory)",
        )
    if "samples" in region:
        check_samples(region["samples"], where, buffers)
    # The model's own codes, so that a client gets the same answer in-process and through the daemon.
    if region.get("start_s", 0) < 0 or region.get("position_s", 0) < 0:
        raise ProtocolError(Code.REGION_OUTSIDE_SOURCE, f"{where}: start_s and position_s must be ≥ 0")
    duration_s = region.get("duration_s")
    if duration_s is not None and duration_s <= 0:
        raise ProtocolError(Code.REGION_EMPTY, f'{where}: duration_s must be > 0, or null for "to the end"')
    if (duration_s or 0) > MAX_REGION_S:
        raise ProtocolError(Code.TOO_LARGE, f"{where}: regions last at most {MAX_REGION_S:g} s")


def check_samples(samples: WireSamples, where: str, buffers: list) -> None:
    """Inline samples: a buffer that is there and holds whole frames of float32 channels, at a usable rate."""
    frame, channels, rate = samples["frame"], samples["channels"], samples["sample_rate_hz"]
    if not 0 <= frame < len(buffers):
        raise ProtocolError(
            Code.INVALID_HEADER,
            f"{where}: samples.frame {frame} names no buffer (the message has "
            f"{len(buffers)}; frame 0 is the one after the header)",
        )
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise ProtocolError(
            Code.INVALID_SAMPLE_RATE,
            f"{where}: sample rate {rate:g} Hz is outside {MIN_SAMPLE_RATE_HZ:g}…{MAX_SAMPLE_RATE_HZ:g} Hz",
        )
    size = len(frame_bytes(buffers[frame]))
    if not 1 <= channels <= MAX_CHANNELS or size == 0 or size % (4 * channels):
        raise ProtocolError(
            Code.INVALID_SAMPLES,
            f"{where}: {size} bytes are not whole frames of {channels} float32 "
            f"channel(s) (1 to {MAX_CHANNELS} channels, interleaved)",
        )


def check_worker_message(message: Message) -> None:
    """Check a worker-dialect message against WORKER_MESSAGES: its type, header and buffers."""
    _check_message(message, WORKER_MESSAGES, "worker")


def check_reply(message: Message) -> None:
    """Check a reply to a client against REPLIES: its type, header and buffers."""
    _check_message(message, REPLIES, "reply")


def _check_message(message: Message, table: dict[str, tuple[dict[str, Spec], int]], dialect: str) -> None:
    if message.kind not in table:
        raise ProtocolError(Code.UNKNOWN_TYPE, f"unknown {dialect} message type {message.kind!r}")
    spec, n_buffers = table[message.kind]
    where = f"{dialect} {message.kind}"
    check_table(message.header, spec, where=where, closed=False, fail=_invalid_header)
    if n_buffers >= 0 and len(message.buffers) != n_buffers:
        raise ProtocolError(Code.MALFORMED, f"{where}: {len(message.buffers)} buffers, not {n_buffers}")
    if message.kind in (W_RESULT, RESULT):
        check_result_buffers(message.header["note_count"], message.buffers, where)


def check_result_buffers(note_count: int, buffers: list, where: str) -> None:
    """A result's buffers as its client will read them: a standard MIDI file, and the clip's JSON with its notes."""
    try:
        notes = json.loads(frame_bytes(buffers[1])).get("notes")
    except (ValueError, UnicodeDecodeError, AttributeError):
        notes = None
    if not frame_bytes(buffers[0]).startswith(b"MThd") or not isinstance(notes, list) or len(notes) != note_count:
        raise ProtocolError(
            Code.MALFORMED, f"{where}: its buffers are not a MIDI file and the JSON of a clip of {note_count} notes"
        )


def _invalid_header(message: str) -> ProtocolError:
    return ProtocolError(Code.INVALID_HEADER, message)
