"""The drum engine on kits rendered by fluidsynth from known hits (FluidR3 GM standard kit, channel 10), read back
as clips and with mido."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import mido
import numpy as np
import pytest
from conftest import host_transcribe, render, streamed_peak_bytes, write_audio
from daemon_helpers import DaemonProcess
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pedalboard.io import AudioFile

from midibridge.model.clip import Note, Tempo
from midibridge.model.engines.drums.constants import (
    BLOCK_FRAMES,
    CONTEXT_FRAMES,
    GROUP_OF_NOTE,
    HOP_SIZE,
    N_MEL_BANDS,
    OUTPUT_NOTES,
)
from midibridge.model.engines.drums.features import (
    context_stack,
    context_stream,
    frame_blocks,
    padded_with_floor,
    stack_contexts,
)
from midibridge.model.engines.drums.network import activations, load_model
from midibridge.model.engines.drums.weights import find_weights
from midibridge.model.errors import OptionError, WeightsError
from midibridge.model.midi import DRUM_CHANNEL, clip_from_bytes
from midibridge.model.presets import Preset, load_preset
from midibridge.model.region import Region

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
TOLERANCE_S = 0.020
KICK, SNARE, CLOSED_HAT = 36, 38, 42


def hit(time_s: float, drum: int, velocity: int = 110) -> Note:
    return Note(drum, time_s, time_s + 0.1, velocity)


def rock_beat(start_s: float = 0.5, bars: int = 2) -> list[Note]:
    """100 BPM: kick on 1 and 3, snare on 2 and 4, closed hi-hat eighths."""
    beat_s = 0.6
    hits = []
    for b in range(bars * 4):
        t = start_s + b * beat_s
        hits += [hit(t, KICK if b % 2 == 0 else SNARE), hit(t, CLOSED_HAT, 90), hit(t + beat_s / 2, CLOSED_HAT, 80)]
    return hits


def convert(transcriber, hits: list[Note], path: Path, preset: Preset | str = "drums", **render_options):
    """The clip, the clip its MIDI file reads back as, and that file read by mido."""
    render(hits, path, drums=True, tail_s=1.5, **render_options)
    preset = load_preset(preset) if isinstance(preset, str) else preset
    done = transcriber.convert(Region.from_file(path), preset=preset)
    return done.clip, clip_from_bytes(done.smf), mido.MidiFile(file=io.BytesIO(done.smf))


def unmatched(expected: list[Note], found: tuple[Note, ...]) -> tuple[list[Note], list[Note]]:
    """(expected hits with no found hit of their class within TOLERANCE_S, found hits left over)."""
    left = list(found)
    missing = []
    for want in expected:
        near = [
            n
            for n in left
            if GROUP_OF_NOTE.get(n.pitch) == GROUP_OF_NOTE[want.pitch] and abs(n.start_s - want.start_s) <= TOLERANCE_S
        ]
        if near:
            left.remove(min(near, key=lambda n: abs(n.start_s - want.start_s)))
        else:
            missing.append(want)
    return missing, left


def test_a_rock_beat_comes_back_with_its_classes_and_times_on_channel_10(transcriber, tmp_path):
    hits = rock_beat()
    clip, read_back, midi = convert(transcriber, hits, tmp_path / "beat.flac")

    assert clip.drums and read_back.drums
    missing, extra = unmatched(hits, clip.notes)
    assert extra == [] and len(missing) <= 1, (missing, extra)
    # Known weakness (README, Drums): a hi-hat struck with the snare needs a higher activation (real snares fired
    # false hi-hats), and one of these four sits just under it.
    assert all(
        n.pitch == CLOSED_HAT and any(h.pitch == SNARE and h.start_s == n.start_s for h in hits) for n in missing
    ), missing
    assert unmatched(hits, read_back.notes) == (missing, [])
    messages = [m for m in midi.tracks[1] if m.type in ("note_on", "note_off", "pitchwheel", "control_change")]
    assert {m.type for m in messages} == {"note_on", "note_off"}, "no bends, no bend range set up"
    assert {m.channel for m in messages} == {DRUM_CHANNEL}
    assert all(n.end_s - n.start_s < 0.1 for n in clip.notes), "one short note per hit"


@pytest.mark.parametrize("rate_hz", [48000, 22050])
def test_isolated_kicks_and_snares_at_other_rates(transcriber, tmp_path, rate_hz):
    hits = [hit(0.5 + 0.75 * i, KICK if i % 2 == 0 else SNARE) for i in range(6)]
    clip, _, _ = convert(transcriber, hits, tmp_path / "hits.wav", sample_rate_hz=rate_hz)
    assert unmatched(hits, clip.notes) == ([], [])


def test_louder_hits_get_higher_velocities(transcriber, tmp_path):
    velocities = (30, 60, 90, 127)
    hits = [hit(0.5 + 0.8 * i, SNARE, velocity) for i, velocity in enumerate(velocities)]
    clip, _, _ = convert(transcriber, hits, tmp_path / "dynamics.flac")

    assert [n.pitch for n in clip.notes] == [SNARE] * 4
    found = [n.velocity for n in clip.notes]
    assert found == sorted(found) and len(set(found)) == 4, found


def test_the_preprocessing_chain_runs_before_the_drum_engine(transcriber, tmp_path):
    path = render([hit(0.5 + 0.6 * i, SNARE) for i in range(4)], tmp_path / "snares.flac", drums=True)
    table = load_preset("drums").to_dict()
    table["chain"] = [{"step": "gain", "gain_db": -12.0}]
    plain = transcriber.transcribe(Region.from_file(path), preset=load_preset("drums"))
    quieter = transcriber.transcribe(Region.from_file(path), preset=Preset.from_dict(table))

    assert [n.pitch for n in quieter.notes] == [n.pitch for n in plain.notes] == [SNARE] * 4
    assert all(q.velocity < p.velocity for q, p in zip(quieter.notes, plain.notes))


def test_silence_gives_no_notes(transcriber, tmp_path):
    path = write_audio(tmp_path / "silence.flac", np.zeros(3 * 44100, np.float32), 44100)
    clip = transcriber.transcribe(Region.from_file(path), preset=load_preset("drums"))
    assert clip.notes == () and clip.drums


def test_quantising_to_the_host_bars_snaps_hits_to_the_grid(transcriber, tmp_path):
    table = load_preset("drums").to_dict()
    table["post"].update(quantize_grid="1/16")
    hits = [hit(0.5 + 0.3 * i + (0.012 if i % 2 else -0.012), KICK if i % 4 == 0 else CLOSED_HAT) for i in range(8)]
    render(hits, tmp_path / "loose.flac", drums=True)
    clip = transcriber.transcribe(
        Region.from_file(tmp_path / "loose.flac", position_s=0.25),
        preset=Preset.from_dict(table),
        tempo=Tempo(bpm=100.0),
    )
    sixteenth_s = 60 / 100 / 4
    assert len(clip.notes) >= 8
    for note in clip.notes:  # the grid counts from the timeline's bar lines, not the region's start
        lines = (0.25 + note.start_s) / sixteenth_s
        assert lines == pytest.approx(round(lines), abs=1e-6)


@pytest.mark.parametrize(
    "post", [{"transpose_semitones": 2}, {"scale": "major"}, {"monophonic": "highest"}, {"pitch_bends": "mpe"}]
)
def test_pitch_edits_are_refused_for_drums(post):
    table = {"schema": 2, "name": "my-drums", "engine": {"name": "drums"}, "post": post}
    with pytest.raises(OptionError, match=f"{next(iter(post))} .* does not apply to drums") as refused:
        Preset.from_dict(table, where="my-drums.toml")
    assert refused.value.code == "invalid_preset" and "my-drums.toml" in str(refused.value)


def test_the_json_of_a_drum_clip_says_so_and_others_do_not(transcriber, tmp_path):
    path = render(rock_beat(bars=1), tmp_path / "beat.flac", drums=True)
    drums = transcriber.transcribe(Region.from_file(path), preset=load_preset("drums"))
    assert drums.to_dict()["drums"] is True
    assert "drums" not in transcriber.transcribe(Region.from_file(path)).to_dict()


def test_convert_drums_through_the_daemon_writes_exactly_the_in_process_midi(tmp_path):
    audio = render(rock_beat(), tmp_path / "beat.flac", drums=True)
    takes = tmp_path / "takes"
    takes.mkdir()
    (takes / "again.flac").write_bytes(audio.read_bytes())
    daemon = DaemonProcess(tmp_path / "home")
    try:
        runs = [
            subprocess.run(
                [MIDIBRIDGE, "convert", audio, "--preset", "drums", "-o", tmp_path / f"{how}.mid", f"--{how}"],
                capture_output=True,
                text=True,
                env=daemon.env,
            )
            for how in ("daemon", "in-process")
        ]
        with daemon.client() as client:
            assert client.status()["counts"]["done"] == 1, "the first went through the daemon"
        batch = subprocess.run(
            [MIDIBRIDGE, "batch", takes, "-o", tmp_path / "batch", "--preset", "drums"],
            capture_output=True,
            text=True,
            env=daemon.env,
        )
    finally:
        daemon.stop()

    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    assert (tmp_path / "daemon.mid").read_bytes() == (tmp_path / "in-process.mid").read_bytes()
    clip = clip_from_bytes((tmp_path / "daemon.mid").read_bytes())
    assert clip.drums and len(clip.notes) >= len(rock_beat()) - 1
    assert batch.returncode == 0, batch.stderr
    assert (tmp_path / "batch" / "again.mid").read_bytes() == (tmp_path / "daemon.mid").read_bytes()


def test_a_long_drum_region_shows_its_progress_as_the_model_works_through_it(transcriber, tmp_path):
    """Two minutes of drums, analysed in ~48 s blocks: the progress a user's bar counts ("infer", as
    PROTOCOL.md documents) rises block by block to 1 before the notes, in-process and through a daemon."""
    from midibridge.plugin_host.results import OverallProgress, Progress

    path = render(rock_beat(bars=2), tmp_path / "beat.wav", drums=True, sample_rate_hz=22050)
    with AudioFile(str(path)) as source:
        audio = source.read(source.frames)[0]
    long_take = write_audio(tmp_path / "long.wav", np.tile(audio, int(120 / (len(audio) / 22050)) + 1), 22050)
    region = Region.from_file(long_take)

    seen = []
    clip = transcriber.transcribe(region, preset=load_preset("drums"), on_progress=lambda *p: seen.append(p))
    daemon = DaemonProcess(tmp_path / "home")
    try:
        with daemon.client(timeout_s=60.0) as client:
            wire = []
            done = client.transcribe(region, preset="drums", on_progress=wire.append)
    finally:
        daemon.stop()

    assert {stage for stage, _ in seen} == {"decode", "infer", "notes"}, "the documented stages only"
    infer = [fraction for stage, fraction in seen if stage == "infer"]
    assert infer == sorted(infer) and len(set(infer)) >= 3 and infer[-1] == 1.0, infer
    assert seen.index(("infer", 1.0)) < seen.index(("notes", 0.0)), "the model's work is done before the notes"
    bar = OverallProgress(1)
    assert max(bar.update(Progress(0, "job", stage, fraction)) for stage, fraction in seen) == 1.0
    assert len(clip.notes) > 100

    over_the_wire = [p.fraction for p in wire if p.stage == "infer"]
    assert over_the_wire == sorted(over_the_wire) and over_the_wire[-1] == 1.0, wire
    assert done.clip.notes == clip.notes


def test_results_do_not_depend_on_how_the_audio_is_chunked(transcriber, tmp_path):
    """Blocks of ~48 s with margins: a hit near a block boundary is found once, wherever the chunks end."""
    engine = transcriber.engine_for("drums")
    path = render(
        [hit(0.5 + 0.25 * i, (KICK, CLOSED_HAT, SNARE)[i % 3]) for i in range(20)],
        tmp_path / "h.wav",
        drums=True,
        sample_rate_hz=22050,
    )
    with AudioFile(str(path)) as source:
        audio = source.read(source.frames)[0]
    audio = np.tile(audio, 12)  # ~80 s: two blocks
    options = load_preset("drums").decode
    whole = engine.notes(iter([audio]), n_samples=len(audio), options=options, on_progress=None)
    chunked = engine.notes(
        (audio[i : i + 7777] for i in range(0, len(audio), 7777)),
        n_samples=len(audio),
        options=options,
        on_progress=None,
    )
    assert whole == chunked and len(whole) >= 12 * 20


def test_a_long_streamed_region_keeps_memory_bounded(transcriber):
    """Blocks of ~48 s: four times the audio adds far less memory than the audio itself, which arrives one chunk
    at a time and is never held."""
    engine = transcriber.engine_for("drums")
    rng = np.random.default_rng(0)
    chunk = (rng.standard_normal(int(2.0 * engine.sample_rate_hz)) * 0.05).astype(np.float32)
    chunk[::5000] = 0.9  # clicks: something to find

    options = load_preset("drums").decode
    short, long = (streamed_peak_bytes(engine, chunk, options, minutes=m) for m in (1, 4))
    more_audio_bytes = 3 * 60 * engine.sample_rate_hz * 4
    assert long - short < 0.5 * more_audio_bytes, f"{short / 1e6:.1f} MB for 1 minute, {long / 1e6:.1f} MB for 4"


def test_a_drum_model_that_is_not_the_shipped_one_is_refused_with_the_fix(tmp_path):
    from midibridge.model.engines.drums import weights

    bad = tmp_path / "model.npz"
    bad.write_bytes(weights.WEIGHTS_PATH.read_bytes()[:-1] + b"x")
    with pytest.raises(WeightsError, match="reinstall midibridge") as refused:
        weights.verify_weights(bad)
    assert refused.value.code == "model_corrupt"
    with pytest.raises(WeightsError) as missing:
        weights.find_weights(tmp_path / "absent.npz")
    assert missing.value.code == "model_missing"


def test_the_daw_line_protocol_marks_a_drum_region_and_its_notes_are_on_channel_10(tmp_path):
    audio = render(rock_beat(bars=1), tmp_path / "beat.flac", drums=True)
    requests = tmp_path / "regions.tsv"
    requests.write_text(f"1\t{audio}\t0.0\t3.0\t8.0\t100.0\t4.0\t0.0\n2\t{audio}\t0.0\t3.0\t8.0\t100.0\t4.0\t0.0\n")

    lines = host_transcribe(requests, preset="drums")

    notes = [line for line in lines if line[0] == "N"]
    assert ["DONE", "2", "0"] in lines
    assert [line[3:] for line in lines if line[0] == "NOTES"] == [["drums"], ["drums"]]
    assert len(notes) >= 2 * 11 and {line[6] for line in notes} == {str(DRUM_CHANNEL)}
    assert not any(line[0] == "B" for line in lines)


@settings(max_examples=60, deadline=None)
@example(total=BLOCK_FRAMES + 10, pieces=[1000]).via("a region just past one block")
@example(total=2 * BLOCK_FRAMES + 31, pieces=[5000, 3]).via("just past two")
@given(total=st.integers(1, 3 * BLOCK_FRAMES + 100), pieces=st.lists(st.integers(1, 5000), min_size=1, max_size=8))
def test_every_frame_of_a_region_is_in_exactly_one_block_core_however_it_streams_in(total, pieces):
    """The last frames of a region whose length is just past a block boundary were once never analysed: its last
    hits (up to 0.37 s) were lost."""
    frames = np.arange(total, dtype=np.float32)[:, None].repeat(N_MEL_BANDS, axis=1)
    cuts = np.cumsum(pieces)
    streamed = (part for part in np.split(frames, cuts[cuts < total]))

    covered = []
    for core, first, logmel in frame_blocks(streamed):
        assert np.array_equal(logmel[:, 0], np.arange(first, first + len(logmel))), "blocks hold the frames named"
        covered += range(core, min(core + BLOCK_FRAMES, first + len(logmel)))

    assert covered == list(range(total))


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 200), pieces=st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_each_frames_network_input_is_the_same_however_the_frames_stream_in(total, pieces):
    """The networks run on frames as they are decoded, not on whole blocks: a frame's context reaches into the
    pieces around it, exactly as if the whole region had come at once."""
    frames = np.random.default_rng(total).normal(-3.0, 1.0, (total, N_MEL_BANDS)).astype(np.float32)
    cuts = np.cumsum(pieces)

    streamed = list(context_stream(np.split(frames, cuts[cuts < total])))

    assert np.array_equal(np.concatenate([c.logmel for c in streamed]), frames)
    assert np.array_equal(np.concatenate([stack_contexts(c.rows) for c in streamed]), context_stack(frames))


@settings(max_examples=20, deadline=None)
@given(total=st.integers(2, 120), cut=st.integers(1, 119))
def test_a_frames_onset_probabilities_depend_on_its_context_alone(total, cut):
    """The convolutional network runs on whole stretches of frames (the engine cuts them at silences and pieces),
    yet each frame's output sees only its own context, as the MLPs' does: cut anywhere, the same probabilities."""
    model = load_model(find_weights())
    rows = padded_with_floor(np.random.default_rng(total).normal(-3.0, 1.0, (total, N_MEL_BANDS)).astype(np.float32))
    cut = 1 + (cut - 1) % (total - 1)  # frames 0..cut-1, then cut..total-1

    whole = activations(rows, model)
    parts = [activations(rows[: cut + CONTEXT_FRAMES - 1], model), activations(rows[cut:], model)]

    assert whole.shape == (total, len(OUTPUT_NOTES))
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_a_cancelled_drum_job_stops_decoding_and_leaves_no_helper_behind(transcriber):
    from midibridge.model.errors import Cancelled

    engine, read = transcriber.engine_for("drums"), []

    def chunks():
        for index in range(600):  # 10 minutes
            read.append(index)
            yield np.zeros(engine.sample_rate_hz, dtype=np.float32)

    def cancel(stage, fraction):
        raise Cancelled("job-1")

    with pytest.raises(Cancelled):
        engine.notes(
            chunks(), n_samples=600 * engine.sample_rate_hz, options=load_preset("drums").decode, on_progress=cancel
        )

    # The first block (~48 s of frames and its margin) is read before the first progress, and one piece ahead.
    assert len(read) < 60, "the helper stopped within a piece of the cancel"
    assert not [t for t in threading.enumerate() if t.name == "drums-read-ahead"]


def test_a_drum_track_with_a_long_silence_gives_the_same_hits_and_runs_no_networks_over_the_silence(
    transcriber, tmp_path, monkeypatch
):
    """A session's drum track is often mostly silent: those stretches cost no network time, and the hits either
    side are the ones each beat gives alone."""
    import midibridge.model.engines.drums.engine as drums_engine

    engine, options = transcriber.engine_for("drums"), load_preset("drums").decode
    path = render(rock_beat(bars=2), tmp_path / "beat.wav", drums=True, sample_rate_hz=22050)
    with AudioFile(str(path)) as source:
        beat = source.read(source.frames)[0]
    beat = np.pad(beat, (0, -len(beat) % HOP_SIZE))  # whole frames, so the second beat's frames fall as the first's
    silence = np.zeros(60 * 22050 // HOP_SIZE * HOP_SIZE, np.float32)
    track = np.concatenate([beat, silence, beat])
    alone = engine.notes(iter([beat]), n_samples=len(beat), options=options)

    networks_saw = []
    real_activations = drums_engine.activations
    monkeypatch.setattr(
        drums_engine,
        "activations",
        lambda rows, model: networks_saw.append(len(rows)) or real_activations(rows, model),
    )
    found = engine.notes(iter([track]), n_samples=len(track), options=options)

    later = (len(beat) + len(silence)) / 22050
    hits = [(n.pitch, round(n.start_s, 6), n.velocity) for n in found]
    assert hits == [(n.pitch, round(n.start_s + t, 6), n.velocity) for t in (0.0, later) for n in alone]
    assert sum(networks_saw) < 1.2 * 2 * len(beat) / HOP_SIZE, "the networks ran on the beats, not the minute between"
