"""The drum model's weights, checked byte for byte, and its networks' forward pass in plain numpy.

model.npz holds an ensemble of small MLPs ("netK.mean", "netK.std" (D,), "netK.W0" (D, H0), "netK.b0" (H0,), …,
the last "netK.Wn" (Hn-1, len(OUTPUT_NOTES))) and the kick's PFNMF templates ("nmf.templates" (B, G)).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import WeightsError
from .constants import MODEL_FILE_NAME, MODEL_SHA256

MODEL_PATH = Path(__file__).with_name(MODEL_FILE_NAME)
REINSTALL_HINT = "reinstall midibridge (`.venv/bin/pip install -e .` or `make setup`), or `git checkout` the file"


@dataclass(frozen=True)
class DrumModel:
    networks: tuple[dict[str, np.ndarray], ...]  # float32 arrays by layer name ("mean", "std", "W0", "b0", …)
    kick_templates: np.ndarray                    # (B, G) float64, columns sum to 1


def load_model(path: Path = MODEL_PATH) -> DrumModel:
    """The verified model; WeightsError (model_missing, model_corrupt) says how to fix it."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(f"the drum model {path} cannot be read ({error.strerror}): {REINSTALL_HINT}.",
                           code="model_missing") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise WeightsError(f"the drum model {path} has SHA-256 {digest}, expected {MODEL_SHA256}: the file is "
                           f"corrupt or another version; {REINSTALL_HINT}.", code="model_corrupt")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    networks: dict[str, dict[str, np.ndarray]] = {}
    for key, value in stored.items():
        if not key.startswith("nmf."):
            net, _, layer = key.rpartition(".")
            networks.setdefault(net, {})[layer] = value.astype(np.float32)
    return DrumModel(tuple(networks[name] for name in sorted(networks)),
                     stored["nmf.templates"].astype(np.float64))


def activations(stacked: np.ndarray, model: DrumModel) -> np.ndarray:
    """stacked: (F, D) context stacks. Returns (F, len(OUTPUT_NOTES)) onset probabilities (ensemble mean), float32."""
    return (sum(_forward(stacked, net) for net in model.networks) / len(model.networks)).astype(np.float32)


def _forward(stacked: np.ndarray, net: dict[str, np.ndarray]) -> np.ndarray:
    """stacked: (F, D). Returns (F, len(OUTPUT_NOTES)) one network's sigmoid outputs; ReLU between layers."""
    h = (stacked - net["mean"]) / net["std"]
    n_layers = sum(1 for key in net if key.startswith("W"))
    for i in range(n_layers):
        h = h @ net[f"W{i}"] + net[f"b{i}"]
        if i < n_layers - 1:
            np.maximum(h, 0.0, out=h)
    return 1.0 / (1.0 + np.exp(-np.clip(h, -30, 30)))
