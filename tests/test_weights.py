"""The model's weights: installed from basic-pitch's wheel, found in a fixed order, refused when wrong, fix named."""

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from midibridge.model.engines import ENGINES
from midibridge.model.engines.basic_pitch import weights
from midibridge.model.engines.basic_pitch.weights import (
    WEIGHTS_PATH_IN_PACKAGE,
    WEIGHTS_SHA256,
    find_weights,
    install_weights,
    user_weights_path,
)
from midibridge.model.errors import WeightsError

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


@pytest.fixture
def real_model_bytes() -> bytes:
    return find_weights().read_bytes()


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """A user with nothing installed: a fresh data dir and no $MIDIBRIDGE_MODEL."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(weights.WEIGHTS_ENV, raising=False)
    return tmp_path


def a_wheel(path: Path, model_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("basic_pitch/" + WEIGHTS_PATH_IN_PACKAGE, model_bytes)
    return path


def test_installing_from_the_wheel_puts_verified_weights_in_the_user_data_dir(empty_home, real_model_bytes):
    installed = install_weights(wheel=a_wheel(empty_home / "bp.whl", real_model_bytes))

    assert installed == user_weights_path() == empty_home / "data" / "midibridge" / "models" / "nmp.onnx"
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == WEIGHTS_SHA256
    assert find_weights() == installed


def test_a_wheel_with_other_weights_is_refused_and_nothing_is_installed(empty_home):
    with pytest.raises(WeightsError) as caught:
        install_weights(wheel=a_wheel(empty_home / "bp.whl", b"not the model"))

    assert caught.value.code == "model_corrupt" and "basic-pitch==0.4.0" in str(caught.value)
    assert not user_weights_path().exists()


def test_a_wheel_that_is_not_one_is_refused_even_with_good_weights_installed(empty_home, real_model_bytes):
    """`model install basic-pitch --wheel notes.txt` once said "installed and verified" when a good copy was there."""
    install_weights(wheel=a_wheel(empty_home / "bp.whl", real_model_bytes))
    notes = empty_home / "notes.txt"
    notes.write_text("not a wheel")

    done = subprocess.run(
        [MIDIBRIDGE, "model", "install", "basic-pitch", "--wheel", str(notes)], capture_output=True, text=True
    )

    assert done.returncode == 1 and "installed" not in done.stdout
    assert (
        f"error [model_install_failed]: cannot read basic_pitch/{WEIGHTS_PATH_IN_PACKAGE} from {notes}" in done.stderr
    )
    assert hashlib.sha256(user_weights_path().read_bytes()).hexdigest() == WEIGHTS_SHA256, "the good copy stays"


def test_lookup_order_is_option_then_environment_then_data_dir_then_installed_package(
    empty_home, real_model_bytes, monkeypatch
):
    assert find_weights().parts[-4:] == ("basic_pitch", "saved_models", "icassp_2022", "nmp.onnx")
    install_weights(wheel=a_wheel(empty_home / "bp.whl", real_model_bytes))
    assert find_weights() == user_weights_path()
    from_env = empty_home / "env.onnx"
    from_env.write_bytes(real_model_bytes)
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(from_env))
    assert find_weights() == from_env
    explicit = empty_home / "explicit.onnx"
    explicit.write_bytes(real_model_bytes)
    assert find_weights(explicit) == explicit


def test_missing_weights_say_which_command_installs_them(empty_home, monkeypatch):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)  # as if basic_pitch were absent

    with pytest.raises(WeightsError) as caught:
        find_weights()

    assert caught.value.code == "model_missing" and "Run `midibridge model install basic-pitch`" in str(caught.value)


def test_weights_with_the_wrong_hash_say_how_to_reinstall(empty_home):
    corrupt = empty_home / "nmp.onnx"
    corrupt.write_bytes(b"\0" * 1000)

    with pytest.raises(WeightsError) as caught:
        find_weights(corrupt)

    assert caught.value.code == "model_corrupt" and "midibridge model install basic-pitch --force" in str(caught.value)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_engine_finds_and_checks_its_weights_the_same_way(engine, tmp_path):
    """One shape for every engine's weights module: the registry's hash is the file's, and a missing or wrong file
    is refused with the same codes, each naming the fix."""
    weights_module = ENGINES[engine].weights
    found = weights_module.find_weights()
    assert found.name == weights_module.WEIGHTS_FILE_NAME
    assert hashlib.sha256(found.read_bytes()).hexdigest() == ENGINES[engine].weights_sha256
    assert weights_module.verify_weights(found) == found

    wrong = tmp_path / weights_module.WEIGHTS_FILE_NAME
    wrong.write_bytes(found.read_bytes()[:-1] + b"x")
    with pytest.raises(WeightsError) as corrupt:
        weights_module.find_weights(wrong)
    assert corrupt.value.code == "model_corrupt" and str(wrong) in str(corrupt.value)
    assert str(corrupt.value).endswith(f"; {weights_module.FIX}.")
    with pytest.raises(WeightsError) as missing:
        weights_module.find_weights(tmp_path / "absent" / weights_module.WEIGHTS_FILE_NAME)
    assert missing.value.code == "model_missing" and str(tmp_path / "absent") in str(missing.value)


def test_model_install_downloads_basic_pitch_without_its_dependencies(empty_home):
    # The real thing: pip download --no-deps from the package index.
    installed = install_weights(force=True)

    assert hashlib.sha256(installed.read_bytes()).hexdigest() == WEIGHTS_SHA256


def test_model_info_prints_every_engines_weights_with_path_hash_inputs_and_outputs():
    shown = subprocess.run([MIDIBRIDGE, "model", "info"], capture_output=True, text=True, check=True).stdout

    assert WEIGHTS_SHA256 in shown and "serving_default_input_2:0" in shown
    assert all(f"StatefulPartitionedCall:{i}" in shown for i in range(3))
    for name, kind in ENGINES.items():
        assert f"{name}: {kind.weights.WEIGHTS_FILE_NAME}, {kind.weights.SOURCE}" in shown
        assert f"  path:   {kind.weights.find_weights()}" in shown and f"  sha256: {kind.weights_sha256}" in shown
    assert "  output  confidence" in shown, "SwiftF0's ONNX outputs too"


def test_model_info_names_the_engine_whose_weights_are_wrong_and_still_shows_the_others(tmp_path):
    wrong = tmp_path / "nmp.onnx"
    wrong.write_bytes(b"not a model")

    done = subprocess.run([MIDIBRIDGE, "model", "info", "--model", str(wrong)], capture_output=True, text=True)

    assert done.returncode == 1
    assert f"midibridge: error [model_corrupt]: Basic Pitch's model {wrong} (11 bytes) has SHA-256" in done.stderr
    assert "run `midibridge model install basic-pitch --force`." in done.stderr
    assert ENGINES["swift-f0"].weights_sha256 in done.stdout and ENGINES["drums"].weights_sha256 in done.stdout


def test_model_install_of_one_engine_reads_its_wheel_and_installs_only_that(empty_home, real_model_bytes):
    wheel = a_wheel(empty_home / "bp.whl", real_model_bytes)

    done = subprocess.run(
        [MIDIBRIDGE, "model", "install", "basic-pitch", "--wheel", str(wheel)], capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"basic-pitch: nmp.onnx installed and verified: {empty_home / 'data' / 'midibridge' / 'models' / 'nmp.onnx'}"
    ]


def test_a_wheel_without_its_engine_or_an_engine_that_installs_nothing_is_refused_naming_the_fix(empty_home):
    unnamed = subprocess.run([MIDIBRIDGE, "model", "install", "--wheel", "bp.whl"], capture_output=True, text=True)
    packaged = subprocess.run([MIDIBRIDGE, "model", "install", "swift-f0"], capture_output=True, text=True)

    assert unnamed.returncode == 1 and "error [invalid_option]: --wheel bp.whl is one engine's wheel" in unnamed.stderr
    assert "e.g. `midibridge model install basic-pitch --wheel bp.whl`" in unnamed.stderr
    assert packaged.returncode == 1 and "no engine 'swift-f0' installs weights" in packaged.stderr
    assert "name basic-pitch or transkun" in packaged.stderr
    assert not (empty_home / "data" / "midibridge").exists(), "nothing installed"
