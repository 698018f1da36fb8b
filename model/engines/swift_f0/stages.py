"""SwiftF0's graph cut after its front: whole (BACK) for a window, and into stages over a live stream, each stage run
only on the frames that changed.

The model is a short-time front (three spectra per frame; frame i reads
samples i × HOP_SAMPLES ± FRONT_REACH_SAMPLES), which front.py computes in
numpy, and a stack of convolutions over its frames, seven of them three
frames wide in time. Run on a window, every frame is computed again each
time the window moves: live, 2 new frames
come every 32 ms, and a window's run (~24 frames) spent most of its work on
frames it had computed before. Cut at the tensors between the time-wide
convolutions (STAGES), a stage runs on the frames whose inputs changed since
its last run (the new ones and those the zeros past the newest audio
reached), with the `radius_frames` its convolutions read on either side.
The numbers are the window's own (to float rounding: the same sums, at most
in another order; tests/test_swift_f0_stages.py holds them to 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import platformdirs

from ..graph_cache import read_cached, write_cached
from .constants import FRONT_REACH_SAMPLES, HOP_SAMPLES, MODEL_MAX_HZ, MODEL_MIN_HZ
from .front import FLOOR_TENSOR, SPECTRUM_TENSORS, Front
from .weights import WEIGHTS_SHA256

CUT_VERSION = 2  # part of the cache's name: a change to the cuts makes new stages
FRONT_BACK_FRAMES = -(-FRONT_REACH_SAMPLES // HOP_SAMPLES)  # whole frames of audio the front reads before a frame
HISTORY_FRAMES = 16  # final frames each tensor keeps before those it computes again: more than a stage reads back
# and than live asks for again


@dataclass(frozen=True)
class StageCut:
    """One stage: the tensors of SwiftF0's graph (0.3.0) it reads and writes, and how many frames its convolutions
    read on either side of a frame (the sum over its time-wide convolutions; a test checks it against the graph)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    radius_frames: int


FEATURES = "v352"  # (1, 3, bins, frames): the front's three spectra
STAGES = (
    StageCut("first", (FEATURES,), ("v356",), 1),  # the first convolution
    StageCut("block", ("v356",), ("v401",), 2),  # a residual block, then the frequency-only ones
    StageCut("last-block", ("v401",), ("v410",), 2),
    StageCut("head", ("v410", FEATURES, "fmin", "fmax"), ("pitch", "confidence"), 2),
)
# All of them at once, for a whole window (features.FrameExtractor).
BACK = StageCut("back", (FEATURES, "fmin", "fmax"), ("pitch", "confidence"), sum(s.radius_frames for s in STAGES))
FRONT_TENSORS = "front-tensors"  # a graph without inputs that gives front.py's tensors
RANGE_FEED = {"fmin": np.asarray(MODEL_MIN_HZ, np.float32), "fmax": np.asarray(MODEL_MAX_HZ, np.float32)}


def cache_dir() -> Path:
    """Where the stages of the installed weights are kept (`$XDG_CACHE_HOME/midibridge/swift-f0/...` on Linux)."""
    return platformdirs.user_cache_path("midibridge") / "swift-f0" / f"{WEIGHTS_SHA256[:16]}-cut{CUT_VERSION}"


def stage_graphs(weights: Path) -> dict[str, bytes]:
    """The cut's ONNX graphs by name (each stage's, BACK's and FRONT_TENSORS): from the user cache dir when it holds
    them intact, else cut from the verified weights at `weights` and cached."""
    directory = cache_dir()
    names = (*(stage.name for stage in (*STAGES, BACK)), FRONT_TENSORS)
    cached = read_cached(directory, names)
    if cached is not None:
        return cached
    graphs = cut(weights.read_bytes())
    write_cached(directory, graphs)
    return graphs


def cut(weights: bytes) -> dict[str, bytes]:
    """SwiftF0's graph cut at STAGES' tensors and BACK's, and its front's tensors as FRONT_TENSORS."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load_from_string(weights))
    extractor = onnx.utils.Extractor(model)
    graphs = {
        stage.name: extractor.extract_model(list(stage.inputs), list(stage.outputs)).SerializeToString()
        for stage in (*STAGES, BACK)
    }
    names = [name for pair in SPECTRUM_TENSORS for name in pair] + [FLOOR_TENSOR]
    constants = {tensor.name: tensor for tensor in model.graph.initializer}
    constants |= {node.output[0]: node.attribute[0].t for node in model.graph.node if node.op_type == "Constant"}
    computed = [name for name in names if name not in constants]  # the filterbanks: built from constants in the graph
    session = onnxruntime.InferenceSession(
        extractor.extract_model([], computed).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    values = dict(zip(computed, session.run(None, {})))
    tensors = {name: values[name] if name in values else numpy_helper.to_array(constants[name]) for name in names}
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"{name}/value"], [name]) for name in names],
        FRONT_TENSORS,
        [],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names],
        [numpy_helper.from_array(np.asarray(value, np.float32), f"{name}/value") for name, value in tensors.items()],
    )
    opset = [helper.make_opsetid("", 13)]
    graphs[FRONT_TENSORS] = helper.make_model(
        graph, opset_imports=opset, ir_version=model.ir_version
    ).SerializeToString()
    return graphs


def front(graphs: dict[str, bytes]) -> Front:
    """The numpy front from the cut's FRONT_TENSORS graph."""
    session = onnxruntime.InferenceSession(graphs[FRONT_TENSORS], providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return Front.from_tensors(dict(zip(names, session.run(None, {}))))


@dataclass
class _Tensor:
    start: int  # global frame of frames[..., 0]
    frames: np.ndarray  # time on the last axis
    final: int  # global frames before this one never change again

    def between(self, lo: int, hi: int) -> np.ndarray:
        if lo < self.start:
            raise ValueError(f"frame {lo} was dropped: the stream keeps frames from {self.start}")
        return self.frames[..., lo - self.start : hi - self.start]


class ModelStream:
    """One stream's SwiftF0 state: each stage's recent frames. `run(stage_name, feed)` runs a stage's session, after
    `front`."""

    def __init__(self, front: Front, run: Callable[[str, dict[str, np.ndarray]], list[np.ndarray]]):
        self._front = front
        self._run = run
        self._tensors: dict[str, _Tensor] = {}

    def pitch_and_confidence(
        self, audio: np.ndarray, *, first_frame: int, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """SwiftF0's pitch (Hz) and confidence, (hi - lo,) float32 each, for global frames [lo, hi) of `audio` (mono
        float32 at 16 kHz whose sample 0 is global frame `first_frame`'s centre, and which holds every sample the
        stream has so far: hi is its last frame + 1), as the model run on `audio` alone gives them."""
        newest = first_frame + len(audio) // HOP_SAMPLES
        if hi != newest:
            raise ValueError(f"frames up to {hi} asked of audio whose frames end at {newest}: hi is always the newest")
        samples_in = first_frame * HOP_SAMPLES + len(audio)
        final = self._final(FEATURES)
        start = max(final - FRONT_BACK_FRAMES, 0)
        if start < first_frame:
            raise ValueError(f"the audio starts at frame {first_frame}; the front needs it from frame {start}")
        spectra = self._front.log_spectra(audio[(start - first_frame) * HOP_SAMPLES :])
        heard = (samples_in - FRONT_REACH_SAMPLES - 1) // HOP_SAMPLES + 1  # frames whose whole window is in
        self._keep(FEATURES, final, spectra[..., final - start :], max(final, min(heard, hi)))
        for stage in STAGES:
            final = self._final(stage.outputs[0])
            start = max(final - stage.radius_frames, 0)
            inputs = [name for name in stage.inputs if name not in RANGE_FEED]
            feed = {name: self._tensors[name].between(start, hi) for name in inputs}
            results = self._run(stage.name, {**feed, **{k: v for k, v in RANGE_FEED.items() if k in stage.inputs}})
            now_final = max(final, min(self._tensors[name].final for name in inputs) - stage.radius_frames)
            for name, result in zip(stage.outputs, results):
                self._keep(name, final, result[..., final - start :], now_final)
        pitch, confidence = (self._tensors[name].between(lo, hi)[0] for name in STAGES[-1].outputs)
        return pitch, confidence

    def _final(self, name: str) -> int:
        tensor = self._tensors.get(name)
        return tensor.final if tensor is not None else 0

    def _keep(self, name: str, start: int, frames: np.ndarray, final: int) -> None:
        """Frames from global frame `start` on replace what `name` held there; those more than HISTORY_FRAMES before
        them are dropped."""
        old = self._tensors.get(name)
        if old is not None:
            kept = max(old.start, start - HISTORY_FRAMES)
            frames = np.concatenate([old.frames[..., kept - old.start : start - old.start], frames], axis=-1)
            start = kept
        self._tensors[name] = _Tensor(start, frames, final)


def stage_sessions(
    graphs: dict[str, bytes], options: onnxruntime.SessionOptions
) -> dict[str, onnxruntime.InferenceSession]:
    """An onnxruntime session per stage, by name."""
    return {
        stage.name: onnxruntime.InferenceSession(graphs[stage.name], options, providers=["CPUExecutionProvider"])
        for stage in STAGES
    }
