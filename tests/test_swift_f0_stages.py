"""Live, SwiftF0 runs stage by stage over the stream, each frame computed once its inputs are final: a singer's line fed
in blocks of any size gets, for every frame live asks for, the pitch and confidence the whole model gives on the same
audio, at a fraction of the work."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from midibridge.model.engines.swift_f0.constants import (
    CONTEXT_AFTER_FRAMES,
    CONTEXT_BEFORE_FRAMES,
    HOP_SAMPLES,
    SAMPLE_RATE_HZ,
)
from midibridge.model.engines.swift_f0.features import FrameExtractor
from midibridge.model.engines.swift_f0.stages import BACK, RANGE_FEED, STAGES, cache_dir, stage_graphs
from midibridge.model.engines.swift_f0.weights import find_weights


def sung_line(seconds: float) -> np.ndarray:
    """A voice-like line at 16 kHz: notes with vibrato and harmonics, breaths of silence between, a little noise."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    f0 = 220.0 * 2 ** (np.floor(t / 0.6) % 5 / 12) * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE_HZ
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (t % 0.6 < 0.5)
    return (0.2 * voice + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def test_streamed_stages_give_the_whole_models_numbers_for_every_frame_live_asks_for():
    audio = sung_line(5.0)
    extractor = FrameExtractor(find_weights(), helpers=0)
    model = extractor.model_stream()
    blocks = np.random.default_rng(3).choice([85, 85, 85, 256, 700, 9000], size=400)  # JACK periods, and stalls
    ends = np.minimum(np.cumsum(blocks), len(audio))
    final = 0
    for samples_in in ends[ends < len(audio)]:
        n = samples_in // HOP_SAMPLES
        if n <= final:
            continue
        first = max(final - CONTEXT_BEFORE_FRAMES, 0)  # as live asks: the frames since its last final one
        window = audio[first * HOP_SAMPLES : samples_in]
        pitch, confidence = model.pitch_and_confidence(window, first_frame=first, lo=final, hi=n)
        whole_pitch, whole_confidence = extractor.pitch_and_confidence(window)

        np.testing.assert_allclose(np.log2(pitch), np.log2(whole_pitch[final - first :]), rtol=0, atol=1e-5)
        np.testing.assert_allclose(confidence, whole_confidence[final - first :], rtol=0, atol=1e-5)
        final = max(final, n - CONTEXT_AFTER_FRAMES - 1)


@pytest.mark.parametrize("n_samples", [100, 3_000, 80_000])  # less than a frame, a few, 5 s
def test_the_numpy_front_gives_the_models_own_pitch_and_confidence(n_samples):
    """The front's spectra come from numpy's FFT, not the graph's matrix DFTs: the same numbers to float rounding."""
    audio = sung_line(5.0)[:n_samples]
    model = onnxruntime.InferenceSession(str(find_weights()), providers=["CPUExecutionProvider"])
    pitch, confidence = model.run(None, {"audio": audio[None], **RANGE_FEED})

    ours_pitch, ours_confidence = FrameExtractor(find_weights(), helpers=0).pitch_and_confidence(audio)
    np.testing.assert_allclose(12 * np.log2(ours_pitch), 12 * np.log2(pitch[0]), rtol=0, atol=1e-3)  # semitones
    np.testing.assert_allclose(ours_confidence, confidence[0], rtol=0, atol=1e-3)


def test_each_stage_reads_as_many_frames_around_one_as_its_convolutions_do():
    graphs = stage_graphs(find_weights())
    for stage in (*STAGES, BACK):
        convolutions = [node for node in onnx.load_from_string(graphs[stage.name]).graph.node if node.op_type == "Conv"]
        radius = 0
        for node in convolutions:
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            time_taps, time_dilation = attributes["kernel_shape"][-1], attributes.get("dilations", [1])[-1]
            radius += (time_taps - 1) // 2 * time_dilation  # time is the last axis of every convolution here
        assert radius == stage.radius_frames, stage.name


def test_a_damaged_cached_stage_is_cut_again(tmp_path, monkeypatch):
    weights = find_weights()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = stage_graphs(weights)
    (cache_dir() / "head.onnx").write_bytes(first["head"][:1000])

    assert cache_dir().is_relative_to(tmp_path)
    assert stage_graphs(weights) == first
    onnxruntime.InferenceSession((cache_dir() / "head.onnx").read_bytes(), providers=["CPUExecutionProvider"])


def test_audio_that_starts_after_what_the_model_still_reads_is_refused_naming_the_frame():
    extractor = FrameExtractor(find_weights(), helpers=0)
    model = extractor.model_stream()
    audio = sung_line(2.0)
    model.pitch_and_confidence(audio, first_frame=0, lo=0, hi=len(audio) // HOP_SAMPLES)
    with pytest.raises(ValueError, match="the audio starts at frame 120; the front needs it from frame 118"):
        model.pitch_and_confidence(audio[HOP_SAMPLES * 120 :], first_frame=120, lo=121, hi=len(audio) // HOP_SAMPLES)
