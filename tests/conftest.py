"""Shared fixtures: real audio rendered with fluidsynth from known notes, and one loaded model per test session."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import pytest
from pedalboard.io import AudioFile

from midibridge.benchmarks.fluidsynth import can_render, render_midi_file
from midibridge.model.clip import Note
from midibridge.model.midi import DRUM_CHANNEL

REPO = Path(__file__).resolve().parent.parent
PIANO, NYLON_GUITAR, FLUTE = 0, 24, 73


def render(
    notes: list[Note],
    path: Path,
    *,
    program: int = PIANO,
    sample_rate_hz: int = 44100,
    tail_s: float = 1.0,
    channels: int = 1,
    bit_depth: int = 16,
    drums: bool = False,
) -> Path:
    """Render `notes` (seconds) with fluidsynth and the FluidR3 GM soundfont to an audio file at `path`; `drums`
    plays them on the GM drum channel (10), pitches naming drums of the standard kit."""
    if not can_render():
        pytest.fail("fluidsynth and the FluidR3 GM soundfont are needed: run `make setup`")
    midi_path = path.with_suffix(".render.mid")
    _score(notes, program, tail_s, channel=DRUM_CHANNEL if drums else 0).save(midi_path)
    wav = path.with_suffix(".render.wav")
    render_midi_file(midi_path, wav, sample_rate_hz=sample_rate_hz)
    with AudioFile(str(wav)) as source:
        audio = source.read(source.frames)
    audio = np.repeat(audio.mean(axis=0, keepdims=True), channels, axis=0)
    write_audio(path, audio, sample_rate_hz, bit_depth=bit_depth)
    wav.unlink()
    midi_path.unlink()
    return path


def write_audio(path: Path, audio: np.ndarray, sample_rate_hz: float, *, bit_depth: int = 16) -> Path:
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    lossy = path.suffix in (".mp3", ".ogg")  # their encoders take a quality, not a bit depth
    with AudioFile(
        str(path),
        "w",
        samplerate=sample_rate_hz,
        num_channels=audio.shape[0],
        **({} if lossy else {"bit_depth": bit_depth}),
    ) as sink:
        sink.write(audio)
    return path


def _score(notes: list[Note], program: int, tail_s: float, *, channel: int) -> mido.MidiFile:
    ticks_per_s = 960  # 480 ticks a beat at 120 BPM
    events = []
    for note in notes:
        events.append(
            (
                round(note.start_s * ticks_per_s),
                1,
                mido.Message("note_on", channel=channel, note=note.pitch, velocity=note.velocity),
            )
        )
        events.append((round(note.end_s * ticks_per_s), 0, mido.Message("note_off", channel=channel, note=note.pitch)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(tail_s * ticks_per_s)))
    return mido.MidiFile(ticks_per_beat=480, tracks=[track])


def synthesize(
    notes: list[Note], *, sample_rate_hz: int = 44100, length_s: float | None = None, glide_semitones: float = 0.0
) -> np.ndarray:
    """(n_samples,) float32: plucked harmonic tones, sharp 5 ms attacks; each may glide by `glide_semitones` over its
    length."""
    length_s = length_s if length_s is not None else max(n.end_s for n in notes) + 0.5
    audio = np.zeros(int(length_s * sample_rate_hz), dtype=np.float64)
    for note in notes:
        first, last = int(note.start_s * sample_rate_hz), min(int(note.end_s * sample_rate_hz), audio.shape[0])
        t = np.arange(last - first) / sample_rate_hz
        semitones = (note.pitch - 69) + glide_semitones * t / max(t[-1], 1e-9)
        phase = 2 * np.pi * np.cumsum(440.0 * 2.0 ** (semitones / 12)) / sample_rate_hz
        envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / 0.8) * np.minimum((t[-1] - t) / 0.02, 1.0)
        voice = sum(np.sin(k * phase) / k for k in range(1, 7))
        audio[first:last] += 0.25 * (note.velocity / 127) * envelope * voice
    return audio.astype(np.float32)


def melody(pitches: list[int], *, start_s: float, step_s: float, length_s: float, velocity: int = 100) -> list[Note]:
    return [Note(p, start_s + i * step_s, start_s + i * step_s + length_s, velocity) for i, p in enumerate(pitches)]


def matches(found: list[Note], truth: list[Note], *, onset_tolerance_s: float = 0.05) -> list[tuple[Note, Note]]:
    """Pairs (truth, found) of the same pitch with onsets within tolerance, each note used once."""
    pairs, used = [], set()
    for expected in truth:
        candidates = [
            (abs(n.start_s - expected.start_s), i)
            for i, n in enumerate(found)
            if i not in used and n.pitch == expected.pitch and abs(n.start_s - expected.start_s) <= onset_tolerance_s
        ]
        if candidates:
            _, index = min(candidates)
            used.add(index)
            pairs.append((expected, found[index]))
    return pairs


def host_transcribe(requests: Path, *, preset: str) -> list[list[str]]:
    """What a DAW adapter reads from `midibridge host transcribe` (in-process), line by line, split in fields;
    the command must succeed."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "midibridge"),
            "host",
            "transcribe",
            str(requests),
            "--preset",
            preset,
            "--in-process",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def wait_while_running(process: subprocess.Popen, done: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Wait until `done()`. If `process` ends first or `timeout_s` passes, kill it and fail with `what` and what it
    printed (its pipes), so that a rare failure says where the process stood."""
    deadline = time.monotonic() + timeout_s
    while not done():
        ended = process.poll() is not None
        if ended or time.monotonic() >= deadline:
            process.kill()
            said = "".join(str(out) for out in process.communicate() if out)
            pytest.fail(f"{what}: {'it ended first' if ended else f'in {timeout_s:.0f} s'}; it said:\n{said}")
        time.sleep(0.05)


def streamed_peak_bytes(engine, chunk: np.ndarray, options, *, minutes: int) -> int:
    """Peak Python memory while `engine` takes `minutes` of audio as 2 s copies of `chunk`, never held whole."""
    n_chunks = minutes * 30
    tracemalloc.start()
    try:
        engine.notes(
            (chunk for _ in range(n_chunks)), n_samples=n_chunks * len(chunk), options=options, on_progress=None
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# An ascending then descending piano line, one note every 0.4 s from 0.5 s.
PIANO_LINE = melody(
    [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 55, 57, 59, 60, 64, 67, 72],
    start_s=0.5,
    step_s=0.4,
    length_s=0.35,
)


@pytest.fixture(scope="session")
def transcriber():
    from midibridge.model.pipeline import Transcriber

    return Transcriber()


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def piano_line(audio_dir) -> Path:
    return render(PIANO_LINE, audio_dir / "piano_line.wav")


@pytest.fixture(scope="session")
def long_audio(audio_dir) -> Path:
    """Five minutes of plucked notes: long enough to act on while it transcribes."""
    notes = [Note(60 + (i % 12), 0.5 + 0.7 * i, 1.0 + 0.7 * i, 100) for i in range(420)]
    return write_audio(audio_dir / "five_minutes.flac", synthesize(notes, sample_rate_hz=22050, length_s=300.0), 22050)


# Markers by module (registered in pyproject.toml), so that e.g. `pytest -m "not gui and not cluster"` runs the
# rest; `make test` runs everything. daemon: starts a real daemon; ardour: runs the real Ardour (gui: its editor on
# Xvfb); cluster: a real Ray cluster on loopback; jack: a real JACK server; slow: a minute or more on its own.
MODULE_MARKERS = {
    "test_ardour": ("ardour", "daemon"),
    "test_ardour_again": ("ardour", "daemon"),
    "test_ardour_gui": ("ardour", "gui", "daemon", "slow"),
    "test_cluster": ("cluster", "daemon", "slow"),
    "test_cluster_daemon": ("cluster", "daemon", "slow"),
    "test_daemon_liveness": ("daemon", "slow"),
    "test_fuzz_workers": ("daemon", "slow"),
    "test_load": ("daemon", "slow"),
    "test_piano_hq": ("ardour", "daemon"),
    "test_live_jack": ("jack", "ardour"),
    **{
        name: ("daemon",)
        for name in (
            "test_bad_audio",
            "test_cli_daemon",
            "test_client",
            "test_conformance_errors",
            "test_conformance_requests",
            "test_conformance_stream",
            "test_daemon",
            "test_drums",
            "test_faults",
            "test_fuzz",
            "test_reaper",
            "test_replies",
            "test_security",
            "test_swift_f0",
            "test_tempo",
            "test_truncated",
        )
    },
}


def pytest_collection_modifyitems(items):
    for item in items:
        for marker in MODULE_MARKERS.get(item.module.__name__.rsplit(".", 1)[-1], ()):
            item.add_marker(marker)


# The hardening suites: counted, with their figures, for RELIABILITY.md --------------------------

SUITES = {
    "test_fuzz": "Protocol fuzzing",
    "test_fuzz_workers": "Worker-side fuzzing",
    "test_bad_audio": "Bad audio",
    "test_truncated": "Truncated audio",
    "test_faults": "Faults",
    "test_daemon_liveness": "Liveness",
    "test_load": "Load",
    "test_security": "Security",
    "test_conformance_errors": "Conformance",
    "test_conformance_requests": "Conformance",
}
_RELIABILITY: dict[str, dict] = {}


def pytest_addoption(parser):
    parser.addoption(
        "--long",
        action="store_true",
        help="the long variants of the hardening suites: 10,000 fuzzed messages, 50 clients x 20 requests",
    )
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        default=None,
        help="write the hardening suites' table (Markdown) to PATH",
    )


@pytest.fixture(scope="session")
def long_run(request) -> bool:
    return request.config.getoption("--long")


@pytest.fixture
def figures(request) -> dict:
    """The figures of the current hardening suite; tests add to them."""
    return _suite_entry(SUITES[request.module.__name__.rsplit(".", 1)[-1]])["figures"]


def _suite_entry(suite: str) -> dict:
    return _RELIABILITY.setdefault(suite, {"tried": 0, "passed": 0, "skipped": 0, "seconds": 0.0, "figures": {}})


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    if module not in SUITES:
        return
    entry = _suite_entry(SUITES[module])
    entry["seconds"] += report.duration  # setup, call and teardown: the suite's whole time
    if report.when != "call" and not (report.when == "setup" and not report.passed):
        return
    entry["tried"] += 1
    entry["passed"] += report.passed
    entry["skipped"] += report.skipped


def pytest_terminal_summary(terminalreporter, config):
    if not _RELIABILITY:
        return
    table = reliability_table()
    terminalreporter.write_sep("-", "hardening suites")
    terminalreporter.write_line(table)
    path = config.getoption("--reliability-report")
    if path:
        Path(path).write_text(table + "\n")


def reliability_table() -> str:
    lines = ["| suite | cases tried | passed | time | figures |", "| --- | --- | --- | --- | --- |"]
    for suite in dict.fromkeys(SUITES.values()):
        entry = _RELIABILITY.get(suite)
        if entry is None:
            continue
        shown = "; ".join(f"{name}: {value}" for name, value in entry["figures"].items())
        skipped = f" ({entry['skipped']} skipped)" if entry["skipped"] else ""
        minutes, seconds = divmod(round(entry["seconds"]), 60)
        took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        lines.append(f"| {suite} | {entry['tried']} | {entry['passed']}{skipped} | {took} | {shown} |")
    return "\n".join(lines)
