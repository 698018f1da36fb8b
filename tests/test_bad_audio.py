"""Bad audio through the daemon: every case ends in a clear error code or a valid (maybe empty) clip; no worker dies,
none hangs."""

import os
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess

from midibridge.model.region import Region
from midibridge.plugin_host.results import ClientError

MELODY = [Note(55 + 3 * i, 0.2 + 0.4 * i, 0.55 + 0.4 * i, 110) for i in range(6)]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("bad-audio"), workers=2)
    yield running
    running.stop()


def tone(rate=44100, channels=1, length_s=2.8):
    audio = synthesize(MELODY, sample_rate_hz=rate, length_s=length_s)
    return np.repeat(audio[np.newaxis], channels, axis=0)


def pcm32_wav(path: Path) -> Path:
    """32-bit integer PCM, which pedalboard does not write: the standard library's wave does."""
    samples = (tone()[0] * (2**31 - 1)).astype("<i4")
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(4)
        sink.setframerate(44100)
        sink.writeframes(samples.tobytes())
    return path


def truncated(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def nonfinite(path: Path, value: float) -> Path:
    audio = tone()
    audio[0, 30000] = value
    return write_audio(path, audio, 44100, bit_depth=32)


# name -> (make the region from a temp dir, what is allowed: an error code, "clip" (with notes) or "empty")
CASES = {
    "empty file": (lambda d: Region.from_file(_touch(d / "empty.wav")), "audio_unreadable"),
    "region past the end": (
        lambda d: Region.from_file(write_audio(d / "a.wav", tone(), 44100), start_s=10.0),
        "region_outside_source",
    ),
    "silence": (lambda d: Region.from_file(write_audio(d / "s.wav", np.zeros((1, 44100)), 44100)), "empty"),
    "NaN samples": (lambda d: Region.from_file(nonfinite(d / "nan.wav", np.nan)), "audio_not_finite"),
    "inf samples": (lambda d: Region.from_file(nonfinite(d / "inf.wav", np.inf)), "audio_not_finite"),
    "clipping square wave": (
        lambda d: Region.from_file(
            write_audio(
                d / "square.wav", np.clip(np.sign(np.sin(2 * np.pi * 220 * np.arange(88200) / 44100)) * 4, -1, 1), 44100
            )
        ),
        "clip",
    ),
    **{
        f"{n} channels": (
            lambda d, n=n: Region.from_file(write_audio(d / f"c{n}.flac", tone(channels=n), 44100)),
            "clip",
        )
        for n in range(1, 9)
    },
    **{
        f"{r} Hz": (lambda d, r=r: Region.from_file(write_audio(d / f"r{r}.wav", tone(rate=r), r)), "clip")
        for r in (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 384000)
    },
    **{
        f"{b}-bit": (lambda d, b=b: Region.from_file(write_audio(d / f"b{b}.wav", tone(), 44100, bit_depth=b)), "clip")
        for b in (8, 16, 24)
    },
    "32-bit integer": (lambda d: Region.from_file(pcm32_wav(d / "i32.wav")), "clip"),
    "32-bit float": (lambda d: Region.from_file(write_audio(d / "f32.wav", tone(), 44100, bit_depth=32)), "clip"),
    "truncated WAV": (
        lambda d: Region.from_file(truncated(write_audio(d / "t.wav", tone(), 44100), 0.5)),
        "audio_truncated",
    ),
    "truncated FLAC": (
        lambda d: Region.from_file(truncated(write_audio(d / "t.flac", tone(), 44100), 0.5)),
        "audio_truncated",
    ),
    "text renamed .wav": (lambda d: Region.from_file(_text(d / "notes.wav")), "audio_unreadable"),
    "directory": (lambda d: Region.from_file(d), "audio_unreadable"),
    "missing file": (lambda d: Region.from_file(d / "gone.wav"), "audio_not_found"),
    "no read permission": (lambda d: Region.from_file(_locked(d)), "audio_unreadable"),
    "inline samples of 6 channels at 96 kHz": (
        lambda d: Region.from_samples(tone(rate=96000, channels=6), sample_rate_hz=96000),
        "clip",
    ),
}


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _text(path: Path) -> Path:
    path.write_text("RIFF? no: these are words, not samples\n" * 50)
    return path


def _locked(directory: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path = write_audio(directory / "locked.wav", tone(), 44100)
    path.chmod(0)
    return path


@pytest.mark.parametrize("case", CASES)
def test_bad_audio_gets_a_clear_answer(daemon, tmp_path, case, figures):
    make, allowed = CASES[case]
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    region = make(tmp_path)

    with daemon.client(timeout_s=30.0) as client:
        try:
            clip = client.transcribe(region).clip
            outcome = "empty" if not clip.notes else "clip"
        except ClientError as error:
            outcome = error.code
            assert str(error) and "Traceback" not in str(error)

    assert outcome in allowed, f"{case}: {outcome}"
    if outcome == "clip" and case.endswith(("channels", "Hz", "bit", "integer", "float")):
        assert {n.pitch for n in clip.notes} >= {n.pitch for n in MELODY[1:-1]}, "the melody is heard"
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_no_case_killed_or_hung_a_worker(daemon, figures):
    with daemon.client() as client:
        status = client.status()

    assert status["workers_replaced"] == 0 and all(w["ready"] for w in status["workers"])
    figures["workers lost"] = status["workers_replaced"]
    figures["jobs answered"] = sum(status["counts"].values())
