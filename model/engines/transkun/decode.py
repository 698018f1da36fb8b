"""Transkun's semi-CRF decode in numpy: the best set of non-overlapping intervals per key, given every interval's
score (transkun/CRF/NeuralSemiCRFInterval.py, `viterbiBackward`, which `transcribe` uses).

A key's path through a window's frames either skips a frame (score 0: Transkun's
"noise" score is zero), or plays a note from frame b to a later frame e, the
next note able to start at e; a one-frame note at b is added whenever its own
score is positive. The best path is found backwards from the last frame, so
the path from any frame on is known, and each key is read from the frame its
caller asks for: `transcribe` starts reading a window where the last window's
notes ended. Arithmetic and tie-breaking follow the PyTorch code (float32, the
earliest choice wins a tie, skipping first), so equal scores decode to equal
intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK_FRAMES = 64  # begins whose scores are made at once: (keys, 64, frames) float32, 16 MB for a window


def best_intervals(
    query: np.ndarray, key: np.ndarray, single_score: np.ndarray, first_frames: Sequence[int]
) -> list[list[tuple[int, int]]]:
    """Each key's intervals (first frame, last frame), in order, from `first_frames[key]` on.

    query, key: (keys, frames, CONTEXT_SIZE) float32; the interval from frame b to frame e scores
    (query[e] . key[b]) * (e - b), made BLOCK_FRAMES begins at a time so that no (keys, frames, frames) matrix is held.
    single_score: (keys, frames) float32, a one-frame note's score.
    """
    n_keys, n_frames = single_score.shape
    singles = single_score * (single_score > 0)
    best = np.empty((n_keys, n_frames), dtype=np.float32)  # the best path's score from frame b on
    best[:, -1] = singles[:, -1]
    # ends[key, b]: where the note starting at b ends on the best path, or -1 when the path skips frame b
    ends = np.full((n_keys, n_frames), -1, dtype=np.int64)
    keys = np.arange(n_keys)
    for block_end in range(n_frames - 1, 0, -BLOCK_FRAMES):
        block_start = max(block_end - BLOCK_FRAMES, 0)
        # scores[:, b - block_start, e - block_start - 1] for begins b in the block and every end e after block_start
        scores = np.matmul(key[:, block_start:block_end], query[:, block_start + 1 :].transpose(0, 2, 1))
        scores *= (
            np.arange(block_start + 1, n_frames)[np.newaxis, :] - np.arange(block_start, block_end)[:, np.newaxis]
        ).astype(np.float32)
        for begin in range(block_end - 1, block_start - 1, -1):
            skip = best[:, begin + 1]
            through = best[:, begin + 1 :] + scores[:, begin - block_start, begin - block_start :]
            choice = through.argmax(axis=1)
            top = through[keys, choice]
            play = top > skip
            ends[:, begin] = np.where(play, begin + 1 + choice, -1)
            best[:, begin] = np.where(play, top, skip) + singles[:, begin]
    return [_read_path(ends[key], single_score[key] > 0, first_frames[key]) for key in range(n_keys)]


def _read_path(ends: np.ndarray, single: np.ndarray, frame: int) -> list[tuple[int, int]]:
    """viterbiBackward's backtracking for one key: from `frame`, follow the best path to the last frame."""
    last = ends.shape[0] - 1
    # Only frames where the path plays something matter: jump from one to the next.
    marked = np.flatnonzero((ends[:last] >= 0) | single[:last])
    path = []
    at = np.searchsorted(marked, frame)
    while at < marked.shape[0]:
        begin = int(marked[at])
        if single[begin]:
            path.append((begin, begin))
        end = int(ends[begin])
        if end < 0:
            at += 1
        else:
            path.append((begin, end))
            at = np.searchsorted(marked, end)
    if single[last]:
        path.append((last, last))
    return path
