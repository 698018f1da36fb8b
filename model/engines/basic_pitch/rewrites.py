"""Rewrites of Basic Pitch's graph that compute the same numbers the way onnxruntime runs fast (graph.py applies them
when it cuts the graph; each docstring gives what it measured).

Each takes an ONNX model (`onnx.ModelProto`) and changes it in place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .constants import CONTOUR_KERNEL_FRAMES, FRAMES_PER_WINDOW, N_FEATURE_BINS, N_HARMONICS, ONNX_FEATURES

# Output phases per one-channel convolution (one_channel_convolutions_in_phases): 4 to 16 measured within noise of
# each other on the front's decimating filters, 4 and 8 on the back's last convolutions.
PHASES = 8
# Blocks of output bins the stack's convolution is computed in, each reading only the input bins it needs: 1, 2, 4,
# 6 and 8 blocks took 175, 162, 152, 154 and 145 ms of the back's 1,196 frames (218 as one convolution).
STACK_PRODUCT_BLOCKS = 4
STACK_PRODUCTS = "midibridge/stack-products"  # the rewrite's node names begin so (quantise.py finds them by it)


def constants_at_full_rank(model) -> None:
    """Give each constant an element-wise operation broadcasts its tensor's rank (leading 1s), and its whole shape but
    the batch where the tensor's last axis is longer than the constant's 1: the same numbers. onnxruntime broadcasts a
    (1,) constant over (n, frames, 309, 1), or a (309, 1, 1) one over (n, 309, 172, 2), one element at a time: the
    CQT's scaling and the batch normalisation took 45 % of the front's time, now 2 %."""
    from onnx import numpy_helper

    shapes = _shapes(model)
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


def one_channel_convolutions_in_phases(model, chosen: Callable[[np.ndarray, list[int]], bool]) -> None:
    """Rewrite each convolution with one output channel that `chosen(kernel, strides)` picks as one with PHASES
    output channels, each the kernel shifted one stride further along the last axis, striding that many outputs at
    once, then interleave them: the same products and sums, but a matrix product where onnxruntime ran a slow
    matrix-vector one. The front's decimating filters took 41 % of its time, a fifth of that in phases; the back's
    contour and note outputs (5×5 on 8 channels, 7×3 on 32) 24 and 26 ms of its 1,196 frames, 8 and 14 in phases.
    Each input's last axis must have a known length (`model` with its shapes inferred)."""
    from onnx import helper, numpy_helper

    lengths = {name: shape[-1] for name, shape in _shapes(model).items()}
    constants = {constant.name: constant for constant in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attributes = {a.name: list(a.ints) for a in node.attribute}
        kernel = numpy_helper.to_array(constants[node.input[1]]) if node.op_type == "Conv" else None
        strides = attributes.get("strides", [1, 1])
        if kernel is None or kernel.shape[0] != 1 or strides[0] != 1 or not chosen(kernel, strides):
            nodes.append(node)
            continue
        stride, name = strides[1], node.output[0]
        top, left, bottom, right = attributes.get("pads", [0, 0, 0, 0])
        n_out = (lengths[node.input[0]] + left + right - kernel.shape[-1]) // stride + 1
        n_steps = -(-n_out // PHASES)
        shifted = np.zeros((PHASES, *kernel.shape[1:-1], kernel.shape[-1] + stride * (PHASES - 1)), np.float32)
        for phase in range(PHASES):
            shifted[phase, ..., stride * phase : stride * phase + kernel.shape[-1]] = kernel[0]
        # Zeros after the input where the last step's phases reach past it: only outputs cut off below see them.
        reach = stride * PHASES * (n_steps - 1) + shifted.shape[-1]
        bias = numpy_helper.to_array(constants[node.input[2]]) if len(node.input) > 2 else np.zeros(1, np.float32)
        values = {
            "kernel": shifted,
            "bias": np.repeat(bias, PHASES),
            "shape": np.array([0, 1, -1, n_steps * PHASES], np.int64),
            "start": np.array([0], np.int64),
            "end": np.array([n_out], np.int64),
            "axis": np.array([3], np.int64),
        }
        model.graph.initializer.extend(numpy_helper.from_array(v, f"{name}/{k}") for k, v in values.items())
        interleaved = f"{name}/flat" if n_steps * PHASES > n_out else name
        nodes += [
            helper.make_node(
                "Conv",
                [node.input[0], f"{name}/kernel", f"{name}/bias"],
                [f"{name}/phases"],
                strides=[1, stride * PHASES],
                kernel_shape=list(shifted.shape[2:]),
                pads=[top, left, bottom, max(right, reach - lengths[node.input[0]] - left)],
            ),
            helper.make_node("Transpose", [f"{name}/phases"], [f"{name}/interleaved"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"{name}/interleaved", f"{name}/shape"], [interleaved]),
        ]
        if interleaved != name:
            nodes.append(
                helper.make_node("Slice", [interleaved, f"{name}/start", f"{name}/end", f"{name}/axis"], [name])
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_constants(model)


def stack_convolution_as_products(model, back) -> None:
    """Rewrite the back's (`back`) contour convolution of the harmonic stack (N_HARMONICS shifted copies of the CQT,
    CONTOUR_KERNEL_FRAMES[0] frames by 39 bins) as matrix products on the CQT itself. Each output frame is a linear
    map of the CQT's frames around it (`_impulse_response` on the whole graph, `model`), banded because the stack only
    shifts, so it is computed in STACK_PRODUCT_BLOCKS blocks of output bins, each reading only the input bins it
    needs. The same sums in another order (1e-6); onnxruntime ran the convolution at half its matrix product's rate
    (122 against 44 ms per 1,196 frames, with fewer multiply-adds)."""
    from onnx import helper, numpy_helper

    conv = next(
        node
        for node in back.graph.node
        if node.op_type == "Conv" and _kernel(back, node).shape[1:3] == (N_HARMONICS, CONTOUR_KERNEL_FRAMES[0])
    )
    kernel, bias = _impulse_response(model, conv.output[0], height=CONTOUR_KERNEL_FRAMES[0])
    height, _, channels, n_out = kernel.shape
    by_input = kernel.transpose(1, 0, 2, 3)  # (bin in, frame offset, channel, bin out): the context's row order
    constants: dict[str, np.ndarray] = {
        "rows": np.array([-1, N_FEATURE_BINS], np.int64),
        "pads": np.array([height // 2, 0, height // 2, 0], np.int64),
        "column": np.array([-1, N_FEATURE_BINS, 1], np.int64),
        "context_shape": np.array([-1, height * N_FEATURE_BINS], np.int64),
        "time": np.array([0], np.int64),
        "bins": np.array([1], np.int64),
        "bias": bias[np.newaxis],
        "sequence_shape": np.array([1, -1, channels, n_out], np.int64),
    }
    nodes = [
        helper.make_node("Reshape", [ONNX_FEATURES, _named("rows")], [_named("features")]),
        helper.make_node("Pad", [_named("features"), _named("pads")], [_named("padded")]),
    ]
    for offset in range(height):  # the frames `offset` after each output frame's first, as a column beside the others
        constants[f"from{offset}"] = np.array([offset], np.int64)
        constants[f"to{offset}"] = np.array([offset + 1 - height if offset < height - 1 else 2**62], np.int64)
        nodes += [
            helper.make_node(
                "Slice",
                [_named("padded"), _named(f"from{offset}"), _named(f"to{offset}"), _named("time")],
                [_named(f"shifted{offset}")],
            ),
            helper.make_node("Reshape", [_named(f"shifted{offset}"), _named("column")], [_named(f"column{offset}")]),
        ]
    nodes += [
        helper.make_node("Concat", [_named(f"column{k}") for k in range(height)], [_named("stacked")], axis=2),
        helper.make_node("Reshape", [_named("stacked"), _named("context_shape")], [_named("context")]),
    ]
    edges = np.linspace(0, n_out, STACK_PRODUCT_BLOCKS + 1).round().astype(int)
    for block, (first, end) in enumerate(zip(edges[:-1], edges[1:])):
        read = np.flatnonzero(np.abs(by_input[:, :, :, first:end]).sum(axis=(1, 2, 3)))
        low, high = int(read[0]), int(read[-1]) + 1
        constants |= {
            f"from_bin{block}": np.array([height * low], np.int64),
            f"to_bin{block}": np.array([height * high], np.int64),
            f"matrix{block}": by_input[low:high, :, :, first:end].reshape(height * (high - low), -1),
            f"channels{block}": np.array([-1, channels, end - first], np.int64),
        }
        nodes += [
            helper.make_node(
                "Slice",
                [_named("context"), _named(f"from_bin{block}"), _named(f"to_bin{block}"), _named("bins")],
                [_named(f"read{block}")],
            ),
            helper.make_node(
                "MatMul",
                [_named(f"read{block}"), _named(f"matrix{block}")],
                [_named(f"product{block}")],
                name=_named(f"product{block}"),
            ),
            helper.make_node(
                "Reshape", [_named(f"product{block}"), _named(f"channels{block}")], [_named(f"out{block}")]
            ),
        ]
    nodes += [
        helper.make_node("Concat", [_named(f"out{b}") for b in range(len(edges) - 1)], [_named("out")], axis=2),
        helper.make_node("Add", [_named("out"), _named("bias")], [_named("biased")]),
        helper.make_node("Reshape", [_named("biased"), _named("sequence_shape")], [_named("sequence")]),
        helper.make_node("Transpose", [_named("sequence")], [conv.output[0]], perm=[0, 2, 1, 3]),
    ]
    back.graph.initializer.extend(numpy_helper.from_array(value, _named(key)) for key, value in constants.items())
    at = list(back.graph.node).index(conv)
    back.graph.node.remove(conv)
    for offset, node in enumerate(nodes):
        back.graph.node.insert(at + offset, node)
    _drop_unused_constants(back)


def _impulse_response(model, tensor: str, *, height: int) -> tuple[np.ndarray, np.ndarray]:
    """What the linear map from the features to `tensor` ((n, channels, frames, bins out), `height` frames high) does,
    read off Basic Pitch's graph (`model`, with its shapes) by running it on unit impulses: (height, N_FEATURE_BINS,
    channels, bins out), what the feature at frame t + k - height // 2 and bin g adds at frame t, and (channels,
    bins out), the output of zero features."""
    import onnx
    import onnxruntime

    probe = onnx.utils.Extractor(model).extract_model([ONNX_FEATURES], [tensor])
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    per_window = FRAMES_PER_WINDOW // height  # impulses `height` frames apart: their responses do not overlap
    bins = np.arange(N_FEATURE_BINS)
    windows, slot = np.divmod(bins, per_window)
    frames = height // 2 + height * slot
    impulses = np.zeros((windows[-1] + 1, FRAMES_PER_WINDOW, N_FEATURE_BINS, 1), np.float32)
    impulses[windows, frames, bins, 0] = 1.0
    zero = session.run([tensor], {ONNX_FEATURES: np.zeros_like(impulses)})[0]
    response = session.run([tensor], {ONNX_FEATURES: impulses})[0] - zero
    offsets = np.arange(height)[:, np.newaxis] - height // 2
    return response[windows, :, frames - offsets], zero[0, :, FRAMES_PER_WINDOW // 2]


def _named(name: str) -> str:
    """A tensor or constant of the stack's rewrite."""
    return f"{STACK_PRODUCTS}/{name}"


def _kernel(model, node) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(next(c for c in model.graph.initializer if c.name == node.input[1]))


def _shapes(model) -> dict[str, list[int]]:
    """Each inferred tensor's shape, 0 where a length is not known."""
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}


def _drop_unused_constants(model) -> None:
    used = {name for node in model.graph.node for name in node.input}
    for constant in [c for c in model.graph.initializer if c.name not in used]:
        model.graph.initializer.remove(constant)
