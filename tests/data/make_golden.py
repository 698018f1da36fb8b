"""Regenerate golden_activations.npz: the model's outputs for 4 s of synthesised audio and Basic Pitch's notes for them.

    .venv/bin/python tests/data/make_golden.py

Activations are stored as float16 to keep the file small; the notes are
Basic Pitch's (basic_pitch.note_creation, default options) for exactly the
stored values, so test_golden.py needs neither the model nor basic_pitch.
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

import basic_pitch.note_creation as note_creation  # noqa: E402
from conftest import Note, synthesize  # noqa: E402

from midibridge.model.engines.basic_pitch.inference import Model  # noqa: E402
from midibridge.model.engines.basic_pitch.options import BasicPitchOptions  # noqa: E402

NOTES = [
    Note(48, 0.3, 3.8, 90),
    Note(60, 0.3, 1.0, 100),
    Note(64, 0.3, 1.0, 90),
    Note(67, 0.3, 1.0, 90),
    Note(69, 1.1, 1.9, 110),
    Note(72, 2.0, 2.6, 100),
    Note(71, 2.6, 3.9, 100),
]


def main() -> None:
    audio = synthesize(NOTES, sample_rate_hz=22050, length_s=4.0, glide_semitones=-1.0)
    with Model().activations(iter([audio]), expected_samples=audio.shape[0]) as found:
        stored = {
            name: part[:].astype(np.float16)
            for name, part in (("note", found.note), ("onset", found.onset), ("contour", found.contour))
        }
    note, onset, contour = (stored[k].astype(np.float32) for k in ("note", "onset", "contour"))
    options = BasicPitchOptions()
    events = note_creation.output_to_notes_polyphonic(
        note.copy(),
        onset.copy(),
        onset_thresh=options.onset_threshold,
        frame_thresh=options.frame_threshold,
        min_note_len=options.min_note_frames,
        infer_onsets=True,
        max_freq=None,
        min_freq=None,
        melodia_trick=True,
    )
    events = note_creation.get_pitch_bends(contour, events)
    notes = sorted((int(s), int(e), int(p), float(a), [int(b) for b in bends]) for s, e, p, a, bends in events)
    np.savez_compressed(HERE / "golden_activations.npz", notes=json.dumps(notes), **stored)
    print(f"{note.shape[0]} frames, {len(notes)} notes")


if __name__ == "__main__":
    main()
