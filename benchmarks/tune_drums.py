"""The coordinate search that chose the drum engine's [decode] defaults, on the tuned MDB Drums stems only.

    python -m benchmarks.tune_drums [--corpus DIR] [--out DIR] [--rounds 1]

Starting from the `drums` preset, each key of GRID in turn takes each of its
values, the rest held; a value is kept when it raises the objective: the
kick/snare/hi-hat F1 over the TUNED stems (benchmarks.drums' split) plus half
the mean of toms' and cymbals' F1 pooled over them (hits counted together, so
false toms or cymbals anywhere cost). Held-out stems and mixes are never
transcribed here: `python -m benchmarks.drums` reports them.
cymbal_over_hihat_ratio stops at 8 so a lone crash or ride can still be a
cymbal. (With the MLPs alone, hihat_with_snare_threshold was held at 0.65, not
the 0.8 that scored 0.004 higher, since it lost hi-hats played with the snare;
with the convolutional network the search's 0.9 keeps every hi-hat of the
rendered test beat, and is the default.) Skips cleanly without the corpus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import Preset, load_preset

from .corpus import SHARED, corpus_manifest, corpus_parser
from .drums import TUNED, evaluate, predict

GRID = {
    "kick_nmf_threshold": (0.03, 0.05, 0.1, 0.15, 0.2, 0.3),
    "kick_network_gate": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
    "snare_threshold": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "hihat_threshold": (0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "snare_with_kick_threshold": (0.6, 0.7, 0.8, 0.9, 0.95, 0.99),
    "hihat_with_snare_threshold": (0.3, 0.5, 0.7, 0.8, 0.9, 0.95),
    "cymbals_threshold": (0.3, 0.5, 0.7, 0.9),
    "hihat_with_cymbal_threshold": (0.3, 0.5, 0.7, 0.9),
    "toms_threshold": (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995),
    "cymbal_over_hihat_ratio": (1.0, 2.0, 4.0, 8.0),
}


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/tune-drums"))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    args.corpus = args.corpus or SHARED / "corpus-drums"
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    cases = [case for case in json.loads(manifest.read_text())["cases"] if case["id"] in TUNED]
    transcriber = Transcriber()
    best = load_preset("drums").to_dict()
    best_score = objective(transcriber, best, manifest, cases, args.out)
    print(f"start {best_score:.4f}", flush=True)
    for _ in range(args.rounds):
        for key, values in GRID.items():
            for value in values:
                candidate = {**best, "decode": {**best["decode"], key: value}}
                score = objective(transcriber, candidate, manifest, cases, args.out)
                print(f"  {key} = {value}: {score:.4f}", flush=True)
                if score > best_score + 1e-6:
                    best, best_score = candidate, score
            print(f"{key} -> {best['decode'][key]} ({best_score:.4f})", flush=True)
    print(json.dumps({key: best["decode"][key] for key in GRID}))
    return 0


def objective(transcriber: Transcriber, table: dict, manifest: Path, cases: list[dict], out: Path) -> float:
    predict(transcriber, Preset.from_dict(table), manifest, cases, out)
    rows = evaluate(manifest, out)
    pooled = []
    for drum in ("toms", "cymbals"):
        cells = [row["classes"][drum] for row in rows if row["classes"][drum]]
        found = sum(cell["recall"] * cell["n_ref"] for cell in cells)
        compared = sum(cell["n_ref"] + cell["n_est"] for cell in cells)
        pooled.append(2 * found / compared if compared else 1.0)
    return sum(row["headline_f1"] for row in rows) / len(rows) + 0.5 * sum(pooled) / len(pooled)


if __name__ == "__main__":
    sys.exit(main())
