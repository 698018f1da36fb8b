"""Lower a stream's sample rate by a whole factor (44.1 kHz to Basic Pitch's 22.05 kHz, 48 kHz to SwiftF0's 16 kHz).

A Kaiser-windowed sinc low-pass at the new Nyquist frequency, computed only at
the samples kept and, polyphase, only with its non-zero taps (the sinc's zero
crossings fall on every `factor`-th tap: half the taps of a halving are 0):
per input sample it costs about `ZERO_CROSSINGS` multiply-adds × (1 − 1 /
factor), where pedalboard's windowed-sinc resampler, which serves any ratio,
costs several times more (its 8-crossing sinc was ~9 % of a whole Basic Pitch
convert at 44.1 kHz). `Decimator` is used as pedalboard's StreamResampler is: `process`
with each (1, n) chunk, then `process()` for the tail; the output is aligned
with the input (output sample j is input sample j × factor, filtered) and
holds ceil(n_in / factor) samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .views import windows

ZERO_CROSSINGS = 8  # of the sinc on each side of a tap's centre, as pedalboard's WindowedSinc8
KAISER_BETA = 8.0  # stopband ~ -80 dB
# From this many outputs a block is filtered tap by tap over each phase's contiguous samples: 3.5x faster than one
# strided product over all taps for a 2 s chunk; below it (a live period: 85 outputs) the per-call cost of a pass
# per tap made it 2.5x slower, so small blocks stay one product.
PER_TAP_FROM_OUTPUTS = 1024


def lowpass_taps(factor: int) -> np.ndarray:
    """(2 × ZERO_CROSSINGS × factor + 1,) float32: the filter, its gain at DC 1, its cutoff the new Nyquist."""
    half = ZERO_CROSSINGS * factor
    offsets = np.arange(-half, half + 1)
    taps = np.sinc(offsets / factor) * np.kaiser(2 * half + 1, KAISER_BETA)
    taps[(offsets % factor == 0) & (offsets != 0)] = 0.0  # the sinc's zeros, exactly (np.sinc leaves ~1e-17 there)
    return (taps / taps.sum()).astype(np.float32)


@dataclass(frozen=True)
class _Tap:
    """One non-zero tap, as the polyphase sum reads it: input phase `phase` (samples phase, phase + factor, …),
    `delay` outputs late."""

    phase: int
    delay: int
    weight: np.float32


class Decimator:
    """Keeps every `factor`-th sample of a mono stream, low-passed first."""

    def __init__(self, factor: int):
        self.factor = factor
        self._lowpass = lowpass_taps(factor)
        self._n_taps = self._lowpass.shape[0]
        self._taps = [
            _Tap(index % factor, index // factor, weight) for index, weight in enumerate(self._lowpass) if weight
        ]
        self.input_latency = ZERO_CROSSINGS * factor  # input samples after a sample before its output is known
        # Input from the first tap of the next output on, zeros before the stream as its first outputs' left side.
        self._buffer = np.zeros(self.input_latency, np.float32)
        self._n_in = 0
        self._n_out = 0

    def process(self, chunk: np.ndarray | None = None) -> np.ndarray:
        """(1, n) float32 in, (1, m) float32 out: every output the input so far decides; None: the end of the stream,
        the rest (the input after its last sample taken as zeros)."""
        if chunk is None:
            wanted = -(-self._n_in // self.factor) - self._n_out
            padded = np.concatenate([self._buffer, np.zeros(self._n_taps + self.factor * wanted, np.float32)])
            return self._filtered(padded, wanted)
        samples = np.asarray(chunk, np.float32)[0]
        self._n_in += samples.shape[0]
        self._buffer = np.concatenate([self._buffer, samples])
        ready = max((self._buffer.shape[0] - self._n_taps) // self.factor + 1, 0)
        return self._filtered(self._buffer, ready)

    def _filtered(self, buffer: np.ndarray, n_out: int) -> np.ndarray:
        """The next `n_out` outputs from `buffer`, whose first sample is the first tap of the first of them."""
        if n_out <= 0:
            return np.zeros((1, 0), np.float32)
        if n_out < PER_TAP_FROM_OUTPUTS:
            out = windows(buffer, self._n_taps)[: (n_out - 1) * self.factor + 1 : self.factor] @ self._lowpass
        else:
            out = self._per_tap(buffer, n_out)
        self._buffer = buffer[n_out * self.factor :]
        self._n_out += n_out
        return out[np.newaxis, :]

    def _per_tap(self, buffer: np.ndarray, n_out: int) -> np.ndarray:
        """(n_out,) float32: output j = sum over non-zero taps of weight × buffer[(j + delay) × factor + phase], one
        pass per tap over the contiguous samples of its phase."""
        phases = [np.ascontiguousarray(buffer[p :: self.factor]) for p in range(self.factor)]
        out = np.zeros(n_out, np.float32)
        term = np.empty(n_out, np.float32)
        for tap in self._taps:
            np.multiply(phases[tap.phase][tap.delay : tap.delay + n_out], tap.weight, out=term)
            out += term
        return out
