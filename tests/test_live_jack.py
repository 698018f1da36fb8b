"""A musician plays into `midibridge live` through a real JACK server (dummy backend, 48 kHz, 256-frame periods): a
player client feeds a rendered line into its input in real time, a recorder client on its MIDI port keeps every event
with the frame it came in. The notes come out while the line plays, Ctrl-C during a held note ends it, and a preset
that cannot stream is refused before any port opens."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import FLUTE, matches, melody, render
from jack_server import RATE, Player, Recorder, jack_server, start_live
from pedalboard.io import AudioFile

from midibridge.model.clip import Note

LINE = melody([60, 62, 64, 65, 67, 69, 67, 64, 72, 71, 69, 60], start_s=0.5, step_s=0.45, length_s=0.35)
# What the engine needs past a note's start before it is sure (3 frames' look-ahead, two decodes that agree, SwiftF0
# hearing the note a frame or two after it begins) and what the line's soft flute attacks add: README, Live.
MEDIAN_LATENCY_S = 0.150


@pytest.fixture(scope="module")
def server():
    with jack_server() as running:
        yield running


@pytest.fixture(scope="module")
def flute(audio_dir) -> np.ndarray:
    path = render(LINE, audio_dir / "jack-flute.wav", program=FLUTE, sample_rate_hz=RATE)
    with AudioFile(str(path)) as source:
        return source.read(source.frames)[0]


def play_into_live(server, audio: np.ndarray, *, stop_after_s: float | None = None):
    """`midibridge live --preset lead` fed `audio` by a player, its MIDI recorded, stopped with Ctrl-C when the
    audio has played (or `stop_after_s` into it). Returns the recorder, the player's first frame, the ended live
    process and the notes sounding just before Ctrl-C."""
    recorder, player, live = Recorder(), Player(audio), None
    try:
        live = start_live(
            server,
            "--preset",
            "lead",
            "--input",
            "player:out",
            "--midi-out",
            "recorder:in",
            "--latency-report",
            name="live",
        )
        player.play()
        played = player.finished.wait(len(audio) / RATE + 10 if stop_after_s is None else stop_after_s)
        assert played == (stop_after_s is None)
        sounding = recorder.sounding()
        live.send_signal(signal.SIGINT)
        live.wait(timeout=30)
        return recorder, player.start_frame, live, sounding
    finally:
        if live is not None and live.poll() is None:  # a failed test leaves no client behind
            live.kill()
            live.wait()
        player.close()
        recorder.close()


def test_a_line_played_into_live_comes_out_as_its_notes_while_it_plays(server, flute):
    recorder, start, live, _ = play_into_live(server, flute)
    assert live.returncode == 0, live.stderr.read() if live.stderr else ""

    ons = recorder.note_ons()
    heard = [Note(pitch, (frame - start) / RATE, (frame - start) / RATE + 0.1, 100) for frame, pitch in ons]
    # The note-on frames are when the notes came out: matched to the played notes with the latency allowed.
    pairs = matches(heard, LINE, onset_tolerance_s=0.25)
    assert 2 * len(pairs) / (len(heard) + len(LINE)) >= 0.9
    latency = [found.start_s - played.start_s for played, found in pairs]
    assert min(latency) > 0.0
    assert np.median(latency) <= MEDIAN_LATENCY_S
    assert recorder.sounding() == set(), "every note ended"


def test_ctrl_c_during_a_held_note_ends_it(server):
    held = 0.3 * np.sin(2 * np.pi * 440 * np.arange(6 * RATE) / RATE).astype(np.float32)
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), held])
    recorder, _, live, sounding = play_into_live(server, audio, stop_after_s=3.0)
    assert sounding == {69}, "the note sounds while it is held"
    assert live.returncode == 0
    assert recorder.sounding() == set()
    assert "every note ended" in live.stderr.read()


def test_a_preset_that_cannot_stream_is_refused_with_the_reason(server):
    done = subprocess.run(
        [sys.executable, "-m", "midibridge.plugin_host.cli", "live", "--preset", "default"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "error [cannot_stream]: preset default cannot run live" in done.stderr
    assert "Presets that can: bass, lead, strings-solo, vocal" in done.stderr
