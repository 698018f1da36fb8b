"""The drum model read from its weights (which drums.weights finds and checks), and its networks' forward pass in numpy.

model.npz holds an ensemble of small MLPs ("netK.mean", "netK.std" (D,), "netK.W0" (D, H0), "netK.b0" (H0,), …,
the last "netK.Wn" (Hn-1, len(OUTPUT_NOTES))) and the kick's PFNMF templates ("nmf.templates" (B, G)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DrumModel:
    networks: tuple[dict[str, np.ndarray], ...]  # float32 arrays by layer name ("mean", "std", "W0", "b0", …)
    kick_templates: np.ndarray  # (B, G) float64, columns sum to 1


def load_model(path: Path) -> DrumModel:
    """The model in `path`, weights that drums.weights has verified."""
    with np.load(path, allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    networks: dict[str, dict[str, np.ndarray]] = {}
    for key, value in stored.items():
        if not key.startswith("nmf."):
            net, _, layer = key.rpartition(".")
            networks.setdefault(net, {})[layer] = value.astype(np.float32)
    return DrumModel(tuple(networks[name] for name in sorted(networks)), stored["nmf.templates"].astype(np.float64))


def activations(stacked: np.ndarray, model: DrumModel) -> np.ndarray:
    """stacked: (F, D) context stacks. Returns (F, len(OUTPUT_NOTES)) onset probabilities (ensemble mean), float32."""
    total = functools.reduce(np.add, (_forward(stacked, net) for net in model.networks))
    return (total / len(model.networks)).astype(np.float32)


def _forward(stacked: np.ndarray, net: dict[str, np.ndarray]) -> np.ndarray:
    """stacked: (F, D). Returns (F, len(OUTPUT_NOTES)) one network's sigmoid outputs; ReLU between layers."""
    h = (stacked - net["mean"]) / net["std"]
    n_layers = sum(1 for key in net if key.startswith("W"))
    for i in range(n_layers):
        h = h @ net[f"W{i}"] + net[f"b{i}"]
        if i < n_layers - 1:
            np.maximum(h, 0.0, out=h)
    return 1.0 / (1.0 + np.exp(-np.clip(h, -30, 30)))
