"""Regenerate the bundled example: the opening of Beethoven's "Ode to Joy" (public domain), piano, 120 BPM.

    python examples/make_example.py

Writes ode_to_joy_piano.mid (the score, which is the ground truth) and renders
it with fluidsynth and the FluidR3 GM soundfont to ode_to_joy_piano.flac
(mono, 44.1 kHz, 16-bit), the file `make run` converts.
"""

import tempfile
from pathlib import Path

import mido
from pedalboard.io import AudioFile

from midibridge.benchmarks.fluidsynth import render_midi_file

HERE = Path(__file__).resolve().parent
BPM = 120
# (MIDI pitch, beats): melody, then the bass below it; 0.5 s lead-in.
MELODY = [
    (64, 1),
    (64, 1),
    (65, 1),
    (67, 1),
    (67, 1),
    (65, 1),
    (64, 1),
    (62, 1),
    (60, 1),
    (60, 1),
    (62, 1),
    (64, 1),
    (64, 1.5),
    (62, 0.5),
    (62, 2),
    (64, 1),
    (64, 1),
    (65, 1),
    (67, 1),
    (67, 1),
    (65, 1),
    (64, 1),
    (62, 1),
    (60, 1),
    (60, 1),
    (62, 1),
    (64, 1),
    (62, 1.5),
    (60, 0.5),
    (60, 2),
]
BASS = [(48, 4), (43, 4), (45, 4), (43, 4), (48, 4), (43, 4), (45, 2), (43, 2), (48, 4)]
LEAD_IN_BEATS = 1


def score() -> mido.MidiFile:
    ticks = 480
    events = []
    for line, velocity in ((MELODY, 90), (BASS, 70)):
        beat = LEAD_IN_BEATS
        for pitch, length in line:
            events.append((round(beat * ticks), 1, mido.Message("note_on", note=pitch, velocity=velocity)))
            events.append((round((beat + length * 0.95) * ticks), 0, mido.Message("note_off", note=pitch)))
            beat += length
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack(
        [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM)), mido.Message("program_change", program=0)]
    )
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=2 * ticks))  # let the last notes ring out
    return mido.MidiFile(ticks_per_beat=ticks, tracks=[track])


def main() -> None:
    midi_path = HERE / "ode_to_joy_piano.mid"
    score().save(midi_path)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "render.wav"
        render_midi_file(midi_path, wav)
        with AudioFile(str(wav)) as source:
            audio = source.read(source.frames).mean(axis=0, keepdims=True)
    with AudioFile(str(HERE / "ode_to_joy_piano.flac"), "w", samplerate=44100, num_channels=1, bit_depth=16) as sink:
        sink.write(audio)


if __name__ == "__main__":
    main()
