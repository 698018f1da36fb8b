"""`midibridge live`: a JACK client with one audio input and one MIDI output, turning what is played into notes while
it is played.

The engine runs in THIS process (`InProcessLive`, a backend object as plugin_host.runner's are): a live stream needs
the model next to the audio, and the daemon's `stream` request (bridge/PROTOCOL.md) is for adapters that cannot host
a JACK client. JACK's process callback never waits: it copies each period's audio into a lock-free ring buffer and
writes the MIDI events a worker thread has queued; the worker reads the ring, feeds the stream
(model.live.LiveTranscriber) and queues its events, each due at the end of the period whose audio decided it.
Ctrl-C (or SIGTERM) ends every sounding note before the client leaves.
"""

from __future__ import annotations

import argparse
import queue
import signal
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import mido
import numpy as np

from midibridge.model.clip import LiveEvent
from midibridge.model.live import LiveTranscriber, check_live
from midibridge.model.midi import BEND_RANGE_RPN, BEND_RANGE_SEMITONES, bend_to_pitchwheel, rpn
from midibridge.model.presets import Preset, load_preset
from midibridge.model.vocabulary import Code, EventKind
from midibridge.plugin_host.results import ClientError

RING_SECONDS = 2.0  # audio the ring holds while the worker is busy: a longer stall drops periods (counted)
HEADER = struct.Struct("<qI")  # a period in the ring: its JACK frame time and frame count, then its float32 samples
IDLE_S = 0.001  # the worker's poll when the ring is empty
FIGURES_KEPT = 100_000  # periods (about 9 minutes) and note-ons --latency-report describes
CHANNEL = 0  # one line, one note at a time: channel 1, ±BEND_RANGE_SEMITONES as the MIDI files say (RPN 0)


@dataclass(frozen=True, kw_only=True)
class InProcessLive:
    """Live streams in this process: the preset's engine loaded here once."""

    threads: int = 1

    @property
    def where(self) -> str:
        return "in-process"

    def open(self, preset: Preset, *, sample_rate_hz: float) -> LiveTranscriber:
        from midibridge.model.pipeline import Transcriber

        check_live(preset)  # before the model loads
        engine = Transcriber(threads=self.threads).engine_for(preset.engine)
        return LiveTranscriber(engine, preset, sample_rate_hz=sample_rate_hz)


@dataclass
class Figures:
    """What --latency-report prints: the worker's time per period of audio, as elapsed (`work_s`) and as its own CPU
    time (`cpu_s`: the work itself, without the waits for the GIL or a core that the elapsed time includes), and how
    long after the audio it decided each note-on was written; the latest FIGURES_KEPT of each, so that an hour's
    session keeps its memory flat."""

    work_s: deque[float] = field(default_factory=lambda: deque(maxlen=FIGURES_KEPT))
    cpu_s: deque[float] = field(default_factory=lambda: deque(maxlen=FIGURES_KEPT))
    note_on_delay_s: deque[float] = field(default_factory=lambda: deque(maxlen=FIGURES_KEPT))
    note_ons: int = 0
    dropped_periods: int = 0


def midi_bytes(event: LiveEvent) -> bytes:
    """The MIDI message of `event` on CHANNEL, as the MIDI files write it."""
    if event.kind == EventKind.NOTE_ON:
        message = mido.Message("note_on", channel=CHANNEL, note=event.pitch, velocity=max(1, event.velocity))
    elif event.kind == EventKind.NOTE_OFF:
        message = mido.Message("note_off", channel=CHANNEL, note=event.pitch)
    else:
        message = mido.Message("pitchwheel", channel=CHANNEL, pitch=bend_to_pitchwheel(event.semitones))
    return bytes(message.bytes())


def bend_range_messages() -> list[bytes]:
    """RPN 0 (pitch bend sensitivity) = BEND_RANGE_SEMITONES on CHANNEL, as a MIDI file's set-up says it."""
    return [
        bytes(mido.Message("control_change", **fields).bytes())
        for fields in rpn(CHANNEL, BEND_RANGE_RPN, BEND_RANGE_SEMITONES)
    ]


class LiveClient:
    """The JACK client: `name`:in (audio) and `name`:midi_out, the stream `backend` opens for `preset`."""

    def __init__(self, *, preset: Preset, backend: InProcessLive, name: str = "midibridge"):
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.stream = backend.open(preset, sample_rate_hz=self.client.samplerate)
        self.audio_in = self.client.inports.register("in")
        self.midi_out = self.client.midi_outports.register("midi_out")
        self.figures = Figures()
        self.period_s = self.client.blocksize / self.client.samplerate
        self._ring = jack.RingBuffer(int(RING_SECONDS * self.client.samplerate * 4))
        self._events: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()  # (due frame, message)
        self._pending: list[tuple[int, bytes]] = []  # the callback's own: events due in a later period
        self._sounding: dict[int, int] = {}  # pitch → frame of its note-on's audio, for note-offs at the end
        self._first_frame: int | None = None  # JACK frame time of the stream's first sample
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="midibridge-live", daemon=True)
        self.client.set_process_callback(self._process)

    def start(self, *, inputs: list[str], midi_outs: list[str]) -> None:
        self._worker.start()
        self.client.activate()
        for port in inputs:
            self.client.connect(port, self.audio_in)
        for port in midi_outs:
            self.client.connect(self.midi_out, port)

    def stop(self) -> None:
        """Every sounding note ended (its note-off written), then the client closed."""
        self._stop.set()
        self._worker.join()
        for pitch in list(self._sounding):
            for event in (LiveEvent(EventKind.BEND, 0.0, pitch), LiveEvent(EventKind.NOTE_OFF, 0.0, pitch)):
                self._events.put((0, midi_bytes(event)))
        deadline = time.monotonic() + 1.0
        while (not self._events.empty() or self._pending) and time.monotonic() < deadline:
            time.sleep(self.client.blocksize / self.client.samplerate)
        time.sleep(2 * self.client.blocksize / self.client.samplerate)  # the last period written goes out
        self.client.deactivate()
        self.client.close()

    def _process(self, frames: int) -> None:
        """JACK's callback: nothing here waits (a full ring drops the period, counted; the queue is read without
        blocking)."""
        now = self.client.last_frame_time
        audio = self.audio_in.get_array()
        if self._ring.write_space >= HEADER.size + audio.nbytes:
            self._ring.write(HEADER.pack(now, frames) + audio.tobytes())
        else:
            self.figures.dropped_periods += 1
        while not self._events.empty():
            self._pending.append(self._events.get_nowait())
        self.midi_out.clear_buffer()
        if not self._pending:
            return
        self._pending.sort(key=lambda due: due[0])
        offset, later = 0, []
        for due, message in self._pending:
            if due >= now + frames:
                later.append((due, message))
                continue
            offset = max(offset, due - now)  # late events go out at once, in order
            self.midi_out.write_midi_event(offset, message)
        self._pending = later

    def _work(self) -> None:
        rate = self.client.samplerate
        while not self._stop.is_set():
            if self._ring.read_space < HEADER.size:
                time.sleep(IDLE_S)
                continue
            frame_time, frames = HEADER.unpack(self._ring.read(HEADER.size))
            audio = np.frombuffer(self._ring.read(frames * 4), np.float32)
            if self._first_frame is None:
                self._first_frame = frame_time
            started, started_cpu = time.perf_counter(), time.thread_time()
            events = self.stream.feed(audio)
            self.figures.work_s.append(time.perf_counter() - started)
            self.figures.cpu_s.append(time.thread_time() - started_cpu)
            due = frame_time + frames  # decided once this period's audio was in: written as soon as it can be
            for event in events:
                audio_frame = self._first_frame + round(event.time_s * rate)
                if event.kind == EventKind.NOTE_ON:
                    if not self.figures.note_ons:  # the synth hears the bend range before the first note
                        for message in bend_range_messages():
                            self._events.put((due, message))
                    self.figures.note_ons += 1
                    self._sounding[event.pitch] = audio_frame
                    self.figures.note_on_delay_s.append((due - audio_frame) / rate)
                elif event.kind == EventKind.NOTE_OFF:
                    self._sounding.pop(event.pitch, None)
                self._events.put((due, midi_bytes(event)))


def latency_report(client: LiveClient) -> str:
    period_s, figures = client.period_s, client.figures
    work = np.asarray(figures.work_s or [0.0]) / period_s
    cpu = np.asarray(figures.cpu_s or [0.0]) / period_s
    delay = np.asarray(figures.note_on_delay_s or [np.nan]) * 1000
    latency = client.stream.latency
    return "\n".join(
        [
            f"look-ahead {latency.lookahead_s * 1000:.0f} ms (+ {latency.resampler_s * 1000:.1f} ms resampling); "
            f"period {period_s * 1000:.1f} ms",
            f"note-ons written after their start in the audio: median {np.median(delay):.0f} ms, "
            f"p95 {np.percentile(delay, 95):.0f} ms, over the last {len(figures.note_on_delay_s)} of "
            f"{figures.note_ons} notes",
            f"worker time per period, as a share of it: mean {np.mean(work):.1%}, median {np.median(work):.1%}, "
            f"p95 {np.percentile(work, 95):.1%}, max {work.max():.1%}; "
            f"{figures.dropped_periods} periods dropped",
            f"worker CPU time per period, as a share of it: mean {np.mean(cpu):.1%}, median {np.median(cpu):.1%}, "
            f"p95 {np.percentile(cpu, 95):.1%}, max {cpu.max():.1%}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    """`midibridge live`: until Ctrl-C or SIGTERM; 0 when it ends so."""
    preset = load_preset(args.preset)
    check_live(preset)
    try:
        import jack
    except (ImportError, OSError) as error:  # the binding is missing, or libjack is
        raise ClientError(
            Code.JACK_UNAVAILABLE, f"JACK cannot be used ({error}): install jackd2 and the 'live' extra (README, Live)"
        ) from error
    try:
        client = LiveClient(preset=preset, backend=InProcessLive(), name=args.client_name)
    except jack.JackOpenError as error:
        raise ClientError(
            Code.JACK_UNAVAILABLE, f"no JACK server answers ({error}): start jackd or PipeWire"
        ) from error
    sys.setswitchinterval(0.0005)  # JACK's callback thread waits for the GIL at most this long, not 5 ms
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    client.start(inputs=args.input, midi_outs=args.midi_out)
    name = client.client.name
    print(f"midibridge live: preset {preset.name}, {name}:in -> {name}:midi_out", flush=True)
    if not args.input:
        print(f"  connect audio:  jack_connect system:capture_1 {name}:in", flush=True)
    if not args.midi_out:
        print(f"  connect MIDI:   jack_connect {name}:midi_out <synth's MIDI in>", flush=True)
    while not stopping.wait(0.1):  # a bounded wait, so that the signal handler runs promptly
        pass
    client.stop()
    if args.latency_report:
        print(latency_report(client), flush=True)
    print("midibridge live: stopped, every note ended", file=sys.stderr)
    return 0
