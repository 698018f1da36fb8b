"""Score the drum engine (preset `drums`) on ../shared's MDB Drums corpus: per class onset F1, stems vs mixes, tuned
vs held-out, and its speed.

    python -m benchmarks.drums [--corpus DIR] [--out DIR]

Every case goes through the whole pipeline in-process (decode, resample, the
engine, the MIDI file), timed; ../shared/bench/evaluate_drums.py scores the
files (onset F1 at 50 ms per class; the headline is the mean over kick, snare
and hi-hat). The split was fixed before any measurement: the thresholds were
tuned on TUNED stems only; the other stems and both mixes (songs of held-out
stems) are held out. Skips cleanly when the corpus is absent. MDB Drums is
CC BY-NC-SA: it is read from ../shared for measuring and never copied here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import Preset, load_preset
from midibridge.model.region import Region

from .corpus import SHARED, corpus_manifest, corpus_parser

TUNED = ("mdb_80sRock_drums", "mdb_Britpop_drums", "mdb_Grunge_drums")
CLASSES = ("kick", "snare", "hihat", "toms", "cymbals")


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/drums"))
    args = parser.parse_args(argv)
    args.corpus = args.corpus or SHARED / "corpus-drums"
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    cases = json.loads(manifest.read_text())["cases"]
    transcriber, preset = Transcriber(), load_preset("drums")
    transcriber.convert(Region.from_file(manifest.parent / cases[0]["audio"]), preset=preset)  # loads the model
    audio_s, busy_s = predict(transcriber, preset, manifest, cases, args.out)
    clips = evaluate(manifest, args.out)
    sets = {
        "tuned stems": [c for c in clips if c["id"] in TUNED],
        "held-out stems": [c for c in clips if c["kind"] == "drums" and c["id"] not in TUNED],
        "all stems": [c for c in clips if c["kind"] == "drums"],
        "mixes (held out)": [c for c in clips if c["kind"] == "drums_in_mix"],
    }
    print(f"{'set':18s} {'clips':>5s} {'k/s/h':>6s} " + " ".join(f"{c:>7s}" for c in CLASSES))
    for name, rows in sets.items():
        print(
            f"{name:18s} {len(rows):5d} {_mean([r['headline_f1'] for r in rows]):6.3f} "
            + " ".join(_cell(_mean([r["classes"][c]["f1"] for r in rows if r["classes"][c]])) for c in CLASSES)
        )
    print("\nper clip (k/s/h): " + ", ".join(f"{c['id']} {c['headline_f1']:.3f}" for c in clips))
    print(
        f"\nspeed (whole pipeline, in-process, load average {os.getloadavg()[0]:.1f}): {audio_s:.1f} s of audio "
        f"in {busy_s:.2f} s = {audio_s / busy_s:.0f}x real time"
    )
    return 0


def predict(
    transcriber: Transcriber, preset: Preset, manifest: Path, cases: list[dict], out: Path
) -> tuple[float, float]:
    """Write out/<case id>.mid for each case; returns (seconds of audio, seconds it took, decode to MIDI file)."""
    out.mkdir(parents=True, exist_ok=True)
    audio_s = busy_s = 0.0
    for case in cases:
        started = time.perf_counter()
        done = transcriber.convert(Region.from_file(manifest.parent / case["audio"]), preset=preset)
        (out / f"{case['id']}.mid").write_bytes(done.smf)
        busy_s += time.perf_counter() - started
        audio_s += done.clip.duration_s
    return audio_s, busy_s


def evaluate(manifest: Path, out: Path) -> list[dict]:
    """evaluate_drums.py's rows for the cases predicted in `out` (it leaves out, and exits 1 for, the others)."""
    script = manifest.resolve().parent.parent / "bench" / "evaluate_drums.py"  # beside the corpus, as in ../shared
    scores = out / "scores.json"
    scores.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, str(script), str(manifest), str(out), "--json", str(scores)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not scores.is_file():
        raise SystemExit(f"{script} wrote no scores for {out}: run it by hand to see why")
    return json.loads(scores.read_text())["clips"]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cell(value: float | None) -> str:
    return f"{value:7.3f}" if value is not None else f"{'-':>7s}"


if __name__ == "__main__":
    sys.exit(main())
