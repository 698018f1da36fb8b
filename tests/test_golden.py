"""Golden files: stored model outputs decode to Basic Pitch's stored notes (needing neither the model nor
basic_pitch), and every built-in preset makes the stored clip (note times within TIME_TOLERANCE_S) and exactly the
stored MIDI file of the bundled example
(tests/data/make_golden_outputs.py), so that restructuring changes nothing a user gets."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from midibridge.model.engines.basic_pitch.bends import add_pitch_bends
from midibridge.model.engines.basic_pitch.notes import decode_notes

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


GOLDEN_OUTPUTS = json.loads((Path(__file__).parent / "data" / "golden_outputs.json").read_text())


# onnxruntime's kernels sum in another order on another CPU: Transkun's regressed note times moved by up to 6e-7 s
# between two machines. A MIDI tick here is 1 ms, so the file must still be the same to the byte.
TIME_TOLERANCE_S = 1e-5


def _without_note_times(clip: dict) -> dict:
    return {**clip, "notes": [{k: v for k, v in n.items() if k not in ("start_s", "end_s")} for n in clip["notes"]]}


def _note_times(clip: dict) -> list[float]:
    return [t for n in clip["notes"] for t in (n["start_s"], n["end_s"])]


@pytest.mark.parametrize("case", sorted(GOLDEN_OUTPUTS["cases"]))
def test_every_built_in_preset_still_makes_the_same_clip_and_midi_file_to_the_byte(case, transcriber):
    from midibridge.model.clip import Tempo
    from midibridge.model.midi import clip_to_bytes
    from midibridge.model.presets import Preset
    from midibridge.model.region import Region

    stored = GOLDEN_OUTPUTS["cases"][case]
    example = Path(__file__).parent.parent / "examples" / "ode_to_joy_piano.flac"
    clip = transcriber.transcribe(
        Region.from_file(example, **GOLDEN_OUTPUTS["region"]),
        preset=Preset.from_dict(stored["preset"]),
        tempo=Tempo.from_dict(GOLDEN_OUTPUTS["tempo"]),
    )

    made = clip.to_dict()
    assert _without_note_times(made) == _without_note_times(stored["clip"])
    assert _note_times(made) == pytest.approx(_note_times(stored["clip"]), abs=TIME_TOLERANCE_S, rel=0)
    assert clip_to_bytes(clip) == base64.b64decode(stored["smf_base64"])


# The model's back runs once over stitched windows (model/engines/basic_pitch/constants.py), which moves activations
# within CONTEXT_FRAMES of a window seam. golden_outputs_windowed.json holds what every preset made when each window
# ran whole (golden_outputs.json before that change): the same notes and bends, each onset within 50 ms (the
# corpus's onset tolerance), each end within 100 ms and each velocity within 1.
WINDOWED = json.loads((Path(__file__).parent / "data" / "golden_outputs_windowed.json").read_text())
ONSET_TOLERANCE_S, END_TOLERANCE_S, VELOCITY_TOLERANCE = 0.05, 0.1, 1


@pytest.mark.parametrize("case", sorted(WINDOWED["cases"]))  # the presets there were when windows ran whole
def test_stitched_windows_keep_every_note_of_whole_windows_within_the_documented_tolerance(case):
    def by_pitch(notes):
        found: dict[int, list[dict]] = {}
        for note in sorted(notes, key=lambda n: n["start_s"]):
            found.setdefault(note["pitch"], []).append(note)
        return found

    stitched = by_pitch(GOLDEN_OUTPUTS["cases"][case]["clip"]["notes"])
    windowed = by_pitch(WINDOWED["cases"][case]["clip"]["notes"])

    assert {p: len(n) for p, n in stitched.items()} == {p: len(n) for p, n in windowed.items()}
    for pitch, notes in stitched.items():
        for mine, theirs in zip(notes, windowed[pitch]):
            assert mine["start_s"] == pytest.approx(theirs["start_s"], abs=ONSET_TOLERANCE_S)
            assert mine["end_s"] == pytest.approx(theirs["end_s"], abs=END_TOLERANCE_S)
            assert abs(mine["velocity"] - theirs["velocity"]) <= VELOCITY_TOLERANCE
            assert mine.get("bends") == theirs.get("bends")
