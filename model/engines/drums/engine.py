"""The drum model as a midibridge engine: mono audio at 22.05 kHz in, one short GM drum note per hit out."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from threadpoolctl import threadpool_limits

from ...clip import Note
from ...read_ahead import read_ahead
from ...vocabulary import Stage
from .. import ProgressCallback
from .constants import (
    BLOCK_FRAMES,
    CONTEXT_FRAMES,
    FRAME_RATE_HZ,
    HOP_SIZE,
    N_MEL_BANDS,
    NOTE_LENGTH_S,
    OUTPUT_NOTES,
    SAMPLE_RATE_HZ,
)
from .detect import detect
from .features import Contexts, context_stream, frame_blocks, log_mel_stream
from .network import activations, load_model
from .options import DrumOptions
from .weights import find_weights


class Drums:
    """The drum model, loaded (and checked) once. Its MLPs run in numpy on one BLAS thread and its convolutional
    network on one onnxruntime thread: their matrices are small, and more threads only wait on each other (and on the
    decoding helper): measured 5-30x slower on 2 busy cores. `threads` is accepted for the engine shape;
    `weights_path`: another copy of model.npz (None: the one beside this file)."""

    name = "drums"
    sample_rate_hz = SAMPLE_RATE_HZ
    hop_samples = HOP_SIZE

    def __init__(self, *, weights_path: str | os.PathLike | None = None, threads: int = 0):
        self._model = load_model(find_weights(weights_path))

    def notes(
        self,
        samples: Iterable[np.ndarray],
        *,
        n_samples: int,
        options: DrumOptions,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[Note, ...]:
        """One note per hit (the GM drum note as pitch, velocity from its level), from mono float32 chunks at
        SAMPLE_RATE_HZ (about `n_samples` of them); seconds from the first sample. Blocks of ~48 s are analysed
        one at a time, so memory stays bounded for inputs of any length."""
        with threadpool_limits(limits=1, user_api="blas"):
            notes = self._hits(samples, n_samples=n_samples, options=options, on_progress=on_progress)
        if on_progress:
            on_progress(Stage.INFER, 1.0)  # every block analysed, whatever `n_samples` estimated
            on_progress(Stage.NOTES, 0.0)
        return tuple(sorted(notes, key=lambda note: (note.start_s, note.pitch)))

    def _hits(
        self,
        samples: Iterable[np.ndarray],
        *,
        n_samples: int,
        options: DrumOptions,
        on_progress: ProgressCallback | None,
    ) -> list[Note]:
        total_frames = max(1, n_samples // HOP_SIZE)
        # Decoding, resampling and the log-mel frames are made in a helper while the networks run on the frames
        # before (207 s of MDB Drums: 4.7 -> 3.6 s); each row: a frame's bands, then the networks' outputs for it.
        floor = options.silence_floor_dbfs / 10.0  # in the log-mel's units; digital silence is exactly at -70 dB
        contexts = context_stream(read_ahead(log_mel_stream(samples), name="drums"))
        rows = (np.hstack([c.logmel, self._activations(c, floor)]) for c in contexts)
        notes = []
        for core, first, block in frame_blocks(rows):
            if on_progress:  # the documented stage the progress bars count: the model's share of the work
                on_progress(Stage.INFER, min(1.0, core / total_frames))
            logmel, act = block[:, :N_MEL_BANDS], block[:, N_MEL_BANDS:]
            if logmel.max(initial=-np.inf) <= floor:
                continue  # silence: nothing to find, and PFNMF would only amplify noise
            for frame, gm_note, level_db in detect(act, logmel, self._model.kick_templates, options):
                if core <= frame + first < core + BLOCK_FRAMES:  # margins belong to the neighbouring blocks
                    start_s = (frame + first) / FRAME_RATE_HZ
                    notes.append(Note(gm_note, start_s, start_s + NOTE_LENGTH_S, _velocity(level_db, options)))
        return notes

    def _activations(self, contexts: Contexts, floor: float) -> np.ndarray:
        """(n, len(OUTPUT_NOTES)) the networks' outputs for each frame of `contexts`; 0 where its whole context is
        at or below the silence floor (the networks give at most 0.016 there, far below any threshold): a track's
        silent stretches cost no network time. The networks run on each stretch of sounding frames at once."""
        row_loudest = contexts.rows.max(axis=1)
        sounding = np.lib.stride_tricks.sliding_window_view(row_loudest, CONTEXT_FRAMES).max(axis=1) > floor
        act = np.zeros((len(sounding), len(OUTPUT_NOTES)), np.float32)
        edges = np.flatnonzero(np.diff(np.concatenate([[False], sounding, [False]])))
        for start, end in zip(edges[::2], edges[1::2]):
            act[start:end] = activations(contexts.rows[start : end + CONTEXT_FRAMES - 1], self._model)
        return act


def _velocity(level_db: float, options: DrumOptions) -> int:
    """The hit's band level mapped linearly: velocity_floor_dbfs → 1, velocity_range_db above it → 127."""
    fraction = (level_db - options.velocity_floor_dbfs) / options.velocity_range_db
    return 1 + round(126 * min(1.0, max(0.0, fraction)))
