"""The swift-f0 engine on synthesised single lines with known notes, written to real files, converted, and read
back as clips and as MIDI files with mido."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from conftest import host_transcribe, matches, melody, render, streamed_peak_bytes, write_audio
from daemon_helpers import DaemonProcess

from midibridge.model.engines.swift_f0.constants import (
    HEARD_WINDOW_SAMPLES,
    HOP_SAMPLES,
    MODEL_MIN_HZ,
    SAMPLE_RATE_HZ,
    WINDOW_FRAMES,
)
from midibridge.model.engines.swift_f0.periodicity import periodic_pitch
from midibridge.model.errors import OptionError, WeightsError
from midibridge.model.midi import clip_from_bytes
from midibridge.model.presets import Preset, load_preset
from midibridge.model.region import Region

RATE_HZ = 44100
VOICE_OOHS = 53  # GM program 54
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def tone(
    midi_pitch,
    seconds: float,
    *,
    vibrato_cents: float = 0.0,
    amplitude: float = 0.4,
    attack_s: float = 0.02,
    decay_to: float = 1.0,
    harmonics: int = 8,
) -> np.ndarray:
    """(n,) float32: a harmonic tone whose pitch follows `midi_pitch` (a number, or one value per sample), with a
    5.5 Hz vibrato of ±vibrato_cents, an attack, a decay to `decay_to` of its level and a 20 ms release."""
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    semitones = np.broadcast_to(np.asarray(midi_pitch, float), (n,)) + vibrato_cents / 100 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(440.0 * 2 ** ((semitones - 69) / 12)) / RATE_HZ
    voice = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    envelope = np.minimum(t / attack_s, 1) * np.minimum((seconds - t) / 0.02, 1) * decay_to ** (t / seconds)
    return (amplitude * envelope * voice / np.abs(voice).max()).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), np.float32)


def convert(transcriber, audio: np.ndarray | None, path: Path, preset: Preset | str):
    """The clip of the whole file (`audio` written to it first, unless None), the clip its MIDI file reads back as,
    and that file read by mido."""
    if audio is not None:
        write_audio(path, audio, RATE_HZ)
    preset = load_preset(preset) if isinstance(preset, str) else preset
    done = transcriber.convert(Region.from_file(path), preset=preset)
    return done.clip, clip_from_bytes(done.smf), mido.MidiFile(file=io.BytesIO(done.smf))


def with_decode(name: str, **decode) -> Preset:
    table = load_preset(name).to_dict()
    table["decode"].update(decode)
    return Preset.from_dict(table)


def test_a_vibrato_of_50_cents_stays_one_note_carried_by_bends(transcriber, tmp_path):
    clip, read_back, midi = convert(
        transcriber,
        np.concatenate([silence(0.3), tone(69, 2.0, vibrato_cents=50), silence(0.3)]),
        tmp_path / "vibrato.flac",
        "vocal",
    )

    assert [n.pitch for n in clip.notes] == [69]
    note = clip.notes[0]
    assert abs(note.start_s - 0.3) < 0.05 and abs(note.end_s - 2.3) < 0.06
    bends = np.array([b.semitones for b in note.bends])
    assert len(bends) > 30, "continuous, not a few steps"
    assert abs(bends.max() - 0.5) < 0.12 and abs(bends.min() + 0.5) < 0.12, "cent-accurate at the swings"
    assert [n.pitch for n in read_back.notes] == [69]
    assert np.allclose([b.semitones for b in read_back.notes[0].bends], bends, atol=2 / 8192 * 2)
    wheel = [m for track in midi.tracks for m in track if m.type == "pitchwheel"]
    assert len(wheel) == len(bends) + 1 and wheel[-1].pitch == 0, "the wheel returns to 0 after the note"


@pytest.mark.parametrize("glides, pitches", [("split", [69, 71]), ("bend", [69])])
def test_a_glide_is_two_notes_or_one_bent_note_as_the_preset_says(transcriber, tmp_path, glides, pitches):
    curve = np.concatenate(
        [np.full(int(0.6 * RATE_HZ), 69.0), np.linspace(69, 71, int(0.15 * RATE_HZ)), np.full(int(0.6 * RATE_HZ), 71.0)]
    )
    audio = np.concatenate([silence(0.3), tone(curve, len(curve) / RATE_HZ), silence(0.3)])

    clip, read_back, _ = convert(transcriber, audio, tmp_path / "glide.flac", with_decode("lead", glides=glides))

    assert [n.pitch for n in clip.notes] == [n.pitch for n in read_back.notes] == pitches
    if glides == "bend":
        assert abs(max(b.semitones for b in read_back.notes[0].bends) - 2.0) < 0.1
    else:
        assert 0.85 < clip.notes[1].start_s < 1.1 and clip.notes[0].end_s <= clip.notes[1].start_s


def test_repeated_notes_of_one_pitch_are_separate(transcriber, tmp_path):
    audio = np.concatenate(
        [silence(0.3)] + [tone(64, 0.3, attack_s=0.005, decay_to=0.3) for _ in range(4)] + [silence(0.3)]
    )

    clip, read_back, _ = convert(transcriber, audio, tmp_path / "repeated.flac", "lead")

    assert [n.pitch for n in read_back.notes] == [64] * 4
    assert np.allclose([n.start_s for n in clip.notes], 0.3 + 0.3 * np.arange(4), atol=0.04)


def test_a_41_hz_bass_note_below_swift_f0s_range_is_found(transcriber, tmp_path):
    audio = np.concatenate([silence(0.3), tone(28, 1.5, harmonics=12), silence(0.3)])  # E1, 41.2 Hz

    clip, read_back, _ = convert(transcriber, audio, tmp_path / "e1.flac", "bass")

    assert [n.pitch for n in clip.notes] == [n.pitch for n in read_back.notes] == [28]
    assert abs(clip.notes[0].start_s - 0.3) < 0.05


def test_silence_is_an_empty_clip(transcriber, tmp_path):
    quiet = np.random.default_rng(0).standard_normal(2 * RATE_HZ).astype(np.float32) * 1e-5
    clip, read_back, _ = convert(transcriber, np.concatenate([silence(2.0), quiet]), tmp_path / "silence.flac", "vocal")

    assert clip.notes == () and read_back.notes == ()


def test_an_engine_that_does_not_exist_is_refused_before_any_audio_is_read(tmp_path):
    preset = tmp_path / "mine.toml"
    preset.write_text('schema = 2\n[engine]\nname = "crepe"\n')

    with pytest.raises(OptionError, match=r"\[engine\]: name must be one of 'basic-pitch', 'swift-f0'.*'crepe'"):
        load_preset(str(preset))
    done = subprocess.run(
        [MIDIBRIDGE, "convert", tmp_path / "no-such-file.wav", "--preset", preset, "--in-process"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "[invalid_preset]" in done.stderr and "crepe" in done.stderr


def test_decode_options_name_the_key_and_what_is_allowed():
    with pytest.raises(OptionError, match=r"\[decode\]: glides must be one of 'split', 'bend', got 'slide'"):
        Preset.from_dict({"schema": 2, "engine": {"name": "swift-f0"}, "decode": {"glides": "slide"}})
    with pytest.raises(OptionError, match=r"unknown key 'onset_threshold'"):
        Preset.from_dict({"schema": 2, "engine": {"name": "swift-f0"}, "decode": {"onset_threshold": 0.5}})


def test_convert_vocal_through_the_daemon_writes_exactly_the_in_process_midi(tmp_path):
    line = np.concatenate(
        [silence(0.3), tone(62, 0.5, vibrato_cents=30), tone(65, 0.5), tone(64, 0.8, vibrato_cents=40), silence(0.3)]
    )
    audio = write_audio(tmp_path / "sung.flac", line, RATE_HZ)
    daemon = DaemonProcess(tmp_path / "home")
    try:
        runs = [
            subprocess.run(
                [MIDIBRIDGE, "convert", audio, "--preset", "vocal", "-o", tmp_path / f"{how}.mid", f"--{how}"],
                capture_output=True,
                text=True,
                env=daemon.env,
            )
            for how in ("daemon", "in-process")
        ]
        with daemon.client() as client:
            assert client.status()["counts"]["done"] == 1, "the first went through the daemon"
    finally:
        daemon.stop()

    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    assert (tmp_path / "daemon.mid").read_bytes() == (tmp_path / "in-process.mid").read_bytes()
    assert [n.pitch for n in clip_from_bytes((tmp_path / "daemon.mid").read_bytes()).notes] == [62, 65, 64]


def test_the_daw_line_protocol_carries_a_vocal_notes_and_bends(tmp_path):
    audio = write_audio(
        tmp_path / "sung.flac", np.concatenate([silence(0.3), tone(69, 1.5, vibrato_cents=50), silence(0.3)]), RATE_HZ
    )
    requests = tmp_path / "regions.tsv"
    requests.write_text(f"1\t{audio}\t0.0\t2.1\t4.0\t120.0\t4.0\t0.0\n")

    lines = host_transcribe(requests, preset="vocal")

    notes = [line for line in lines if line[0] == "N"]
    bends = [float(line[4]) for line in lines if line[0] == "B"]
    assert ["NOTES", "1", "1"] in lines and ["DONE", "1", "0"] in lines
    assert [int(line[4]) for line in notes] == [69]
    assert len(bends) > 30 and max(bends) > 0.38 and min(bends) < -0.38 and bends[-1] == 0.0


def test_a_long_streamed_region_keeps_memory_bounded(transcriber):
    """Memory is a few 10 s model windows plus a few floats per 16 ms frame: four times the audio adds far less
    memory than the audio itself, which arrives one chunk at a time and is never held."""
    engine = transcriber.engine_for("swift-f0")
    chunk = tone(57, 2.0, vibrato_cents=30)[: int(2.0 * engine.sample_rate_hz)]  # any signal will do

    options = load_preset("lead").decode
    short, long = (streamed_peak_bytes(engine, chunk, options, minutes=m) for m in (1, 4))
    more_audio_bytes = 3 * 60 * engine.sample_rate_hz * 4
    assert long - short < 0.5 * more_audio_bytes, f"{short / 1e6:.1f} MB for 1 minute, {long / 1e6:.1f} MB for 4"


def test_progress_reports_inference_and_a_raise_cancels(transcriber):
    engine = transcriber.engine_for("swift-f0")
    seen = []

    def stop_after_first(stage, fraction):
        seen.append((stage, fraction))
        raise KeyboardInterrupt("cancel")

    samples = np.zeros(int(70 * engine.sample_rate_hz), np.float32)
    with pytest.raises(KeyboardInterrupt):
        engine.notes(
            iter([samples]), n_samples=len(samples), options=load_preset("lead").decode, on_progress=stop_after_first
        )
    first_window_s = WINDOW_FRAMES * HOP_SAMPLES / engine.sample_rate_hz
    assert seen == [("infer", pytest.approx(first_window_s / 70, abs=0.01))], "stopped after the first model run"


def test_weights_that_are_not_swift_f0_0_3_0_are_refused_with_the_fix(tmp_path, monkeypatch):
    from midibridge.model.engines.swift_f0 import weights

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="pip install --force-reinstall --no-deps swift-f0==0.3.0") as refused:
        weights.verify_weights(bad)
    assert refused.value.code == "model_corrupt"
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="swift-f0 package is missing") as missing:
        weights.find_weights()
    assert missing.value.code == "model_missing"


def sung(
    pitches,
    seconds: float,
    *,
    slide_s: float = 0.05,
    drift: float = 0.0,
    vibrato_cents: float = 30.0,
    dip_s: float = 0.0,
) -> np.ndarray:
    """A sung line: each of `pitches` held for `seconds`, sliding into the next over slide_s, the whole line drifting
    `drift` semitones by its end, with vibrato; dip_s > 0 puts a consonant-like dip to -20 dB between notes."""
    n = int(seconds * RATE_HZ)
    curve = np.repeat(np.asarray(pitches, float), n)
    slide = int(slide_s * RATE_HZ)
    for k in range(1, len(pitches)):
        curve[k * n - slide // 2 : k * n + slide // 2] = np.linspace(pitches[k - 1], pitches[k], 2 * (slide // 2))
    curve += np.linspace(0.0, drift, len(curve))
    voice = tone(curve, len(curve) / RATE_HZ, vibrato_cents=vibrato_cents)
    if dip_s:
        t = np.arange(len(curve)) / RATE_HZ
        for k in range(1, len(pitches)):
            voice *= 1 - 0.9 * np.exp(-0.5 * ((t - k * seconds) / (dip_s / 4)) ** 2)
    return voice


def test_a_sung_note_is_the_pitch_held_not_its_scoop(transcriber, tmp_path):
    scoop = np.concatenate([np.linspace(60.3, 62.0, int(0.12 * RATE_HZ)), np.full(int(0.9 * RATE_HZ), 62.0)])
    audio = np.concatenate([silence(0.3), tone(scoop, len(scoop) / RATE_HZ, vibrato_cents=35), silence(0.3)])

    clip, _, _ = convert(transcriber, audio, tmp_path / "scoop.flac", "vocal")

    assert [n.pitch for n in clip.notes] == [62]
    assert abs(clip.notes[0].start_s - 0.3) < 0.06


def test_vibrato_and_a_slow_drift_in_a_held_note_are_bends_not_notes(transcriber, tmp_path):
    held = sung([64], 2.5, drift=0.7, vibrato_cents=40)  # a singer going 70 cents sharp while holding the note
    clip, _, _ = convert(
        transcriber, np.concatenate([silence(0.3), held, silence(0.3)]), tmp_path / "drift.flac", "vocal"
    )

    assert [n.pitch for n in clip.notes] == [64]
    bends = [b.semitones for b in clip.notes[0].bends]
    assert max(bends) > 0.9 and min(bends) < -0.25, "the drift and the vibrato are in the bends"


def test_a_legato_sung_line_drifting_flat_is_its_notes(transcriber, tmp_path):
    pitches = [60, 62, 64, 65, 67, 65]
    line = sung(pitches, 0.45, drift=-0.35)
    clip, read_back, _ = convert(
        transcriber, np.concatenate([silence(0.3), line, silence(0.3)]), tmp_path / "legato.flac", "vocal"
    )

    assert [n.pitch for n in clip.notes] == [n.pitch for n in read_back.notes] == pitches
    assert np.allclose([n.start_s for n in clip.notes[1:]], 0.3 + 0.45 * np.arange(1, 6), atol=0.05)


def test_repeated_sung_notes_on_one_pitch_stay_separate(transcriber, tmp_path):
    line = sung([64, 64, 64, 67], 0.4, dip_s=0.08)  # "la la la": a consonant between the notes
    clip, _, _ = convert(transcriber, np.concatenate([silence(0.3), line, silence(0.3)]), tmp_path / "la.flac", "vocal")

    assert [n.pitch for n in clip.notes] == [64, 64, 64, 67]
    assert np.allclose([n.start_s for n in clip.notes[1:]], 0.3 + 0.4 * np.arange(1, 4), atol=0.05)


@pytest.mark.parametrize("preset", ["lead", "strings-solo", "vocal"])
def test_a_fast_legato_run_stays_separate_notes(transcriber, tmp_path, preset):
    run = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 62]  # 150 ms a note
    line = sung(run, 0.15, slide_s=0.02, vibrato_cents=0)
    clip, _, _ = convert(transcriber, np.concatenate([silence(0.3), line, silence(0.3)]), tmp_path / "run.flac", preset)

    assert [n.pitch for n in clip.notes] == run
    assert np.allclose([n.start_s for n in clip.notes[1:]], 0.3 + 0.15 * np.arange(1, 16), atol=0.04)


def test_a_rendered_voice_melisma_keeps_each_notes_own_pitch(transcriber, tmp_path):
    # The soundfont voice reaches each new pitch 40-90 ms after its note-on, where the onset puts the note's start:
    # the old pitch's last frames are then in the new note, and once took over a short one.
    run = [64, 67, 64, 62, 64, 67, 69, 72, 71, 72, 76, 72, 74, 76, 74, 71]  # 150 ms a note
    truth = melody(run, start_s=0.5, step_s=0.15, length_s=0.15)
    clip, _, _ = convert(transcriber, None, render(truth, tmp_path / "melisma.flac", program=VOICE_OOHS), "vocal")

    found = [n.pitch for n in clip.notes]
    left = iter(run)
    assert all(pitch in left for pitch in found) and len(found) >= 15, f"{found}: the run's notes in order"
    # 13 before the new notes' start counted from their partials' rise where the pitch jumps (crossfades)
    assert len(matches(list(clip.notes), truth)) >= 14, "in time (50 ms) and on their own pitch"


@pytest.mark.parametrize("preset", ["lead", "strings-solo", "vocal"])
def test_a_fast_run_played_40_cents_flat_keeps_every_note(transcriber, tmp_path, preset):
    run = [62, 60, 57, 55, 53, 57, 59, 60, 62, 64, 62, 60, 59, 57, 55, 57]  # no note ever within 35 cents of its key
    line = np.concatenate([silence(0.3), sung(np.array(run) - 0.4, 0.15, slide_s=0.02, vibrato_cents=0), silence(0.3)])
    clip, _, _ = convert(transcriber, line, tmp_path / "flat.flac", preset)

    assert [n.pitch for n in clip.notes] == run
    assert np.allclose([n.start_s for n in clip.notes[1:]], 0.3 + 0.15 * np.arange(1, 16), atol=0.04)


@pytest.mark.parametrize("preset", ["lead", "strings-solo"])
def test_repeated_notes_in_a_fast_run_are_separate_notes(transcriber, tmp_path, preset):
    run = [62, 60, 57, 55, 53, 53, 53, 57, 59, 60, 60, 62, 64, 62, 60, 59]  # 150 ms each, re-tongued or re-bowed
    line = sung(run, 0.15, slide_s=0.02, vibrato_cents=0, dip_s=0.04)
    clip, _, _ = convert(transcriber, np.concatenate([silence(0.3), line, silence(0.3)]), tmp_path / "rep.flac", preset)

    assert [n.pitch for n in clip.notes] == run
    assert np.allclose([n.start_s for n in clip.notes[1:]], 0.3 + 0.15 * np.arange(1, 16), atol=0.04)


@pytest.mark.parametrize("preset", ["strings-solo", "lead"])
def test_a_bow_change_on_one_pitch_is_a_new_note(transcriber, tmp_path, preset):
    line = sung([67, 67], 0.7, vibrato_cents=20, dip_s=0.06)
    clip, _, _ = convert(transcriber, np.concatenate([silence(0.3), line, silence(0.3)]), tmp_path / "bow.flac", preset)

    assert [n.pitch for n in clip.notes] == [67, 67]
    assert abs(clip.notes[1].start_s - 1.0) < 0.05


def test_a_soft_onset_starts_where_it_is_heard(transcriber, tmp_path):
    swell = np.concatenate([silence(0.3), tone(62, 1.0, attack_s=0.12), silence(0.3)])

    heard, _, _ = convert(transcriber, swell, tmp_path / "heard.flac", "vocal")
    rise, _, _ = convert(transcriber, swell, tmp_path / "rise.flac", with_decode("vocal", attack_db=0.0))

    assert [n.pitch for n in heard.notes] == [n.pitch for n in rise.notes] == [62]
    assert abs(rise.notes[0].start_s - 0.3) < 0.03, "attack_db 0: where the rise begins"
    assert 0.02 < heard.notes[0].start_s - 0.3 <= 0.05, "vocal: within 8 dB of the attack's peak, at most 48 ms in"


def test_a_sung_syllable_starts_at_its_vowel_not_its_hummed_consonant(transcriber, tmp_path):
    # "ma": 60 ms of a hummed m, the fundamental alone and as loud as the vowel, then the vowel's harmonics
    hum = tone(62, 0.08, harmonics=1, attack_s=0.01)[: int(0.06 * RATE_HZ)]
    audio = np.concatenate([silence(0.3), hum, tone(62, 0.8, attack_s=0.005), silence(0.3)])

    vowel, _, _ = convert(transcriber, audio, tmp_path / "ma.flac", "vocal")
    loud, _, _ = convert(transcriber, audio, tmp_path / "ma.flac", with_decode("vocal", attack_from="loudness"))

    assert [n.pitch for n in vowel.notes] == [n.pitch for n in loud.notes] == [62]
    assert abs(vowel.notes[0].start_s - 0.36) < 0.02, "vocal: where the 2nd and 3rd harmonics rise"
    assert abs(loud.notes[0].start_s - 0.3) < 0.015, "by loudness, the hum is the attack"


def test_a_pitch_read_an_octave_low_where_the_spectrum_has_no_partial_is_the_octave_above():
    from midibridge.model.engines.swift_f0.constants import N_SEMITONES, SEMITONE_LOWEST
    from midibridge.model.engines.swift_f0.features import Frames
    from midibridge.model.engines.swift_f0.notes import decode_notes
    from midibridge.model.engines.swift_f0.options import SwiftF0Options

    n = 40  # 0.64 s of a G5 (79) on a flute, read as G4 (67) on every other frame, as SwiftF0 does now and then
    pitch = np.where(np.arange(n) % 4 < 2, 79, 67)
    spectrum = np.full((n, N_SEMITONES), -90.0)
    spectrum[:, [79 - SEMITONE_LOWEST, 91 - SEMITONE_LOWEST, 98 - SEMITONE_LOWEST]] = [-30.0, -40.0, -50.0]
    frames = Frames(
        pitch_hz=(440.0 * 2 ** ((pitch - 69) / 12)).astype(np.float32),
        confidence=np.full(n, 0.8, np.float32),
        loudness_db=np.full(n, -25.0, np.float32),
        onset_db=np.zeros(n, np.float32),
        low_shift_semitones=np.zeros(n, np.float32),
        semitone_db=spectrum.astype(np.float16),
    )

    notes = decode_notes(frames, SwiftF0Options(low_bass=False))

    assert [note.pitch for note in notes] == [79]
    assert all(abs(bend.semitones) < 0.5 for bend in notes[0].bends), "no octave swings in the bends"


def test_a_legato_re_tongued_note_whose_loudness_only_dips_is_a_new_note(transcriber, tmp_path):
    held = tone(67, 0.9, vibrato_cents=15)
    t = np.arange(len(held)) / RATE_HZ
    for at in (0.3, 0.6):  # two re-tonguings: the level dips for about 50 ms, the pitch never moves
        held *= 1 - 0.4 * np.exp(-0.5 * ((t - at) / 0.015) ** 2)
    audio = np.concatenate([silence(0.3), held, silence(0.3)])

    lead, _, _ = convert(transcriber, audio, tmp_path / "tongued.flac", "lead")
    off, _, _ = convert(transcriber, audio, tmp_path / "off.flac", with_decode("lead", dip_db=0.0))

    assert [n.pitch for n in lead.notes] == [67, 67, 67]
    assert np.allclose([n.start_s for n in lead.notes[1:]], [0.6, 0.9], atol=0.04)
    assert [n.pitch for n in off.notes] == [67], "without dip_db the dips are too shallow for the onset strength"


@pytest.mark.parametrize("pitch", [38.0, 57.0, 69.25, 84.0, 88.5])
def test_the_pitch_raw_audio_repeats_at_is_its_fundamental_not_a_louder_partial(pitch):
    hz = 440.0 * 2 ** ((pitch - 69) / 12)
    t = np.arange(2 * HEARD_WINDOW_SAMPLES) / SAMPLE_RATE_HZ
    weak_fundamental = [(1, 0.3), (2, 1.0), (3, 0.6)]
    tone = sum(gain * np.sin(2 * np.pi * k * hz * t) for k, gain in weak_fundamental)
    found = periodic_pitch(tone, window_samples=HEARD_WINDOW_SAMPLES, lowest_hz=MODEL_MIN_HZ, key_fraction=0.9)
    assert found == pytest.approx(pitch, abs=0.05)
