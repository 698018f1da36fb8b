"""`piano-hq` (Transkun) against Basic Pitch's presets: notes on every rendered and real case, speed and memory of
the whole pipeline on a long piano recording.

    python -m benchmarks.transkun [--corpus DIR] [--real DIR] [--out DIR] [--long-minutes 60] [--threads 0]
                                  [--long-only]

Transkun has no threshold or option to tune, and nothing here was chosen on
these cases: every figure is held out. Scores are onset F1 (50 ms, by note
number) from ../shared/bench/evaluate.py, and onset + offset F1 beside it,
grouped as the presets are meant: piano renders, the real piano clip, guitars
(rendered and the real GuitarSet take), everything else. Speed and memory:
`midibridge convert --in-process` as a user runs it, a whole process each, on
--long-minutes of real and rendered piano played end to end (peak RSS from
the kernel's accounting of that process), `piano` (Basic Pitch) then
`piano-hq`, in one run, with the load average around them. Skips cleanly when
the corpus is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import load_preset

from .corpus import SHARED, corpus_parser
from .presets import evaluated, rendered_and_real_cases, write_predictions

PRESETS = ("default", "piano", "guitar", "piano-hq")
GROUPS = {
    "piano, rendered": lambda c: c["instrument"] == "piano" and c["set"] != "real (held out)",
    "piano, real": lambda c: c["instrument"] == "piano" and c["set"] == "real (held out)",
    "guitar, rendered": lambda c: "guitar" in c["instrument"] and c["set"] != "real (held out)",
    "guitar, real": lambda c: "guitar" in c["instrument"] and c["set"] == "real (held out)",
    "other instruments": lambda c: "piano" not in c["instrument"] and "guitar" not in c["instrument"],
}
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/transkun"))
    parser.add_argument("--real", type=Path, default=SHARED / "corpus-real", help="real recordings' corpus dir")
    parser.add_argument("--long-minutes", type=float, default=60.0, help="the long recording's length; 0 skips it")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads for the scoring (0: every core)")
    parser.add_argument("--long-only", action="store_true", help="only the long recording (for a quiet moment)")
    args = parser.parse_args(argv)
    found = rendered_and_real_cases(args)
    if found is None:
        return 0
    cases, combined = found
    if not args.long_only:
        transcriber = Transcriber(threads=args.threads)
        _print_scores(cases, {name: _score(transcriber, name, cases, combined, args.out / name) for name in PRESETS})
    if args.long_minutes:
        piano = [c for c in cases if c["instrument"] == "piano"]
        _print_long(_long_run(piano, minutes=args.long_minutes, directory=args.out))
    return 0


def _score(transcriber: Transcriber, name: str, cases, manifest: Path, directory: Path) -> dict:
    """{case id: {"on": onset F1, "onoff": onset and offset F1}} of preset `name`."""
    write_predictions(transcriber, load_preset(name), cases, directory)
    cases_by_id = {case["id"]: case for case in cases}
    return {
        case["id"]: {
            "on": case["notenum_on_f"],
            "onoff": case["notenum_onoff_f"],
            "velocity": _velocity_f1(cases_by_id[case["id"]]["midi"], directory / f"{case['id']}.mid"),
        }
        for case in evaluated(manifest, directory)
    }


def _velocity_f1(truth: str, found: Path) -> float:
    """Onset F1 where a note counts only with its velocity right too (mir_eval.transcription_velocity: velocities
    rescaled as a whole to the truth's, then within 0.1 of its range; offsets ignored), as MAESTRO's papers score."""
    import mir_eval
    import pretty_midi

    def notes(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        played = [n for i in pretty_midi.PrettyMIDI(str(path)).instruments if not i.is_drum for n in i.notes]
        intervals = np.array([[n.start, max(n.end, n.start + 1e-3)] for n in played]).reshape(-1, 2)
        return (
            intervals,
            mir_eval.util.midi_to_hz(np.array([n.pitch for n in played])),
            np.array([n.velocity for n in played]),
        )

    (ref_intervals, ref_pitches, ref_velocities), (est_intervals, est_pitches, est_velocities) = map(
        notes, (truth, found)
    )
    if not len(ref_pitches) or not len(est_pitches):
        return 0.0
    return mir_eval.transcription_velocity.precision_recall_f1_overlap(
        ref_intervals, ref_pitches, ref_velocities, est_intervals, est_pitches, est_velocities, offset_ratio=None
    )[2]


def _print_scores(cases, scores) -> None:
    print(
        "\nonset F1 with velocity (mir_eval.transcription_velocity, offsets ignored), means by group\n"
        + f"{'group':28}{'cases':>6}"
        + "".join(f"{n:>10}" for n in PRESETS)
    )
    for group, belongs in GROUPS.items():
        ids = [c["id"] for c in cases if belongs(c)]
        if ids:
            cells = "".join(f"{np.mean([scores[n][i]['velocity'] for i in ids]):>10.3f}" for n in PRESETS)
            print(f"{group:28}{len(ids):>6}{cells}")
    print(
        f"\nonset F1 (50 ms) / onset+offset F1, every case held out\n{'case':46}" + "".join(f"{n:>16}" for n in PRESETS)
    )
    for case in cases:
        cells = "".join(f"{scores[n][case['id']]['on']:>9.3f} /{scores[n][case['id']]['onoff']:.3f}" for n in PRESETS)
        print(f"{case['id'][:46]:46}{cells}")
    print(f"\nmeans by group\n{'group':28}{'cases':>6}" + "".join(f"{n:>16}" for n in PRESETS))
    for group, belongs in GROUPS.items():
        ids = [c["id"] for c in cases if belongs(c)]
        if ids:
            means = {n: [np.mean([scores[n][i][kind] for i in ids]) for kind in ("on", "onoff")] for n in PRESETS}
            cells = "".join(f"{on:>9.3f} /{onoff:.3f}" for on, onoff in means.values())
            print(f"{group:28}{len(ids):>6}{cells}")


def _long_run(cases, *, minutes: float, directory: Path) -> dict:
    """Wall time and peak RSS of `midibridge convert --in-process` of `minutes` of the piano cases end to end."""
    with tempfile.TemporaryDirectory(prefix="midibridge-long-") as tmp:
        long_file = Path(tmp) / "long_piano.flac"
        audio_s = _write_long(cases, long_file, minutes=minutes)
        load_before = os.getloadavg()
        runs = {}
        for name in ("piano", "piano-hq"):
            started = time.perf_counter()
            process = subprocess.Popen(
                [
                    MIDIBRIDGE,
                    "convert",
                    str(long_file),
                    "--preset",
                    name,
                    "--in-process",
                    "-o",
                    str(directory / f"long-{name}.mid"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            peak_kb = _peak_rss_kb(process)
            seconds = time.perf_counter() - started
            assert process.returncode == 0, process.stderr.read().decode() if process.stderr else process.returncode
            runs[name] = {"seconds": seconds, "real_time": audio_s / seconds, "peak_rss_mb": peak_kb / 1024}
    return {
        "audio_s": audio_s,
        "runs": runs,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def _peak_rss_kb(process: subprocess.Popen) -> int:
    """The process's own peak RSS, read from /proc while it runs. Not its ru_maxrss: that carries over the high-water
    mark of the process it was forked from (this benchmark, with the models loaded), which hid both figures."""
    peak_kb = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:  # it ended between poll() and the read
            break
        peak_kb = max([peak_kb] + [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")])
        time.sleep(0.5)
    process.wait()
    return peak_kb


def _write_long(cases, path: Path, *, minutes: float) -> float:
    """The cases' audio (mono, 44.1 kHz) one after another, round and round, for `minutes`; its length in seconds."""
    rate, wanted = 44100, int(minutes * 60 * 44100)
    written = 0
    with AudioFile(str(path), "w", samplerate=rate, num_channels=1, bit_depth=16) as out:
        while written < wanted:
            for case in cases:
                with AudioFile(case["audio"]).resampled_to(rate) as audio:
                    samples = audio.read(audio.frames).mean(axis=0, keepdims=True)
                samples = samples[:, : wanted - written]
                out.write(samples)
                written += samples.shape[1]
                if written >= wanted:
                    break
    return written / rate


def _print_long(long: dict) -> None:
    print(
        f"\nwhole process, `midibridge convert --in-process` of {long['audio_s'] / 60:.0f} min of piano, "
        f"{long['cpus']} cores, load {long['load_before'][0]:.1f} before, {long['load_after'][0]:.1f} after"
    )
    for name, run in long["runs"].items():
        print(
            f"  {name:10} {run['seconds']:8.1f} s   {run['real_time']:6.2f}x real time   "
            f"peak RSS {run['peak_rss_mb']:6.0f} MB"
        )
    piano, hq = long["runs"]["piano"], long["runs"]["piano-hq"]
    print(f"  piano-hq takes {piano['real_time'] / hq['real_time']:.1f}x as long as piano (Basic Pitch)")


if __name__ == "__main__":
    sys.exit(main())
