"""Log-mel spectrogram and network-input framing, in numpy: whole arrays (`log_mel`, as training renders them) or
streamed from chunks (`log_mel_stream`, `context_stream`) in blocks with margins (`frame_blocks`), as the engine
reads them.

Shapes use: S samples, F frames, B = N_MEL_BANDS, K = FFT_SIZE // 2 + 1 bins,
C = CONTEXT_FRAMES.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .constants import (
    BLOCK_FRAMES,
    BLOCK_MARGIN_FRAMES,
    CONTEXT_AFTER,
    CONTEXT_BEFORE,
    CONTEXT_FRAMES,
    FFT_SIZE,
    HOP_SIZE,
    LOG_FLOOR,
    MEL_HIGH_HZ,
    MEL_LOW_HZ,
    N_MEL_BANDS,
    SAMPLE_RATE_HZ,
)

N_BINS = FFT_SIZE // 2 + 1


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """Triangular mel filters, shape (K, B), float32; each filter sums to 1."""
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), N_MEL_BANDS + 2))
    bins_hz = np.arange(N_BINS) * SAMPLE_RATE_HZ / FFT_SIZE
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    falling = (hi - bins_hz[None, :]) / np.maximum(hi - mid, 1e-9)
    tri = np.maximum(0.0, np.minimum(rising, falling))  # (B, K)
    # Narrow low bands may fall between bins: give each at least its nearest bin.
    empty = tri.sum(axis=1) == 0
    tri[empty, np.searchsorted(bins_hz, mid[empty, 0]).clip(0, N_BINS - 1)] = 1.0
    tri /= tri.sum(axis=1, keepdims=True)
    return tri.T.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(FFT_SIZE + 1)[:-1].astype(np.float32)


def frame_count(n_samples: int) -> int:
    """Frames whose centre lies inside n_samples (frame f is centred on sample f * HOP_SIZE)."""
    return 0 if n_samples <= 0 else (n_samples - 1) // HOP_SIZE + 1


def log_mel(samples: np.ndarray) -> np.ndarray:
    """Log10 mel power of centred frames.

    samples: (S,) float32 at SAMPLE_RATE_HZ. Returns (frame_count(S), B) float32.
    Frame f is centred on sample f * HOP_SIZE; the signal is zero-padded at both ends.
    """
    n_frames = frame_count(len(samples))
    if n_frames == 0:
        return np.zeros((0, N_MEL_BANDS), np.float32)
    half = FFT_SIZE // 2
    padded = np.zeros((n_frames - 1) * HOP_SIZE + FFT_SIZE, np.float32)
    kept = samples[: len(padded) - half]
    padded[half : half + len(kept)] = kept
    return log_mel_of_frames(padded, n_frames)


def mel_band_centres_hz() -> np.ndarray:
    """(B,) centre frequency of each mel band in Hz."""
    mel = np.linspace(_hz_to_mel(MEL_LOW_HZ), _hz_to_mel(MEL_HIGH_HZ), N_MEL_BANDS + 2)[1:-1]
    return _mel_to_hz(mel)


def log_mel_of_frames(signal: np.ndarray, n_frames: int) -> np.ndarray:
    """Log10 mel power of n_frames windows signal[f*HOP_SIZE : f*HOP_SIZE + FFT_SIZE].

    signal: (>= (n_frames - 1) * HOP_SIZE + FFT_SIZE,) float32. Returns (n_frames, B) float32.
    """
    if n_frames <= 0:
        return np.zeros((0, N_MEL_BANDS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(signal, FFT_SIZE)[::HOP_SIZE][:n_frames]
    spectrum = np.fft.rfft(frames * _window(), axis=1)  # (F, K)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32) * (2.0 / FFT_SIZE) ** 2
    return np.log10(power @ mel_filterbank() + LOG_FLOOR).astype(np.float32)


def context_stack(logmel: np.ndarray) -> np.ndarray:
    """Network input for every frame: its context of log-mel frames, flattened.

    logmel: (F, B). Returns (F, C * B) float32; frames outside the input repeat the
    silence floor log10(LOG_FLOOR).
    """
    return stack_contexts(padded_with_floor(logmel))


def padded_with_floor(logmel: np.ndarray) -> np.ndarray:
    """logmel: (F, B). Returns (F + C - 1, B): the frames with the silence floor as the context outside them."""
    padded = np.full((CONTEXT_FRAMES - 1 + len(logmel), logmel.shape[1]), np.log10(LOG_FLOOR), np.float32)
    padded[CONTEXT_BEFORE : CONTEXT_BEFORE + len(logmel)] = logmel
    return padded


def context_stream(logmel_pieces: Iterable[np.ndarray]) -> Iterator[Contexts]:
    """`context_stack` of the concatenated pieces, piece by piece: each frame's context reaches into the pieces
    around it (the silence floor only before the first frame and after the last), so a frame waits for the
    CONTEXT_AFTER frames after it and the stack is the same however the frames arrive.

    logmel_pieces: (n, B) each. Yields one Contexts per piece that completes a frame's context (and one at the end).
    """
    floor = np.log10(LOG_FLOOR)
    held = np.full((CONTEXT_BEFORE, N_MEL_BANDS), floor, np.float32)  # context before the first waiting frame
    end = np.full((CONTEXT_AFTER, N_MEL_BANDS), floor, np.float32)
    for rows in itertools.chain(logmel_pieces, [end]):
        held = np.concatenate([held, rows])
        ready = len(held) - CONTEXT_FRAMES + 1
        if ready > 0:
            yield Contexts(held)
            held = held[ready:]


@dataclass(frozen=True)
class Contexts:
    """Consecutive frames with their contexts: rows (n + C - 1, B), frame i's context rows[i : i + C]."""

    rows: np.ndarray

    @property
    def logmel(self) -> np.ndarray:
        """(n, B) the frames themselves."""
        return self.rows[CONTEXT_BEFORE : len(self.rows) - CONTEXT_AFTER]


def stack_contexts(rows: np.ndarray) -> np.ndarray:
    """rows: (n + C - 1, B), frame i's context rows[i : i + C]. Returns (n, C * B)."""
    n_frames = len(rows) - CONTEXT_FRAMES + 1
    windows = np.lib.stride_tricks.sliding_window_view(rows, (CONTEXT_FRAMES, rows.shape[1]))[:n_frames, 0]
    return windows.reshape(n_frames, CONTEXT_FRAMES * rows.shape[1])


def log_mel_stream(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The frames of `log_mel` over the concatenated chunks, in order, as (n, B) pieces of at most BLOCK_FRAMES.

    chunks: (s,) float32 at SAMPLE_RATE_HZ. Only about one chunk plus one window is held at a time.
    """
    half = FFT_SIZE // 2
    buffer = np.zeros(half, np.float32)  # starts with the left zero padding
    next_frame, buffer_start, total = 0, -half, 0  # buffer[0] is sample index buffer_start
    for chunk in chunks:
        total += len(chunk)
        buffer = np.concatenate([buffer, np.asarray(chunk, np.float32)])
        ready = (buffer_start + len(buffer) - half - 1) // HOP_SIZE + 1 - next_frame  # windows wholly inside
        if ready > 0:
            yield from _emit(buffer, buffer_start, next_frame, ready)
            next_frame += ready
            drop = next_frame * HOP_SIZE - half - buffer_start
            buffer, buffer_start = buffer[drop:], buffer_start + drop
    if frame_count(total) > next_frame:
        buffer = np.concatenate([buffer, np.zeros(FFT_SIZE + HOP_SIZE, np.float32)])  # the right zero padding
        yield from _emit(buffer, buffer_start, next_frame, frame_count(total) - next_frame)


def _emit(buffer: np.ndarray, buffer_start: int, first_frame: int, count: int) -> Iterator[np.ndarray]:
    offset = first_frame * HOP_SIZE - FFT_SIZE // 2 - buffer_start
    for i in range(0, count, BLOCK_FRAMES):
        n = min(BLOCK_FRAMES, count - i)
        yield log_mel_of_frames(buffer[offset + i * HOP_SIZE : offset + (i + n - 1) * HOP_SIZE + FFT_SIZE], n)


def frame_blocks(pieces: Iterable[np.ndarray]) -> Iterator[tuple[int, int, np.ndarray]]:
    """(core_start, first_frame, frames) per block: frames (n, W) holds rows first_frame.. of the concatenated
    pieces (n, W), covering the core frames core_start..core_start + BLOCK_FRAMES (fewer at the end) and up to
    BLOCK_MARGIN_FRAMES either side."""
    pending: np.ndarray | None = None
    first, core = 0, 0  # pending[0] is frame `first`; the next core block starts at `core`
    for rows in itertools.chain(pieces, [None]):  # None: the end, where every frame left is a core frame
        if rows is not None:
            pending = rows if pending is None else np.concatenate([pending, rows])
        if pending is None:
            return
        needed = core + 1 if rows is None else core + BLOCK_FRAMES + BLOCK_MARGIN_FRAMES
        while first + len(pending) >= needed:
            yield core, first, pending[: core + BLOCK_FRAMES + BLOCK_MARGIN_FRAMES - first]
            core += BLOCK_FRAMES
            keep_from = max(first, core - BLOCK_MARGIN_FRAMES)
            pending, first = pending[keep_from - first :], keep_from
            needed += BLOCK_FRAMES
