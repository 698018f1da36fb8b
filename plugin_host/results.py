"""What a transcription job gives back to the host side, wherever it ran: results, progress, and the client's errors.

Standard library only: the in-process path uses these without loading ZeroMQ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from midibridge.model.clip import Clip
from midibridge.model.errors import MidibridgeError
from midibridge.model.vocabulary import Code, Stage


class ClientError(MidibridgeError):
    """An error the daemon answered (its code, as it came), or one of the client's and the command line's own."""


class DaemonUnavailable(ClientError):
    """No daemon answers (code `daemon_unavailable`); the message says what to start."""

    def __init__(self, message: str):
        super().__init__(Code.DAEMON_UNAVAILABLE, message)


@dataclass(frozen=True)
class Progress:
    index: int  # which region of the request
    job_id: str
    stage: str  # a Stage: queued while it waits for a worker, then decode, infer, notes (a newer daemon may add)
    fraction: float
    jobs_ahead: int | None = None  # while queued: how many jobs run before it


@dataclass(frozen=True)
class RegionResult:
    """How one region ended: a clip and its MIDI file, or the error that stopped it."""

    index: int
    job_id: str
    clip: Clip | None = None
    smf: bytes | None = None
    cached: bool = False
    error: MidibridgeError | None = None


ProgressCallback = Callable[[Progress], None]


class OverallProgress:
    """How far a request of `total` regions has come, 0..1: the finished ones, plus each running one's share of
    its model runs (which are most of its time)."""

    def __init__(self, total: int):
        self.total, self.finished = total, 0
        self._running: dict[int, float] = {}

    @property
    def fraction(self) -> float:
        return (self.finished + sum(self._running.values())) / max(self.total, 1)

    def update(self, progress: Progress) -> float:
        if progress.stage == Stage.INFER:
            self._running[progress.index] = progress.fraction
        return self.fraction

    def done(self, index: int) -> float:
        self.finished += 1
        self._running.pop(index, None)
        return self.fraction
