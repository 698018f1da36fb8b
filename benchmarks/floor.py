"""What bounds the Basic Pitch engine's speed, for benchmarks/transcription.py: the machine's float32 matmul rate, the
model's work per second of audio counted from its graph, and where a short `convert`'s time goes before its first
window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import midibridge
from midibridge.model.engines.basic_pitch.constants import (
    HOP_SAMPLES,
    KEPT_FRAMES_PER_WINDOW,
    N_FEATURE_BINS,
    SAMPLE_RATE_HZ,
    WINDOW_SAMPLES,
)
from midibridge.model.engines.basic_pitch.graph import cut


def matmul_gflops(*, size: int = 2048, repeats: int = 5) -> float:
    """The best float32 matrix product rate numpy (its BLAS, every core) reaches here, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def model_gflop_per_audio_s(weights: Path) -> dict[str, float]:
    """GFLOP per second of audio (2 per multiply-add of every convolution, the rest is small): Basic Pitch's way (the
    whole graph on each overlapping window) and midibridge's (the front on each window, the back once per frame)."""
    import onnx

    windows_per_s = SAMPLE_RATE_HZ / HOP_SAMPLES
    probe_frames = 1000
    parts = cut(weights.read_bytes())
    window = np.zeros((1, WINDOW_SAMPLES, 1), np.float32)
    frames = np.zeros((1, probe_frames, N_FEATURE_BINS, 1), np.float32)
    return {
        "whole_windows": _product_flop(onnx.load(weights), window) * windows_per_s / 1e9,
        "stitched": (
            _product_flop(onnx.load_from_string(parts.front), window) * windows_per_s
            + _product_flop(onnx.load_from_string(parts.back), frames)
            / probe_frames
            * windows_per_s
            * KEPT_FRAMES_PER_WINDOW
        )
        / 1e9,
    }


def _product_flop(model, probe: np.ndarray) -> float:
    """FLOP of one run on `probe`: every convolution's and matrix product's output shape as onnxruntime finds it (shape
    inference stops at the normalisation's dynamic reshape), times the multiply-adds of each output value."""
    import onnx
    import onnxruntime

    weights = {c.name: c.dims for c in model.graph.initializer}
    products = [node for node in model.graph.node if node.op_type in ("Conv", "MatMul")]
    model.graph.output.extend(onnx.ValueInfoProto(name=node.output[0]) for node in products)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run([node.output[0] for node in products], {model.graph.input[0].name: probe})
    return sum(
        2.0 * output.size * float(np.prod(_summed(node, weights[node.input[1]])))
        for node, output in zip(products, outputs)
    )


def _summed(node, weight: list[int]) -> list[int]:
    """The lengths a product sums over: a convolution's kernel (out, in / group, *size), a matrix product's rows."""
    return weight[1:] if node.op_type == "Conv" else weight[:1]


# Run in a fresh interpreter: the imports `midibridge convert` makes, the weights and the cut graph read, then the
# whole convert of the file: its onnxruntime sessions are made beside its decoding (inference's _sessions_in_thread), so
# they are part of its seconds, as are the model's first runs.
_STARTUP = """
import json, sys, time
started = time.perf_counter()
import midibridge.plugin_host.cli
from midibridge.model.engines.basic_pitch.graph import graph_parts
from midibridge.model.engines.basic_pitch.weights import find_weights
from midibridge.model.pipeline import Transcriber
from midibridge.model.region import Region
imported = time.perf_counter()
graph_parts(find_weights())
read = time.perf_counter()
Transcriber().convert(Region.from_file(sys.argv[1]))
done = time.perf_counter()
print(json.dumps({"imports_s": imported - started, "weights_and_graph_s": read - imported,
                  "convert_with_sessions_s": done - read}))
"""


def installed_env() -> dict[str, str]:
    """This environment, but Python keeps midibridge's compiled bytecode (in a cache beside the temp dir) as an
    installed package has it: with PYTHONDONTWRITEBYTECODE set, every whole-process run compiled the package's ~50
    modules again. `compile_package()` fills the cache first."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "midibridge-bench-pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_package() -> None:
    """midibridge's bytecode into installed_env()'s cache, as pip does when it installs a package."""
    package = Path(midibridge.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=installed_env(), check=True)


def startup(audio: Path, *, repeats: int) -> dict[str, float]:
    """Each stage's median over `repeats` fresh interpreters, and the interpreter's own start."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare_s = time.perf_counter() - started
        command = [sys.executable, "-c", _STARTUP, str(audio)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=installed_env())
        runs.append({"interpreter_s": bare_s, **json.loads(done.stdout)})
    return {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
