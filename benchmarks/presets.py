"""Score every built-in preset on ../shared's corpus: the figures the presets were chosen by.

    python -m benchmarks.presets [--corpus DIR] [--out DIR]

Each preset transcribes every case; ../shared/bench/evaluate.py scores them
(onset F1, 50 ms). Printed: the F1 of every preset on every case, then the
two targets: on each degraded case its matching preset against `default`
(goal: +0.05 or more), and each preset on its own clean instrument against
`default` (goal: no loss over 0.02). Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import available_presets, load_preset
from midibridge.model.region import Region

from .corpus import SHARED, corpus_manifest, corpus_parser

# The instruments (manifest names) each preset is for; a degraded case's matching preset is its instrument's.
PRESET_INSTRUMENTS = {
    "piano": ("piano",),
    "guitar": ("nylon_guitar", "clean_electric_guitar"),
    "bass": ("bass",),
    "vocal": ("choir_aahs", "flute", "trumpet"),
    "strings-pad": ("strings",),
    "noisy-recording": ("mixed:choir_aahs+piano",),
}


def main(argv=None) -> int:
    args = corpus_parser(__doc__, out=Path("bench-out/presets")).parse_args(argv)
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    cases = json.loads(manifest.read_text())["cases"]
    names = sorted(n for n, (source, _) in available_presets().items() if source == "built-in")
    transcriber = Transcriber()
    scores = {}
    for name in names:
        preset = load_preset(name)
        directory = args.out / name
        directory.mkdir(parents=True, exist_ok=True)
        for case in cases:
            done = transcriber.convert(Region.from_file(manifest.parent / case["audio"]), preset=preset)
            (directory / f"{case['id']}.mid").write_bytes(done.smf)
        scores[name] = _onset_f1(manifest, directory)
    report = {"scores": scores, "targets": _targets(cases, scores)}
    (args.out / "presets.json").write_text(json.dumps(report, indent=1))
    _print(cases, names, report)
    return 0


def _onset_f1(manifest: Path, predictions: Path) -> dict[str, float]:
    report = predictions / "eval.json"
    subprocess.run([sys.executable, str(SHARED / "bench" / "evaluate.py"), str(manifest), str(predictions),
                    "--json", str(report), "--quiet"], check=True, capture_output=True)
    return {case["id"]: case["notenum_on_f"] for case in json.loads(report.read_text())["cases"]}


def _targets(cases, scores) -> dict:
    degraded = []
    for case in cases:
        if case["degradation"] == "none":
            continue
        preset = next(p for p, instruments in PRESET_INSTRUMENTS.items() if case["instrument"] in instruments)
        gain = scores[preset][case["id"]] - scores["default"][case["id"]]
        degraded.append({"case": case["id"], "preset": preset, "default": scores["default"][case["id"]],
                         "matching": scores[preset][case["id"]], "gain": gain, "met": gain >= 0.05})
    clean = []
    for preset, instruments in PRESET_INSTRUMENTS.items():
        ids = [c["id"] for c in cases if c["degradation"] == "none" and c["instrument"] in instruments]
        ours = sum(scores[preset][i] for i in ids) / len(ids)
        base = sum(scores["default"][i] for i in ids) / len(ids)
        clean.append({"preset": preset, "instruments": instruments, "cases": len(ids), "default": base,
                      "preset_f1": ours, "change": ours - base, "met": ours - base >= -0.02})
    return {"degraded": degraded, "clean": clean}


def _print(cases, names, report) -> None:
    scores = report["scores"]
    print(f"\nonset F1 (50 ms) of every built-in preset on every case\n{'case':46}" +
          "".join(f"{n[:10]:>11}" for n in names))
    for case in cases:
        print(f"{case['id'][:46]:46}" + "".join(f"{scores[n][case['id']]:11.3f}" for n in names))
    print("\ndegraded cases: matching preset vs default (goal +0.05)")
    for row in report["targets"]["degraded"]:
        print(f"  {row['case'][:46]:46} {row['preset']:16} {row['default']:.3f} -> {row['matching']:.3f} "
              f"({row['gain']:+.3f}) {'met' if row['met'] else 'MISSED'}")
    print("\nclean instruments: preset vs default, mean over cases (goal: lose no more than 0.02)")
    for row in report["targets"]["clean"]:
        print(f"  {row['preset']:16} {', '.join(row['instruments'])[:40]:40} {row['cases']} cases  "
              f"{row['default']:.3f} -> {row['preset_f1']:.3f} ({row['change']:+.3f}) {'met' if row['met'] else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
