"""What every engine's weights module shares: a file is used only when its bytes are the expected ones, and each
refusal names the fix.

Every engine's `weights` module has the same shape, which model.engines.ENGINES
reaches as `EngineKind.weights`:

    WEIGHTS_FILE_NAME  the file's name ("nmp.onnx")
    WEIGHTS_SHA256     its SHA-256: part of what makes two results the same
    WHAT, SOURCE, FIX  what it is, where it comes from, and what a user does when it is missing or wrong
    find_weights(explicit=None) -> Path   the verified file: `explicit` when given, else where the engine keeps it
    verify_weights(path) -> Path          `path` when it holds those bytes

and raises WeightsError `model_missing` or `model_corrupt`, its message ending in
FIX. Standard library only: onnxruntime is imported by `describe` alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..vocabulary import Code


def verified(path: Path, *, sha256: str, what: str, source: str, fix: str) -> Path:
    """`path` when its bytes hash to `sha256`; WeightsError model_missing (it cannot be read) or model_corrupt."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(Code.MODEL_MISSING, f"{what} {path} cannot be read ({error.strerror}): {fix}.") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise WeightsError(
            Code.MODEL_CORRUPT,
            f"{what} {path} ({len(data):,} bytes) has SHA-256 {digest}, expected {sha256} ({source}): "
            f"the file is corrupt or another version; {fix}.",
        )
    return path


def describe(path: Path) -> dict:
    """The file's path and hash, and for an ONNX graph its inputs and outputs (name, type, shape)."""
    described: dict[str, Any] = {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "inputs": [],
        "outputs": [],
    }
    if path.suffix == ".onnx":
        import onnxruntime  # only here: the rest of this module is read without it

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for kind, nodes in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
            described[kind] = [{"name": n.name, "type": n.type, "shape": list(n.shape)} for n in nodes]
    return described
