"""Regenerate golden_outputs.json: what every built-in preset makes of the bundled example, to the byte.

    .venv/bin/python tests/data/make_golden_outputs.py

Each case is a trimmed, placed region of examples/ode_to_joy_piano.flac at a
host tempo, through one built-in preset (quantised once, to exercise the
grid): the clip's JSON and its MIDI file (base64). test_golden.py checks that
a refactoring leaves both exactly as they were.
"""

import base64
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from midibridge.model.clip import Tempo  # noqa: E402
from midibridge.model.midi import clip_to_bytes  # noqa: E402
from midibridge.model.pipeline import Transcriber  # noqa: E402
from midibridge.model.presets import Preset, available_presets, load_preset  # noqa: E402
from midibridge.model.region import Region  # noqa: E402

EXAMPLE = HERE.parent.parent / "examples" / "ode_to_joy_piano.flac"
REGION = {"start_s": 1.25, "duration_s": 9.5, "position_s": 13.0}
TEMPO = {"bpm": 96.0, "beats_per_bar": 3.0, "bar_offset_beats": None}


def cases() -> dict[str, dict]:
    """{case name: preset as a dict}: every built-in, and `piano` quantised to 1/16 triplets at 60 %."""
    found = {
        name: load_preset(name).to_dict() for name, (source, _) in available_presets().items() if source == "built-in"
    }
    quantised = load_preset("piano").to_dict()
    quantised["post"].update(quantize_grid="1/16t", quantize_strength_pct=60.0, quantize_ends=True)
    return {**found, "piano-quantised": quantised}


def outputs(transcriber: Transcriber, preset: dict) -> dict:
    clip = transcriber.transcribe(
        Region.from_file(EXAMPLE, **REGION), preset=Preset.from_dict(preset), tempo=Tempo.from_dict(TEMPO)
    )
    return {"clip": clip.to_dict(), "smf_base64": base64.b64encode(clip_to_bytes(clip)).decode()}


if __name__ == "__main__":
    transcriber = Transcriber()
    golden = {
        "region": REGION,
        "tempo": TEMPO,
        "cases": {name: {"preset": preset, **outputs(transcriber, preset)} for name, preset in cases().items()},
    }
    (HERE / "golden_outputs.json").write_text(json.dumps(golden, indent=1) + "\n")
