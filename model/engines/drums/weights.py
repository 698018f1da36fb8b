"""Where the drum model's `model.npz` lives and proof that it is the right file.

The weights are midibridge's own (training/README.md says how they were
made), committed beside this file and installed with the package.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..weights import verified

WEIGHTS_FILE_NAME = "model.npz"
WEIGHTS_SHA256 = "f528602423170b4b50c1e5e36adabc81900d83b591771789475c20447ddb2970"
WHAT = "the drum model"
SOURCE = "shipped with midibridge"
FIX = "reinstall midibridge (`.venv/bin/pip install -e .` or `make setup`), or `git checkout` the file"
WEIGHTS_PATH = Path(__file__).with_name(WEIGHTS_FILE_NAME)


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The verified path of `explicit`, or of model.npz beside this file; WeightsError says how to fix it."""
    return verify_weights(Path(explicit).expanduser() if explicit else WEIGHTS_PATH)


def verify_weights(path: Path) -> Path:
    return verified(path, sha256=WEIGHTS_SHA256, what=WHAT, source=SOURCE, fix=FIX)
