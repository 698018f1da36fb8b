"""The drum model read from its weights (which drums.weights finds and checks): an ensemble of a small convolutional
network (onnxruntime) and four frame MLPs (numpy), and the kick's PFNMF templates.

model.npz holds the convolutional network's ONNX graph as bytes ("conv.onnx": context rows (n + C - 1, B) in, onset
probabilities (n, len(OUTPUT_NOTES)) out), the MLPs ("netK.mean", "netK.std" (D,), "netK.W0" (D, H0), "netK.b0"
(H0,), …, the last "netK.Wn" (Hn-1, len(OUTPUT_NOTES))) and the kick's PFNMF templates ("nmf.templates" (B, G)).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from ...errors import WeightsError
from ...vocabulary import Code
from .features import stack_contexts
from .weights import FIX


@dataclass(frozen=True)
class DrumModel:
    conv: onnxruntime.InferenceSession  # rows (n + C - 1, B) -> (n, len(OUTPUT_NOTES))
    # The MLPs' first layers side by side, their inputs' normalisation folded in: one matrix product for all of them
    first_weights: np.ndarray  # (D, sum of H0) float32
    first_bias: np.ndarray  # (sum of H0,)
    networks: tuple[dict[str, np.ndarray], ...]  # each MLP's later layers: "W1", "b1", … float32
    kick_templates: np.ndarray  # (B, G) float64, columns sum to 1


def load_model(path: Path) -> DrumModel:
    """The model in `path`, weights that drums.weights has verified."""
    with np.load(path, allow_pickle=False) as arrays:
        stored = {key: arrays[key] for key in arrays.files}
    layers: dict[str, dict[str, np.ndarray]] = {}
    for key, value in stored.items():
        if key.startswith("net"):
            net, _, layer = key.rpartition(".")
            layers.setdefault(net, {})[layer] = value.astype(np.float32)
    networks = [layers[name] for name in sorted(layers)]
    # ((x - mean) / std) @ W0 + b0 == x @ (W0 / std) + (b0 - (mean / std) @ W0)
    first_weights = np.hstack([net["W0"] / net["std"][:, None] for net in networks])
    first_bias = np.concatenate([net["b0"] - (net["mean"] / net["std"]) @ net["W0"] for net in networks])
    later = tuple({k: v for k, v in net.items() if k not in ("mean", "std", "W0", "b0")} for net in networks)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # measured: two threads are no faster beside the decoding helper
    options.log_severity_level = 3  # onnxruntime's warnings are for its developers, not our users
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        conv = onnxruntime.InferenceSession(stored["conv.onnx"].tobytes(), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # its SHA-256 was checked: only another onnxruntime could refuse it
        raise WeightsError(
            Code.MODEL_CORRUPT, f"onnxruntime cannot load the drum model in {path}: {error}; {FIX}."
        ) from error
    templates = stored["nmf.templates"].astype(np.float64)
    return DrumModel(conv, first_weights.astype(np.float32), first_bias.astype(np.float32), later, templates)


def activations(rows: np.ndarray, model: DrumModel) -> np.ndarray:
    """rows: (n + C - 1, B) consecutive frames' contexts (features.Contexts.rows). Returns (n, len(OUTPUT_NOTES))
    onset probabilities, float32: the convolutional network's and the MLPs' mean, weighted half and half."""
    conv = model.conv.run(None, {"rows": np.ascontiguousarray(rows, np.float32)})[0]
    hidden = stack_contexts(rows) @ model.first_weights
    hidden += model.first_bias
    np.maximum(hidden, 0.0, out=hidden)
    widths = np.cumsum([0] + [len(net["W1"]) for net in model.networks])  # each MLP's columns of `hidden`
    mlps = functools.reduce(
        np.add, (_forward(hidden[:, a:b], net) for a, b, net in zip(widths, widths[1:], model.networks))
    )
    return ((conv + mlps / len(model.networks)) / 2).astype(np.float32)


def _forward(h: np.ndarray, net: dict[str, np.ndarray]) -> np.ndarray:
    """h: (F, H0) one MLP's first hidden layer. Returns (F, len(OUTPUT_NOTES)) its sigmoid outputs; ReLU between
    layers."""
    n_layers = sum(1 for key in net if key.startswith("W"))
    for i in range(1, n_layers + 1):
        h = h @ net[f"W{i}"] + net[f"b{i}"]
        if i < n_layers:
            np.maximum(h, 0.0, out=h)
    return 1.0 / (1.0 + np.exp(-np.clip(h, -30, 30)))
