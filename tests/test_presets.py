"""Presets as a musician uses them: pick one by name or path, shadow a built-in, and be told exactly what is wrong."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PIANO_LINE, matches

from midibridge.model.engines.basic_pitch.options import BasicPitchOptions
from midibridge.model.errors import OptionError
from midibridge.model.options import PostOptions
from midibridge.model.presets import available_presets, load_preset, preset_to_toml, read_preset
from midibridge.model.region import Region

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
BUILT_IN = [
    "bass",
    "default",
    "drums",
    "guitar",
    "lead",
    "noisy-recording",
    "piano",
    "piano-hq",
    "strings-pad",
    "strings-solo",
    "vocal",
]


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    directory = tmp_path / "config" / "midibridge" / "presets"
    directory.mkdir(parents=True)
    return directory


def test_the_built_in_presets_are_all_there():
    assert sorted(n for n, (source, _) in available_presets().items() if source == "built-in") == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_preset_loads_and_transcribes(transcriber, piano_line, tmp_path, name):
    preset = load_preset(name)

    clip = transcriber.transcribe(Region.from_file(piano_line, duration_s=4.0, position_s=1.0), preset=preset)

    assert preset.name == name and preset.description
    assert clip.position_s == 1.0 and clip.notes
    shown = tmp_path / "shown.toml"
    shown.write_text(preset_to_toml(preset))
    assert read_preset(shown, source="copy") == preset, "show → file → load gives the same preset"


def test_default_is_basic_pitch_untouched(transcriber, piano_line):
    preset = load_preset("default")

    assert preset.chain == () and preset.decode == BasicPitchOptions() and preset.post == PostOptions()
    region = Region.from_file(piano_line)
    assert transcriber.transcribe(region, preset=preset) == transcriber.transcribe(region)


def test_a_piano_preset_on_a_piano_still_finds_every_note(transcriber, piano_line):
    clip = transcriber.transcribe(Region.from_file(piano_line), preset=load_preset("piano"))

    assert len(matches(list(clip.notes), PIANO_LINE)) == len(PIANO_LINE)


def test_a_user_preset_shadows_the_built_in_of_that_name(user_config):
    (user_config / "piano.toml").write_text('schema = 1\ndescription = "my piano"\n[decode]\nonset_threshold = 0.8\n')

    preset = load_preset("piano")

    assert (preset.source, preset.description, preset.decode.onset_threshold) == ("user", "my piano", 0.8)
    assert available_presets()["piano"][0] == "user"
    listed = subprocess.run(
        [MIDIBRIDGE, "presets", "list"], capture_output=True, text=True, check=True, env=_env(user_config)
    ).stdout
    assert any(line.split()[:2] == ["piano", "user"] for line in listed.splitlines())


def test_one_broken_user_preset_is_listed_with_its_error_beside_all_the_others(user_config):
    """`presets list` with a typo in one of your files: every preset still shows, the broken one says why."""
    (user_config / "my-bass.toml").write_text(
        'schema = 2\ndescription = "my bass"\n[post]\ntranspose_semitones = -12\n'
    )
    (user_config / "my-voice.toml").write_text('schema = 2\n[post]\nquantise = "1/8"\n')

    done = subprocess.run([MIDIBRIDGE, "presets", "list"], capture_output=True, text=True, env=_env(user_config))

    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert sorted(rows) == sorted(BUILT_IN + ["my-bass", "my-voice"])
    assert rows["my-bass"].split()[1:] == ["user", "my", "bass"]
    assert "BROKEN [invalid_preset]" in rows["my-voice"] and "unknown key 'quantise'" in rows["my-voice"]
    assert done.returncode == 1 and "presets validate" in done.stderr and "my-voice.toml" in done.stderr


def _env(user_config):
    import os

    return dict(os.environ, XDG_CONFIG_HOME=str(user_config.parent.parent))


def test_a_path_works_wherever_a_name_does(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("schema = 1\n[post]\ntranspose_semitones = 12\n")

    assert load_preset(path).post.transpose_semitones == 12
    assert load_preset(str(path)).name == "mine"


BAD_PRESETS = {
    "not toml": ("schema = = 1", "not valid TOML"),
    "no schema": ("[decode]\nonset_threshold = 0.4", "schema must be 2, got None"),
    "unknown engine": ('schema = 2\n[engine]\nname = "crepe"', "[engine]: name must be one of 'basic-pitch'"),
    "engine in a schema 1 file": ('schema = 1\n[engine]\nname = "basic-pitch"', "[engine] needs `schema = 2`"),
    "engine table key": ('schema = 2\n[engine]\nmodel = "x"', "[engine]: unknown key 'model'"),
    "unknown top key": ('schema = 1\ncolour = "red"', "unknown key 'colour'"),
    "unknown step": (
        'schema = 1\n[[chain]]\nstep = "reverb"',
        "chain step 1: unknown step 'reverb'; steps are highpass",
    ),
    "unknown step key": (
        'schema = 1\n[[chain]]\nstep = "highpass"\ncutoff_hz = 80.0\ncutoff = 3',
        "chain step 1 (highpass): unknown key 'cutoff'",
    ),
    "missing step key": ('schema = 1\n[[chain]]\nstep = "gain"', "(gain): gain_db is required"),
    "step value out of range": (
        'schema = 1\n[[chain]]\nstep = "highpass"\ncutoff_hz = 90000.0',
        "(highpass): cutoff_hz must be a number in [1, 20000], got 90000.0",
    ),
    "slope not allowed": (
        'schema = 1\n[[chain]]\nstep = "lowpass"\ncutoff_hz = 900.0\nslope_db_per_octave = 10',
        "slope_db_per_octave must be one of 6, 12, 18, 24, 36, 48, got 10",
    ),
    "decode out of range": (
        "schema = 1\n[decode]\nonset_threshold = 2.0",
        "[decode]: onset_threshold must be a number in (0, 1), got 2.0",
    ),
    "decode wrong type": ('schema = 1\n[decode]\nmelodia_trick = "yes"', "melodia_trick must be true or false"),
    "precision not offered": (
        'schema = 2\n[decode]\nprecision = "float16"',
        "[decode]: precision must be one of 'float32', 'int8', got 'float16'",
    ),
    "precision of an engine without one": (
        'schema = 2\n[engine]\nname = "swift-f0"\n[decode]\nprecision = "int8"',
        "[decode]: unknown key 'precision'",
    ),
    "post unknown key": ('schema = 1\n[post]\nquantise = "1/8"', "[post]: unknown key 'quantise'"),
    "post bad choice": ('schema = 1\n[post]\nscale = "hungarian"', "scale must be one of 'chromatic', 'major'"),
    "plugin path not a string": (
        'schema = 1\n[[chain]]\nstep = "vst3"\npath = 3',
        "(vst3): path must be a string, got 3",
    ),
    "missing plugin": (
        'schema = 1\n[[chain]]\nstep = "vst3"\npath = "/nowhere/Verb.vst3"',
        "plugin /nowhere/Verb.vst3 does not exist",
    ),
}


@pytest.mark.parametrize("case", BAD_PRESETS)
def test_a_bad_preset_is_refused_naming_the_file_the_key_and_what_is_allowed(tmp_path, case):
    text, words = BAD_PRESETS[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(OptionError) as caught:
        load_preset(path)

    assert str(caught.value).startswith(str(path)) and words in str(caught.value), str(caught.value)
    expected_code = "plugin_unavailable" if case == "missing plugin" else "invalid_preset"
    assert caught.value.code == expected_code


def test_an_unknown_preset_name_lists_the_presets_there_are():
    with pytest.raises(OptionError) as caught:
        load_preset("harpsichord")

    assert caught.value.code == "unknown_preset" and "bass, default, drums, guitar" in str(caught.value)


def test_a_plugin_that_cannot_load_is_a_clear_error_before_any_transcription(transcriber, piano_line, tmp_path):
    fake = tmp_path / "Fake.vst3"
    fake.write_bytes(b"not a plugin")
    path = tmp_path / "fx.toml"
    path.write_text(f'schema = 1\n[[chain]]\nstep = "vst3"\npath = "{fake}"\n')

    with pytest.raises(OptionError) as caught:
        transcriber.transcribe(Region.from_file(piano_line), preset=load_preset(path))

    assert caught.value.code == "plugin_unavailable" and "cannot be loaded" in str(caught.value)


def test_the_cli_validates_shows_and_converts_with_presets(piano_line, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('schema = 1\nname = "good"\n[post]\nvelocity = "fixed"\nfixed_velocity = 64\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = 1\n[post]\nvelocity = "loud"\n')

    def run(*args):
        return subprocess.run([MIDIBRIDGE, *map(str, args)], capture_output=True, text=True)

    assert run("presets", "validate", good).stdout.startswith(f"{good}: valid preset 'good'")
    refused = run("presets", "validate", bad)
    assert (
        refused.returncode == 1 and "[invalid_preset]" in refused.stderr and "velocity must be one of" in refused.stderr
    )
    shown = run("presets", "show", "vocal").stdout
    assert '[engine]\nname = "swift-f0"' in shown and 'glides = "split"' in shown, "every default filled in"
    converted = run("convert", piano_line, "--preset", good, "-o", tmp_path / "x.mid", "--json")
    assert {n["velocity"] for n in json.loads(converted.stdout)["notes"]} == {64}
    unknown = run("convert", piano_line, "--preset", "nope", "-o", tmp_path / "y.mid")
    assert unknown.returncode == 1 and "[unknown_preset]" in unknown.stderr


def test_normalize_uses_the_whole_region_and_lands_on_its_target():
    from midibridge.model.preprocess import process
    from midibridge.model.presets import Step

    audio = (np.sin(np.arange(44100 * 3) / 10) * np.linspace(0.01, 0.2, 44100 * 3)).astype(np.float32)
    chunks = lambda: (audio[i : i + 5000] for i in range(0, audio.shape[0], 5000))  # noqa: E731

    for target, level in (("peak", -3.0), ("rms", -20.0)):
        out = np.concatenate(
            list(process((Step("normalize", {"target": target, "level_dbfs": level}),), chunks, sample_rate_hz=44100))
        )
        measured = np.abs(out).max() if target == "peak" else np.sqrt(np.mean(out.astype(np.float64) ** 2))
        assert 20 * np.log10(measured) == pytest.approx(level, abs=0.01)


def test_processing_in_chunks_equals_one_pass_for_every_step():
    from midibridge.model.preprocess import build, process
    from midibridge.model.presets import Step
    from midibridge.model.steps import STEPS

    params = {
        "highpass": {"cutoff_hz": 80.0},
        "lowpass": {"cutoff_hz": 5000.0},
        "notch": {"frequency_hz": 1000.0},
        "hum": {"mains_hz": 60.0},
        "noise_gate": {"threshold_db": -30.0},
        "compressor": {"threshold_db": -20.0, "ratio": 4.0},
        "gain": {"gain_db": -6.0},
        "limiter": {"threshold_db": -6.0},
        "normalize": {},
    }
    rng = np.random.default_rng(7)
    audio = (rng.standard_normal(44100 * 4) * np.repeat([0.001, 0.3, 0.01, 0.5], 44100)).astype(np.float32)
    steps = tuple(Step(kind, {**STEPS[kind].defaults, **p}) for kind, p in params.items())

    chunked = np.concatenate(
        list(
            process(steps, lambda: (audio[i : i + 3000] for i in range(0, audio.shape[0], 3000)), sample_rate_hz=44100)
        )
    )
    whole = np.concatenate(list(process(steps, lambda: iter([audio]), sample_rate_hz=44100)))

    np.testing.assert_array_equal(chunked, whole)
    for step in steps:
        one_pass = build((step,), {0: 1.5})(audio[np.newaxis], 44100, reset=True)[0]
        board = build((step,), {0: 1.5})
        pieces = [board(audio[np.newaxis, i : i + 1234], 44100, reset=False)[0] for i in range(0, audio.shape[0], 1234)]
        np.testing.assert_array_equal(np.concatenate(pieces), one_pass, err_msg=step.kind)


def test_a_schema_1_preset_still_loads_as_a_basic_pitch_preset_and_is_written_back_as_schema_2(tmp_path):
    from midibridge.model.presets import preset_to_toml, read_preset

    old = tmp_path / "old.toml"
    old.write_text("schema = 1\n[decode]\nonset_threshold = 0.7\n")
    preset = read_preset(old, source="test")
    again = tmp_path / "again.toml"
    again.write_text(preset_to_toml(preset))

    assert preset.engine == "basic-pitch" and preset.decode.onset_threshold == 0.7
    assert read_preset(again, source="test") == preset and "schema = 2" in again.read_text()
