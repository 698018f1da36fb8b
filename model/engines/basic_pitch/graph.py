"""Basic Pitch's ONNX graph cut in two, the back made to take a sequence of any length, and the two parts cached.

The installed nmp.onnx stays Basic Pitch's own file (checked by SHA-256 in
weights.py). The front (audio windows to the normalised CQT, `ONNX_FEATURES`)
is its graph up to there; the back (the features to the note, onset and
contour outputs) is the rest, whose reshapes name FRAMES_PER_WINDOW: they are
rewritten for one sequence (batch 1) of any number of frames. Both parts are
rewritten where onnxruntime ran them slowly (rewrites.py: the same numbers, to
1e-6 where the sums' order changes). Cutting needs
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
from . import rewrites
from .constants import (
    CONTOUR_KERNEL_FRAMES,
    FRAMES_PER_WINDOW,
    NOTE_KERNEL_FRAMES,
    ONNX_FEATURES,
    ONNX_INPUT,
    ONNX_OUTPUTS,
)
from .weights import WEIGHTS_SHA256

# Part of the cache's name: a change to how the graph is cut makes new parts.
CUT_VERSION = 6
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
    rewrites.constants_at_full_rank(model)
    front = onnx.utils.Extractor(model).extract_model([ONNX_INPUT], [ONNX_FEATURES])
    rewrites.one_channel_convolutions_in_phases(front, lambda kernel, strides: strides == [1, 2])
    back = onnx.utils.Extractor(model).extract_model([ONNX_FEATURES], list(ONNX_OUTPUTS.values()))
    rewrites.stack_convolution_as_products(model, back)
    del back.graph.value_info[:]  # inferred again with the products' shapes, which name every contour bin
    back = shape_inference.infer_shapes(back)
    # The contour's and the note's last convolutions; the onset's, which onnxruntime fuses with its sigmoid, ran
    # slower in phases (7 -> 12 ms per 1,196 frames).
    last = (CONTOUR_KERNEL_FRAMES[-1], NOTE_KERNEL_FRAMES[-1])
    rewrites.one_channel_convolutions_in_phases(back, lambda kernel, strides: kernel.shape[2] in last)
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
