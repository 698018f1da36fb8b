"""ONNX graphs an engine derives from its verified weights (cut, rewritten, quantised), kept in the user cache dir.

Deriving them needs the `onnx` package, whose import alone takes about a
second, so each is written once with its SHA-256 and made again whenever a
file is missing or not the bytes recorded. The directory's name says which
weights and which version of the derivation made them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def read_cached(directory: Path, names: tuple[str, ...]) -> dict[str, bytes] | None:
    """The ONNX files `names` in `directory` when each is there with the SHA-256 its sha256.json records, else None."""
    try:
        digests = json.loads((directory / "sha256.json").read_text())
        data = {name: (directory / f"{name}.onnx").read_bytes() for name in names}
    except (OSError, ValueError):
        return None
    if any(hashlib.sha256(data[name]).hexdigest() != digests.get(name) for name in names):
        return None
    return data


def write_cached(directory: Path, data: dict[str, bytes]) -> None:
    """Keep `data` (name -> ONNX bytes) in `directory` with their SHA-256; a cache that cannot be written only costs
    the next start the same work."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, model in data.items():
            _replace(directory / f"{name}.onnx", model)
        digests = {name: hashlib.sha256(model).hexdigest() for name, model in data.items()}
        _replace(directory / "sha256.json", json.dumps(digests).encode())
    except OSError:
        pass


def _replace(path: Path, data: bytes) -> None:
    # A name of its own per writer: two processes starting at once both write whole files.
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".partial", delete=False) as partial:
        partial.write(data)
    os.replace(partial.name, path)
