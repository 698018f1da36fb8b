"""Windowing, batching and the time of every frame: Basic Pitch's windows, without its clock's sawtooth or lost tail."""

import functools
import threading

import numpy as np
import pytest
from conftest import Note, matches, synthesize, write_audio

from midibridge.model.engines.basic_pitch.constants import (
    BACK_FRAMES,
    CONTEXT_FRAMES,
    FFT_HOP_SAMPLES,
    FIRST_BACK_FRAMES,
    HOP_SAMPLES,
    KEPT_FRAMES_PER_WINDOW,
    ONNX_FEATURES,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    SAMPLE_RATE_HZ,
    WINDOW_SAMPLES,
)
from midibridge.model.engines.basic_pitch.graph import cache_dir, graph_parts
from midibridge.model.engines.basic_pitch.inference import FrameStream, frame_count, frame_times_s, segments
from midibridge.model.region import Region


def test_every_frame_sits_at_window_times_hop_plus_frame_times_fft_hop():
    times = frame_times_s(3 * KEPT_FRAMES_PER_WINDOW)

    assert times[:3] * SAMPLE_RATE_HZ == pytest.approx([0, 256, 512])
    assert times[KEPT_FRAMES_PER_WINDOW] * SAMPLE_RATE_HZ == pytest.approx(HOP_SAMPLES)
    assert times[2 * KEPT_FRAMES_PER_WINDOW + 5] * SAMPLE_RATE_HZ == pytest.approx(2 * HOP_SAMPLES + 5 * 256)
    assert np.all(np.diff(times) > 0)


@pytest.mark.parametrize("n_samples", [1, 255, 256, 257, HOP_SAMPLES, HOP_SAMPLES + 1, 10 * HOP_SAMPLES + 12345])
def test_frames_cover_the_audio_and_stop_at_its_end(n_samples):
    times = frame_times_s(frame_count(n_samples) + 1)

    assert times[-2] < n_samples / SAMPLE_RATE_HZ <= times[-1]
    assert np.all(np.diff(times) <= FFT_HOP_SAMPLES / SAMPLE_RATE_HZ + 1e-12), "no gap in the coverage"


def _activations(model, audio, *, chunk=None):
    chunks = [audio] if chunk is None else [audio[i : i + chunk] for i in range(0, audio.shape[0], chunk)]
    with model.activations(iter(chunks), expected_samples=audio.shape[0]) as found:
        return found.note.copy(), found.onset[:].copy(), found.contour[:].copy()


def test_chunk_sizes_and_batch_sizes_do_not_change_the_model_outputs(transcriber):
    from midibridge.model.engines.basic_pitch.inference import Model

    audio = synthesize([Note(60 + i, 0.2 + 0.6 * i, 0.7 + 0.6 * i, 100) for i in range(8)], sample_rate_hz=22050)
    reference = _activations(transcriber.engine_for().model, audio)
    one_at_a_time = Model(batch_windows=1)

    for chunk, model in (
        (1000, transcriber.engine_for().model),
        (36164, transcriber.engine_for().model),
        (None, one_at_a_time),
    ):
        for mine, theirs in zip(_activations(model, audio, chunk=chunk), reference):
            np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_windows_are_basic_pitchs_windows_except_beside_a_seam(transcriber, tmp_path):
    inference = pytest.importorskip("basic_pitch.inference", reason="the dev extra installs basic-pitch")
    audio = synthesize([Note(55 + 2 * i, 0.3 + 0.5 * i, 0.8 + 0.5 * i, 100) for i in range(10)], sample_rate_hz=22050)
    path = write_audio(tmp_path / "at_22050.wav", audio, SAMPLE_RATE_HZ, bit_depth=32)

    theirs = inference.run_inference(path, inference.Model(str(transcriber.engine_for().model.path)))
    mine = dict(zip(("note", "onset", "contour"), _activations(transcriber.engine_for().model, audio)))

    # Within CONTEXT_FRAMES of where one window's kept frames meet the next one's, the stitched back reads the next
    # window's frames where Basic Pitch reads the same window's (tests/test_golden.py bounds what that changes).
    position = np.arange(theirs["note"].shape[0]) % KEPT_FRAMES_PER_WINDOW
    inside = (position >= CONTEXT_FRAMES) & (position < KEPT_FRAMES_PER_WINDOW - CONTEXT_FRAMES)
    for name in ("note", "onset", "contour"):
        kept = theirs[name].shape[0]
        assert mine[name].shape[0] > kept, "midibridge keeps the tail Basic Pitch drops"
        np.testing.assert_allclose(mine[name][:kept][inside], theirs[name][inside], atol=1e-4)
        assert np.abs(mine[name][:kept] - theirs[name]).max() < 0.5


def test_the_back_starts_on_the_first_windows_frames_and_grows_to_full_runs_computing_each_frame_once(transcriber):
    model = transcriber.engine_for().model
    audio = np.random.default_rng(3).uniform(-0.5, 0.5, 40 * SAMPLE_RATE_HZ).astype(np.float32)
    features = [model.features(batch) for batch in model.batches([audio])]

    assert [batch.shape[0] for batch in features[:3]] == [1, model.batch_windows, model.batch_windows]
    runs = list(segments(features))
    sizes = [run.shape[0] - 2 * CONTEXT_FRAMES for run in runs]
    assert sizes[:3] == [FIRST_BACK_FRAMES, 2 * FIRST_BACK_FRAMES, 4 * FIRST_BACK_FRAMES]
    assert max(sizes) == BACK_FRAMES
    whole = FrameStream()
    for batch in features:
        whole.add(batch)
    (all_at_once,) = whole.finish()
    np.testing.assert_allclose(
        np.concatenate([model.outputs(run)["note"] for run in runs]), model.outputs(all_at_once)["note"], atol=1e-5
    )


def test_the_context_each_side_is_what_the_graphs_convolutions_reach(transcriber):
    back = _basic_pitchs_own(transcriber.engine_for().model, [ONNX_FEATURES], list(ONNX_OUTPUTS.values()))
    constants = {c.name for c in back.graph.initializer}
    reach = {ONNX_FEATURES: 0}
    for node in back.graph.node:  # in topological order; the 2-D convolutions' first axis is time
        height = next((a.ints[0] for a in node.attribute if a.name == "kernel_shape"), 1)
        reach_in = max(reach[name] for name in node.input if name and name not in constants)
        for name in node.output:
            reach[name] = reach_in + height // 2

    assert max(reach[name] for name in ONNX_OUTPUTS.values()) == CONTEXT_FRAMES


def test_the_front_decimates_in_phases_to_the_same_features_as_basic_pitchs_graph(transcriber):
    model = transcriber.engine_for().model
    theirs = _session(_basic_pitchs_own(model, [ONNX_INPUT], [ONNX_FEATURES]))
    windows = np.random.default_rng(1).uniform(-0.5, 0.5, (3, WINDOW_SAMPLES)).astype(np.float32)

    expected = theirs.run([ONNX_FEATURES], {ONNX_INPUT: windows[:, :, np.newaxis]})[0][..., 0]
    np.testing.assert_allclose(model.features(windows), expected, rtol=0, atol=1e-6)


def test_the_back_with_its_convolutions_rewritten_gives_basic_pitchs_outputs(transcriber):
    model = transcriber.engine_for().model
    theirs = _session(_basic_pitchs_own(model, [ONNX_FEATURES], list(ONNX_OUTPUTS.values())))
    window = np.random.default_rng(2).uniform(-0.5, 0.5, (1, WINDOW_SAMPLES)).astype(np.float32)
    features = model.features(window)  # every bin of the CQT busy: noise

    expected = theirs.run(list(ONNX_OUTPUTS.values()), {ONNX_FEATURES: features[..., np.newaxis]})
    mine = model.outputs(features[0])
    for name, outputs in zip(ONNX_OUTPUTS, expected):
        np.testing.assert_allclose(mine[name], outputs[0, CONTEXT_FRAMES:-CONTEXT_FRAMES], rtol=0, atol=1e-5)


def _basic_pitchs_own(model, inputs: list[str], outputs: list[str]):
    """The part of Basic Pitch's installed graph from `inputs` to `outputs`, as Basic Pitch ships it."""
    onnx = pytest.importorskip("onnx")
    return onnx.utils.Extractor(onnx.shape_inference.infer_shapes(onnx.load(model.path))).extract_model(inputs, outputs)


def _session(graph):
    import onnxruntime

    return onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_damaged_cached_graph_is_cut_again_and_the_installed_weights_stay_basic_pitchs(
    transcriber, tmp_path, monkeypatch
):
    weights = transcriber.engine_for().model.path
    before = weights.read_bytes()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = graph_parts(weights)
    (cache_dir() / "back.onnx").write_bytes(first.back[:1000])

    assert cache_dir().is_relative_to(tmp_path)
    assert graph_parts(weights) == first
    assert (cache_dir() / "back.onnx").read_bytes() == first.back
    assert weights.read_bytes() == before


@pytest.fixture(scope="module")
def five_minutes(transcriber, tmp_path_factory):
    """Plucked notes every 1.37 s (out of step with the 1.64 s windows) for 5 minutes, the last at 298.9 s."""
    pitches = [60, 64, 67, 72, 65, 69]
    truth = [Note(pitches[i % 6], 0.5 + 1.37 * i, 1.0 + 1.37 * i, 100) for i in range(217)]
    truth.append(Note(76, 298.9, 299.5, 100))
    path = write_audio(
        tmp_path_factory.mktemp("long") / "five_minutes.flac",
        synthesize(truth, sample_rate_hz=44100, length_s=300.0),
        44100,
    )
    clip = transcriber.transcribe(Region.from_file(path))
    return truth, matches(list(clip.notes), truth)


def test_a_five_minute_file_keeps_its_last_seconds(five_minutes):
    truth, found = five_minutes

    assert len(found) == len(truth)
    assert found[-1][1].start_s == pytest.approx(298.9, abs=0.05), "the note 1.1 s before the end is there"


def test_onset_error_does_not_saw_with_the_position_in_the_window(five_minutes):
    _, found = five_minutes
    errors_ms = np.array([(f.start_s - t.start_s) * 1000 for t, f in found])

    # One frame (11.6 ms) of quantisation is all the spread left; Basic Pitch's
    # clock adds a sawtooth of about -8…+10 ms on top (next test).
    assert np.percentile(errors_ms, 95) - np.percentile(errors_ms, 5) < 12.0
    assert abs(np.median(errors_ms)) < 5.0


def test_basic_pitchs_own_clock_would_have_sawed_and_cut_the_tail(five_minutes):
    note_creation = pytest.importorskip("basic_pitch.note_creation", reason="the dev extra installs basic-pitch")
    _, found = five_minutes
    times = frame_times_s(frame_count(300 * SAMPLE_RATE_HZ))
    their_times = note_creation.model_frames_to_time(times.shape[0])
    frame_of = {round(t, 9): i for i, t in enumerate(times)}
    theirs_ms = np.array([(their_times[frame_of[round(f.start_s, 9)]] - t.start_s) * 1000 for t, f in found])
    ours_ms = np.array([(f.start_s - t.start_s) * 1000 for t, f in found])

    spread = np.percentile(theirs_ms, 95) - np.percentile(theirs_ms, 5)
    assert spread > np.percentile(ours_ms, 95) - np.percentile(ours_ms, 5) + 4.0
    kept_by_them = int(300 * SAMPLE_RATE_HZ * (86 / SAMPLE_RATE_HZ))  # unwrap_output's trim
    assert their_times[kept_by_them - 1] < 298.9, "Basic Pitch 0.4.0 would have lost the last note"


def _read_ahead_threads():
    return [t for t in threading.enumerate() if t.name == "basic-pitch-read-ahead"]


def test_audio_read_ahead_stops_when_a_job_is_cancelled(transcriber):
    from midibridge.model.errors import Cancelled

    read = []

    def chunks():
        for index in range(100):
            read.append(index)
            yield np.zeros(SAMPLE_RATE_HZ, dtype=np.float32)

    def cancel(stage, fraction):
        raise Cancelled("job-1")

    with pytest.raises(Cancelled):
        transcriber.engine_for().model.activations(chunks(), expected_samples=100 * SAMPLE_RATE_HZ, on_progress=cancel)

    # Two helpers (decoding, the front) each hold a batch ready and make the next: a few batches of 4 windows, 6.6 s.
    assert len(read) < 40, "the helpers stopped within a few batches of the cancel"
    assert not _read_ahead_threads()


def test_an_error_while_reading_audio_ahead_reaches_the_caller(transcriber):
    from midibridge.model.errors import AudioError
    from midibridge.model.vocabulary import Code

    def chunks():
        yield np.zeros(5 * SAMPLE_RATE_HZ, dtype=np.float32)
        raise AudioError(Code.AUDIO_UNREADABLE, "damaged at sample 110250")

    with pytest.raises(AudioError, match="damaged at sample 110250"):
        transcriber.engine_for().model.activations(chunks(), expected_samples=10 * SAMPLE_RATE_HZ)

    assert not _read_ahead_threads()


def test_a_back_that_onnxruntime_cannot_load_is_reported_where_the_model_is_used(transcriber, monkeypatch):
    from midibridge.model.engines.basic_pitch import inference
    from midibridge.model.errors import WeightsError
    from midibridge.model.vocabulary import Code

    built = inference._session

    def session(model: bytes, path, threads: int):
        if threads != 1:  # the back's, built in a helper thread beside the front's
            raise WeightsError(Code.MODEL_CORRUPT, f"onnxruntime cannot load {path}: damaged")
        return built(model, path, threads)

    monkeypatch.setattr(inference, "_session", session)
    # Sessions of its own, which no other test sees:
    monkeypatch.setattr(inference, "_sessions", functools.cache(inference._sessions_in_thread))
    model = inference.Model(transcriber.engine_for().model.path)

    with pytest.raises(WeightsError, match="damaged") as raised:
        model.features(np.zeros((1, WINDOW_SAMPLES), np.float32))
    assert raised.value.code == Code.MODEL_CORRUPT
    assert not [t for t in threading.enumerate() if t.name == "basic-pitch-back-session"]
