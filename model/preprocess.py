"""A preset's processing chain, built with pedalboard and run over a region at its source rate, chunk by chunk.

A fresh Pedalboard is built for every job (plugins keep state), and every
chunk runs with reset=False so filter and envelope state carries over: a long
region gives the one-pass result. A normalize step measures the region as the
steps before it leave it, in a first pass, then applies that gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pedalboard

from .errors import OptionError
from .presets import Step

ChunkSource = Callable[[], Iterator[np.ndarray]]


def process(steps: tuple[Step, ...], open_chunks: ChunkSource, *, sample_rate_hz: float) -> Iterator[np.ndarray]:
    """Mono float32 chunks of the region after `steps`; `open_chunks()` reads the region from its start each call."""
    if not steps:
        yield from open_chunks()
        return
    gains_db: dict[int, float] = {}
    for index, step in enumerate(steps):
        if step.kind == "normalize":
            level = _level_dbfs(_run(steps[:index], gains_db, open_chunks, sample_rate_hz), step.params["target"])
            gains_db[index] = step.params["level_dbfs"] - level if math.isfinite(level) else 0.0
    yield from _run(steps, gains_db, open_chunks, sample_rate_hz)


def build(steps: tuple[Step, ...], gains_db: dict[int, float] | None = None) -> pedalboard.Pedalboard:
    """A new Pedalboard for `steps`; normalize steps become the gains measured for them (0 dB if not measured)."""
    plugins = []
    for index, step in enumerate(steps):
        plugins.extend(_plugins(step, (gains_db or {}).get(index, 0.0)))
    return pedalboard.Pedalboard(plugins)


def _run(steps, gains_db, open_chunks: ChunkSource, sample_rate_hz: float) -> Iterator[np.ndarray]:
    board = build(steps, gains_db)
    for chunk in open_chunks():
        yield board(chunk[np.newaxis, :], sample_rate_hz, reset=False)[0]


def _level_dbfs(chunks: Iterator[np.ndarray], target: str) -> float:
    peak, energy, count = 0.0, 0.0, 0
    for chunk in chunks:
        peak = max(peak, float(np.max(np.abs(chunk), initial=0.0)))
        energy += float(np.dot(chunk.astype(np.float64), chunk))
        count += chunk.shape[0]
    value = peak if target == "peak" else math.sqrt(energy / max(count, 1))
    return 20 * math.log10(value) if value > 0 else -math.inf


def _plugins(step: Step, normalize_gain_db: float) -> list:
    p = step.params
    kind = step.kind
    if kind in ("highpass", "lowpass"):
        stage = pedalboard.HighpassFilter if kind == "highpass" else pedalboard.LowpassFilter
        return [stage(cutoff_frequency_hz=p["cutoff_hz"]) for _ in range(p["slope_db_per_octave"] // 6)]
    if kind == "notch":
        return [pedalboard.PeakFilter(cutoff_frequency_hz=p["frequency_hz"], gain_db=-p["depth_db"], q=p["q"])]
    if kind == "hum":
        return [pedalboard.PeakFilter(cutoff_frequency_hz=p["mains_hz"] * k, gain_db=-p["depth_db"], q=p["q"])
                for k in range(1, p["harmonics"] + 1)]
    if kind == "noise_gate":
        return [pedalboard.NoiseGate(threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"],
                                     release_ms=p["release_ms"])]
    if kind == "compressor":
        return [pedalboard.Compressor(threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"],
                                      release_ms=p["release_ms"])]
    if kind == "gain":
        return [pedalboard.Gain(gain_db=p["gain_db"])]
    if kind == "limiter":
        return [pedalboard.Limiter(threshold_db=p["threshold_db"], release_ms=p["release_ms"])]
    if kind == "normalize":
        return [pedalboard.Gain(gain_db=normalize_gain_db)]
    return [_vst3(p)]


def _vst3(params: dict):
    try:
        return pedalboard.load_plugin(params["path"], parameter_values=params["parameters"])
    except Exception as error:  # pedalboard raises ImportError, ValueError or RuntimeError by cause
        raise OptionError(f"VST3 plugin {params['path']} cannot be loaded: {error}. Check that it is a VST3 "
                          f"plugin for this system and that its parameter names are right.",
                          code="plugin_unavailable") from error
