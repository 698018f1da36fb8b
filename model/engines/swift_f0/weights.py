"""Where SwiftF0's `model.onnx` lives and proof that it is the right file.

The weights come with the `swift-f0==0.3.0` package, a dependency of
midibridge (MIT; it needs only numpy and onnxruntime). The file is found by
path, without importing the package (its __init__ pulls in plotting code),
and checked byte for byte before it is loaded. It is never committed here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ...errors import WeightsError
from ...vocabulary import Code
from ..weights import verified

SWIFT_F0_VERSION = "0.3.0"
WEIGHTS_FILE_NAME = "model.onnx"
WEIGHTS_SHA256 = "6385e8c2ebc3872e82c9ff5946228de44cd3be77a750ea53698b7dbfe94b0a22"
WHAT = "SwiftF0's model"
SOURCE = f"from the swift-f0 {SWIFT_F0_VERSION} package"
FIX = f"run `.venv/bin/pip install --force-reinstall --no-deps swift-f0=={SWIFT_F0_VERSION}` (or `make setup`)"


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The verified path of `explicit`, or of swift_f0/model.onnx in the installed package; WeightsError says how to
    fix it."""
    if explicit:
        return verify_weights(Path(explicit).expanduser())
    try:
        spec = importlib.util.find_spec("swift_f0")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(Code.MODEL_MISSING, f"{WHAT} is not installed: the swift-f0 package is missing; {FIX}.")
    return verify_weights(Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_FILE_NAME)


def verify_weights(path: Path) -> Path:
    return verified(path, sha256=WEIGHTS_SHA256, what=WHAT, source=SOURCE, fix=FIX)
