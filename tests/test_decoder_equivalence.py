"""Given the same model outputs, midibridge's notes are Basic Pitch's notes.

Against `basic_pitch.note_creation` itself (the dev extra installs it with
--no-deps): on real model outputs of rendered and synthesised audio, and on
random activations from hypothesis. test_golden.py keeps a stored case that
needs no basic_pitch.
"""

import numpy as np
import pytest
from conftest import Note, synthesize
from hypothesis import given, settings
from hypothesis import strategies as st

from midibridge.model.engines.basic_pitch.bends import add_lone_pitch_bends, add_pitch_bends
from midibridge.model.engines.basic_pitch.notes import decode_notes
from midibridge.model.engines.basic_pitch.options import BasicPitchOptions
from midibridge.model.region import Region

note_creation = pytest.importorskip("basic_pitch.note_creation", reason="the dev extra installs basic-pitch")

OPTION_SETS = [
    {},
    {"min_frequency_hz": 100.0, "max_frequency_hz": 1000.0},
    {"melodia_trick": False},
    {"infer_onsets": False, "onset_threshold": 0.3, "frame_threshold": 0.2},
    {"onset_threshold": 0.7, "frame_threshold": 0.5, "min_note_ms": 58.0},
]


def ours(note, onset, contour, options: BasicPitchOptions):
    events = add_pitch_bends(contour, decode_notes(note, onset, options=options))
    return sorted((e.start_frame, e.end_frame, e.pitch, e.amplitude, e.bends) for e in events)


def basic_pitch(note, onset, contour, options: BasicPitchOptions):
    events = note_creation.output_to_notes_polyphonic(
        note.copy(),
        onset.copy(),  # it zeroes its inputs outside the frequency range
        onset_thresh=options.onset_threshold,
        frame_thresh=options.frame_threshold,
        min_note_len=options.min_note_frames,
        infer_onsets=options.infer_onsets,
        max_freq=options.max_frequency_hz,
        min_freq=options.min_frequency_hz,
        melodia_trick=options.melodia_trick,
    )
    events = note_creation.get_pitch_bends(contour, events)
    return sorted((int(s), int(e), int(p), float(a), tuple(int(b) for b in bends)) for s, e, p, a, bends in events)


def assert_same_notes(mine, theirs):
    assert [m[:3] + (m[4],) for m in mine] == [t[:3] + (t[4],) for t in theirs], "frames, pitches and bends"
    np.testing.assert_allclose([m[3] for m in mine], [t[3] for t in theirs], atol=1e-5, err_msg="amplitudes")


@pytest.fixture(scope="module")
def activations(transcriber, piano_line, tmp_path_factory):
    from conftest import write_audio

    from midibridge.model.audio import open_region, resample, resampled_length
    from midibridge.model.engines.basic_pitch.constants import SAMPLE_RATE_HZ

    glides = [Note(57 + 2 * i, 0.4 + 0.9 * i, 1.2 + 0.9 * i, 110) for i in range(5)]
    sliding = write_audio(
        tmp_path_factory.mktemp("glide") / "glide.wav", synthesize(glides, glide_semitones=1.5), 44100
    )
    outputs = {}
    for name, path in (("piano", piano_line), ("glide", sliding)):
        audio = open_region(Region.from_file(path))
        samples = resample(audio.chunks(), from_hz=audio.sample_rate_hz, to_hz=SAMPLE_RATE_HZ)
        expected = resampled_length(audio.n_samples, from_hz=audio.sample_rate_hz, to_hz=SAMPLE_RATE_HZ)
        with transcriber.engine_for().model.activations(samples, expected_samples=expected) as found:
            outputs[name] = (found.note.copy(), found.onset[:].copy(), found.contour[:].copy())
    return outputs


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("audio", ["piano", "glide"])
def test_real_model_outputs_decode_to_basic_pitchs_notes(activations, audio, options):
    note, onset, contour = activations[audio]
    options = BasicPitchOptions(**options)

    mine = ours(note, onset, contour, options)

    assert mine, "the audio has notes"
    assert_same_notes(mine, basic_pitch(note, onset, contour, options))


def test_the_glide_has_bends_and_overlapping_notes_lose_them_as_in_basic_pitch(activations):
    note, onset, contour = activations["glide"]
    decoded = decode_notes(note, onset)
    events = add_pitch_bends(contour, decoded)
    assert any(any(e.bends) for e in events)

    kept = add_lone_pitch_bends(contour, decoded)

    as_times = [(e.start_frame, e.end_frame, e.pitch, e.amplitude, list(e.bends)) for e in events]
    theirs = note_creation.drop_overlapping_pitch_bends(as_times)
    assert [(e.start_frame, e.end_frame, e.pitch, e.bends and list(e.bends)) for e in kept] == [
        (s, e, p, b) for s, e, p, _, b in theirs
    ]


def random_activations(seed: int, n_frames: int, n_notes: int):
    """Activations shaped like the model's: noise, note blobs with onset spikes, a contour peaked at each note."""
    rng = np.random.default_rng(seed)
    note = (rng.random((n_frames, 88)) * 0.35).astype(np.float32)
    onset = (rng.random((n_frames, 88)) * 0.4).astype(np.float32)
    contour = (rng.random((n_frames, 264)) * 0.3).astype(np.float32)
    for _ in range(n_notes):
        start, length, pitch = rng.integers(0, n_frames), rng.integers(3, 60), rng.integers(0, 88)
        level = rng.uniform(0.25, 1.0)
        note[start : start + length, pitch] = np.maximum(
            note[start : start + length, pitch], level * rng.uniform(0.7, 1.0, min(length, n_frames - start))
        )
        onset[start, pitch] = max(onset[start, pitch], rng.uniform(0.3, 1.0))
        bend = rng.integers(-6, 7)
        contour[start : start + length, np.clip(3 * pitch + bend, 0, 263)] = level
    return note, onset, contour


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_frames=st.integers(3, 400),
    n_notes=st.integers(0, 40),
    options=st.sampled_from(OPTION_SETS),
)
def test_random_activations_decode_to_basic_pitchs_notes(seed, n_frames, n_notes, options):
    note, onset, contour = random_activations(seed, n_frames, n_notes)
    options = BasicPitchOptions(**options)

    assert_same_notes(ours(note, onset, contour, options), basic_pitch(note, onset, contour, options))
