"""A musician plays a line into a live stream, block by block, and hears the notes `convert` would write for the same
file; a preset that needs the whole region first is refused with the reason and the presets that can run live."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import FLUTE, matches, melody, render
from pedalboard.io import AudioFile

from midibridge.model.clip import Bend, LiveEvent, Note
from midibridge.model.errors import OptionError
from midibridge.model.live import LiveTranscriber, check_live
from midibridge.model.presets import Preset, load_preset, resolve_preset
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, EventKind

LINE = melody([60, 62, 64, 65, 67, 69, 67, 64, 72, 71, 69, 60], start_s=0.5, step_s=0.45, length_s=0.35)
LEGATO = melody([60, 62, 64, 65, 67, 69, 67, 64, 72, 71, 69, 60], start_s=0.5, step_s=0.7, length_s=0.7)
VOICE_OOHS = 53
CLARINET = 71
CHROMATIC = melody([64, 65, 64, 63, 64, 65, 66, 67, 66, 65, 64, 63], start_s=0.5, step_s=0.4, length_s=0.4)
PERIOD = 256  # JACK's period at 48 kHz


def streamed(transcriber, path, preset: str) -> list[Note]:
    """The notes a live stream of the file at `path`, fed in JACK periods, sends."""
    with AudioFile(str(path)) as source:
        audio = source.read(source.frames)[0]
    stream = LiveTranscriber(transcriber.engine_for("swift-f0"), load_preset(preset), sample_rate_hz=48000)
    events = [event for i in range(0, len(audio), PERIOD) for event in stream.feed(audio[i : i + PERIOD])]
    return live_notes(events + stream.close())


def live_notes(events: list[LiveEvent]) -> list[Note]:
    """The notes a synth hears from `events`: each note-on to its note-off, with the bends in between."""
    notes, on, bends = [], None, []
    for event in events:
        if event.kind == EventKind.NOTE_ON:
            assert on is None, "one note at a time"
            on, bends = event, []
        elif event.kind == EventKind.BEND:
            bends.append(Bend(event.time_s, event.semitones))
        else:
            assert on is not None and event.pitch == on.pitch
            notes.append(Note(on.pitch, on.time_s, event.time_s, on.velocity, tuple(bends)))
            on = None
    assert on is None, "every note ends"
    return notes


def bend_at(note: Note, time_s: float) -> float:
    before = [b.semitones for b in note.bends if b.time_s <= time_s]
    return before[-1] if before else 0.0


@pytest.fixture(scope="module")
def flute_line(audio_dir):
    return render(LINE, audio_dir / "live-flute.wav", program=FLUTE, sample_rate_hz=48000)


@pytest.mark.parametrize("preset", ["lead", "vocal"])
def test_a_line_played_live_gives_the_notes_convert_gives_for_the_same_file(transcriber, flute_line, preset):
    offline = transcriber.transcribe(Region(path=str(flute_line)), preset=load_preset(preset)).notes
    notes = streamed(transcriber, flute_line, preset)

    pairs = matches(notes, list(offline))
    assert 2 * len(pairs) / (len(notes) + len(offline)) >= 0.90
    stream = LiveTranscriber(transcriber.engine_for("swift-f0"), load_preset(preset), sample_rate_hz=48000)
    assert stream.latency.lookahead_s == pytest.approx(0.048)
    # Where both bend, they agree within 10 cents (bends of the same frames, decided on less audio live).
    differences = [
        abs(bend_at(live, b.time_s) - bend_at(found, b.time_s))
        for found, live in pairs
        for b in live.bends
        if found.bends and found.start_s <= b.time_s < min(found.end_s, live.end_s)
    ]
    assert differences and np.percentile(differences, 95) <= 0.10


def test_a_legato_sung_line_live_starts_each_note_where_convert_does(transcriber, audio_dir):
    # Each note runs into the next: convert moves each boundary back to where the new note's partials rose, long before
    # its pitch holds steadily at the newest audio; live starts the note there too (it started them 60-200 ms later,
    # agreement 0.88; the choir-aahs line, 0.32, now 0.80).
    sung = render(LEGATO, audio_dir / "live-legato.wav", program=VOICE_OOHS, sample_rate_hz=48000)
    offline = list(transcriber.transcribe(Region(path=str(sung)), preset=load_preset("vocal")).notes)
    notes = streamed(transcriber, sung, "vocal")

    assert 2 * len(matches(notes, offline)) / (len(notes) + len(offline)) >= 0.95


@pytest.mark.parametrize(
    ("preset", "reason"),
    [
        ("default", "Basic Pitch reads the audio in 2-second windows"),
        ("drums", "116 ms of audio past each frame"),
        ("piano-hq", "Transkun scores every note against 16-second windows"),
    ],
)
def test_a_preset_whose_engine_cannot_stream_is_refused_with_the_reason_and_the_presets_that_can(preset, reason):
    with pytest.raises(OptionError) as refused:
        check_live(load_preset(preset))
    assert refused.value.code == Code.CANNOT_STREAM
    assert reason in str(refused.value)
    assert "Presets that can: bass, lead, strings-solo, vocal" in str(refused.value)


def test_a_normalize_step_is_refused_live_and_a_filter_runs_block_by_block(transcriber):
    swift_f0 = {"schema": 2, "engine": {"name": "swift-f0"}}
    measured = resolve_preset({**swift_f0, "name": "measured", "chain": [{"step": "normalize"}]})
    with pytest.raises(OptionError, match="normalize step measures the whole region") as refused:
        check_live(measured)
    assert refused.value.code == Code.CANNOT_STREAM
    filtered = resolve_preset({**swift_f0, "name": "filtered", "chain": [{"step": "highpass", "cutoff_hz": 60.0}]})
    stream = LiveTranscriber(transcriber.engine_for("swift-f0"), filtered, sample_rate_hz=44100)
    seconds = np.arange(44100) / 44100
    # A 10 ms attack, as an instrument has: a sine switched on at full level clicks, and the click has a pitch.
    tone = (0.3 * np.minimum(seconds / 0.01, 1.0) * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)
    events = [event for i in range(0, len(tone), 512) for event in stream.feed(tone[i : i + 512])] + stream.close()
    assert [(e.kind, e.pitch) for e in events if e.kind != EventKind.BEND] == [
        (EventKind.NOTE_ON, 69),
        (EventKind.NOTE_OFF, 69),
    ]


def note_on_delays(transcriber, path, preset: Preset, line: list[Note] = LINE) -> list[float]:
    """How long after each of `line`'s notes starts its note-on is sent, in stream time: once the block that decided
    it is in (not a timing)."""
    with AudioFile(str(path)) as source:
        audio = source.read(source.frames)[0]
    stream = LiveTranscriber(transcriber.engine_for("swift-f0"), preset, sample_rate_hz=48000)
    sent = []  # (stream time, pitch) of each note-on
    for i in range(0, len(audio), PERIOD):
        events = stream.feed(audio[i : i + PERIOD])
        sent += [((i + PERIOD) / 48000, e.pitch) for e in events if e.kind == EventKind.NOTE_ON]
    return [next(t for t, pitch in sent if pitch == note.pitch and t >= note.start_s) - note.start_s for note in line]


def test_a_new_note_is_sent_soon_after_it_starts_from_the_steady_pitch_at_the_newest_audio(transcriber, flute_line):
    lead = load_preset("lead")
    from_frames = replace(lead, decode=replace(lead.decode, live_pitch_from_audio=False))
    # Decided on the decode's pitch median and a second decode, the median was 132 ms; from four frames of steady
    # pitch at the newest audio, 108 ms; from the newest frame where the audio repeats at its pitch, 95 ms.
    assert np.median(note_on_delays(transcriber, flute_line, from_frames)) <= 0.105
    # `lead` also starts a pitch the raw audio repeats at before SwiftF0's newest frame shows it: 61 ms.
    assert np.median(note_on_delays(transcriber, flute_line, lead)) <= 0.07


def test_a_legato_semitone_step_is_sent_once_the_audio_holds_the_new_key(transcriber, audio_dir):
    # A semitone from the sounding note could be its vibrato or drift, so it waited for the decode's pitch window
    # (median 137 ms on this clarinet line); where every one of the newest raw-audio windows repeats within 0.2
    # semitone of the new key, `lead` sends it then: 49 ms, the same notes as convert.
    clarinet = render(CHROMATIC, audio_dir / "live-chromatic.wav", program=CLARINET, sample_rate_hz=48000)
    lead = load_preset("lead")
    offline = list(transcriber.transcribe(Region(path=str(clarinet)), preset=lead).notes)
    notes = streamed(transcriber, clarinet, "lead")

    assert 2 * len(matches(notes, offline)) / (len(notes) + len(offline)) >= 0.95
    assert np.median(note_on_delays(transcriber, clarinet, lead, CHROMATIC)) <= 0.07
