"""Write Transkun 2.0 as two ONNX graphs, from its checkpoint's tensors, without PyTorch.

`network`: one 16 s window of audio in; every key's per-frame context, the
interval scorer's queries and keys, and one-frame scores out (transkun's
`processFramesBatch`, with its mel front end, up to the T x T scores, which
decode.py makes a block at a time). `heads`: the context at decoded
intervals' two ends in; velocity and refined-time logits out (its
`velocityPredictor` and `refinedOFPredictor`). The semi-CRF decode between
them is numpy (decode.py).

Each op mirrors a line of transkun's ModelTransformer.py / LayersTransformer.py
/ Util.py, named in comments. Its 5-D attention ([batch, time, freq, heads,
dim]) is folded to 4-D: a window is one batch item, so every tensor drops the
batch axis. The files are deterministic, so their SHA-256 can be checked: every
initializer is a checkpoint tensor (at most cut into rows, reshaped or
transposed) or a number written here; whatever is derived from them (windows,
positional embeddings) is computed by the graph, and onnxruntime folds it once
at load.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .constants import (
    AUDIO,
    CONTEXT,
    CONTEXT_SIZE,
    FFT_SAMPLES,
    GRID_BINS,
    GRID_FRAMES,
    HOP_SAMPLES,
    KEY,
    MEL_FLOOR,
    N_GROUPS,
    N_HEADS,
    N_KEYS,
    N_LAYERS,
    N_MELS,
    N_PEDALS,
    OFFSET_CONTEXT,
    ONSET_CONTEXT,
    QUERY,
    REFINEMENT_LOGITS,
    SINGLE_SCORE,
    TARGETS,
    TIME_STRIDE,
    VELOCITY_LOGITS,
    WIDTH,
    WINDOW_FRAMES,
    WINDOW_SAMPLES,
)

OPSET = 17  # the first with DFT; onnxruntime >= 1.19 runs it
IR_VERSION = 8  # the IR of opset 17, fixed so that the bytes do not depend on the onnx package's version
PRODUCER = "midibridge model.engines.transkun.graph"


def network_model(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Audio window (WINDOW_SAMPLES,) → QUERY, KEY, SINGLE_SCORE, CONTEXT (constants.py gives their shapes)."""
    g = _Graph(state)
    features = _mel_features(g, AUDIO)
    context = _backbone(g, features)
    # ScaledInnerProductIntervalScorer's map, one linear layer whose outputs split into the query (scaled by
    # 1/sqrt 256), the key and a one-frame note's score: an interval scores (query_end . key_begin) * |end - begin|,
    # a T x T matrix per key that decode.py makes a block at a time. Each part is its own product (the map's rows
    # cut apart), so no (keys, T, 513) tensor is held.
    query = g.linear(context, "scorer.map.0", rows=(0, CONTEXT_SIZE))
    query = g.op("Div", query, g.op("Sqrt", g.const(float(CONTEXT_SIZE))))
    g.output(query, QUERY, [N_KEYS, WINDOW_FRAMES, CONTEXT_SIZE])
    g.output(
        g.linear(context, "scorer.map.0", rows=(CONTEXT_SIZE, 2 * CONTEXT_SIZE)),
        KEY,
        [N_KEYS, WINDOW_FRAMES, CONTEXT_SIZE],
    )
    single = g.linear(context, "scorer.map.0", rows=(2 * CONTEXT_SIZE, 2 * CONTEXT_SIZE + 1))
    g.output(g.op("Squeeze", single, g.const([2])), SINGLE_SCORE, [N_KEYS, WINDOW_FRAMES])
    g.output(context, CONTEXT, [N_KEYS, WINDOW_FRAMES, CONTEXT_SIZE])
    return g.model([(AUDIO, [WINDOW_SAMPLES])], "transkun-2.0 network")


def heads_model(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """ONSET_CONTEXT, OFFSET_CONTEXT (n, CONTEXT_SIZE) → VELOCITY_LOGITS (n, 128), REFINEMENT_LOGITS (n, 4)."""
    g = _Graph(state)
    # transcribeFrames: attributeInput = cat([ctx_a, ctx_b, ctx_a * ctx_b])
    features = g.op("Concat", ONSET_CONTEXT, OFFSET_CONTEXT, g.op("Mul", ONSET_CONTEXT, OFFSET_CONTEXT), axis=1)
    for name, prefix, size in (
        (VELOCITY_LOGITS, "velocityPredictor", 128),
        (REFINEMENT_LOGITS, "refinedOFPredictor", 4),
    ):
        g.output(g.linear(g.gelu(g.linear(features, f"{prefix}.0")), f"{prefix}.3"), name, ["n", size])
    return g.model([(ONSET_CONTEXT, ["n", CONTEXT_SIZE]), (OFFSET_CONTEXT, ["n", CONTEXT_SIZE])], "transkun-2.0 heads")


def _mel_features(g: _Graph, audio: str) -> str:
    """Util.makeFrame, processFramesBatch's gain normalisation and MelSpectrum: (1, 6, WINDOW_FRAMES, 229)."""
    # makeFrame: frames of FFT_SAMPLES every HOP_SAMPLES, the first centred on sample 0. A frame is 4 hops, so it is
    # 4 consecutive rows of the padded audio cut into hops.
    right = (WINDOW_FRAMES - 1) * HOP_SAMPLES + FFT_SAMPLES // 2 - WINDOW_SAMPLES
    padded = g.op("Pad", audio, g.const([FFT_SAMPLES // 2, right]))
    hops = g.op("Reshape", padded, g.const([-1, HOP_SAMPLES]))
    n_parts = FFT_SAMPLES // HOP_SAMPLES
    frames = g.op("Concat", *(g.slice(hops, i, i + WINDOW_FRAMES, axis=0) for i in range(n_parts)), axis=1)
    # (x - mean) / (std + 1e-8) over the whole window of frames; torch.std divides by n - 1
    centred = g.op("Sub", frames, g.op("ReduceMean", frames, keepdims=0))
    n = WINDOW_FRAMES * FFT_SAMPLES
    std = g.op("Sqrt", g.op("Div", g.op("ReduceSumSquare", centred, keepdims=0), g.const(float(n - 1))))
    frames = g.op("Div", centred, g.op("Add", std, g.const(1e-8)))
    # Spectrum: the Hann window and GaussianWindows.get(), exp(-0.5 ((x - n c) / (s n / 2))^2)
    prefix = "framewiseFeatureExtractor.spectrogramExtractor."
    sigma = g.op("Sigmoid", g.param(prefix + "winGen.sigma"))
    centre = g.op("Sigmoid", g.param(prefix + "winGen.center"))
    size = g.const(float(FFT_SAMPLES))
    x = g.const(np.arange(FFT_SAMPLES, dtype=np.float32)[:, np.newaxis])
    z = g.op("Div", g.op("Sub", x, g.op("Mul", size, centre)), g.op("Div", g.op("Mul", sigma, size), g.const(2.0)))
    gaussians = g.op("Exp", g.op("Mul", g.const(-0.5), g.op("Mul", z, z)))
    windows = g.op(
        "Concat",
        g.op("Unsqueeze", g.param(prefix + "win"), g.const([0])),
        g.op("Transpose", gaussians, perm=[1, 0]),
        axis=0,
    )
    windowed = g.op("Mul", g.op("Unsqueeze", frames, g.const([1])), windows)  # (frames, 6, FFT_SAMPLES)
    signals = g.op("Reshape", windowed, g.const([-1, FFT_SAMPLES, 1]))
    spectra = g.op("DFT", signals, axis=1, onesided=1)
    # |rfft(norm="ortho")|^2: the orthonormal scale is 1/sqrt(FFT_SAMPLES), so the power's is 1/FFT_SAMPLES
    power = g.op("Div", g.op("ReduceSumSquare", spectra, axes=[2], keepdims=0), size)
    mel = g.op("MatMul", power, g.param("framewiseFeatureExtractor.freq2mels"))
    floor = g.const(MEL_FLOOR)
    log_floor = g.op("Log", floor)
    log_mel = g.op("Div", g.op("Sub", g.op("Log", g.op("Add", mel, floor)), log_floor), g.op("Neg", log_floor))
    by_window = g.op("Transpose", g.op("Reshape", log_mel, g.const([WINDOW_FRAMES, -1, N_MELS])), perm=[1, 0, 2])
    return g.op("Unsqueeze", by_window, g.const([0]))


def _backbone(g: _Graph, features: str) -> str:
    """Backbone.forward: (1, 6, T, 229) → every key's context (N_KEYS, T, CONTEXT_SIZE)."""
    # a positional embedding of the frequency bins, added to the input convolution
    bins = g.const(np.arange(N_MELS, dtype=np.float32)[:, np.newaxis])
    along_bins = g.op("Transpose", _position_embedding(g, bins, "backbone.posEmbedBuilder"), perm=[1, 0])
    h = g.op(
        "Add", g.conv(features, "backbone.inputConv", pads=[1, 1, 1, 1]), g.op("Unsqueeze", along_bins, g.const([1]))
    )
    # downConv: ConstantPad2d((2, 1, 4, 3)) joins the first convolution's own padding of 1
    h = g.group_norm(g.conv(h, "backbone.downConv.1", strides=[2, 1], pads=[5, 3, 4, 2]), "backbone.downConv.2")
    for conv, norm, stride in ((5, 6, 2), (9, 10, 2), (13, 14, 1)):
        h = g.group_norm(
            g.conv(g.gelu(h), f"backbone.downConv.{conv}", strides=[stride, stride], pads=[1, 1, 1, 1]),
            f"backbone.downConv.{norm}",
        )
    # (1, D, T, F) → (T, F, D), with an aggregation track at time 0 and at frequency 0
    h = g.op("Pad", g.op("Transpose", g.op("Squeeze", h, g.const([0])), perm=[1, 2, 0]), g.const([1, 1, 0, 0, 0, 0]))
    n_times, n_bins = GRID_FRAMES + 1, GRID_BINS + 1
    times = np.arange(n_times, dtype=np.float32)
    grid = _position_embedding(
        g, g.const(_meshgrid(times, np.arange(n_bins, dtype=np.float32))), "backbone.posEmbedBuilderAttnTF"
    )
    h = g.op("Add", h, g.op("Reshape", grid, g.const([n_times, n_bins, WIDTH])))
    targets = _position_embedding(
        g, g.const(_meshgrid(times, np.array(TARGETS, dtype=np.float32))), "backbone.posEmbedBuilderAttnTE"
    )
    h = g.op("Concat", h, g.op("Reshape", targets, g.const([n_times, len(TARGETS), WIDTH])), axis=1)
    for layer in range(N_LAYERS):
        h = _basic_block(g, h, f"backbone.encoderLayers.{layer}")
    # the keys' tracks (not the pedals'), without the time aggregation track: (keys, D, time)
    keys = g.slice(g.slice(h, n_bins + N_PEDALS, n_bins + len(TARGETS), axis=1), 1, n_times, axis=0)
    keys = g.op("Transpose", keys, perm=[1, 2, 0])
    up = g.op(
        "ConvTranspose",
        keys,
        g.param("backbone.upConv1dSkip.weight"),
        g.param("backbone.upConv1dSkip.bias"),
        kernel_shape=[TIME_STRIDE],
        strides=[TIME_STRIDE],
    )
    return g.op("Transpose", g.slice(up, 0, WINDOW_FRAMES, axis=2), perm=[0, 2, 1])


def _basic_block(g: _Graph, x: str, prefix: str) -> str:
    """BasicBlock.forward with enabled = ["F", "T"]: attention along frequency, then along time. Each attention's
    keys and values come from the block's input (`mem`), its queries from the normalised running state."""
    h = _res_block(g, x, f"{prefix}.mhaBlockF", lambda n: _attention(g, n, x, f"{prefix}.mhaBlockF.module"))
    h = _res_block(g, h, f"{prefix}.fnnBlockF", lambda n: _feed_forward(g, n, f"{prefix}.fnnBlockF.module"))
    h, memory = (g.op("Transpose", t, perm=[1, 0, 2]) for t in (h, x))
    h = _res_block(g, h, f"{prefix}.mhaBlockT", lambda n: _attention(g, n, memory, f"{prefix}.mhaBlockT.module"))
    h = _res_block(g, h, f"{prefix}.fnnBlockT", lambda n: _feed_forward(g, n, f"{prefix}.fnnBlockT.module"))
    return g.op("Transpose", h, perm=[1, 0, 2])


def _res_block(g: _Graph, x: str, prefix: str, module) -> str:
    """ResBlock: x + module(RMSNorm(x)) * scale."""
    squares = g.op("ReduceMean", g.op("Mul", x, x), axes=[-1], keepdims=1)
    normed = g.op("Mul", x, g.op("Reciprocal", g.op("Sqrt", g.op("Add", squares, g.const(1e-6)))))
    return g.op("Add", x, g.op("Mul", module(normed), g.param(f"{prefix}.scale")))


def _attention(g: _Graph, query: str, memory: str, prefix: str) -> str:
    """MultiHeadAttentionKernel without a kernel: scaled dot-product attention over axis 1 of (batch, length, D),
    as (batch, heads, length, D / heads)."""
    head = WIDTH // N_HEADS
    q, k, v = (
        g.op("Reshape", g.op("MatMul", t, g.param(f"{prefix}.{w}_proj_weight")), g.const([0, 0, N_HEADS, head]))
        for t, w in ((query, "q"), (memory, "k"), (memory, "v"))
    )
    scores = g.op("MatMul", g.op("Transpose", q, perm=[0, 2, 1, 3]), g.op("Transpose", k, perm=[0, 2, 3, 1]))
    weights = g.op("Softmax", g.op("Div", scores, g.op("Sqrt", g.const(float(head)))), axis=-1)
    fetched = g.op("MatMul", weights, g.op("Transpose", v, perm=[0, 2, 1, 3]))
    fetched = g.op("Reshape", g.op("Transpose", fetched, perm=[0, 2, 1, 3]), g.const([0, 0, WIDTH]))
    return g.linear(fetched, f"{prefix}.out_proj")


def _feed_forward(g: _Graph, x: str, prefix: str) -> str:
    return g.linear(g.gelu(g.linear(x, f"{prefix}.0")), f"{prefix}.3")


def _position_embedding(g: _Graph, coordinates: str, prefix: str) -> str:
    """LearnableSpatialPositionEmbedding: mlp(cos(proj(coordinates)) / sqrt(size / 2)), (n, dims) → (n, size)."""
    phases = g.linear(coordinates, f"{prefix}.proj")
    size = g.state[f"{prefix}.proj.weight"].shape[0]
    waves = g.op("Div", g.op("Cos", phases), g.op("Sqrt", g.const(size / 2)))
    return g.linear(g.gelu(g.linear(waves, f"{prefix}.mlp.0")), f"{prefix}.mlp.3")


def _meshgrid(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """torch.meshgrid(indexing="ij") stacked: (len(first) * len(second), 2)."""
    a, b = np.meshgrid(first, second, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


class _Graph:
    """Nodes and initializers, named in the order they are made, so the same state always makes the same bytes."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.state = state
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: dict[str, onnx.TensorProto] = {}
        self._outputs: list[onnx.ValueInfoProto] = []

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        name = f"{op_type.lower()}_{len(self._nodes)}"
        self._nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attributes))
        return name

    def slice(self, x: str, start: int, end: int, *, axis: int) -> str:
        return self.op("Slice", x, self.const([start]), self.const([end]), self.const([axis]))

    def const(self, value) -> str:
        """A number written here: ints as int64, floats as float32."""
        array = np.asarray(value)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
        return self._initializer(f"const_{len(self._initializers)}", array)

    def param(
        self,
        name: str,
        *,
        shape: tuple[int, ...] | None = None,
        transpose: bool = False,
        rows: tuple[int, int] | None = None,
    ) -> str:
        """The checkpoint tensor `name`: some of its rows, transposed (a linear layer's weight, for x @ W^T) or
        reshaped."""
        array = self.state[name]
        if rows is not None:
            name, array = f"{name}[{rows[0]}:{rows[1]}]", array[rows[0] : rows[1]]
        if transpose:
            name, array = f"{name}^T", array.T
        if shape is not None:
            name, array = f"{name}{list(shape)}", array.reshape(shape)
        return name if name in self._initializers else self._initializer(name, array)

    def linear(self, x: str, prefix: str, *, rows: tuple[int, int] | None = None) -> str:
        """nn.Linear, or its outputs `rows` alone."""
        return self.op(
            "Add",
            self.op("MatMul", x, self.param(f"{prefix}.weight", transpose=True, rows=rows)),
            self.param(f"{prefix}.bias", rows=rows),
        )

    def gelu(self, x: str) -> str:
        """nn.GELU(): x / 2 (1 + erf(x / sqrt 2))."""
        erf = self.op("Erf", self.op("Div", x, self.op("Sqrt", self.const(2.0))))
        return self.op("Mul", self.op("Mul", x, self.const(0.5)), self.op("Add", erf, self.const(1.0)))

    def conv(self, x: str, prefix: str, **attributes) -> str:
        weight = self.state[f"{prefix}.weight"]
        return self.op(
            "Conv",
            x,
            self.param(f"{prefix}.weight"),
            self.param(f"{prefix}.bias"),
            kernel_shape=list(weight.shape[2:]),
            **attributes,
        )

    def group_norm(self, x: str, prefix: str) -> str:
        """nn.GroupNorm(N_GROUPS, C) of (1, C, H, W): InstanceNormalization over (1, groups, rest), then the affine."""
        grouped = self.op("Reshape", x, self.const([1, N_GROUPS, -1]))
        normed = self.op(
            "InstanceNormalization",
            grouped,
            self.const(np.ones(N_GROUPS)),
            self.const(np.zeros(N_GROUPS)),
            epsilon=1e-5,
        )
        channels = self.state[f"{prefix}.weight"].shape[0]
        normed = self.op("Reshape", normed, self.op("Shape", x))
        return self.op(
            "Add",
            self.op("Mul", normed, self.param(f"{prefix}.weight", shape=(channels, 1, 1))),
            self.param(f"{prefix}.bias", shape=(channels, 1, 1)),
        )

    def output(self, x: str, name: str, shape: list) -> None:
        self._nodes.append(helper.make_node("Identity", [x], [name], name=name))
        self._outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))

    def model(self, inputs: list[tuple[str, list]], doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self._nodes,
            doc.replace(" ", "_"),
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            self._outputs,
            initializer=list(self._initializers.values()),
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            doc_string=f"{doc}, from transkun's 2.0.pt (MIT)",
        )
        onnx.checker.check_model(model)
        return model

    def _initializer(self, name: str, array: np.ndarray) -> str:
        self._initializers[name] = numpy_helper.from_array(np.array(array, order="C"), name)
        return name
