"""Where SwiftF0's `model.onnx` lives and proof that it is the right file.

The weights come with the `swift-f0==0.3.0` package, a dependency of
midibridge (MIT; it needs only numpy and onnxruntime). The file is found by
path, without importing the package (its __init__ pulls in plotting code),
and checked byte for byte before it is loaded. It is never committed here.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from ...errors import WeightsError

SWIFT_F0_VERSION = "0.3.0"
MODEL_SHA256 = "6385e8c2ebc3872e82c9ff5946228de44cd3be77a750ea53698b7dbfe94b0a22"
MODEL_BYTES = 135_090
MODEL_FILE_NAME = "model.onnx"
INSTALL_HINT = f".venv/bin/pip install --force-reinstall --no-deps swift-f0=={SWIFT_F0_VERSION} (or `make setup`)"


def find_model() -> Path:
    """The verified path of swift_f0/model.onnx in the installed package; WeightsError says how to fix it."""
    try:
        spec = importlib.util.find_spec("swift_f0")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"SwiftF0's model is not installed: the swift-f0 package is missing. "
                           f"Run `{INSTALL_HINT}`.", code="model_missing")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE_NAME
    if not path.is_file():
        raise WeightsError(f"SwiftF0's model {path} is missing from the swift-f0 package. Run `{INSTALL_HINT}`.",
                           code="model_missing")
    return verify_model(path)


def verify_model(path: Path) -> Path:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != MODEL_BYTES or digest != MODEL_SHA256:
        raise WeightsError(f"SwiftF0's model {path} has {len(data):,} bytes and SHA-256 {digest}, expected "
                           f"{MODEL_BYTES:,} bytes and {MODEL_SHA256} (swift-f0 {SWIFT_F0_VERSION}). The file is "
                           f"corrupt or another version: run `{INSTALL_HINT}`.", code="model_corrupt")
    return path
