"""Decode the model's note and onset activations into note events: Basic Pitch's algorithm, in vectorised numpy.

Given the same activations, `decode_notes` returns the notes of
`basic_pitch.note_creation.output_to_notes_polyphonic` (the same frames and
pitches, amplitudes to 1e-7; tests/test_decoder_equivalence.py). Onsets are
peaks of the predicted onsets (or of large rises in the note activations);
each onset is tracked forward until the activation stays below
`frame_threshold` for `ENERGY_TOLERANCE_FRAMES` frames, and the "melodia
trick" then turns the strongest leftover activations into notes, tracked both
ways. Where Basic Pitch steps one frame at a time in Python, this module finds
runs of low frames with `bytes.find`, and replays its argmax loop by one sort.

Arrays are (n_frames, n_pitches): rows are frames, columns note bins
(MIDI pitch − 21). Activation inputs may be anything sliced by rows
(`onset[a:b]`), such as a model.spill.RowSpill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import LOWEST_PITCH, N_PITCHES
from .options import BasicPitchOptions

ENERGY_TOLERANCE_FRAMES = 11
# Rows per block when scanning activations (which may not be in memory). Small
# enough that numpy's float64 temporaries reuse freed memory: blocks of 4096
# rows, mapped afresh by malloc on each allocation, ran five times slower.
BLOCK_FRAMES = 256


@dataclass(frozen=True)
class NoteEvent:
    """A note in frames. `end_frame` is exclusive; `bends` (contour bins, ⅓ semitone, one per frame) is filled by
    model.bends."""

    start_frame: int
    end_frame: int
    pitch: int
    amplitude: float
    bends: tuple[int, ...] | None = None


def decode_notes(note: np.ndarray, onset, *, options: BasicPitchOptions = BasicPitchOptions()) -> list[NoteEvent]:
    """Note events from note activations (n_frames, 88) and onset activations (n_frames, 88).

    Events come in Basic Pitch's order: onset-tracked notes latest first, then
    melodia notes strongest first.
    """
    columns = pitch_columns(options.min_frequency_hz, options.max_frequency_hz)
    frames = note[:, columns]
    if frames.shape[0] == 0 or frames.shape[1] == 0:
        return []
    pitch_offset = LOWEST_PITCH + columns.start
    threshold = np.float64(options.frame_threshold)
    min_frames = options.min_note_frames
    low = _LowMap(frames, threshold)
    times, bins = onset_peaks(
        onset, frames, columns=columns, threshold=options.onset_threshold, infer_onsets=options.infer_onsets
    )
    spans = _track_onsets(low, times[::-1], bins[::-1], min_frames)
    if options.melodia_trick:
        spans += _melodia(low, frames, threshold, min_frames)
    if not spans:
        return []
    starts, ends, found = (np.array(column, dtype=np.intp) for column in zip(*spans))
    amplitudes = _mean_activations(frames, starts, ends, found)
    return [
        NoteEvent(s, e, f + pitch_offset, a)
        for s, e, f, a in zip(starts.tolist(), ends.tolist(), found.tolist(), amplitudes.tolist())
    ]


def _mean_activations(frames: np.ndarray, starts: np.ndarray, ends: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(n_notes,) float64: mean of frames[start:end, bin] for each note, all notes in one gather.

    Sums in float64 where Basic Pitch's np.mean sums in float32: the two agree to about 1e-7.
    """
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    within = np.arange(lengths.sum()) - np.repeat(offsets, lengths)
    values = frames[np.repeat(starts, lengths) + within, np.repeat(bins, lengths)]
    return np.add.reduceat(values.astype(np.float64), offsets) / lengths


def pitch_columns(min_frequency_hz: float | None, max_frequency_hz: float | None) -> slice:
    """The note bins kept between two frequencies, as Basic Pitch rounds them (nearest MIDI pitch)."""

    def to_bin(frequency_hz: float) -> int:
        midi = 12.0 * (np.log2(frequency_hz) - np.log2(440.0)) + 69.0
        return int(np.clip(np.round(midi) - LOWEST_PITCH, 0, N_PITCHES))

    low = 0 if min_frequency_hz is None else to_bin(min_frequency_hz)
    high = N_PITCHES if max_frequency_hz is None else to_bin(max_frequency_hz)
    return slice(low, max(low, high))


def onset_peaks(
    onset, frames: np.ndarray, *, columns: slice, threshold: float, infer_onsets: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, column indices) of onset peaks ≥ `threshold`, frame-major order.

    A peak is strictly above the frames just before and after it. With
    `infer_onsets`, the onset activation is first raised to the note
    activation's rise over the two frames before, scaled to the onsets' maximum.
    (Basic Pitch divides by a zero maximum rise and then finds no onsets at
    all; here a note activation that never rises just adds nothing.)

    onset: (n_frames, 88) array-like; frames: (n_frames, n_columns), already cut to `columns`.
    """
    n_frames = frames.shape[0]
    scale = None
    if infer_onsets:
        top_onset, top_rise = np.float32(0.0), 0.0
        for lo in range(0, n_frames, BLOCK_FRAMES):
            hi = min(lo + BLOCK_FRAMES, n_frames)
            top_onset = max(top_onset, onset[lo:hi][:, columns].max())
            top_rise = max(top_rise, _rises(frames, lo, hi).max())
        if top_rise > 0:
            scale = (top_onset, top_rise)
    found_t, found_f = [], []
    for lo in range(1, n_frames - 1, BLOCK_FRAMES):
        hi = min(lo + BLOCK_FRAMES, n_frames - 1)
        around = _onset_strength(onset, frames, lo - 1, hi + 1, columns, scale)
        middle = around[1:-1]
        is_peak = (middle > around[:-2]) & (middle > around[2:]) & (middle >= threshold)
        t, f = np.nonzero(is_peak)
        found_t.append(t + lo)
        found_f.append(f)
    if not found_t:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return np.concatenate(found_t), np.concatenate(found_f)


def _onset_strength(onset, frames, lo, hi, columns, scale) -> np.ndarray:
    """(hi - lo, n_columns) float64: onsets, raised to the scaled note rise when `scale` = (top onset, top rise)."""
    strength = onset[lo:hi][:, columns].astype(np.float64)
    if scale is not None:
        top_onset, top_rise = scale
        # Basic Pitch's order of operations, so that ties fall the same way.
        scaled = _rises(frames, lo, hi)
        scaled *= top_onset
        scaled /= top_rise
        np.maximum(strength, scaled, out=strength)
    return strength


def _rises(frames: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(hi - lo, n_columns) float64: how far each frame rose above both frames before it, ≥ 0; 0 for frames 0 and 1."""
    rises = np.zeros((hi - lo, frames.shape[1]))
    first = max(lo, 2)
    if first < hi:
        # In float64 from one exact conversion, as Basic Pitch subtracts: its frames follow float64 zeros.
        block = frames[first - 2 : hi].astype(np.float64)
        out = rises[first - lo :]
        np.subtract(block[2:], block[1:-1], out=out)
        np.minimum(out, block[2:] - block[:-2], out=out)
        np.maximum(out, 0.0, out=out)
    return rises


class _LowMap:
    """Per note bin, one byte per frame: 1 where the activation is below threshold or claimed by a note.

    Claiming only ever turns activation low (Basic Pitch zeroes it), so these
    flags are all the decoder needs of its working copy; runs of lows are
    found by `bytes.find` instead of a frame-by-frame walk.
    """

    def __init__(self, frames: np.ndarray, threshold: np.float64):
        self.n_frames, self.n_bins = frames.shape
        # A bin at a time: all bins at once made two more copies of the flags (27 MB each for a 60-minute file).
        self.bins = [bytearray((frames[:, f] < threshold).tobytes()) for f in range(self.n_bins)]
        self._lows = memoryview(_LOW * self.n_frames)

    def claim(self, start: int, stop: int, f: int) -> None:
        """Claim frames [start, stop) of bin f and of both its neighbours."""
        if stop > start:
            lows = self._lows[: stop - start]
            for flags in self.bins[max(f - 1, 0) : f + 2]:
                flags[start:stop] = lows

    def high_at(self, t: np.ndarray, f: np.ndarray) -> np.ndarray:
        """(n,) bool: whether frame t[i] of bin f[i] is neither low nor claimed, for n (frame, bin) pairs."""
        high = np.zeros(t.shape[0], dtype=bool)
        by_bin = np.argsort(f, kind="stable")
        bounds = np.searchsorted(f[by_bin], np.arange(self.n_bins + 1))
        for g in range(self.n_bins):
            pairs = by_bin[bounds[g] : bounds[g + 1]]
            high[pairs] = np.frombuffer(self.bins[g], dtype=np.uint8)[t[pairs]] == 0
        return high

    def run_ahead(self, f: int, start: int, stop: int) -> tuple[int, int]:
        """Walk frames start, start + 1, … (< stop) until ENERGY_TOLERANCE_FRAMES lows in a row.

        Returns (frames walked, how many of the last were low).
        """
        if start >= stop:
            return 0, 0
        flags = self.bins[f]
        hit = flags.find(_LOW_RUN, start, stop)
        if hit >= 0:
            return hit + ENERGY_TOLERANCE_FRAMES - start, ENERGY_TOLERANCE_FRAMES
        last_high = flags.rfind(_HIGH, start, stop)
        return stop - start, stop - 1 - last_high if last_high >= 0 else stop - start

    def run_behind(self, f: int, start: int) -> tuple[int, int]:
        """Walk frames start − 1, start − 2, … (> 0) until ENERGY_TOLERANCE_FRAMES lows in a row; as `run_ahead`."""
        if start <= 1:
            return 0, 0
        flags = self.bins[f]
        hit = flags.rfind(_LOW_RUN, 1, start)
        if hit >= 0:
            return start - hit, ENERGY_TOLERANCE_FRAMES
        first_high = flags.find(_HIGH, 1, start)
        return start - 1, first_high - 1 if first_high >= 0 else start - 1


_LOW, _HIGH = b"\x01", b"\x00"
_LOW_RUN = _LOW * ENERGY_TOLERANCE_FRAMES


def _track_onsets(low: _LowMap, times, bins, min_frames) -> list[tuple[int, int, int]]:
    """(start, end, bin) of each onset followed forward until its activation stays low; claims the note's bins and
    both neighbours."""
    spans = []
    for start, f in zip(times.tolist(), bins.tolist()):
        if start >= low.n_frames - 1:
            continue
        walked, low_tail = low.run_ahead(f, start + 1, low.n_frames - 1)
        end = start + 1 + walked - low_tail
        if end - start <= min_frames:
            continue
        low.claim(start, end, f)
        spans.append((start, end, f))
    return spans


def _melodia(low: _LowMap, frames, threshold, min_frames) -> list[tuple[int, int, int]]:
    """(start, end, bin) of notes grown both ways from the strongest unclaimed activations.

    Basic Pitch takes the argmax of the whole matrix once per note. Claimed
    activation only ever drops to zero, so visiting the activations above
    threshold in one stable descending sort (ties in frame-major order, as
    argmax breaks them), skipping those claimed since, visits the same peaks
    in the same order.
    """
    peaks_t, peaks_f = np.nonzero(frames > threshold)
    # Most of them (~90 % on the corpus) are claimed by the onsets' notes already: skipped at once, not one by one.
    high = low.high_at(peaks_t, peaks_f)
    peaks_t, peaks_f = peaks_t[high], peaks_f[high]
    order = np.argsort(-frames[peaks_t, peaks_f], kind="stable")
    spans = []
    flags = low.bins
    for peak, f in zip(peaks_t[order].tolist(), peaks_f[order].tolist()):
        if flags[f][peak]:
            continue
        flags[f][peak] = 1
        ahead, low_ahead = low.run_ahead(f, peak + 1, low.n_frames - 1)
        low.claim(peak + 1, peak + 1 + ahead, f)
        behind, low_behind = low.run_behind(f, peak)
        low.claim(peak - behind, peak, f)
        start, end = peak - behind + low_behind, peak + ahead - low_ahead
        if end - start > min_frames:
            spans.append((start, end, f))
    return spans
