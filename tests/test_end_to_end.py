"""A musician's audio in, the notes they played out: rendered by fluidsynth from known notes, transcribed, compared."""

from conftest import NYLON_GUITAR, PIANO_LINE, matches, melody, render

from midibridge.model.region import Region


def test_a_piano_line_comes_back_note_for_note(transcriber, piano_line):
    clip = transcriber.transcribe(Region.from_file(piano_line))

    found = matches(list(clip.notes), PIANO_LINE)
    assert len(found) == len(PIANO_LINE), "every played note is found, at its pitch, within 50 ms"
    assert len(clip.notes) <= len(PIANO_LINE) + 3, "and little else"
    assert all(1 <= n.velocity <= 127 for n in clip.notes)


def test_guitar_chords_come_back_with_every_voice(transcriber, audio_dir):
    chords = [(52, 56, 59), (57, 61, 64), (50, 54, 57, 62), (52, 56, 59, 64)]  # E, A, D, E major
    truth = [
        note
        for i, chord in enumerate(chords)
        for note in melody(list(chord), start_s=0.5 + i * 1.0, step_s=0.0, length_s=0.9)
    ]
    path = render(truth, audio_dir / "guitar_chords.wav", program=NYLON_GUITAR)

    clip = transcriber.transcribe(Region.from_file(path))

    assert len(matches(list(clip.notes), truth)) >= len(truth) - 1
