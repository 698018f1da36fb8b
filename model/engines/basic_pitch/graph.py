"""Basic Pitch's ONNX graph cut in two, the back made to take a sequence of any length, and the two parts cached.

The installed nmp.onnx stays Basic Pitch's own file (checked by SHA-256 in
weights.py). The front (audio windows to the normalised CQT, `ONNX_FEATURES`)
is its graph up to there, with its decimating filters made cheaper (same
numbers); the back (the features to the note, onset and contour outputs) is
the rest, whose reshapes name FRAMES_PER_WINDOW: they are rewritten for one
sequence (batch 1) of any number of frames. Cutting needs
the `onnx` package, whose import alone takes about a second, so the parts are
kept in the user cache dir with their SHA-256 and made again whenever a part
is missing or not the bytes recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from ..graph_cache import read_cached, write_cached
from .constants import FRAMES_PER_WINDOW, ONNX_FEATURES, ONNX_INPUT, ONNX_OUTPUTS
from .weights import WEIGHTS_SHA256

# Part of the cache's name: a change to how the graph is cut makes new parts.
CUT_VERSION = 5
# Output phases per decimating convolution (_as_phases): 4 to 16 measured within noise of each other.
DECIMATION_PHASES = 8
PARTS = ("front", "back")


@dataclass(frozen=True)
class GraphParts:
    """The two parts as serialised ONNX models."""

    front: bytes
    back: bytes


def cache_dir() -> Path:
    """Where the parts of the installed weights are kept (`$XDG_CACHE_HOME/midibridge/basic-pitch/...` on Linux)."""
    return platformdirs.user_cache_path("midibridge") / "basic-pitch" / f"{WEIGHTS_SHA256[:16]}-cut{CUT_VERSION}"


def graph_parts(weights: Path) -> GraphParts:
    """The parts of the verified weights at `weights`: from the cache when it holds them intact, else cut now and
    cached (a cache that cannot be written only costs the next start the same second)."""
    directory = cache_dir()
    cached = read_cached(directory, PARTS)
    if cached is not None:
        return GraphParts(**cached)
    parts = cut(weights.read_bytes())
    write_cached(directory, {part: getattr(parts, part) for part in PARTS})
    return parts


def cut(weights: bytes) -> GraphParts:
    """Cut Basic Pitch's graph at ONNX_FEATURES; the back's reshapes take (1, any frames)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load_from_string(weights))
    _constants_at_full_rank(model)
    front = onnx.utils.Extractor(model).extract_model([ONNX_INPUT], [ONNX_FEATURES])
    _decimate_in_phases(front)
    back = onnx.utils.Extractor(model).extract_model([ONNX_FEATURES], list(ONNX_OUTPUTS.values()))
    for constant in back.graph.initializer:
        shape = numpy_helper.to_array(constant)
        if shape.dtype == np.int64 and shape.ndim == 1 and FRAMES_PER_WINDOW in shape:
            free = np.where(shape == FRAMES_PER_WINDOW, -1, np.where(shape == -1, 1, shape))
            constant.CopyFrom(numpy_helper.from_array(free, constant.name))
    # The inferred shapes inside say FRAMES_PER_WINDOW too; onnxruntime infers them again.
    del back.graph.value_info[:]
    for value in (*back.graph.input, *back.graph.output):
        batch, frames = value.type.tensor_type.shape.dim[:2]
        batch.dim_value = 1
        frames.dim_param = "frames"
    return GraphParts(front.SerializeToString(), back.SerializeToString())


def _constants_at_full_rank(model) -> None:
    """Give each constant an element-wise operation broadcasts its tensor's rank (leading 1s), and its whole shape but
    the batch where the tensor's last axis is longer than the constant's 1: the same numbers. onnxruntime broadcasts a
    (1,) constant over (n, frames, 309, 1), or a (309, 1, 1) one over (n, 309, 172, 2), one element at a time: the
    CQT's scaling and the batch normalisation took 45 % of the front's time, now 2 %."""
    from onnx import numpy_helper

    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    constants = {constant.name: constant for constant in model.graph.initializer}
    for node in model.graph.node:
        tensors = [shapes[name] for name in node.input if name in shapes]
        if node.op_type not in ("Add", "Sub", "Mul", "Div") or len(tensors) != 1:
            continue
        shape = tensors[0]
        for index, name in enumerate(node.input):
            constant = constants.get(name)
            if constant is None or not 0 < len(constant.dims) <= len(shape):
                continue
            values = numpy_helper.to_array(constant)
            full: np.ndarray = values.reshape((1,) * (len(shape) - values.ndim) + values.shape)
            if full.shape[-1] == 1 and shape[-1] > 1 and all(shape[1:]):
                full = np.broadcast_to(full, (1, *shape[1:])).copy()
            if full.shape != values.shape:
                model.graph.initializer.append(numpy_helper.from_array(full, f"{name}/full"))
                node.input[index] = f"{name}/full"


def _decimate_in_phases(front) -> None:
    """Rewrite each convolution of the CQT's octave chain that low-passes and halves the rate (one output channel,
    stride 2) as one with DECIMATION_PHASES output channels, each the filter shifted two samples further, striding
    that many outputs at once, then interleave them: the same products and sums, but a matrix product where
    onnxruntime ran a slow matrix-vector one (those filters were 41 % of the front's time, now a fifth of that)."""
    from onnx import helper, numpy_helper

    phases = DECIMATION_PHASES
    lengths = {value.name: value.type.tensor_type.shape.dim[-1].dim_value for value in front.graph.value_info}
    weights = {constant.name: constant for constant in front.graph.initializer}
    nodes = []
    for node in front.graph.node:
        strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), None)
        kernel = numpy_helper.to_array(weights[node.input[1]]) if node.op_type == "Conv" else None
        if kernel is None or kernel.shape[0] != 1 or strides != [1, 2]:
            nodes.append(node)
            continue
        taps, name = kernel.shape[-1], node.output[0]
        n_in, n_out = lengths[node.input[0]], lengths[name]
        n_steps = -(-n_out // phases)
        shifted = np.zeros((phases, 1, 1, taps + 2 * (phases - 1)), np.float32)
        for phase in range(phases):
            shifted[phase, 0, 0, 2 * phase : 2 * phase + taps] = kernel[0, 0, 0]
        padding = max(2 * phases * (n_steps - 1) + shifted.shape[-1] - n_in, 0)
        constants = {
            "kernel": shifted,
            "bias": np.zeros(phases, np.float32),
            "padding": np.array([0, 0, 0, 0, 0, 0, 0, padding], np.int64),  # zeros after: only outputs cut off see them
            "shape": np.array([-1, 1, 1, n_steps * phases], np.int64),
            "start": np.array([0], np.int64),
            "end": np.array([n_out], np.int64),
            "axis": np.array([3], np.int64),
        }
        front.graph.initializer.extend(numpy_helper.from_array(v, f"{name}/{k}") for k, v in constants.items())
        nodes += [
            helper.make_node("Pad", [node.input[0], f"{name}/padding"], [f"{name}/padded"]),
            helper.make_node(
                "Conv",
                [f"{name}/padded", f"{name}/kernel", f"{name}/bias"],
                [f"{name}/phases"],
                strides=[1, 2 * phases],
                kernel_shape=[1, shifted.shape[-1]],
            ),
            helper.make_node("Transpose", [f"{name}/phases"], [f"{name}/interleaved"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"{name}/interleaved", f"{name}/shape"], [f"{name}/flat"]),
            helper.make_node("Slice", [f"{name}/flat", f"{name}/start", f"{name}/end", f"{name}/axis"], [name]),
        ]
    del front.graph.node[:]
    front.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    unused = [constant for constant in front.graph.initializer if constant.name not in used]
    for constant in unused:  # the one-channel filters
        front.graph.initializer.remove(constant)
