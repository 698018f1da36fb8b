"""Stored model outputs decode to the stored Basic Pitch notes: a regression guard that needs neither the model nor basic_pitch."""

import json
from pathlib import Path

import numpy as np

from model.bends import add_pitch_bends
from model.notes import decode_notes

GOLDEN = Path(__file__).parent / "data" / "golden_activations.npz"


def test_stored_activations_still_decode_to_basic_pitchs_stored_notes():
    stored = np.load(GOLDEN)
    note, onset, contour = (stored[k].astype(np.float32) for k in ("note", "onset", "contour"))
    expected = json.loads(str(stored["notes"]))

    events = add_pitch_bends(contour, decode_notes(note, onset))

    mine = sorted((e.start_frame, e.end_frame, e.pitch, e.amplitude, list(e.bends)) for e in events)
    assert [m[:3] + (m[4],) for m in mine] == [tuple(x[:3]) + (x[4],) for x in expected]
    np.testing.assert_allclose([m[3] for m in mine], [x[3] for x in expected], atol=1e-5)
    assert any(any(m[4]) for m in mine), "the golden case exercises pitch bends"
