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

from .presets import Step
from .steps import STEPS

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
        plugins.extend(STEPS[step.kind].plugins(pedalboard, step.params, (gains_db or {}).get(index, 0.0)))
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
