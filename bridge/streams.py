"""The daemon's live streams (the `stream` request, bridge/PROTOCOL.md): audio blocks in, note events out as decided.

A stream is light (SwiftF0 on a few frames at a time, about a fifth of a
core), so it runs in the daemon's own process rather than on a worker: each
stream has a task that feeds its blocks, in the order they came, to a
model.live.LiveTranscriber on a thread, and answers each block with the
events it decided. The engine is loaded once, when the first stream opens.
A stream belongs to the socket that opened it; it ends at `close`, or when
it has had no request for STREAM_IDLE_S (its client went away).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from midibridge.model.errors import MidibridgeError
from midibridge.model.presets import is_preset_path, resolve_preset
from midibridge.model.region import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
from midibridge.model.vocabulary import Code

from . import protocol as p
from .outbox import Outbox
from .protocol import Message, ProtocolError, frame_bytes

if TYPE_CHECKING:  # numpy, onnxruntime and the engine load with the first stream, not with the daemon
    from midibridge.model.engines import Engine
    from midibridge.model.live import LiveTranscriber

MAX_STREAMS = 8  # open at once: more are refused busy
MAX_STREAM_BLOCKS = 64  # a stream's blocks waiting to be fed: one more is refused busy (and never fed)
STREAM_IDLE_S = 60.0
_CLOSE = object()
log = logging.getLogger("midibridge.streams")


@dataclass
class _Stream:
    stream_id: str
    identity: bytes
    transcriber: LiveTranscriber
    blocks: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(MAX_STREAM_BLOCKS))
    last_request: float = field(default_factory=time.monotonic)
    task: asyncio.Task | None = None


class Streams:
    """Every open stream of a daemon; `handle` answers a checked `stream` request."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self._streams: dict[str, _Stream] = {}
        self._ids = itertools.count(1)
        self._engine: Engine | None = None

    async def handle(self, message: Message, *, local: bool) -> None:
        self._close_idle()
        action = message.header["action"]
        if action == "open":
            await self._open(message, local)
            return
        stream = self._streams.get(message.header["stream_id"])
        if stream is None or stream.identity != message.identity:
            raise ProtocolError(
                Code.UNKNOWN_STREAM,
                f"no stream {message.header['stream_id']!r} of this socket: it was never opened here, was closed, "
                f"or was idle for {STREAM_IDLE_S:g} s; open one",
            )
        stream.last_request = time.monotonic()
        if action == "close":
            del self._streams[stream.stream_id]
            await stream.blocks.put((message.request_id, None, _CLOSE))  # after every block already waiting
            return
        samples = frame_bytes(message.buffers[0])
        if not samples or len(samples) % 4:
            raise ProtocolError(Code.INVALID_SAMPLES, f"stream audio: {len(samples)} bytes are not float32 samples")
        try:
            stream.blocks.put_nowait((message.request_id, message.header["seq"], samples))
        except asyncio.QueueFull:
            raise ProtocolError(
                Code.BUSY,
                f"stream {stream.stream_id}: {MAX_STREAM_BLOCKS} blocks already wait; block {message.header['seq']} "
                f"is dropped (the stream goes on from the next one). Send blocks no faster than real time.",
            ) from None

    async def close_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()

    async def _open(self, message: Message, local: bool) -> None:
        header = message.header
        if len(self._streams) >= MAX_STREAMS:
            raise ProtocolError(Code.BUSY, f"{MAX_STREAMS} streams are open, the most this daemon runs; try later")
        rate = header["sample_rate_hz"]
        if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
            raise ProtocolError(
                Code.INVALID_SAMPLE_RATE,
                f"stream: sample rate {rate:g} Hz is outside {MIN_SAMPLE_RATE_HZ:g}…{MAX_SAMPLE_RATE_HZ:g} Hz",
            )
        requested = header.get("preset", "lead")
        if not local and isinstance(requested, str) and is_preset_path(requested):
            raise ProtocolError(Code.FORBIDDEN, "remote clients name a preset or send it inline, not a path")
        preset = resolve_preset(requested)
        transcriber = await asyncio.to_thread(self._transcriber, preset, rate)
        stream = _Stream(f"s{next(self._ids)}", message.identity, transcriber)
        self._streams[stream.stream_id] = stream
        stream.task = asyncio.create_task(self._run(stream))
        await self.outbox.reply(
            message.identity,
            p.STREAM,
            message.request_id,
            {
                "action": "open",
                "stream_id": stream.stream_id,
                "sample_rate_hz": rate,
                "lookahead_s": transcriber.latency.total_s,
                "events": [],
            },
        )

    def _transcriber(self, preset, rate: float) -> LiveTranscriber:
        from midibridge.model.live import LiveTranscriber, check_live
        from midibridge.model.pipeline import Transcriber

        check_live(preset)  # before any engine loads
        if self._engine is None:
            self._engine = Transcriber(threads=1).engine_for(preset.engine)
        return LiveTranscriber(self._engine, preset, sample_rate_hz=rate)

    async def _run(self, stream: _Stream) -> None:
        """Feed the stream's blocks in order, answering each with the events it decided; at close, the rest."""
        import numpy as np

        while True:
            request_id, seq, samples = await stream.blocks.get()
            if samples is _CLOSE:
                try:
                    events = await asyncio.to_thread(stream.transcriber.close)
                except Exception as error:
                    await self._error(stream, request_id, Code.INTERNAL, f"the stream failed ({type(error).__name__})")
                    return
                await self._reply(stream, request_id, {"action": "close"}, events)
                return
            try:
                audio = np.frombuffer(samples, "<f4")
                if not np.isfinite(audio).all():
                    raise ProtocolError(Code.AUDIO_NOT_FINITE, f"stream {stream.stream_id}: a block holds NaN or inf")
                events = await asyncio.to_thread(stream.transcriber.feed, audio)
            except MidibridgeError as error:  # the block is not fed; the stream goes on
                await self._error(stream, request_id, error.code, str(error))
                continue
            except Exception as error:  # the stream cannot go on, the daemon does
                await self._error(stream, request_id, Code.INTERNAL, f"the stream failed ({type(error).__name__})")
                self._streams.pop(stream.stream_id, None)
                return
            await self._reply(stream, request_id, {"action": "audio", "seq": seq}, events)

    async def _reply(self, stream: _Stream, request_id: str, header: dict, events) -> None:
        body = {**header, "stream_id": stream.stream_id, "events": [event.to_dict() for event in events]}
        await self.outbox.reply(stream.identity, p.STREAM, request_id, body)

    async def _error(self, stream: _Stream, request_id: str, code: str, message: str) -> None:
        if code == Code.INTERNAL:
            log.exception("stream %s failed", stream.stream_id)
        header = {**p.error_header(code, message), "stream_id": stream.stream_id}
        await self.outbox.reply(stream.identity, p.ERROR, request_id, header)

    def _close_idle(self) -> None:
        now = time.monotonic()
        for stream in [s for s in self._streams.values() if now - s.last_request > STREAM_IDLE_S]:
            del self._streams[stream.stream_id]
            if stream.task is not None:
                stream.task.cancel()
