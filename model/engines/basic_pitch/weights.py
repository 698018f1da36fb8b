"""Where Basic Pitch's `nmp.onnx` lives, how it is installed, and proof that it is the right file.

The weights are never committed: `install_weights()` fetches the `basic-pitch`
wheel from PyPI without its dependencies, takes the one file out of it and
checks its SHA-256 before keeping it in the user data dir. The only engine
whose weights are installed by a command (`midibridge model install`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

import platformdirs

from ...errors import WeightsError
from ...vocabulary import Code
from ..weights import download_wheel, read_from_wheel, verified, write_whole

BASIC_PITCH_VERSION = "0.4.0"
REQUIREMENT = f"basic-pitch=={BASIC_PITCH_VERSION}"
WHEEL_NAME = f"basic_pitch-{BASIC_PITCH_VERSION}-py2.py3-none-any.whl"
WEIGHTS_FILE_NAME = "nmp.onnx"
WEIGHTS_SHA256 = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec"
WHAT = "Basic Pitch's model"
SOURCE = f"from the basic-pitch {BASIC_PITCH_VERSION} wheel"
INSTALL_HINT = "midibridge model install basic-pitch"
FIX = f"run `{INSTALL_HINT} --force`"
WEIGHTS_PATH_IN_PACKAGE = "saved_models/icassp_2022/" + WEIGHTS_FILE_NAME
WEIGHTS_ENV = "MIDIBRIDGE_MODEL"


def user_weights_path() -> Path:
    """Where `install_weights()` keeps the weights (`$XDG_DATA_HOME/midibridge/models/` on Linux)."""
    return platformdirs.user_data_path("midibridge") / "models" / WEIGHTS_FILE_NAME


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The path of verified weights: `explicit` (or `$MIDIBRIDGE_MODEL`), the user data dir, an installed `basic_pitch`.

    Raises `WeightsError` naming what was tried and the command that fixes it.
    """
    chosen = explicit or os.environ.get(WEIGHTS_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        origin = "--model" if explicit else f"${WEIGHTS_ENV}"
        if not path.is_file():
            raise WeightsError(
                Code.MODEL_MISSING,
                f"model file {path} (from {origin}) does not exist. Point {origin} at Basic Pitch's "
                f"{WEIGHTS_FILE_NAME}, or unset it and run `{INSTALL_HINT}`.",
            )
        return verify_weights(path)
    for candidate in (user_weights_path(), _installed_package_weights()):
        if candidate is not None and candidate.is_file():
            return verify_weights(candidate)
    raise WeightsError(
        Code.MODEL_MISSING,
        f"{WHAT} ({WEIGHTS_FILE_NAME}) is not installed: looked in {user_weights_path()} and for an "
        f"installed basic_pitch package. Run `{INSTALL_HINT}` (or `make setup`), or pass --model PATH.",
    )


def verify_weights(path: Path) -> Path:
    return verified(path, sha256=WEIGHTS_SHA256, what=WHAT, source=SOURCE, fix=FIX)


def install_weights(*, wheel: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Install verified weights into the user data dir and return their path.

    Without `wheel`, downloads `basic-pitch==0.4.0` with `pip download --no-deps` (unless a good copy is there
    already). A `wheel` given is always read and checked, so a wrong file is refused even then.
    """
    target = user_weights_path()
    if not force and not wheel and _is_good(target):
        return target
    with tempfile.TemporaryDirectory(prefix="midibridge-model-") as tmp:
        wheel_path = (
            Path(wheel) if wheel else download_wheel(REQUIREMENT, WHEEL_NAME, Path(tmp), install_hint=INSTALL_HINT)
        )
        data = read_from_wheel(wheel_path, "basic_pitch/" + WEIGHTS_PATH_IN_PACKAGE, requirement=REQUIREMENT)
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise WeightsError(
            Code.MODEL_CORRUPT,
            f"{WEIGHTS_PATH_IN_PACKAGE} in {wheel_path.name} has SHA-256 {digest}, expected {WEIGHTS_SHA256}: "
            f"not basic-pitch {BASIC_PITCH_VERSION}'s model. Use the wheel of basic-pitch=={BASIC_PITCH_VERSION}.",
        )
    write_whole(target, data)
    return target


def _is_good(path: Path) -> bool:
    try:
        verify_weights(path)
    except WeightsError:
        return False
    return True


def _installed_package_weights() -> Path | None:
    # find_spec locates the package without running its __init__ (which
    # would import TensorFlow probes and print warnings).
    try:
        spec = importlib.util.find_spec("basic_pitch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_PATH_IN_PACKAGE
