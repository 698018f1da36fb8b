"""16 kHz audio in, per-frame features out, streamed: SwiftF0's pitch and confidence, loudness, onset strength, a
semitone spectrum and low-bass evidence.

Chunks are gathered until a window of WINDOW_FRAMES frames and its context is
there; the model then runs on that window in a helper thread while the
spectral features are computed and the next windows' audio is read, one
window per helper at a time, so memory holds a few windows of audio whatever
the region's length; only the per-frame features grow with it (≈ 200 bytes
per 16 ms frame, 46 MB an hour, most of it the float16 semitone spectrum).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from ...views import windows
from ...vocabulary import Stage
from .. import ProgressCallback
from .constants import (
    BAND_LOWEST_HZ,
    CONTEXT_AFTER_FRAMES,
    CONTEXT_BEFORE_FRAMES,
    DB_FLOOR,
    FFT_BLOCK_FRAMES,
    FFT_SAMPLES,
    HOP_SAMPLES,
    LOW_BLOCK_FRAMES,
    LOW_FFT_PADDED,
    LOW_FFT_SAMPLES,
    LOW_HARMONICITY_MIN_DB,
    LOW_NOTE_MAX_HZ,
    LOW_PROBE_MAX_HZ,
    LOW_PROBE_MIN_DBFS,
    N_BANDS,
    N_SEMITONES,
    ONSET_ACTIVE_RANGE_DB,
    ONSET_LAG_FRAMES,
    SAMPLE_RATE_HZ,
    SEMITONE_HIGHEST,
    SEMITONE_LOWEST,
    SILENCE_PEAK,
    SUB_HARMONIC_MIN_DB,
    SUB_HARMONICS,
    WINDOW_FRAMES,
)
from .stages import BACK, FEATURES, RANGE_FEED, ModelStream, front, stage_graphs, stage_sessions


@dataclass
class Frames:
    """Per-frame features; every array has one row per 16 ms frame (n_frames)."""

    pitch_hz: np.ndarray  # (n,) float32: SwiftF0's pitch
    confidence: np.ndarray  # (n,) float32: its confidence, 0 where the audio peaks below SILENCE_PEAK
    loudness_db: np.ndarray  # (n,) float32: RMS of the 32 ms around the frame, dBFS
    onset_db: np.ndarray  # (n,) float32: mean rise of the half-octave band levels, dB
    low_shift_semitones: np.ndarray  # (n,) float32: 12 or 19 where the pitch is the 2nd or 3rd harmonic of a lower note
    # (0 throughout unless low_bass asked for it)
    semitone_db: np.ndarray  # (n, N_SEMITONES) float16: peak power within a quarter tone of each semitone, dB

    def __len__(self) -> int:
        return len(self.pitch_hz)


class FrameExtractor:
    """SwiftF0's model, loaded once: its front in numpy (front.py), the rest on onnxruntime. `helpers`: threads that
    run the model on a region's windows, one window each at a time, beside the numpy features (0: the model runs
    between them, on the caller's core).

    Windows rather than onnxruntime's own threads share the cores: on the 7 single-line corpus cases, two helpers
    ran `vocal` 1.20x as fast as one (10 s windows; 1.15x with one helper of two intra-op threads, which spends
    more CPU time)."""

    def __init__(self, model_path: Path, *, helpers: int):
        self._graphs = stage_graphs(model_path)
        self._front = front(self._graphs)
        self._back = onnxruntime.InferenceSession(
            self._graphs[BACK.name], _session_options(), providers=["CPUExecutionProvider"]
        )
        self._helpers = helpers
        self._pool = ThreadPoolExecutor(helpers, thread_name_prefix="swift-f0") if helpers else None
        self._stages: dict[str, onnxruntime.InferenceSession] | None = None  # live streams' (model_stream)
        self._stages_lock = threading.Lock()

    def pitch_and_confidence(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SwiftF0's pitch (Hz) and confidence of mono float32 `audio` at 16 kHz, (max(1, len(audio) // HOP_SAMPLES),)
        float32 each: the model run on the whole of it."""
        features = self._front.log_spectra(audio)
        pitch, confidence = self._back.run(["pitch", "confidence"], {FEATURES: features, **RANGE_FEED})
        return pitch[0], confidence[0]

    def frames(
        self,
        chunks: Iterable[np.ndarray],
        *,
        n_samples: int,
        low_bass: bool,
        on_progress: ProgressCallback | None,
    ) -> Frames:
        """Features of mono float32 chunks at SAMPLE_RATE_HZ (about `n_samples` of them); on_progress(Stage.INFER,
        fraction) after each window, where a raise cancels. `low_bass`: look for notes below SwiftF0's floor
        (low_shift_semitones; the options' low_bass)."""
        expected_frames = max(1, n_samples // HOP_SAMPLES)
        parts: list[tuple[np.ndarray, ...]] = []
        unfinished: deque[tuple[int, Callable[[], tuple[np.ndarray, ...]]]] = deque()  # (end frame, its features)
        # whose model still runs, oldest first

        def finish(*, leave: int = 0) -> None:
            while len(unfinished) > leave:
                end_frame, features = unfinished.popleft()
                parts.append(features())
                if on_progress:
                    on_progress(Stage.INFER, min(end_frame / expected_frames, 1.0))

        pending: list[np.ndarray] = []
        pending_samples = 0
        first_frame = done_frames = 0  # global frame of the buffer's first sample; frames started
        for chunk in chunks:
            pending.append(np.asarray(chunk, dtype=np.float32))
            pending_samples += len(chunk)
            while pending_samples >= (done_frames + WINDOW_FRAMES + CONTEXT_AFTER_FRAMES - first_frame) * HOP_SAMPLES:
                audio = np.concatenate(pending) if len(pending) > 1 else pending[0]
                end_frame = done_frames + WINDOW_FRAMES
                finish(leave=max(self._helpers - 1, 0))
                window = audio[: (end_frame + CONTEXT_AFTER_FRAMES - first_frame) * HOP_SAMPLES]
                unfinished.append(
                    (end_frame, self._start(window, first_frame, done_frames, end_frame, low_bass=low_bass))
                )
                done_frames = end_frame
                keep_from = done_frames - CONTEXT_BEFORE_FRAMES
                pending = [audio[(keep_from - first_frame) * HOP_SAMPLES :]]
                pending_samples = len(pending[0])
                first_frame = keep_from
        if done_frames == 0 and pending_samples == 0:
            return _empty()
        total_frames = max(first_frame + pending_samples // HOP_SAMPLES, 1)
        if total_frames > done_frames:
            audio = np.concatenate(pending) if pending_samples else np.zeros(HOP_SAMPLES, np.float32)
            unfinished.append(
                (total_frames, self._start(audio, first_frame, done_frames, total_frames, low_bass=low_bass))
            )
        finish()
        return Frames(*(np.concatenate([part[i] for part in parts]) for i in range(6)))

    def window(
        self, audio: np.ndarray, *, first_frame: int, lo: int, hi: int, low_bass: bool, model: ModelStream
    ) -> Frames:
        """Features of global frames [lo, hi) of `audio`, whose sample 0 is global frame `first_frame`'s centre, as one
        window of `frames` computes them, SwiftF0's pitch and confidence from `model`, which runs it over the stream
        (stages.py): the live path's step (model.engines.swift_f0.live)."""
        pitch_and_confidence = model.pitch_and_confidence(audio, first_frame=first_frame, lo=lo, hi=hi)
        return Frames(*self._start(audio, first_frame, lo, hi, low_bass=low_bass, model=lambda: pitch_and_confidence)())

    def model_stream(self) -> ModelStream:
        """A new stream's SwiftF0 state; the stages' sessions are made for the first one (the graph is cut once per
        installed weights and cached: stages.stage_graphs)."""
        with self._stages_lock:
            if self._stages is None:
                self._stages = stage_sessions(self._graphs, _session_options())
        stages = self._stages
        return ModelStream(self._front, lambda name, feed: stages[name].run(None, feed))

    def _start(
        self,
        audio: np.ndarray,
        first_frame: int,
        lo: int,
        hi: int,
        *,
        low_bass: bool,
        model: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> Callable[[], tuple[np.ndarray, ...]]:
        """Start on global frames [lo, hi) of `audio`, whose sample 0 is global frame `first_frame`'s centre: the model
        in the helper thread (or `model`, which gives those frames' pitch and confidence), the spectral features here.
        The returned call waits for the model and gives the frames' features; meanwhile the caller reads the next
        window's audio."""
        keep = slice(lo - first_frame, hi - first_frame)
        if model is None:

            def whole_window() -> tuple[np.ndarray, np.ndarray]:
                pitch, confidence = self.pitch_and_confidence(audio)
                return pitch[keep], confidence[keep]

            model = self._pool.submit(whole_window).result if self._pool is not None else whole_window
        n_frames = max(1, len(audio) // HOP_SAMPLES)  # the model's own frame count
        padded = np.zeros(n_frames * HOP_SAMPLES, np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        hops = padded.reshape(n_frames, HOP_SAMPLES)
        loudness = _loudness_db(hops)[keep]
        centres = np.arange(n_frames) * HOP_SAMPLES
        # The spectra of the kept frames and the ONSET_LAG_FRAMES before them, which their onset strength reads.
        spectral = slice(max(keep.start - ONSET_LAG_FRAMES, 0), keep.stop)
        bands, semitones = _spectra_db(audio, centres[spectral])
        onset = _onset_strength(bands)
        if first_frame > 0:
            onset[: max(ONSET_LAG_FRAMES - spectral.start, 0)] = 0.0  # no history in this window; never kept
        kept = slice(keep.start - spectral.start, None)  # of the spectral frames
        silent = np.abs(hops[keep]).max(axis=1) < SILENCE_PEAK

        def features() -> tuple[np.ndarray, ...]:
            pitch, confidence = (values.astype(np.float32) for values in model())
            confidence[silent] = 0.0
            return (
                pitch,
                confidence,
                loudness,
                onset[kept],
                _low_shift(audio, centres[keep], pitch, loudness) if low_bass else np.zeros(len(pitch), np.float32),
                semitones[kept].astype(np.float16),
            )

        return features


def _session_options() -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a small convolutional model: more threads only add overhead
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _empty() -> Frames:
    none = np.zeros(0, np.float32)
    return Frames(none, none, none, none, none, np.zeros((0, N_SEMITONES), np.float16))


def _loudness_db(hops: np.ndarray) -> np.ndarray:
    """(n,) float32 dBFS: RMS of the hop before each frame's centre and the hop after it. hops: (n, HOP_SAMPLES)."""
    power = (hops.astype(np.float64) ** 2).sum(axis=1)
    before = np.concatenate(([0.0], power[:-1]))
    return (10 * np.log10(np.maximum((before + power) / (2 * HOP_SAMPLES), 1e-14))).astype(np.float32)


def _rows(audio: np.ndarray, centres: np.ndarray, n: int) -> np.ndarray:
    """(len(centres), n): audio[c − n/2 : c + n/2] for each centre c, zeros outside the audio."""
    padded = np.concatenate([np.zeros(n // 2, np.float32), audio, np.zeros(n, np.float32)])
    return windows(padded, n)[centres]


def _band_edges() -> np.ndarray:
    """(N_BANDS + 1,) int: the FFT bins of half-octave band i are [edges[i], edges[i + 1]). Bands are summed with
    reduceat, not a matrix product, which numpy's BLAS would run on threads that spin beside the model's helpers."""
    freqs = np.fft.rfftfreq(FFT_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
    return np.searchsorted(freqs, BAND_LOWEST_HZ * 2.0 ** (np.arange(N_BANDS + 1) / 2.0))


def _semitone_bins() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The quarter-tone-wide FFT bin ranges around each semitone tile the axis: (edges, starts of the non-empty
    ranges, which are non-empty, the nearest bin of each empty one)."""
    freqs = np.fft.rfftfreq(FFT_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
    keys = np.arange(SEMITONE_LOWEST, SEMITONE_HIGHEST + 2)
    edges = np.searchsorted(freqs, 440.0 * 2 ** ((keys - 69 - 0.5) / 12))
    nonempty = edges[1:] > edges[:-1]
    nearest = np.rint(440.0 * 2 ** ((keys[:-1] - 69) / 12) / (SAMPLE_RATE_HZ / FFT_SAMPLES)).astype(int)
    return edges, edges[:-1][nonempty], nonempty, nearest[~nonempty]


_BAND_EDGES = _band_edges()
_HANN = np.hanning(FFT_SAMPLES).astype(np.float32)
_EDGES, _STARTS, _NONEMPTY, _NEAREST = _semitone_bins()
_LOW_HANN = np.hanning(LOW_FFT_SAMPLES).astype(np.float32)


def _spectra_db(audio: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half-octave band levels (n, N_BANDS) and the semitone spectrum (n, N_SEMITONES), float32 dB, of the
    FFT_SAMPLES-long frames centred on `centres` (n,)."""
    bands = np.empty((len(centres), N_BANDS), dtype=np.float32)
    semitones = np.empty((len(centres), N_SEMITONES), dtype=np.float32)
    scale = np.float32(4.0 / (FFT_SAMPLES * FFT_SAMPLES))
    for a in range(0, len(centres), FFT_BLOCK_FRAMES):
        spectrum = np.fft.rfft(_rows(audio, centres[a : a + FFT_BLOCK_FRAMES], FFT_SAMPLES) * _HANN, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32) * scale
        bands[a : a + FFT_BLOCK_FRAMES] = 10.0 * np.log10(
            np.add.reduceat(power[:, : _BAND_EDGES[-1]], _BAND_EDGES[:-1], axis=1) + 1e-10
        )
        peak = np.empty((len(power), N_SEMITONES), dtype=np.float32)
        peak[:, _NONEMPTY] = np.maximum.reduceat(power[:, : _EDGES[-1]], _STARTS, axis=1)
        peak[:, ~_NONEMPTY] = power[:, _NEAREST]
        semitones[a : a + FFT_BLOCK_FRAMES] = 10.0 * np.log10(peak + 1e-10)
    return np.maximum(bands, DB_FLOOR), np.maximum(semitones, DB_FLOOR)


def _onset_strength(levels: np.ndarray) -> np.ndarray:
    """(n,) float32 dB from band levels (n, N_BANDS): each band's rise over the loudest of itself and its neighbours
    ONSET_LAG_FRAMES earlier (so vibrato moving a partial across a band edge does not count), averaged over the
    bands within ONSET_ACTIVE_RANGE_DB of the frame's loudest."""
    before = np.full_like(levels, DB_FLOOR)
    before[ONSET_LAG_FRAMES:] = levels[:-ONSET_LAG_FRAMES]
    spread = before.copy()
    spread[:, 1:] = np.maximum(spread[:, 1:], before[:, :-1])
    spread[:, :-1] = np.maximum(spread[:, :-1], before[:, 1:])
    rise = np.maximum(levels - spread, 0.0)
    active = levels >= levels.max(axis=1, keepdims=True) - ONSET_ACTIVE_RANGE_DB
    return ((rise * active).sum(axis=1) / np.maximum(active.sum(axis=1), 1)).astype(np.float32)


def _low_shift(audio, centres, pitch, loudness) -> np.ndarray:
    """(n,) float32: 12 or 19 semitones where a frame's pitch is the 2nd or 3rd harmonic of a note below
    LOW_NOTE_MAX_HZ, else 0. Every other probed frame is measured; the rest take their nearest measured one."""
    shift = np.zeros(len(pitch), np.float32)
    probed = np.nonzero((pitch < LOW_PROBE_MAX_HZ) & (loudness > LOW_PROBE_MIN_DBFS))[0]
    if len(probed) == 0:
        return shift
    measured = probed[::2]
    values = np.concatenate(
        [
            _sub_harmonic_shift(audio, centres[block], pitch[block])
            for block in np.array_split(measured, -(-len(measured) // LOW_BLOCK_FRAMES))
        ]
    )
    nearest = np.clip(np.searchsorted(measured, probed), 0, len(measured) - 1)
    shift[probed] = values[nearest]
    return shift


def _sub_harmonic_shift(audio, centres, f0) -> np.ndarray:
    """(n,) float32 semitones down to the lowest note g = f0 / d (d in SUB_HARMONICS) that is really there: energy at
    g's own partials (multiples not shared with f0) within SUB_HARMONIC_MIN_DB of the energy at f0 and 2 f0, and g
    periodic (its partials LOW_HARMONICITY_MIN_DB above the gaps between them, which noise, hum and rumble fail)."""
    power = np.abs(np.fft.rfft(_rows(audio, centres, LOW_FFT_SAMPLES) * _LOW_HANN, n=LOW_FFT_PADDED, axis=1)) ** 2
    power += 1e-12
    rows = np.arange(len(f0))[:, None]
    f0 = f0.astype(np.float64)

    def bins(multiples):
        return np.rint(f0[:, None] * np.asarray(multiples)[None, :] * LOW_FFT_PADDED / SAMPLE_RATE_HZ).astype(int)

    def energy(multiples):
        at = bins(multiples)
        return np.maximum(power[rows, at], np.maximum(power[rows, at - 1], power[rows, at + 1]))

    shift = np.zeros(len(f0), np.float32)
    best = np.full(len(f0), -np.inf)
    parent = energy([1.0, 2.0]).mean(axis=1)
    for d in SUB_HARMONICS:
        k = np.arange(1, 7)
        own_db = 10 * np.log10(energy(k[k % d != 0] / d).mean(axis=1) / parent)
        harmonicity_db = 10 * np.log10(energy(k / d).mean(axis=1) / power[rows, bins((k + 0.5) / d)].mean(axis=1))
        found = (
            (own_db >= SUB_HARMONIC_MIN_DB)
            & (harmonicity_db >= LOW_HARMONICITY_MIN_DB)
            & (own_db > best)
            & (f0 < d * LOW_NOTE_MAX_HZ)
        )  # the note it implies lies below the model's floor
        shift[found] = 12.0 * np.log2(d)
        best[found] = own_db[found]
    return shift
