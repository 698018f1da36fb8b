"""Transkun 2.0 as a midibridge engine: mono audio at 44.1 kHz in, piano notes with velocities out.

The audio streams through 16 s windows every 8 s (constants.py); each
window is decoded before the next is cut, and its interval scores are made a
block at a time (decode.py), so memory holds a few per-frame tensors of one
window (88 x 691 x 256 float32, 62 MB each), however long the recording.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
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
        first sample. on_progress(Stage.INFER, fraction) after each window; raising from it cancels."""
        merger = NoteMerger(N_KEYS)
        first_frames = [FIRST_FRAME] * N_KEYS
        expected = window_count(n_samples)
        for index, window in enumerate(cut_windows(samples)):
            events, last_ends = self._window_events(window, first_frames)
            merger.add(events, window_start_s=index * WINDOW_HOP_SAMPLES / SAMPLE_RATE_HZ - (WINDOW_S - WINDOW_HOP_S))
            # the next window decodes each key from where its last complete note here ended
            first_frames = [max(end - WINDOW_HOP_FRAMES, 0) for end in last_ends]
            if on_progress:
                on_progress(Stage.INFER, min((index + 1) / expected, 1.0))
        if on_progress:
            on_progress(Stage.NOTES, 0.0)
        return merger.notes()

    def _window_events(self, window: np.ndarray, first_frames: list[int]) -> tuple[list[list[Event]], list[int]]:
        """notes.window_events for one window, each key decoded from its first frame on. The network's outputs
        (190 MB) are dropped on return, before the next window runs."""
        query, key, single_score, context = self._network.run([QUERY, KEY, SINGLE_SCORE, CONTEXT], {AUDIO: window})
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
