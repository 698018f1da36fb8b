"""`midibridge host transcribe`: the line protocol DAW adapters use, since their script languages read lines easily.

README.md ("Your own adapter") documents it for adapter writers. In short,
a request file holds one region per line, tab-separated (FIELDS); the
answer is STATUS, PROGRESS, NOTES (+ N and B lines), ERROR and DONE lines
on stdout, flushed one by one (answer_lines), with PROGRESS at least every
TICK_S so a DAW script reading them on its GUI thread can repaint. A reader
that closes its end (Cancel) ends the run: the jobs are cancelled at the
daemon and the command exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from midibridge.model.clip import Tempo
from midibridge.model.errors import ModelError, OptionError
from midibridge.model.midi import note_channels
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, Stage

from .results import OverallProgress, Progress, RegionResult
from .runner import Backend, Job

TICK_S = 0.15
FIELDS = ("id", "path", "start_s", "duration_s", "position_s", "bpm", "beats_per_bar", "bar_offset_beats")


@dataclass(frozen=True)
class HostRegion:
    id: int
    region: Region
    tempo: Tempo


def read_requests(path: Path) -> list[HostRegion]:
    """The regions of a request file; OptionError names the line and field that is wrong."""
    requests = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) != len(FIELDS):
            raise OptionError(
                Code.INVALID_REQUEST,
                f"{path}:{number}: {len(values)} fields; a request line has {len(FIELDS)} "
                f"tab-separated fields: {' '.join(FIELDS)}",
            )
        try:
            id_, source, start, duration, position, bpm, beats_per_bar, bar_offset = values
            requests.append(
                HostRegion(
                    int(id_),
                    Region.from_file(
                        source, start_s=float(start), duration_s=float(duration), position_s=float(position)
                    ),
                    Tempo(bpm=float(bpm), beats_per_bar=float(beats_per_bar), bar_offset_beats=float(bar_offset)),
                )
            )
        except (ValueError, ModelError) as error:  # a number that is not one, or a region or tempo that cannot be
            raise OptionError(Code.INVALID_REQUEST, f"{path}:{number}: {error}") from error
    return requests


def transcribe(requests: list[HostRegion], *, preset: str | None, backend: Backend, out=sys.stdout) -> int:
    """Answer `requests` in lines on `out`; returns how many failed. Returns early, the jobs cancelled, when `out`
    is closed by its reader."""
    lines = _Lines(out)
    state = _State(len(requests))
    # SIGTERM ends the run as a gone reader does: sent from outside, or by the ticker when it finds the reader gone.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        lines.say(f"STATUS {state.now()[1]}")
        with (
            _Ticker(lines, state),
            closing(
                backend.run([Job(r.region, r.tempo) for r in requests], preset=preset, on_progress=state.update)
            ) as results,
        ):
            for result in results:
                state.done(result)
                lines.say(*answer_lines(requests[result.index].id, result))
        lines.say(f"PROGRESS {state.now()[0]:.3f}", f"DONE {state.overall.finished - state.failed} {state.failed}")
    except BrokenPipeError:
        # The reader is gone (closing `results` cancelled the jobs): nothing more can be said, not even at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    finally:
        signal.signal(signal.SIGTERM, previous)
    return state.failed


def _stop(signum, frame):
    raise BrokenPipeError("the reader of midibridge's lines is gone")


class _Lines:
    """Whole lines to the reader, flushed, from the main thread and the ticker alike."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.gone_in: int | None = None  # the thread that found the reader gone

    def say(self, *lines: str) -> None:
        with self.lock:
            if self.gone_in is not None:
                raise BrokenPipeError("the reader of midibridge's lines is gone")
            try:
                self.out.write("".join(line + "\n" for line in lines))
                self.out.flush()
            except OSError:
                self.gone_in = threading.get_ident()
                raise


class _State:
    """How far the run has come and what to tell people: updated by the main thread, read by the ticker."""

    def __init__(self, total: int):
        self.overall = OverallProgress(total)
        self.failed = 0
        self.status = "starting the transcriber…"
        self.waiting: dict[int, int] = {}  # region index -> jobs ahead of it, while queued
        self.lock = threading.Lock()

    def now(self) -> tuple[float, str]:
        with self.lock:
            return self.overall.fraction, self.status

    def update(self, progress: Progress) -> None:
        with self.lock:
            if progress.stage == Stage.QUEUED:
                self.waiting[progress.index] = progress.jobs_ahead or 0
            else:
                self.waiting.pop(progress.index, None)
            self.overall.update(progress)
            self._tell()

    def done(self, result: RegionResult) -> None:
        with self.lock:
            self.waiting.pop(result.index, None)
            self.failed += result.error is not None
            self.overall.done(result.index)
            self._tell()

    def _tell(self) -> None:
        running = self.overall.total - self.overall.finished - len(self.waiting)
        if self.waiting and not running:
            ahead = min(self.waiting.values())
            self.status = (
                f"waiting: {ahead} job{'s' if ahead != 1 else ''} ahead"
                if ahead
                else "waiting for the daemon to finish a job"
            )
        else:
            self.status = f"transcribing: {self.overall.finished} of {self.overall.total} done"


class _Ticker(threading.Thread):
    """Says PROGRESS (and STATUS, when it changed) every TICK_S, whatever the daemon is doing. When the reader is
    gone it stops the main thread, wherever that waits, with SIGTERM (see _stop)."""

    def __init__(self, lines: _Lines, state: _State):
        super().__init__(name="midibridge-ticker", daemon=True)
        self.lines, self.state = lines, state
        self.stopped = threading.Event()
        self.main = threading.main_thread().ident

    def run(self) -> None:
        told = self.state.now()[1]
        while not self.stopped.wait(TICK_S):
            fraction, status = self.state.now()
            try:
                self.lines.say(*([f"STATUS {status}"] if status != told else []), f"PROGRESS {fraction:.3f}")
            except OSError:
                if self.lines.gone_in == self.ident and self.main is not None:  # else the main thread knows already
                    signal.pthread_kill(self.main, signal.SIGTERM)
                return
            told = status

    def __enter__(self) -> _Ticker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join()


def answer_lines(region_id: int, result: RegionResult) -> list[str]:
    if result.error is not None:
        message = " ".join(str(result.error).split())  # one line, whatever the message held
        return [f"ERROR {region_id} [{result.error.code}] {message}"]
    assert result.clip is not None, "a region without an error has its clip"
    notes = result.clip.notes
    lines = [f"NOTES {region_id} {len(notes)}" + (" drums" if result.clip.drums else "")]
    for note, (channel, bent) in zip(notes, note_channels(result.clip)):
        lines.append(f"N {region_id} {note.start_s:.6f} {note.end_s:.6f} {note.pitch} {note.velocity} {channel}")
        if bent and note.bends:
            lines += [
                f"B {region_id} {channel} {max(b.time_s, note.start_s):.6f} {b.semitones:.6f}"
                for b in note.bends
                if b.time_s < note.end_s
            ]
            lines.append(f"B {region_id} {channel} {note.end_s:.6f} 0")
    return lines
