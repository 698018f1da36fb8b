"""Single-line presets (`vocal`, `lead`, …) against `default` on real singing, real bowed strings and wind, and
rendered fast passages: issue 21's figures, with the tuning and held-out splits apart.

    python -m benchmarks.singing [--corpus DIR] [--split tuning|held-out|both] [--presets default vocal lead ...]
                                 [--out DIR] [--speed-rounds 1]

The split, fixed before any value was chosen (never tune on a HELD_OUT case):

- corpus-singing (67 real sung melodies): the ids, sorted, shuffled by random.Random(SPLIT_SEED); the first
  TUNED_SONGS are tuned on, the rest held out.
- corpus-bach10: by piece, so that violin and wind are on both sides: pieces TUNED_PIECES (violin ×3, clarinet,
  bassoon, saxophone) tuned on; the others (violin ×2, clarinet, saxophone, bassoon) held out.
- fast passages (rendered here with fluidsynth): the melodies drawn with seed FAST_SEEDS[TUNED] are tuned on, those
  drawn with FAST_SEEDS[HELD_OUT] held out.
- corpus (renders) and corpus-real: as benchmarks.presets splits them (real recordings are all held out); this
  script scores the renders of the single-line instruments (choir "aahs", flute, trumpet), benchmarks.presets the rest
  of the renders; corpus-real's recordings (guitar, piano) are here for the check below.

Per set, split and preset it prints the mean over cases of onset F1 (pitch within 50 cents, 50 ms), onset-only F1
(pitch ignored: the segmentation), onset+offset F1, the pooled median onset error of matched notes, and on how many
cases the preset beats `default`. The singing set is scored twice: against the annotation as published, and against
it with ANNOTATION_BIAS_SEMITONES taken off every pitch before rounding (SSVD's pitches read sharp of the sung f0:
corpus-singing/ATTRIBUTION.md), so that what the bias costs is seen apart. Then the whole pipeline's speed on the
tuning songs. Last, issue 21's check on every real set in ../shared: no preset more than REAL_MARGIN below `default`
(mean onset F1) on real audio of its instrument, per split, the instrument's preset being PRESET_FOR (corpus-real's
own manifest names it per recording). --corpus is corpus-singing's folder (default ../shared's); Bach10 and the
renders come from ../shared when there. Skips cleanly (exit 0) without corpus-singing.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import available_presets, load_preset
from midibridge.model.region import Region

from .corpus import SHARED, corpus_parser
from .fluidsynth import SOUNDFONT, can_render, render_midi_file
from .presets import corpus_cases

SPLIT_SEED = 21  # the number
TUNED_SONGS = 34
TUNED_PIECES = ("03", "04", "07")
TUNED, HELD_OUT = "tuning", "held out"
FAST_SEEDS = {TUNED: 1, HELD_OUT: 2}
ANNOTATION_BIAS_SEMITONES = 0.2
# Which preset is meant for which set (the targets compare these with `default`).
PRESET_FOR = {
    "singing": "vocal",
    "singing, bias removed": "vocal",
    "violin": "strings-solo",
    "wind": "lead",
    "renders: choir": "vocal",
    "renders: flute, trumpet": "lead",
    "fast: voice": "vocal",
    "fast: flute": "lead",
    "fast: violin": "strings-solo",
    "fast: alto sax": "lead",
    "real: guitar": "guitar",
    "real: piano": "piano",
}
# The real sets, whose preset must not fall more than REAL_MARGIN below `default` (issue 21).
REAL_SETS = ("singing", "violin", "wind", "real: guitar", "real: piano")
REAL_MARGIN = 0.02
RENDER_SETS = {"choir_aahs": "renders: choir", "flute": "renders: flute, trumpet", "trumpet": "renders: flute, trumpet"}
# Fast passages: GM program, lowest and highest MIDI note of each instrument's runs.
FAST = {
    "fast: flute": (73, 67, 93),
    "fast: violin": (40, 57, 88),
    "fast: alto sax": (65, 53, 79),
    "fast: voice": (53, 57, 76),
}
FAST_NOTE_S = (0.12, 0.18)  # each note's length, drawn uniformly: ≈ 150 ms
EVALUATE = SHARED / "bench" / "evaluate.py"


@dataclass(frozen=True)
class Score:
    """One preset on one set's cases of one split: means over cases, and the pooled median onset error."""

    onset_f1: float
    onset_only_f1: float
    onset_offset_f1: float
    median_onset_error_ms: float | None
    per_case: dict[str, float]  # onset F1 of each case


def singing_split(ids: list[str]) -> dict[str, str]:
    """{song id: TUNED or HELD_OUT}."""
    order = sorted(ids)
    random.Random(SPLIT_SEED).shuffle(order)
    return {song: TUNED if k < TUNED_SONGS else HELD_OUT for k, song in enumerate(order)}


def bach10_split(case_id: str) -> str:
    """TUNED or HELD_OUT for a corpus-bach10 id such as bach10_03_violin."""
    return TUNED if case_id.split("_")[1] in TUNED_PIECES else HELD_OUT


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/singing"))
    parser.add_argument("--split", choices=("tuning", "held-out", "both"), default="both")
    parser.add_argument(
        "--presets", nargs="+", default=None, help="default: `default` and every swift-f0 preset but bass"
    )
    parser.add_argument("--speed-rounds", type=int, default=1, help="0 skips the speed measurement")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the manifests name files under it, and the evaluator reads them from its own dir
    singing = args.corpus or SHARED / "corpus-singing"
    if not (singing / "manifest.json").is_file() or not EVALUATE.is_file():
        print(f"skipped: no corpus manifest at {singing / 'manifest.json'} (or no {EVALUATE}); pass --corpus DIR")
        return 0
    splits = {"tuning": (TUNED,), "held-out": (HELD_OUT,), "both": (TUNED, HELD_OUT)}[args.split]
    names = args.presets or ["default"] + sorted(
        name
        for name, (source, _) in available_presets().items()
        if source == "built-in" and name != "bass" and load_preset(name).engine == "swift-f0"
    )
    presets = {name: load_preset(name) for name in names}
    cases = [case for case in _cases(singing, args.out) if case["split"] in splits]
    transcriber = Transcriber()
    for case in {case["id"]: case for case in cases}.values():  # a song's two references share its audio
        own = PRESET_FOR[case["set"]]
        for name in names if own in names else [*names, own]:  # its own preset, even if not asked for
            presets.setdefault(name, load_preset(name))
            done = transcriber.convert(Region.from_file(case["audio"]), preset=presets[name])
            (args.out / name).mkdir(parents=True, exist_ok=True)
            (args.out / name / f"{case['id']}.mid").write_bytes(done.smf)
    sets = sorted({case["set"] for case in cases}, key=list(PRESET_FOR).index)
    print(
        "\nmean over cases: onset F1 (pitch, 50 ms) / onset-only F1 / onset+offset F1, median onset error; "
        "'beats default' counts cases"
    )
    report = {}
    for chosen in sets:
        for split in splits:
            group = [case for case in cases if case["set"] == chosen and case["split"] == split]
            if not group:
                continue
            scores = {
                name: _score(group, args.out / name, args.out / "manifests" / f"{chosen}-{split}.json")
                for name in dict.fromkeys([*names, PRESET_FOR[chosen]])
            }
            report[f"{chosen} / {split}"] = {name: score.__dict__ for name, score in scores.items()}
            _print(chosen, split, group, scores)
    (args.out / "singing.json").write_text(json.dumps(report, indent=1))
    _print_real_check(report)
    if args.speed_rounds:
        songs = [case for case in cases if case["set"] == "singing" and case["split"] == TUNED] or cases
        timed = {name: presets[name] for name in names}
        _print_speed(_speed(transcriber, timed, songs, args.speed_rounds), songs)
    return 0


def _cases(singing: Path, out: Path) -> list[dict]:
    """Every case with absolute paths, its set and its split."""
    cases = []
    songs = json.loads((singing / "manifest.json").read_text())["cases"]
    split = singing_split([song["id"] for song in songs])
    debiased = out / "reference-bias-removed"
    debiased.mkdir(parents=True, exist_ok=True)
    for song in songs:
        case = {**song, "audio": str(singing / song["audio"]), "split": split[song["id"]]}
        cases.append({**case, "midi": str(singing / song["midi"]), "set": "singing"})
        reference = debiased / f"{song['id']}.mid"
        _write_midi(_debiased_notes(singing / song["annotation_txt"]), reference)
        cases.append({**case, "midi": str(reference), "set": "singing, bias removed"})
    bach10 = SHARED / "corpus-bach10" / "manifest.json"
    for case in json.loads(bach10.read_text())["cases"] if bach10.is_file() else []:
        cases.append(
            {
                **case,
                "audio": str(bach10.parent / case["audio"]),
                "midi": str(bach10.parent / case["midi"]),
                "set": "violin" if case["instrument"] == "violin" else "wind",
                "split": bach10_split(case["id"]),
            }
        )
    for case in corpus_cases(SHARED / "corpus-real" / "manifest.json", "real"):
        cases.append({**case, "set": f"real: {case['preset']}", "split": HELD_OUT})
    renders = SHARED / "corpus" / "manifest.json"
    for case in corpus_cases(renders, "render") if renders.is_file() else []:
        if case["instrument"] in RENDER_SETS:
            cases.append(
                {
                    **case,
                    "set": RENDER_SETS[case["instrument"]],
                    "split": TUNED if case["set"] == "tuned renders" else HELD_OUT,
                }
            )
    if can_render():
        cases += _fast_passages(out / "fast")
    else:
        print(f"note: no fluidsynth or {SOUNDFONT}: the fast passages are left out")
    return cases


def _debiased_notes(annotation: Path) -> list[tuple[float, float, int]]:
    """SSVD's notes (onset s, offset s, fractional MIDI pitch) with the bias taken off before rounding."""
    rows = np.loadtxt(annotation, ndmin=2)
    return [(float(a), float(b), int(np.rint(p - ANNOTATION_BIAS_SEMITONES))) for a, b, p in rows]


def _fast_passages(directory: Path) -> list[dict]:
    """Rendered runs of short legato notes, one file per instrument and split: four phrases of 16 notes
    (FAST_NOTE_S each, a step or a skip of a major scale at a time, now and then a repeated note), 0.4 s apart."""
    directory.mkdir(parents=True, exist_ok=True)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    cases = []
    for split, seed in FAST_SEEDS.items():
        draw = np.random.default_rng(seed)
        for name, (program, lowest, highest) in FAST.items():
            keys = [k for k in range(lowest, highest + 1) if k % 12 in scale]
            notes, now, at = [], 0.5, len(keys) // 2
            for _ in range(4):
                for _ in range(16):
                    at = int(np.clip(at + draw.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(keys) - 1))
                    length = float(draw.uniform(*FAST_NOTE_S))
                    notes.append((now, now + length, keys[at]))
                    now += length
                now += 0.4
            case_id = f"fast_{name.split(': ')[1].replace(' ', '_')}_{split.replace(' ', '_')}"
            midi, audio = directory / f"{case_id}.mid", directory / f"{case_id}.flac"
            _write_midi(notes, midi, program=program)
            if not audio.is_file():
                render_midi_file(midi, audio)
            cases.append(
                {"id": case_id, "audio": str(audio), "midi": str(midi), "instrument": name, "set": name, "split": split}
            )
    return cases


def _write_midi(notes: list[tuple[float, float, int]], path: Path, *, program: int = 0) -> None:
    """A one-track MIDI file of (start s, end s, pitch) notes at 120 BPM, 480 ticks a beat."""
    events = sorted(
        [(round(a * 960), 1, pitch) for a, _, pitch in notes] + [(round(b * 960), 0, pitch) for _, b, pitch in notes]
    )
    track = mido.MidiTrack([mido.Message("program_change", program=program)])
    now = 0
    for tick, on, pitch in events:
        track.append(
            mido.Message("note_on" if on else "note_off", note=pitch, velocity=90 if on else 0, time=tick - now)
        )
        now = tick
    mido.MidiFile(tracks=[track], ticks_per_beat=480).save(path)


def _score(cases: list[dict], predictions: Path, manifest: Path) -> Score:
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"cases": cases}, indent=1))
    report = predictions / f"eval-{manifest.stem}.json"
    subprocess.run(
        [sys.executable, str(EVALUATE), str(manifest), str(predictions), "--json", str(report), "--quiet"],
        check=True,
        capture_output=True,
    )
    scored = json.loads(report.read_text())
    overall = scored["overall"]
    return Score(
        overall["notenum_on_f"],
        overall["nopitch_on_f"],
        overall["notenum_onoff_f"],
        overall["onset_err_ms_median"],
        {case["id"]: case["notenum_on_f"] for case in scored["cases"]},
    )


def _print(chosen: str, split: str, cases: list[dict], scores: dict[str, Score]) -> None:
    print(f"\n{chosen}, {split} ({len(cases)} cases; meant for `{PRESET_FOR[chosen]}`)")
    default = scores.get("default")
    for name, score in scores.items():
        error = "-" if score.median_onset_error_ms is None else f"{score.median_onset_error_ms:+.1f} ms"
        beats = (
            ""
            if default is None or name == "default"
            else (
                f"  beats default on {sum(score.per_case[i] > default.per_case[i] for i in score.per_case)}"
                f"/{len(score.per_case)}"
            )
        )
        print(
            f"  {name:14} {score.onset_f1:.3f} / {score.onset_only_f1:.3f} / {score.onset_offset_f1:.3f}  "
            f"{error:>9}{beats}"
        )


def _print_real_check(report: dict) -> None:
    """Issue 21: on every real set, the instrument's preset no more than REAL_MARGIN below `default`."""
    print(f"\nreal audio: each instrument's preset against `default`, mean onset F1 (no more than {REAL_MARGIN} below)")
    for key, scores in report.items():
        chosen = key.split(" / ")[0]
        if chosen in REAL_SETS and "default" in scores:
            own = PRESET_FOR[chosen]
            change = scores[own]["onset_f1"] - scores["default"]["onset_f1"]
            print(f"  {own:12} on {key:26} {change:+.3f}  {'met' if change >= -REAL_MARGIN else 'MISSED'}")


def _speed(transcriber: Transcriber, presets: dict, cases: list[dict], rounds: int) -> dict[str, float]:
    """{preset: real-time factor of the whole pipeline, in-process, best of `rounds`}, presets interleaved case by
    case so that a busy moment costs them alike."""
    audio_s = sum(case["duration_s"] for case in cases)
    best = dict.fromkeys(presets, float("inf"))
    for _ in range(rounds):
        spent = dict.fromkeys(presets, 0.0)
        for case in cases:
            region = Region.from_file(case["audio"])
            for name, preset in presets.items():
                started = time.perf_counter()
                transcriber.transcribe(region, preset=preset)
                spent[name] += time.perf_counter() - started
        best = {name: min(best[name], spent[name]) for name in best}
    return {name: audio_s / seconds for name, seconds in best.items()}


def _print_speed(rates: dict[str, float], cases: list[dict]) -> None:
    audio_s = sum(case["duration_s"] for case in cases)
    print(
        f"\nspeed, whole pipeline in-process, {len(cases)} cases ({audio_s:.0f} s): "
        + ", ".join(f"{name} {rate:.0f}x" for name, rate in rates.items())
        + f" real time; load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    sys.exit(main())
