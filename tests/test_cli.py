"""`midibridge convert` as a user runs it: real files in, a MIDI file and notes out, clear errors and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from conftest import PIANO_LINE, write_audio

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def run(*args, cwd=None, env=None):
    return subprocess.run([MIDIBRIDGE, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


def test_convert_writes_the_clip_and_prints_it_as_json(piano_line, tmp_path):
    out = tmp_path / "clip.mid"

    done = run(
        "convert", piano_line, "--start", 2.0, "--duration", 3.0, "--position", 12.5, "--bpm", 96, "-o", out, "--json"
    )

    assert done.returncode == 0, done.stderr
    clip = json.loads(done.stdout)
    assert (clip["position_s"], clip["bpm"]) == (12.5, 96.0)
    assert set(clip["notes"][0]) == {"pitch", "start_s", "end_s", "velocity", "bends"}
    starts = [n["start_s"] for n in clip["notes"]]
    expected = [n.start_s - 2.0 for n in PIANO_LINE if 2.05 <= n.start_s < 5.0]
    assert min(starts) == pytest.approx(expected[0], abs=0.05), "times are relative to the clip start"
    midi = mido.MidiFile(out)
    assert sum(m.type == "note_on" for m in midi.tracks[1]) == len(clip["notes"])


def test_convert_prints_a_table_and_writes_next_to_where_it_runs(piano_line, tmp_path):
    done = run("convert", piano_line, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "piano_line.mid").is_file()
    assert done.stdout.startswith("wrote piano_line.mid: ")
    assert "start_s" in done.stdout and " C4 " in done.stdout


def test_silent_audio_is_an_empty_clip_and_success(tmp_path):
    silence = write_audio(tmp_path / "silence.wav", np.zeros(44100), 44100)

    done = run("convert", silence, "-o", tmp_path / "s.mid")

    assert done.returncode == 0 and "no notes found" in done.stdout


@pytest.mark.parametrize(
    "args, code",
    [
        (["missing.wav", "-o", "{out}"], "audio_not_found"),
        (["{line}", "--start", "100", "-o", "{out}"], "region_outside_source"),
        (["{line}", "--duration", "0", "-o", "{out}"], "region_empty"),
        (["{nan}", "-o", "{out}"], "audio_not_finite"),
        (["{line}", "-o", "/nonexistent/dir/x.mid"], "output_unwritable"),
    ],
)
def test_bad_input_exits_non_zero_with_the_code_and_a_message(piano_line, tmp_path, args, code):
    samples = np.zeros(44100, np.float32)
    samples[100] = np.nan
    nan = write_audio(tmp_path / "nan.wav", samples, 44100, bit_depth=32)

    done = run("convert", *[a.format(line=piano_line, nan=nan, out=tmp_path / "x.mid") for a in args])

    assert done.returncode == 1
    assert f"midibridge: error [{code}]:" in done.stderr and "Traceback" not in done.stderr


def test_missing_weights_tell_the_user_the_command_that_fixes_it(piano_line, tmp_path):
    import os

    env = dict(os.environ, MIDIBRIDGE_MODEL=str(tmp_path / "gone.onnx"))

    done = run("convert", piano_line, "-o", tmp_path / "x.mid", env=env)

    assert done.returncode == 1 and "midibridge model install" in done.stderr


@pytest.mark.parametrize("preset", ["vocal", "drums"])
def test_a_preset_of_another_engine_never_loads_basic_pitchs_weights(preset, piano_line, tmp_path):
    """Only the engine a preset names is loaded: a vocal or drum conversion works without Basic Pitch's weights."""
    import os

    env = dict(os.environ, MIDIBRIDGE_MODEL=str(tmp_path / "gone.onnx"))

    done = run("convert", piano_line, "--preset", preset, "--in-process", "-o", tmp_path / "x.mid", env=env)

    assert done.returncode == 0, done.stderr
    assert mido.MidiFile(tmp_path / "x.mid").tracks


def test_convert_never_writes_over_the_audio_it_converts(piano_line, tmp_path):
    """`convert take.wav -o take.wav`, however the path is spelled, is refused before any work; the audio stays."""
    take = tmp_path / "take.wav"
    take.write_bytes(piano_line.read_bytes())
    (tmp_path / "link.wav").symlink_to(take)

    for output in (take, "./take.wav", tmp_path / "link.wav"):
        done = run("convert", "take.wav", "-o", output, cwd=tmp_path)

        assert done.returncode == 1 and "midibridge: error [output_is_input]:" in done.stderr, done.stderr
        assert "-o take.mid" in done.stderr, "the message offers an output that works"
    assert take.read_bytes() == piano_line.read_bytes()


def test_convert_replaces_an_earlier_midi_file_but_no_other_file(piano_line, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes on this take")
    midi = tmp_path / "take.mid"

    refused = run("convert", piano_line, "-o", notes)
    first, again = run("convert", piano_line, "-o", midi), run("convert", piano_line, "--bpm", 90, "-o", midi)

    assert (
        refused.returncode == 1 and f"error [output_not_midi]: {notes} exists and is not a MIDI file" in refused.stderr
    )
    assert notes.read_text() == "my notes on this take"
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    tempos = [m.tempo for m in mido.MidiFile(midi).tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(90)], "converting again replaces the .mid"


def test_version_names_the_package_and_the_protocol():
    done = run("--version")

    assert done.returncode == 0 and done.stdout.startswith("midibridge ") and "protocol midibridge/2." in done.stdout


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["serve", "--queue", "0"], "argument --queue: must be a whole number ≥ 1, not '0'"),
        (["serve", "--workers", "-2"], "argument --workers: must be a whole number ≥ 0, not '-2'"),
        (["serve", "--progress-timeout", "nan"], "argument --progress-timeout: must be a finite number of seconds > 0"),
        (["serve", "--grace", "inf"], "argument --grace: must be a finite number of seconds ≥ 0, not 'inf'"),
        (["convert", "x.wav", "--threads", "-1"], "argument --threads: must be a whole number ≥ 0, not '-1'"),
    ],
)
def test_a_setting_out_of_range_is_refused_before_anything_starts(args, complaint):
    done = run(*args)

    assert done.returncode == 2 and complaint in done.stderr and "Traceback" not in done.stderr
