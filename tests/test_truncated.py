"""Files cut short (an interrupted copy or download): an error naming where the audio ends, or with allow_truncated
the audio there is, said in the clip; a whole file, or a region inside what a cut file holds, is never flagged."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PIANO_LINE, matches, write_audio
from pedalboard.io import AudioFile

from midibridge.model.audio import open_region
from midibridge.model.clip import Clip
from midibridge.model.containers import find_cut, mp3_gapless
from midibridge.model.errors import AudioError
from midibridge.model.midi import clip_to_bytes
from midibridge.model.region import Region

FORMATS = [".wav", ".flac", ".aiff", ".mp3", ".ogg"]
KEEP = 0.45  # of the file's bytes
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


@pytest.fixture(scope="module")
def files(piano_line, tmp_path_factory):
    """suffix -> (the whole file, the same file cut to its first 45 % of bytes), written by pedalboard's encoders."""
    folder = tmp_path_factory.mktemp("truncated")
    with AudioFile(str(piano_line)) as source:
        audio, rate = source.read(source.frames), source.samplerate
    made = {}
    for suffix in FORMATS:
        whole = write_audio(folder / f"whole{suffix}", audio, rate)
        cut = folder / f"cut{suffix}"
        data = whole.read_bytes()
        cut.write_bytes(data[: int(len(data) * KEEP)])
        made[suffix] = whole, cut
    return made


def whole_length_s(path: Path) -> float:
    return open_region(Region.from_file(path)).n_samples / AudioFile(str(path)).samplerate


def samples(audio) -> np.ndarray:
    return np.concatenate(list(audio.chunks()) or [np.zeros(0, np.float32)])


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_truncated_file_is_an_error_naming_where_its_audio_ends_and_what_was_promised(files, suffix):
    whole, cut = files[suffix]
    length_s = whole_length_s(whole)

    with pytest.raises(AudioError) as raised:
        open_region(Region.from_file(cut))

    error = raised.value
    assert error.code == "audio_truncated"
    message = str(error)
    ends_s = float(message.split("its audio ends at ")[1].split(" s")[0])
    assert 0.25 * length_s < ends_s < 0.6 * length_s, message
    if suffix == ".ogg":  # Ogg states no length up front; its missing end-of-stream page tells
        assert "end-of-stream" in message
    else:
        assert f"its header promises {length_s:.3f} s" in message
    assert "--allow-truncated" in message and "Re-export" in message


@pytest.mark.parametrize("suffix", FORMATS)
def test_allow_truncated_transcribes_the_audio_there_is_and_says_where_it_ends(transcriber, files, suffix):
    whole, cut = files[suffix]

    clip = transcriber.transcribe(Region.from_file(cut, position_s=4.0), allow_truncated=True)

    ends_s = clip.truncated_at_s
    assert ends_s is not None and 0.25 * whole_length_s(whole) < ends_s
    assert clip.position_s == 4.0
    if suffix != ".ogg":  # the clip keeps the region's length, as the DAW shows it
        assert clip.duration_s == pytest.approx(whole_length_s(whole))
    assert all(n.start_s < ends_s for n in clip.notes)
    heard = [n for n in PIANO_LINE if n.end_s < ends_s - 0.05]
    assert len(matches(list(clip.notes), heard)) >= len(heard) - 1, "the notes before the cut are all there"
    assert clip.to_dict()["truncated_at_s"] == ends_s


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_audio_read_from_a_cut_file_is_the_whole_files_up_to_the_cut(files, suffix):
    whole, cut = files[suffix]

    kept = open_region(Region.from_file(cut), allow_truncated=True)
    read = samples(kept)

    assert read.shape[0] == kept.truncated_at_sample > 0, "reading stops where the audio does"
    # pedalboard zeroes a whole FLAC read that crosses the cut: every sample up to it must be the music's.
    np.testing.assert_allclose(read, samples(open_region(Region.from_file(whole)))[: read.shape[0]], atol=1e-6)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_region_inside_what_a_cut_file_holds_needs_no_flag_and_matches_the_whole_file(transcriber, files, suffix):
    whole, cut = files[suffix]

    inside = transcriber.transcribe(Region.from_file(cut, start_s=0.5, duration_s=2.5))

    assert inside.truncated_at_s is None and "truncated_at_s" not in inside.to_dict()
    assert inside == transcriber.transcribe(Region.from_file(whole, start_s=0.5, duration_s=2.5))


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_region_reaching_past_the_cut_is_the_error_and_allowed_stops_at_it(files, suffix):
    _, cut = files[suffix]
    ends_s = open_region(Region.from_file(cut), allow_truncated=True).truncated_at_sample / 44100
    region = Region.from_file(cut, start_s=ends_s - 1.0, duration_s=1.5)

    with pytest.raises(AudioError, match="reaches past") as raised:
        open_region(region)
    allowed = open_region(region, allow_truncated=True)

    assert raised.value.code == "audio_truncated"
    assert allowed.truncated_at_sample == pytest.approx(44100, abs=1)
    assert allowed.n_samples == round(1.5 * 44100)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".aiff", ".mp3"])
def test_a_region_past_the_headers_length_stays_region_outside_source(files, suffix):
    whole, cut = files[suffix]
    length_s = whole_length_s(whole)

    for region in (
        Region.from_file(cut, start_s=length_s + 1.0),
        Region.from_file(cut, start_s=1.0, duration_s=length_s),
    ):
        with pytest.raises(AudioError) as raised:
            open_region(region, allow_truncated=True)
        assert raised.value.code == "region_outside_source"


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_whole_file_is_never_flagged(transcriber, files, suffix):
    whole, _ = files[suffix]

    clip = transcriber.transcribe(Region.from_file(whole))
    to_the_end = open_region(Region.from_file(whole, start_s=1.0, duration_s=whole_length_s(whole) - 1.0))

    assert clip.truncated_at_s is None and "truncated_at_s" not in clip.to_dict()
    assert to_the_end.truncated_at_sample is None
    assert find_cut(str(whole), AudioFile(str(whole)).frames) is None


def test_whole_files_from_other_writers_and_with_tags_are_never_flagged(files, tmp_path):
    import soundfile

    audio = np.sin(2 * np.pi * 440 * np.arange(44100 * 3) / 44100).astype(np.float32) * 0.3
    audio[int(44100 * 2.2) :] = 0  # a silent end: FLAC's last frame is then a few bytes
    made = [write_audio(tmp_path / "silent_end.flac", audio, 44100)]
    for suffix, (kind, subtype) in {
        ".wav": ("WAV", "PCM_24"),
        ".flac": ("FLAC", "PCM_16"),
        ".aiff": ("AIFF", "FLOAT"),
        ".ogg": ("OGG", "VORBIS"),
    }.items():
        made.append(tmp_path / f"libsndfile{suffix}")
        soundfile.write(made[-1], audio, 44100, format=kind, subtype=subtype)
    id3v2 = b"ID3\x03\x00\x00\x00\x00\x08\x00" + bytes(1024)
    id3v1 = b"TAG" + bytes(125)
    for suffix in (".mp3", ".flac"):
        made.append(tmp_path / f"tagged{suffix}")
        made[-1].write_bytes(id3v2 + files[suffix][0].read_bytes() + id3v1)

    for path in made:
        assert find_cut(str(path), AudioFile(str(path)).frames) is None, path.name
        assert open_region(Region.from_file(path)).truncated_at_sample is None, path.name


def test_a_whole_mp3s_encoder_delay_and_padding_are_not_taken_for_a_cut(files):
    whole, cut = files[".mp3"]
    skip, padding = mp3_gapless(str(whole))
    length_s = whole_length_s(whole)

    assert skip > 0 and padding > 0, "pedalboard's encoder writes a LAME tag with both"
    assert open_region(Region.from_file(whole, duration_s=length_s)).truncated_at_sample is None
    # Where a cut MP3 ends is counted on the same (gapless) timeline as its regions.
    assert 0.3 * length_s < open_region(Region.from_file(cut), allow_truncated=True).truncated_at_sample / 44100


def test_truncated_at_s_is_in_the_json_only_when_set_and_never_in_the_midi_file():
    clip = Clip(position_s=1.0, duration_s=4.0)
    cut = dataclasses.replace(clip, truncated_at_s=1.25)

    assert "truncated_at_s" not in clip.to_dict()
    assert cut.to_dict()["truncated_at_s"] == 1.25 and Clip.from_dict(cut.to_dict()) == cut
    assert Clip.from_dict(clip.to_dict()) == clip
    assert clip_to_bytes(cut) == clip_to_bytes(clip)


def run(*args):
    return subprocess.run([MIDIBRIDGE, *map(str, args)], capture_output=True, text=True)


def test_convert_exits_1_on_a_cut_file_and_allow_truncated_converts_it_and_says_so(files, tmp_path):
    _, cut = files[".flac"]
    out = tmp_path / "cut.mid"

    refused = run("convert", cut, "-o", out, "--in-process")
    allowed = run("convert", cut, "-o", out, "--in-process", "--allow-truncated", "--json")

    assert refused.returncode == 1 and "midibridge: error [audio_truncated]:" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    clip = json.loads(allowed.stdout)
    assert 0 < clip["truncated_at_s"] < clip["duration_s"]
    assert "warning [audio_truncated]" in allowed.stderr and f"{clip['truncated_at_s']:.3f} s" in allowed.stderr


def test_batch_reports_a_cut_file_and_with_allow_truncated_marks_it_in_the_index(files, tmp_path):
    whole, cut = files[".wav"]

    refused = run("batch", cut, whole, "-o", tmp_path / "a", "--in-process")
    allowed = run("batch", cut, whole, "-o", tmp_path / "b", "--in-process", "--allow-truncated")

    assert refused.returncode == 1 and "[audio_truncated]" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    entries = json.loads((tmp_path / "b" / "index.json").read_text())["regions"]
    assert 0 < entries[0]["truncated_at_s"] < entries[0]["duration_s"]
    assert "truncated_at_s" not in entries[1]
    assert "warning [audio_truncated]" in allowed.stderr and str(cut) in allowed.stderr


def test_through_the_daemon_a_cut_file_is_refused_and_allowed_as_in_process(files, tmp_path):
    from daemon_helpers import DaemonProcess

    _, cut = files[".flac"]
    daemon = DaemonProcess(tmp_path / "daemon", workers=1)
    try:

        def convert(*extra):
            return subprocess.run(
                [MIDIBRIDGE, "convert", cut, "--daemon", "-o", tmp_path / "x.mid", *extra],
                capture_output=True,
                text=True,
                env=daemon.env,
            )

        allowed = convert("--allow-truncated", "--json")
        refused = convert()  # after an allowed run of the same file: no cached clip answers for it
        local = run("convert", cut, "--in-process", "--allow-truncated", "--json", "-o", tmp_path / "y.mid")
    finally:
        daemon.stop()

    assert refused.returncode == 1 and "[audio_truncated]" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout) == json.loads(local.stdout)
    assert "warning [audio_truncated]" in allowed.stderr
