"""Regions as a DAW has them: trimmed, placed on the timeline, from files of any rate and width, or raw samples."""

import math
import os

import numpy as np
import pytest
from conftest import PIANO_LINE, matches, write_audio
from pedalboard.io import AudioFile

from midibridge.model.errors import AudioError
from midibridge.model.region import Region


def test_a_trimmed_region_at_12_5_s_becomes_a_clip_at_12_5_s_holding_the_trimmed_parts_notes(transcriber, piano_line):
    clip = transcriber.transcribe(Region.from_file(piano_line, start_s=3.0, duration_s=4.0, position_s=12.5))

    assert clip.position_s == 12.5
    assert clip.duration_s == pytest.approx(4.0)
    inside = [n for n in PIANO_LINE if 3.05 <= n.start_s and n.end_s <= 7.0]
    shifted = [type(n)(n.pitch, n.start_s - 3.0, n.end_s - 3.0, n.velocity) for n in inside]
    assert len(matches(list(clip.notes), shifted)) == len(shifted), "notes are relative to the region's start"
    assert all(0.0 <= n.start_s < n.end_s <= 4.0 for n in clip.notes), "nothing from outside the region"


def test_a_region_counted_in_samples_reads_exactly_those_samples(tmp_path):
    from midibridge.model.audio import open_region

    ramp = np.arange(48000 * 3, dtype=np.float32) / 2**20  # every sample says where it is
    path = write_audio(tmp_path / "ramp.wav", ramp, 48000, bit_depth=32)

    audio = open_region(Region.from_file_samples(path, start_sample=12345, n_samples=67891, sample_rate_hz=48000))

    read = np.concatenate(list(audio.chunks()))
    assert read.shape == (67891,) and read[0] * 2**20 == 12345 and read[-1] * 2**20 == 12345 + 67890


def test_raw_samples_give_the_same_clip_as_the_file_they_came_from(transcriber, piano_line):
    with AudioFile(str(piano_line)) as source:
        samples, rate = source.read(source.frames), source.samplerate

    from_file = transcriber.transcribe(Region.from_file(piano_line, start_s=1.0, duration_s=3.0))
    from_samples = transcriber.transcribe(
        Region.from_samples(samples, sample_rate_hz=rate, start_s=1.0, duration_s=3.0)
    )

    assert from_samples == from_file


@pytest.mark.parametrize("sample_rate_hz, channels", [(22050, 1), (48000, 2), (96000, 6), (8000, 1)])
def test_any_rate_and_channel_count_finds_the_same_notes(transcriber, piano_line, tmp_path, sample_rate_hz, channels):
    with AudioFile(str(piano_line)).resampled_to(sample_rate_hz) as source:
        mono = source.read(source.frames)
    path = write_audio(tmp_path / "copy.flac", np.repeat(mono, channels, axis=0), sample_rate_hz)

    clip = transcriber.transcribe(Region.from_file(path))

    # 8 kHz keeps nothing above 4 kHz: the fundamentals are all there, but fewer overtones.
    assert len(matches(list(clip.notes), PIANO_LINE)) >= len(PIANO_LINE) - (2 if sample_rate_hz == 8000 else 0)


@pytest.mark.parametrize("suffix", [".flac", ".aiff", ".ogg", ".mp3"])
def test_every_format_gives_the_notes_of_the_wav_at_the_same_times(transcriber, piano_line, tmp_path, suffix):
    with AudioFile(str(piano_line)) as source:
        copy = write_audio(tmp_path / f"copy{suffix}", source.read(source.frames), source.samplerate)
    wav = transcriber.transcribe(Region.from_file(piano_line, start_s=1.0))

    other = transcriber.transcribe(Region.from_file(copy, start_s=1.0))

    pairs = matches(list(other.notes), list(wav.notes), onset_tolerance_s=0.02)
    assert len(pairs) >= len(wav.notes) - 1
    # MP3's encoder delay is skipped: its notes are not 25 ms late.
    assert np.median([abs(theirs.start_s - ours.start_s) for ours, theirs in pairs]) < 0.002


def test_silence_is_an_empty_clip_not_an_error(transcriber, tmp_path):
    path = write_audio(tmp_path / "silence.wav", np.zeros(44100 * 3), 44100)

    clip = transcriber.transcribe(Region.from_file(path, position_s=2.0))

    assert clip.notes == () and clip.position_s == 2.0 and clip.duration_s == pytest.approx(3.0)


def test_a_region_of_a_few_samples_is_transcribed(transcriber, tmp_path):
    path = write_audio(tmp_path / "short.wav", np.zeros(10), 44100)

    assert transcriber.transcribe(Region.from_file(path)).notes == ()


def _refusal(transcriber, region) -> tuple[str, str]:
    with pytest.raises(AudioError) as caught:
        transcriber.transcribe(region)
    return caught.value.code, str(caught.value)


def _not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are not samples")
    return Region.from_file(path)


BAD_REGIONS = {
    "missing file": (lambda tmp, line: Region.from_file(tmp / "nope.wav"), "audio_not_found", "does not exist"),
    "directory": (lambda tmp, line: Region.from_file(tmp), "audio_unreadable", "is a directory"),
    "not audio": (lambda tmp, line: _not_audio(tmp), "audio_unreadable", "cannot be decoded as audio"),
    "start past the end": (
        lambda tmp, line: Region.from_file(line, start_s=60.0),
        "region_outside_source",
        "starts at 60 s",
    ),
    "end past the end": (
        lambda tmp, line: Region.from_file(line, start_s=5.0, duration_s=30.0),
        "region_outside_source",
        "past the end",
    ),
    "no samples": (
        lambda tmp, line: Region.from_samples(np.zeros(0, np.float32), sample_rate_hz=44100),
        "region_empty",
        "no audio",
    ),
    "sample rate 0": (
        lambda tmp, line: Region.from_samples(np.zeros(100, np.float32), sample_rate_hz=0),
        "invalid_sample_rate",
        "sample rate 0 Hz",
    ),
    "samples on their side": (
        lambda tmp, line: Region.from_samples(np.zeros((1000, 2), np.float32), sample_rate_hz=44100),
        "invalid_samples",
        "(n_channels, n_samples)",
    ),
}


@pytest.mark.parametrize("case", BAD_REGIONS)
def test_a_bad_region_is_refused_with_a_code_and_a_message_naming_the_problem(transcriber, piano_line, tmp_path, case):
    make, code, words = BAD_REGIONS[case]

    got_code, message = _refusal(transcriber, make(tmp_path, piano_line))

    assert got_code == code and words in message, message


@pytest.mark.parametrize(
    "place, code",
    [
        ({"start_s": -1.0}, "region_outside_source"),
        ({"start_s": math.nan}, "region_outside_source"),
        ({"start_s": math.inf}, "region_outside_source"),
        ({"position_s": -1.0}, "region_outside_source"),
        ({"position_s": math.inf}, "region_outside_source"),
        ({"duration_s": 0.0}, "region_empty"),
        ({"duration_s": -2.0}, "region_empty"),
        ({"duration_s": math.inf}, "region_empty"),
        ({"duration_s": math.nan}, "region_empty"),
        ({"start_s": "1"}, "region_outside_source"),
    ],
)
def test_a_region_that_cannot_be_is_refused_when_it_is_made_before_any_work(piano_line, place, code):
    """One rule wherever the region then runs (in-process, daemon, cluster): a DAW region starts at or after the
    source's start and the timeline's zero, lasts a while, and every number of it is finite."""
    with pytest.raises(AudioError) as file_region:
        Region.from_file(piano_line, **place)
    with pytest.raises(AudioError) as samples_region:
        Region.from_samples(np.zeros(100, np.float32), sample_rate_hz=44100, **place)

    assert file_region.value.code == samples_region.value.code == code
    name, value = next(iter(place.items()))
    message = str(file_region.value)
    assert name in message and "must be a finite number" in message and message.endswith(f"not {value!r}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_refused(transcriber, tmp_path):
    path = write_audio(tmp_path / "locked.wav", np.zeros(100), 44100)
    path.chmod(0)

    assert _refusal(transcriber, Region.from_file(path))[0] == "audio_unreadable"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_samples_that_are_not_finite_are_refused_with_their_position(transcriber, bad):
    samples = np.zeros(44100, np.float32)
    samples[22050] = bad

    code, message = _refusal(transcriber, Region.from_samples(samples, sample_rate_hz=44100))

    assert code == "audio_not_finite" and "sample 22050 (0.500 s in)" in message
