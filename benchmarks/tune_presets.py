"""The grid search that chose the Basic Pitch presets' [decode] values, on the tuned renders only.

    python -m benchmarks.tune_presets [--corpus DIR] [--out DIR] [--presets piano guitar ...]

For each preset, every combination of GRID replaces those keys of its
[decode]; each is scored (onset F1, ../shared/bench/evaluate.py) on the
TUNED renders of the preset's instruments (benchmarks.presets' split), and
the best few by mean are printed, the first being the choice. Held-out cases
are never transcribed here: `python -m benchmarks.presets` reports them.
The swift-f0 presets keep the engine's defaults, chosen on the same tuned
renders by the engine's own research. Skips cleanly without the corpus.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import Preset, load_preset
from midibridge.model.region import Region

from .corpus import corpus_manifest, corpus_parser
from .presets import PRESET_INSTRUMENTS, SETS, corpus_cases, onset_scores

GRID = {
    "onset_threshold": (0.4, 0.5, 0.6, 0.7),
    "frame_threshold": (0.3, 0.4),
    "min_note_ms": (58.0, 127.7),
    "melodia_trick": (False, True),
    "infer_onsets": (True, False),
}
BASIC_PITCH_PRESETS = ("piano", "guitar", "strings-pad", "noisy-recording")
SHOWN = 5


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/tune-presets"))
    parser.add_argument("--presets", nargs="+", default=BASIC_PITCH_PRESETS, choices=BASIC_PITCH_PRESETS)
    args = parser.parse_args(argv)
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    tuned = [case for case in corpus_cases(manifest, "render") if case["set"] == SETS[0]]
    transcriber = Transcriber()
    for name in args.presets:
        cases = [case for case in tuned if case["instrument"] in PRESET_INSTRUMENTS[name]]
        directory = args.out / name
        directory.mkdir(parents=True, exist_ok=True)
        own = directory / "manifest.json"
        own.write_text(json.dumps({"cases": cases}, indent=1))
        table = load_preset(name).to_dict()
        rows = []
        for values in itertools.product(*GRID.values()):
            table["decode"].update(zip(GRID, values))
            preset = Preset.from_dict(table)
            for case in cases:
                done = transcriber.convert(Region.from_file(case["audio"]), preset=preset)
                (directory / f"{case['id']}.mid").write_bytes(done.smf)
            scores = onset_scores(own, directory)
            rows.append((sum(scores[c["id"]]["on"] for c in cases) / len(cases), values))
        rows.sort(key=lambda row: -row[0])
        print(f"\n{name}: {len(rows)} settings on {len(cases)} tuned renders ({', '.join(c['id'] for c in cases)})")
        for mean, values in rows[:SHOWN]:
            print(f"  {mean:.3f}  " + ", ".join(f"{key} = {value}" for key, value in zip(GRID, values)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
