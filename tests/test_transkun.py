"""The Transkun engine without PyTorch: on the bundled piano example it decodes the same intervals as transkun's own
PyTorch code and makes the same notes (tests/data/transkun_reference.json, made by make_transkun_reference.py);
its graphs are written only from transkun 2.0.1's checkpoint and refused when their bytes are wrong, with the fix
named."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import streamed_peak_bytes

from midibridge.model.audio import open_region
from midibridge.model.engines.transkun import engine as transkun_engine
from midibridge.model.engines.transkun import weights
from midibridge.model.engines.transkun.checkpoint import read_state_dict
from midibridge.model.engines.transkun.constants import (
    CHECKPOINT_IN_WHEEL,
    LEAD_SAMPLES,
    SAMPLE_RATE_HZ,
    WINDOW_HOP_SAMPLES,
    WINDOW_SAMPLES,
)
from midibridge.model.engines.transkun.engine import Transkun, cut_windows, window_count
from midibridge.model.engines.transkun.options import TranskunOptions
from midibridge.model.errors import WeightsError
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "ode_to_joy_piano.flac"
REFERENCE = json.loads((Path(__file__).parent / "data" / "transkun_reference.json").read_text())
# Times are float64 from float32 logits that onnxruntime and PyTorch compute with other kernels; a refined onset
# moves by (logit error) x (slope < 1 frame): 0.1 ms is 1/230 of a frame, far above the 4.4e-7 s seen, far below
# anything audible or scored (50 ms).
TIME_TOLERANCE_S = 1e-4


@pytest.fixture(scope="module")
def example_transcribed():
    """The example's notes from the engine, and the intervals it decoded window by window."""
    engine = Transkun(threads=2)  # `make setup` installs its graphs (`midibridge model install`)
    windows = []
    decode = transkun_engine.best_intervals

    def recording(*args):
        found = decode(*args)
        windows.append(sorted([key, begin, end] for key, intervals in enumerate(found) for begin, end in intervals))
        return found

    audio = open_region(Region(path=str(EXAMPLE)))
    chunks = list(audio.chunks())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transkun_engine, "best_intervals", recording)
        notes = engine.notes(iter(chunks), n_samples=audio.n_samples, options=TranskunOptions())
    return np.concatenate(chunks), notes, windows


def test_the_example_is_the_recording_the_reference_was_made_from(example_transcribed):
    samples, _, _ = example_transcribed
    case = REFERENCE["cases"][EXAMPLE.name]
    pcm = np.round(samples * 32767).astype(np.int16)  # how midibridge reads 16-bit audio
    assert pcm.shape[0] == case["samples"] and hashlib.sha256(pcm.tobytes()).hexdigest() == case["pcm16_sha256"]


def test_every_window_decodes_the_intervals_pytorch_decodes(example_transcribed):
    _, _, windows = example_transcribed
    expected = [sorted(window) for window in REFERENCE["cases"][EXAMPLE.name]["windows"]]

    assert len(windows) == len(expected) == window_count(REFERENCE["cases"][EXAMPLE.name]["samples"])
    assert windows == expected
    assert sum(len(w) for w in windows) > 30, "the example exercises the decode"


def test_the_notes_are_pytorchs_with_the_same_pitches_and_velocities(example_transcribed):
    _, notes, _ = example_transcribed
    expected = REFERENCE["cases"][EXAMPLE.name]["notes"]

    assert [(n.pitch, n.velocity) for n in notes] == [(pitch, max(velocity, 1)) for pitch, _, _, velocity in expected]
    np.testing.assert_allclose(
        [(n.start_s, n.end_s) for n in notes], [(s, e) for _, s, e, _ in expected], rtol=0, atol=TIME_TOLERANCE_S
    )


def test_windows_are_the_same_however_the_audio_arrives():
    audio = np.random.default_rng(0).standard_normal(3 * WINDOW_SAMPLES + 1234).astype(np.float32)
    whole = list(cut_windows([audio]))
    in_pieces = list(cut_windows(np.array_split(audio, 57)))

    assert len(whole) == len(in_pieces) == window_count(audio.shape[0])
    assert all(np.array_equal(a, b) for a, b in zip(whole, in_pieces))
    assert all(w.shape == (WINDOW_SAMPLES,) for w in whole)
    # the first window starts 8 s of zeros before the audio, each next one a hop later
    assert not whole[0][:LEAD_SAMPLES].any()
    np.testing.assert_array_equal(whole[0][LEAD_SAMPLES:], audio[: WINDOW_SAMPLES - LEAD_SAMPLES])
    np.testing.assert_array_equal(whole[1][:100], audio[WINDOW_HOP_SAMPLES - LEAD_SAMPLES :][:100])


def test_a_wheel_with_another_checkpoint_is_refused_with_the_fix_and_nothing_is_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    wheel = tmp_path / "transkun-2.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(CHECKPOINT_IN_WHEEL, b"another checkpoint")

    with pytest.raises(WeightsError) as caught:
        weights.install_weights(wheel=wheel)

    assert caught.value.code == Code.MODEL_CORRUPT
    assert "not transkun 2.0.1's checkpoint. Use the wheel of transkun==2.0.1" in str(caught.value)
    assert not weights.user_weights_path().parent.exists()


def test_graphs_with_the_wrong_bytes_are_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(WeightsError) as missing:
        weights.find_weights()
    corrupt = tmp_path / weights.WEIGHTS_FILE_NAME
    corrupt.write_bytes(b"\0" * 1000)
    with pytest.raises(WeightsError) as wrong:
        weights.find_weights(corrupt)

    assert missing.value.code == Code.MODEL_MISSING and "Run `midibridge model install transkun`" in str(missing.value)
    assert wrong.value.code == Code.MODEL_CORRUPT and "midibridge model install transkun --force" in str(wrong.value)


def test_a_checkpoint_is_read_without_running_anything_it_names():
    checkpoint = io.BytesIO()
    with zipfile.ZipFile(checkpoint, "w") as archive:
        archive.writestr("2.0/data.pkl", pickle.dumps({"state_dict": {"w": os.system}}))
        archive.writestr("2.0/byteorder", b"little")

    with pytest.raises(WeightsError) as caught:
        read_state_dict(checkpoint.getvalue(), what="a crafted 2.0.pt")

    assert caught.value.code == Code.MODEL_CORRUPT and "refusing posix.system" in str(caught.value)


def test_a_long_streamed_region_keeps_memory_bounded():
    """The audio arrives a chunk at a time and each window is decoded and dropped before the next but one: twice
    the audio adds far less memory than that audio itself (the notes only)."""
    engine = Transkun(threads=2)
    audio = open_region(Region(path=str(EXAMPLE)))
    chunk = np.concatenate(list(audio.chunks()))[: 2 * SAMPLE_RATE_HZ]

    short, long = (streamed_peak_bytes(engine, chunk, TranskunOptions(), minutes=m) for m in (1, 2))
    more_audio_bytes = 60 * SAMPLE_RATE_HZ * 4
    assert long - short < 0.25 * more_audio_bytes, f"{short / 1e6:.1f} MB for 1 minute, {long / 1e6:.1f} MB for 2"
