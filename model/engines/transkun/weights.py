"""Where Transkun's two ONNX graphs live, how `midibridge model install` makes them, and proof that they are right.

Nothing of Transkun is committed, and PyTorch is never needed: `install_weights()`
fetches the `transkun` wheel from PyPI without its dependencies, checks its
checkpoint (transkun/pretrained/2.0.pt) by SHA-256, reads its tensors with
numpy (checkpoint.py), writes the network and the heads as ONNX graphs
(graph.py, which needs the `onnx` package) and checks that their bytes are the
expected ones before keeping them in the user data dir. Standard library only
until it writes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import platformdirs

from ...errors import WeightsError
from ...vocabulary import Code
from ..weights import download_wheel, read_from_wheel, verified, write_whole
from .constants import CHECKPOINT_IN_WHEEL, CHECKPOINT_SHA256, TRANSKUN_VERSION

REQUIREMENT = f"transkun=={TRANSKUN_VERSION}"
WEIGHTS_FILE_NAME = "transkun-2.0.onnx"
WEIGHTS_SHA256 = "1f6cc5eb3a1d2f89dc40d5df446c61e7fd9a7bb1257dc16f0369910e462f2ef8"
HEADS_FILE_NAME = "transkun-2.0-heads.onnx"  # beside the network, wherever it is
HEADS_SHA256 = "103da9c29f819bf84cd698faff6c1b2827b81cf112b8c6b458a4db73ae99d1d6"
WHAT = "Transkun's graph"
SOURCE = f"written from the transkun {TRANSKUN_VERSION} wheel's checkpoint by `midibridge model install`"
INSTALL_HINT = "midibridge model install transkun"
FIX = f"run `{INSTALL_HINT} --force`"


def user_weights_path() -> Path:
    """Where `install_weights()` keeps the network (`$XDG_DATA_HOME/midibridge/models/` on Linux), heads beside it."""
    return platformdirs.user_data_path("midibridge") / "models" / WEIGHTS_FILE_NAME


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The verified network graph, `explicit` or the installed one, with its verified heads beside it.

    Raises WeightsError model_missing or model_corrupt, naming the command that fixes it.
    """
    path = Path(explicit).expanduser() if explicit else user_weights_path()
    if not explicit and not path.is_file():
        raise WeightsError(
            Code.MODEL_MISSING,
            f"{WHAT} ({WEIGHTS_FILE_NAME}) is not installed: looked in {path}. Run `{INSTALL_HINT}` (or `make setup`).",
        )
    verify_weights(path)
    verified(heads_path(path), sha256=HEADS_SHA256, what="Transkun's heads graph", source=SOURCE, fix=FIX)
    return path


def heads_path(network: Path) -> Path:
    return network.with_name(HEADS_FILE_NAME)


def verify_weights(path: Path) -> Path:
    return verified(path, sha256=WEIGHTS_SHA256, what=WHAT, source=SOURCE, fix=FIX)


def install_weights(*, wheel: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Write verified graphs into the user data dir from transkun's checkpoint and return the network's path.

    Without `wheel`, downloads transkun==2.0.1 with `pip download --no-deps` (unless good graphs are there already).
    A `wheel` given is always read and checked, so a wrong file is refused even then.
    """
    target = user_weights_path()
    if not force and not wheel and _is_good(target):
        return target
    with tempfile.TemporaryDirectory(prefix="midibridge-model-") as tmp:
        wheel_path = (
            Path(wheel)
            if wheel
            else download_wheel(
                REQUIREMENT, f"transkun-{TRANSKUN_VERSION}-py3-none-any.whl", Path(tmp), install_hint=INSTALL_HINT
            )
        )
        checkpoint = read_from_wheel(wheel_path, CHECKPOINT_IN_WHEEL, requirement=REQUIREMENT)
    digest = hashlib.sha256(checkpoint).hexdigest()
    if digest != CHECKPOINT_SHA256:
        raise WeightsError(
            Code.MODEL_CORRUPT,
            f"{CHECKPOINT_IN_WHEEL} in {wheel_path.name} ({len(checkpoint):,} bytes) has SHA-256 {digest}, expected "
            f"{CHECKPOINT_SHA256}: not transkun {TRANSKUN_VERSION}'s checkpoint. Use the wheel of {REQUIREMENT}.",
        )
    network, heads = write_graphs(checkpoint)
    write_whole(heads_path(target), heads)
    write_whole(target, network)  # last: the file find_weights() looks for
    return target


def write_graphs(checkpoint: bytes) -> tuple[bytes, bytes]:
    """The network's and the heads' ONNX files for transkun's checkpoint, checked against their SHA-256."""
    from . import graph  # the onnx package is needed here only
    from .checkpoint import read_state_dict

    state = read_state_dict(checkpoint, what=f"{REQUIREMENT}'s {CHECKPOINT_IN_WHEEL}")
    graphs = []
    for name, build, expected in (
        ("network", graph.network_model, WEIGHTS_SHA256),
        ("heads", graph.heads_model, HEADS_SHA256),
    ):
        data = build(state).SerializeToString()
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise WeightsError(
                Code.MODEL_INSTALL_FAILED,
                f"the {name} graph written from {REQUIREMENT}'s checkpoint has SHA-256 {digest}, expected {expected}: "
                f"this onnx package ({graph.onnx.__version__}) writes other bytes than the one it was checked with. "
                f"Install midibridge's pinned dependencies (`make setup`) and run `{INSTALL_HINT} --force`.",
            )
        graphs.append(data)
    return graphs[0], graphs[1]


def _is_good(path: Path) -> bool:
    try:
        find_weights(path)
    except WeightsError:
        return False
    return True
