"""The back of Basic Pitch's graph at int8, for presets that ask for it (`[decode] precision = "int8"`).

Only its largest product, the contour path's 3×39 convolution of the
harmonic stack (run as matrix products, rewrites.py), is quantised:
statically (onnxruntime.quantization, QDQ, uint8 activations, 7-bit int8
weights, one scale per tensor), calibrated on notes synthesised here, so no
recording is needed. Quantising every 2-D
convolution as well was no faster on 2 cores and agreed less with float32
(onset F1 0.948 against 0.973 on 11 corpus files); one scale per output
channel agreed less still. The result is cached beside the cut graph with
its SHA-256, like it, and made again when missing or damaged.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..graph_cache import read_cached, write_cached
from .constants import ONNX_FEATURES, SAMPLE_RATE_HZ
from .graph import cache_dir
from .rewrites import STACK_PRODUCTS

# Part of the cache's name: a change to what is quantised or how it is calibrated makes a new graph.
QUANTISE_VERSION = 2
CALIBRATION_S = 60.0


def int8_back(back: bytes, calibration: Callable[[], Iterable[np.ndarray]]) -> bytes:
    """The float32 back (`back`, graph.GraphParts.back) with the stack's products at int8: from the cache when
    intact, else quantised now on `calibration()`'s inputs of the back ((frames, N_FEATURE_BINS) segments) and
    cached."""
    directory = cache_dir() / f"int8-q{QUANTISE_VERSION}"
    cached = read_cached(directory, ("back",))
    if cached is not None:
        return cached["back"]
    quantised = _quantise(back, calibration())
    write_cached(directory, {"back": quantised})
    return quantised


def calibration_audio(seconds: float = CALIBRATION_S, *, seed: int = 0) -> np.ndarray:
    """Mono float32 at SAMPLE_RATE_HZ: chords of one to four plucked harmonic tones (MIDI 28-99, 0.1-1.5 s, eight
    partials of random brightness, random levels) every 0.1-0.8 s over a faint noise floor. The same every time."""
    rng = np.random.default_rng(seed)
    nyquist_hz = SAMPLE_RATE_HZ / 2
    audio = rng.normal(0.0, 0.003, int(seconds * SAMPLE_RATE_HZ)).astype(np.float32)
    onset_s = 0.0
    while onset_s < seconds - 0.3:
        for _ in range(rng.integers(1, 5)):
            start = int((onset_s + rng.uniform(0.0, 0.05)) * SAMPLE_RATE_HZ)
            t = np.arange(min(int(rng.uniform(0.1, 1.5) * SAMPLE_RATE_HZ), audio.shape[0] - start)) / SAMPLE_RATE_HZ
            hz = 440.0 * 2 ** ((rng.integers(28, 100) - 69) / 12)
            envelope = np.exp(-t * rng.uniform(1.0, 6.0)) * np.minimum(1.0, t / 0.005)
            brightness = rng.uniform(0.7, 2.0)
            partials = [np.sin(2 * np.pi * hz * k * t) / k**brightness for k in range(1, 9) if hz * k < nyquist_hz]
            audio[start : start + t.shape[0]] += rng.uniform(0.05, 0.3) * envelope * np.sum(partials, axis=0)
        onset_s += rng.uniform(0.1, 0.8)
    return audio


def _quantise(back: bytes, segments: Iterable[np.ndarray]) -> bytes:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Segments(CalibrationDataReader):
        def __init__(self) -> None:
            self._segments = iter(segments)

        def get_next(self) -> dict[str, np.ndarray] | None:
            segment = next(self._segments, None)
            return None if segment is None else {ONNX_FEATURES: segment[np.newaxis, :, :, np.newaxis]}

    model = onnx.load_from_string(back)
    with tempfile.TemporaryDirectory(prefix="midibridge-int8-") as scratch:
        source, target = Path(scratch) / "back.onnx", Path(scratch) / "back-int8.onnx"
        source.write_bytes(back)
        logging.disable(logging.WARNING)  # it advises a pre-processing pass for every model; this one needs none
        try:
            quantize_static(
                source,
                target,
                Segments(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_quantize=[node.name for node in model.graph.node if node.name.startswith(STACK_PRODUCTS)],
                # 7-bit weights: on AVX2 without VNNI the uint8 x int8 products of a matrix product saturate in 16 bits
                # (onnxruntime's quantisation guide); at 8 bits the note outputs moved 5x as far from float32's.
                reduce_range=True,
            )
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()
