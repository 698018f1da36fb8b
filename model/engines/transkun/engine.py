"""Transkun 2.0 as a midibridge engine: mono audio at 44.1 kHz in, piano notes with velocities out.

The audio streams through 16 s windows every 8 s (constants.py); each
window is decoded before the next is cut, and its interval scores are made a
block at a time (decode.py), so memory holds a few per-frame tensors of one
window (88 x 691 x 256 float32, 62 MB each), however long the recording.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from pathlib import Path

import numpy as np
import onnxruntime
from threadpoolctl import threadpool_limits

from ...clip import Note
from ...errors import WeightsError
from ...vocabulary import Code, Stage
from .. import ProgressCallback
from .constants import (
    AUDIO,
    CONTEXT,
    FIRST_FRAME,
    HOP_SAMPLES,
    KEY,
    LEAD_SAMPLES,
    N_KEYS,
    OFFSET_CONTEXT,
    ONSET_CONTEXT,
    QUERY,
    REFINEMENT_LOGITS,
    SAMPLE_RATE_HZ,
    SINGLE_SCORE,
    VELOCITY_LOGITS,
    WINDOW_HOP_FRAMES,
    WINDOW_HOP_S,
    WINDOW_HOP_SAMPLES,
    WINDOW_S,
    WINDOW_SAMPLES,
)
from .decode import best_intervals
from .notes import Event, NoteMerger, window_events
from .options import TranskunOptions
from .weights import FIX, find_weights, heads_path


class Transkun:
    """Transkun's two graphs, loaded once. `weights_path`: the network graph, its heads beside it (None: the installed
    ones); `threads`: onnxruntime's intra-op threads (0: one per core)."""

    name = "transkun"
    sample_rate_hz = SAMPLE_RATE_HZ
    hop_samples = HOP_SAMPLES

    def __init__(self, *, weights_path: str | os.PathLike | None = None, threads: int = 0):
        network = find_weights(weights_path)
        self._network = _session(network, threads)
        self._heads = _session(heads_path(network), threads)

    def notes(
        self,
        samples: Iterable[np.ndarray],
        *,
        n_samples: int,
        options: TranskunOptions,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[Note, ...]:
        """The notes of mono float32 chunks at SAMPLE_RATE_HZ (about `n_samples` of them), in seconds from the
        first sample. on_progress(Stage.INFER, fraction) every _NetworkRunner.TICK_S, inside a window too; raising
        from it cancels, ending the window's run at once."""
        merger = NoteMerger(N_KEYS)
        first_frames = [FIRST_FRAME] * N_KEYS
        windows = cut_windows(samples)
        with _NetworkRunner(self._network, expected_windows=window_count(n_samples), on_progress=on_progress) as runner:
            # The network runs the next window while this one is decoded: a decode needs only its own window's outputs.
            runner.start(next(windows))
            index = 0
            while runner.running:
                outputs = runner.wait()
                window = next(windows, None)
                if window is not None:
                    runner.start(window)
                events, last_ends = self._window_events(outputs, first_frames)
                del outputs  # 190 MB, freed before the next window's come back
                merger.add(
                    events, window_start_s=index * WINDOW_HOP_SAMPLES / SAMPLE_RATE_HZ - (WINDOW_S - WINDOW_HOP_S)
                )
                # the next window decodes each key from where its last complete note here ended
                first_frames = [max(end - WINDOW_HOP_FRAMES, 0) for end in last_ends]
                index += 1
                runner.report(index)
        if on_progress:
            on_progress(Stage.NOTES, 0.0)
        return merger.notes()

    def _window_events(self, outputs: list[np.ndarray], first_frames: list[int]) -> tuple[list[list[Event]], list[int]]:
        """notes.window_events for one window's network outputs, each key decoded from its first frame on."""
        query, key, single_score, context = outputs
        # The decode's small products on every core only fight each other (measured 0.3 s a window on one BLAS
        # thread, 2 to 4 s on two).
        with threadpool_limits(limits=1, user_api="blas"):
            intervals = best_intervals(query, key, single_score, first_frames)
        return window_events(intervals, *self._heads_for(intervals, context))

    def _heads_for(self, intervals: list[list[tuple[int, int]]], context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The velocity and refinement logits of every interval, key by key, read from the context at its ends."""
        keys = np.array([key for key, found in enumerate(intervals) for _ in found], dtype=np.int64)
        if keys.shape[0] == 0:
            return np.zeros((0, 128), dtype=np.float32), np.zeros((0, 4), dtype=np.float32)
        begins, ends = np.array([interval for found in intervals for interval in found], dtype=np.int64).T
        ends_context = {ONSET_CONTEXT: context[keys, begins], OFFSET_CONTEXT: context[keys, ends]}
        velocity, refinement = self._heads.run([VELOCITY_LOGITS, REFINEMENT_LOGITS], ends_context)
        return velocity, refinement


class _NetworkRunner:
    """The network's runs, one window at a time on a thread of their own, with progress and cancel.

    While a run goes on, the caller's thread waits in steps of TICK_S and
    reports progress each time (a window takes seconds); when on_progress
    raises (a cancel), leaving the `with` block tells the run to stop
    (onnxruntime's RunOptions.terminate, seen between two of its ops) and the
    error goes on once it has.
    """

    TICK_S = 0.25

    def __init__(
        self, session: onnxruntime.InferenceSession, *, expected_windows: int, on_progress: ProgressCallback | None
    ):
        self._session = session
        self._expected = expected_windows
        self._on_progress = on_progress
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="transkun-network")
        self._run: Future | None = None
        self._options = onnxruntime.RunOptions()
        self._waited = 0  # windows whose outputs came back
        self._window_s = 0.0  # how long the last one took, to say how far the next one is

    def __enter__(self) -> _NetworkRunner:
        return self

    def __exit__(self, *exc_info) -> None:
        self._options.terminate = True
        self._pool.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return self._run is not None

    def start(self, window: np.ndarray) -> None:
        self._run = self._pool.submit(
            self._session.run, [QUERY, KEY, SINGLE_SCORE, CONTEXT], {AUDIO: window}, self._options
        )

    def wait(self) -> list[np.ndarray]:
        """The outputs of the window started last: query, key, single-frame score and context."""
        assert self._run is not None
        started = time.monotonic()
        while True:
            try:
                outputs = self._run.result(timeout=self.TICK_S)
                break
            except FuturesTimeout:
                share = (time.monotonic() - started) / self._window_s if self._window_s else 0.0
                self.report(self._waited + min(share, 0.9))
        self._window_s = time.monotonic() - started
        self._run = None
        self._waited += 1
        return outputs

    def report(self, windows_done: float) -> None:
        if self._on_progress:
            self._on_progress(Stage.INFER, min(windows_done / self._expected, 1.0))


def window_count(n_samples: int) -> int:
    """How many windows `cut_windows` cuts from `n_samples` of audio: every one starting before the zeros after it
    end (transcribe's `range(0, nSample, stepSize)`)."""
    return -(-(n_samples + 2 * LEAD_SAMPLES) // WINDOW_HOP_SAMPLES)


def cut_windows(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """WINDOW_SAMPLES windows every WINDOW_HOP_SAMPLES of LEAD_SAMPLES zeros + the audio + LEAD_SAMPLES zeros.

    A window is cut as soon as its audio is there; the buffer holds less than two windows of audio.
    """
    buffer = np.zeros(LEAD_SAMPLES, dtype=np.float32)
    buffer_start = 0  # where buffer[0] lies in the zeros + audio stream
    window = 0
    n_audio = 0
    for chunk in chunks:
        n_audio += chunk.shape[0]
        buffer = np.concatenate([buffer, chunk.astype(np.float32, copy=False)])
        while window * WINDOW_HOP_SAMPLES + WINDOW_SAMPLES <= buffer_start + buffer.shape[0]:
            offset = window * WINDOW_HOP_SAMPLES - buffer_start
            yield buffer[offset : offset + WINDOW_SAMPLES]
            window += 1
        consumed = window * WINDOW_HOP_SAMPLES - buffer_start
        buffer = buffer[consumed:]
        buffer_start += consumed
    for tail_window in range(window, window_count(n_audio)):  # the last ones end in zeros
        offset = tail_window * WINDOW_HOP_SAMPLES - buffer_start
        last = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        rest = buffer[offset : offset + WINDOW_SAMPLES]
        last[: rest.shape[0]] = rest
        yield last


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # onnxruntime's warnings are for its developers, not our users
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the decode a core
    # onnxruntime's arena grows by doubling and keeps it: a window then holds 1.23 GB, not 0.93 GB, for no speed seen
    options.enable_cpu_mem_arena = False
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise WeightsError(Code.MODEL_CORRUPT, f"onnxruntime cannot load {path}: {error}; {FIX}.") from error
