"""SwiftF0's front in numpy: the three log-magnitude spectra its graph computes first, by numpy's FFT.

The graph computes each spectrum's DFT as matrix products (the 2048-point one
as 64 × 32): onnxruntime spent 38 % of the model's time there (111 of 288 ms
per 30 s window, one thread), numpy's FFT half of that; live, 0.39 ms a step
where the front's session took 0.64. The windows, the filterbanks onto the
model's log-spaced bins and the floor under the log are the graph's own
tensors (stages.cut keeps them beside the stages). Frame i is centred on
sample i × HOP_SAMPLES, with zeros outside the audio, as in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...views import windows
from .constants import FRONT_BLOCK_FRAMES, HOP_SAMPLES

# The graph's tensors (swift-f0 0.3.0), by spectrum in its order (1024, 2048, 512 samples): window, filterbank.
SPECTRUM_TENSORS = (("v41", "v127"), ("v161", "v245"), ("v262", "v346"))
FLOOR_TENSOR = "v129"  # added to each filtered magnitude before the log


@dataclass(frozen=True)
class Spectrum:
    """One spectrum's window and its sparse filterbank onto the model's bins: bin b sums weights × magnitudes of the
    FFT bins taps[starts[b]:starts[b + 1]] (every bin has at least one). A sum, not a matrix product: numpy's BLAS
    would run that on threads of its own, which spin beside the model's helpers (features.py's bands: the same)."""

    window: np.ndarray  # (n_fft,) float32
    taps: np.ndarray  # (n_taps,) int: FFT bins, grouped by the model's bin they feed
    weights: np.ndarray  # (n_taps,) float32
    starts: np.ndarray  # (n_bins,) int: where each model bin's taps begin

    @classmethod
    def from_filterbank(cls, window: np.ndarray, filterbank: np.ndarray) -> Spectrum:
        """From the graph's dense (n_fft // 2 + 1, n_bins) filterbank."""
        bins, taps = np.nonzero(filterbank.T)  # sorted by bin
        starts = np.searchsorted(bins, np.arange(filterbank.shape[1]))
        return cls(window.astype(np.float32), taps, filterbank[taps, bins].astype(np.float32), starts)


@dataclass(frozen=True)
class Front:
    spectra: tuple[Spectrum, ...]
    floor: np.float32

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> Front:
        """The front from the graph's tensors by name (stages.front reads them from the cut)."""
        spectra = tuple(
            Spectrum.from_filterbank(tensors[window], tensors[filterbank]) for window, filterbank in SPECTRUM_TENSORS
        )
        return cls(spectra, np.float32(tensors[FLOOR_TENSOR]))

    def log_spectra(self, audio: np.ndarray) -> np.ndarray:
        """(1, len(spectra), n_bins, max(1, len(audio) // HOP_SAMPLES)) float32: the model's features of mono float32
        `audio` at 16 kHz, the input of its first convolution."""
        n_frames = max(1, len(audio) // HOP_SAMPLES)
        reach = max(len(spectrum.window) for spectrum in self.spectra) // 2
        padded = np.zeros(reach + (n_frames - 1) * HOP_SAMPLES + reach, np.float32)
        kept = audio[: len(padded) - reach]
        padded[reach : reach + len(kept)] = kept
        features = np.empty((1, len(self.spectra), len(self.spectra[0].starts), n_frames), np.float32)
        for row, spectrum in enumerate(self.spectra):
            n_fft = len(spectrum.window)
            start = reach - n_fft // 2
            frames = windows(padded[start : start + (n_frames - 1) * HOP_SAMPLES + n_fft], n_fft)
            for lo in range(0, n_frames, FRONT_BLOCK_FRAMES):
                block = frames[lo * HOP_SAMPLES : (lo + FRONT_BLOCK_FRAMES) * HOP_SAMPLES : HOP_SAMPLES]
                magnitude = np.abs(np.fft.rfft(block * spectrum.window, axis=-1))
                filtered = np.add.reduceat(magnitude[:, spectrum.taps] * spectrum.weights, spectrum.starts, axis=1)
                features[0, row, :, lo : lo + len(block)] = np.log(filtered + self.floor).T
        return features
