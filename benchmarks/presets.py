"""Score every built-in preset on ../shared's rendered and real corpora: the figures the presets were chosen by,
and the figures on audio they were not chosen on.

    python -m benchmarks.presets [--corpus DIR] [--real DIR] [--out DIR] [--before REV] [--speed-rounds 3]
                                 [--speed-only]

How the values were chosen (fixed before tuning, and kept here so every run
reports the same way): a case is TUNED when it is a clean render other than
the two melodies kept back for the mono engine (HELD_OUT_RENDERS); values were
chosen by looking at tuned cases only. Everything else is held out: the
degraded renders, those two melodies, and every real recording (--real, by
default ../shared/corpus-real). Held-out degraded renders play the notes of a
tuned score, so only the held-out melodies and the real clips are new music.

Each preset transcribes every case; ../shared/bench/evaluate.py scores them
(onset F1 at 50 ms, by note number; "bend" = bend-aware, the pitch a synth
plays). `--before REV` also scores the built-in presets as they were at git
revision REV, for a before/after table. Printed: every preset on every case;
per preset, its instruments on tuned renders, held-out renders and real
clips against `default` (Basic Pitch exactly) and the before; the issue's
targets; the mono engine's speed (whole pipeline, in-process, best of
--speed-rounds) with Basic Pitch's in the same run and the load average.
Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import Preset, available_presets, load_preset
from midibridge.model.region import Region

from .corpus import SHARED, corpus_manifest, corpus_parser

HELD_OUT_RENDERS = ("m21_bwv57.8_soprano_choir", "syn_melody_trumpet")
# The instruments (manifest names) each preset is for.
PRESET_INSTRUMENTS = {
    "piano": ("piano",),
    "guitar": ("nylon_guitar", "clean_electric_guitar", "acoustic_guitar"),
    "bass": ("bass",),
    "vocal": ("choir_aahs",),
    "lead": ("flute", "trumpet"),
    "strings-pad": ("strings",),
    "noisy-recording": ("mixed:choir_aahs+piano",),
}
MONO_INSTRUMENTS = ("flute", "trumpet", "bass", "choir_aahs")
SETS = ("tuned renders", "held-out renders", "real (held out)")


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/presets"))
    parser.add_argument("--real", type=Path, default=SHARED / "corpus-real", help="real recordings' corpus dir")
    parser.add_argument("--before", default=None, help="git revision whose built-in presets are the 'before'")
    parser.add_argument("--speed-rounds", type=int, default=3, help="0 skips the speed measurement")
    parser.add_argument("--speed-only", action="store_true", help="measure speed, score nothing (for a quiet moment)")
    args = parser.parse_args(argv)
    found = rendered_and_real_cases(args)
    if found is None:
        return 0
    cases, combined = found
    presets = {
        name: load_preset(name) for name, (source, _) in sorted(available_presets().items()) if source == "built-in"
    }
    before = _presets_at(args.before, args.out / "before-presets") if args.before else {}
    transcriber = Transcriber()
    if args.speed_only:
        _print_speed(_speed(transcriber, cases, presets, max(args.speed_rounds, 1)))
        return 0
    scores = {name: _score(transcriber, preset, cases, combined, args.out / name) for name, preset in presets.items()}
    before_scores = {
        name: _score(transcriber, preset, cases, combined, args.out / "before" / name)
        for name, preset in before.items()
    }
    reference = SHARED / "reference" / "basic-pitch-0.4.0"
    basic_pitch = onset_scores(combined, reference) if reference.is_dir() else scores["default"]
    report = {
        "split": {c["id"]: c["set"] for c in cases},
        "scores": scores,
        "before": before_scores,
        "basic_pitch": basic_pitch,
        "speed": _speed(transcriber, cases, presets, args.speed_rounds) if args.speed_rounds else None,
    }
    (args.out / "presets.json").write_text(json.dumps(report, indent=1))
    _print(cases, report)
    return 0


def rendered_and_real_cases(args) -> tuple[list[dict], Path] | None:
    """The rendered corpus's cases and --real's, each with its set, and one manifest of them all written in --out for
    evaluate.py; None (said) when there is no corpus."""
    manifest = corpus_manifest(args)
    if manifest is None:
        return None
    cases = corpus_cases(manifest, "render") + corpus_cases(args.real / "manifest.json", "real")
    args.out.mkdir(parents=True, exist_ok=True)
    combined = args.out / "manifest.json"
    combined.write_text(json.dumps({"cases": cases}, indent=1))
    return cases, combined


def corpus_cases(manifest: Path, kind: str) -> list[dict]:
    """The manifest's cases with absolute paths and their set: tuned renders, held-out renders, real."""
    if not manifest.is_file():
        print(f"note: no {kind} corpus at {manifest}; its rows are left out")
        return []
    cases = []
    for case in json.loads(manifest.read_text())["cases"]:
        held_out = case["degradation"] != "none" or case["id"] in HELD_OUT_RENDERS
        cases.append(
            {
                **case,
                "audio": str(manifest.parent / case["audio"]),
                "midi": str(manifest.parent / case["midi"]),
                "set": SETS[2] if kind == "real" else SETS[1] if held_out else SETS[0],
            }
        )
    return cases


def _presets_at(revision: str, directory: Path) -> dict[str, Preset]:
    """The built-in presets as they were at git `revision`."""
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "presets/"], capture_output=True, text=True, check=True
    ).stdout.split()
    directory.mkdir(parents=True, exist_ok=True)
    found = {}
    for path in (p for p in listing if p.endswith(".toml")):
        target = directory / Path(path).name
        target.write_text(
            subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=True).stdout
        )
        found[target.stem] = load_preset(str(target))
    return found


def _score(transcriber: Transcriber, preset: Preset, cases, manifest: Path, directory: Path) -> dict:
    write_predictions(transcriber, preset, cases, directory)
    return onset_scores(manifest, directory)


def write_predictions(transcriber: Transcriber, preset: Preset, cases, directory: Path) -> None:
    """<case id>.mid in `directory` for every case, as `preset` transcribes it."""
    directory.mkdir(parents=True, exist_ok=True)
    for case in cases:
        done = transcriber.convert(Region.from_file(case["audio"]), preset=preset)
        (directory / f"{case['id']}.mid").write_bytes(done.smf)


def onset_scores(manifest: Path, predictions: Path) -> dict[str, dict[str, float]]:
    """{case id: {"on": onset F1, "bend": bend-aware onset F1}}; a case missing from `predictions` is absent."""
    return {
        case["id"]: {"on": case["notenum_on_f"], "bend": case["bend_on_f"]}
        for case in evaluated(manifest, predictions)
        if (predictions / f"{case['id']}.mid").exists()
    }


def evaluated(manifest: Path, predictions: Path) -> list[dict]:
    """../shared/bench/evaluate.py's figures for every case of `manifest`, from the .mid files in `predictions`."""
    report = predictions / "eval.json"
    subprocess.run(
        [sys.executable, str(SHARED / "bench" / "evaluate.py"), str(manifest), str(predictions)]
        + ["--json", str(report), "--quiet"],
        check=True,
        capture_output=True,
    )
    return json.loads(report.read_text())["cases"]


def _mean(scores: dict, ids, key: str = "on") -> float | None:
    values = [scores[i][key] for i in ids if i in scores]
    return sum(values) / len(values) if values and len(values) == len(ids) else None


def _speed(transcriber: Transcriber, cases, presets, rounds: int) -> dict:
    """Real-time factors of the whole pipeline, in-process, on the rendered single-line cases: `vocal` (swift-f0) and
    `default` (Basic Pitch), interleaved case by case, best of `rounds`; and the load average around it."""
    mono = [c for c in cases if c["set"] != SETS[2] and c["instrument"] in MONO_INSTRUMENTS]
    audio_s = sum(c["duration_s"] for c in mono)
    best = {"vocal": float("inf"), "default": float("inf")}
    load_before = os.getloadavg()
    for _ in range(rounds):
        spent = dict.fromkeys(best, 0.0)
        for case in mono:
            region = Region.from_file(case["audio"])
            for name in best:
                started = time.perf_counter()
                transcriber.transcribe(region, preset=presets[name])
                spent[name] += time.perf_counter() - started
        best = {name: min(best[name], spent[name]) for name in best}
    return {
        "audio_s": audio_s,
        "cases": len(mono),
        "rounds": rounds,
        "real_time": {name: audio_s / seconds for name, seconds in best.items()},
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def _print(cases, report) -> None:
    scores, before, basic_pitch = report["scores"], report["before"], report["basic_pitch"]
    names = list(scores)
    print(
        f"\nonset F1 (50 ms) of every built-in preset on every case (* = tuned on)\n{'case':46}"
        + "".join(f"{n[:10]:>11}" for n in names)
    )
    for case in cases:
        mark = "*" if case["set"] == SETS[0] else " "
        print(f"{mark}{case['id'][:45]:45}" + "".join(f"{scores[n][case['id']]['on']:11.3f}" for n in names))

    print("\neach preset on its instruments: default (Basic Pitch exactly) / before / after, mean onset F1")
    for preset, instruments in PRESET_INSTRUMENTS.items():
        for chosen in SETS:
            ids = [c["id"] for c in cases if c["set"] == chosen and c["instrument"] in instruments]
            if not ids or preset not in scores:
                continue
            was = _mean(before.get(preset, {}), ids)
            print(
                f"  {preset:16} {chosen:17} {len(ids):2} cases  default {_mean(scores['default'], ids):.3f}  "
                f"before {'  -  ' if was is None else f'{was:.3f}'}  after {_mean(scores[preset], ids):.3f}"
            )

    print("\ntargets")
    for label, preset, instruments, margin in (
        ("sung voice", "vocal", ("choir_aahs",), 0.15),
        ("solo wind", "lead", ("flute", "trumpet"), 0.0),
    ):
        ids = [c["id"] for c in cases if c["instrument"] in instruments and c["id"] in basic_pitch]
        ours, theirs = _mean(scores[preset], ids), _mean(basic_pitch, ids)
        print(
            f"  {label} with {preset}: {ours:.3f} vs Basic Pitch {theirs:.3f} + {margin:.2f} "
            f"({ours - theirs - margin:+.3f}) {'met' if ours >= theirs + margin else 'MISSED'}"
        )
    for preset, instruments in PRESET_INSTRUMENTS.items():
        ids = [c["id"] for c in cases if c["set"] == SETS[2] and c["instrument"] in instruments]
        if ids:
            change = _mean(scores[preset], ids) - _mean(scores["default"], ids)
            print(
                f"  {preset} on real {', '.join(instruments)}: {change:+.3f} against default "
                f"{'met' if change >= -0.02 else 'MISSED'} (no more than 0.02 below)"
            )
    mono = [c for c in cases if c["set"] != SETS[2] and c["instrument"] in MONO_INSTRUMENTS]
    matched = {
        c["id"]: scores[next(p for p in ("vocal", "lead", "bass") if c["instrument"] in PRESET_INSTRUMENTS[p])]
        for c in mono
    }
    ours = sum(matched[c["id"]][c["id"]]["bend"] for c in mono) / len(mono)
    theirs = _mean(basic_pitch, [c["id"] for c in mono], "bend")
    print(
        f"  bend-aware onset F1, {len(mono)} rendered single-line cases, matching preset: {ours:.3f} vs "
        f"Basic Pitch {theirs:.3f} {'met' if ours >= theirs else 'MISSED'}"
    )
    if report["speed"]:
        _print_speed(report["speed"])


def _print_speed(speed: dict) -> None:
    rates = speed["real_time"]
    print(
        f"\nspeed, whole pipeline in-process, {speed['cases']} cases ({speed['audio_s']:.0f} s), best of "
        f"{speed['rounds']}: vocal (swift-f0) {rates['vocal']:.0f}x real time, default (Basic Pitch) "
        f"{rates['default']:.0f}x; load average {speed['load_before'][0]:.2f} before, "
        f"{speed['load_after'][0]:.2f} after, {speed['cpus']} cores"
    )


if __name__ == "__main__":
    sys.exit(main())
