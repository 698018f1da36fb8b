"""Benchmark the transcription core against the model alone and against Basic Pitch, on ../shared's corpus.

    python -m benchmarks.transcription [--corpus DIR] [--out DIR] [--cli-minutes 3] [--long-minutes 60]

Prints figures; asserts nothing (these machines are shared and noisy, so
compare the ratios, which are measured in one run):

- real-time factor of the whole pipeline, of the model alone (windows ready,
  only onnxruntime's runs: the floor) as midibridge runs it (the front on each
  window, the back once over the stitched frames) and as Basic Pitch does (the
  whole graph on each window), and of Basic Pitch's `predict()` (ONNX backend)
  on the same files, case by case, interleaved;
- the pipeline at `[decode] precision = "int8"`: its speed beside float32's,
  and its agreement with float32's notes (onset F1);
- note F1 against the ground truth and against Basic Pitch's own output, and
  the median onset error (../shared/bench/evaluate.py);
- `midibridge convert` vs the `basic-pitch` command as whole processes on a
  file of --cli-minutes, with peak RSS;
- a 10 s file's whole `convert`, in its own process (where its time goes: benchmarks/floor.py) and through a
  running daemon;
- the physical limit: numpy's float32 matmul GFLOP/s over the model's GFLOP
  per second of audio, counted from its graph;
- peak RSS of `midibridge convert` on a file of --long-minutes.

Skips cleanly when the corpus is absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
from pedalboard.io import AudioFile

from midibridge.model.audio import open_region, resample
from midibridge.model.engines.basic_pitch.constants import ONNX_INPUT, SAMPLE_RATE_HZ
from midibridge.model.engines.basic_pitch.inference import READ_AHEAD_NAME, Model
from midibridge.model.engines.basic_pitch.options import BasicPitchOptions
from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import Preset
from midibridge.model.read_ahead import read_ahead
from midibridge.model.region import Region

from .corpus import corpus_manifest, corpus_parser
from .daemon import Daemon
from .floor import compile_package, installed_env, matmul_gflops, model_gflop_per_audio_s, startup


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out"))
    parser.add_argument("--cli-minutes", type=float, default=3.0)
    parser.add_argument("--long-minutes", type=float, default=60.0, help="0 skips the long-file memory run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the corpus, and runs per command")
    args = parser.parse_args(argv)
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    cases = json.loads(manifest.read_text())["cases"]
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = manifest.parent

    compile_package()  # whole-process runs start as an installed package's do, its bytecode compiled
    speed = _in_process(cases, corpus, args.out, repeats=args.repeats)
    scores = _scores(manifest, args.out)
    cli = _whole_process(cases, corpus, args.out, minutes=args.cli_minutes, repeats=args.repeats)
    short = _short_file(cases, corpus, repeats=args.repeats, out=args.out)
    long_run = _long_file(cases, corpus, minutes=args.long_minutes) if args.long_minutes > 0 else None
    limit = {"matmul_gflops": matmul_gflops(), **model_gflop_per_audio_s(Model().path)}
    report = {"in_process": speed, "scores": scores, "cli": cli, "short_file": short, "limit": limit}
    report["long_file"] = long_run
    (args.out / "bench.json").write_text(json.dumps(report, indent=1))
    _print(report)
    return 0


def _in_process(cases, corpus: Path, out: Path, *, repeats: int) -> dict:
    """Model alone, pipeline and Basic Pitch on each case in turn, `repeats` rounds; each case's fastest run counts.

    The minimum over rounds drops the runs another process slowed down.
    """
    transcriber = Transcriber()
    bp_predict, bp_model = _basic_pitch()
    ours_dir, int8_dir, bp_dir = out / "midibridge", out / "midibridge-int8", out / "basic-pitch"
    for directory in (ours_dir, int8_dir, bp_dir):
        directory.mkdir(exist_ok=True)
    regions = [Region.from_file(corpus / case["audio"]) for case in cases]
    for preset in (Preset(name="default"), INT8):  # warm-up: onnxruntime's first runs allocate, int8 is quantised
        transcriber.convert(regions[0], preset=preset)
    model = transcriber.engine_for().model
    whole = _whole_graph(model)
    names = ("model", "whole_windows", "pipeline", "pipeline_int8", "basic_pitch", "model_cold", "pipeline_cold")
    best = {name: [float("inf")] * len(cases) for name in names}

    def timed(name: str, index: int, work, *, cold: bool = False):
        # Each run starts on idle cores: a session at onnxruntime's defaults (Basic Pitch's whole graph) spins its
        # pool for a while after its run, and that had taken 6 % from whichever measurement came next.
        time.sleep(SETTLE_S)
        started = time.perf_counter()
        result = work()
        for kept in (name, f"{name}_cold") if cold else (name,):
            best[kept][index] = min(best[kept][index], time.perf_counter() - started)
        return result

    audio_s = 0.0
    for round_ in range(repeats):
        for index, (case, region) in enumerate(zip(cases, regions)):
            batches = _model_windows(region, model)
            # Each lambda runs at once, inside timed(): the loop's variables are the ones meant.
            # The floor as the pipeline runs it: the front in read_ahead's helper, beside the back.
            floor = (
                "model",
                lambda: list(model.run(read_ahead(map(model.features, batches), name=READ_AHEAD_NAME))),  # noqa: B023
            )
            ours = ("pipeline", lambda: transcriber.convert(region))  # noqa: B023
            # The floor and the pipeline back to back, the first of them alternating: in one round each follows
            # another program's model (its caches full of that model: "cold"), in the next its twin. Timed only after
            # Basic Pitch's whole graph, the pipeline had measured 0.90 of a floor timed after our own runs.
            order = (floor, ours) if round_ % 2 == 0 else (ours, floor)
            runs = {name: timed(name, index, work, cold=work is order[0][1]) for name, work in order}
            done = runs["pipeline"]
            timed("whole_windows", index, lambda: [whole(batch) for batch in batches])  # noqa: B023
            at_int8 = timed("pipeline_int8", index, lambda: transcriber.convert(region, preset=INT8))  # noqa: B023
            if bp_predict:
                _, midi, _ = timed("basic_pitch", index, lambda: _quiet(bp_predict, region.path, bp_model))  # noqa: B023
            if round_ == 0:
                audio_s += done.clip.duration_s
                (ours_dir / f"{case['id']}.mid").write_bytes(done.smf)
                (int8_dir / f"{case['id']}.mid").write_bytes(at_int8.smf)
                if bp_predict:
                    midi.write(str(bp_dir / f"{case['id']}.mid"))
    model_s, pipeline_s, whole_s = sum(best["model"]), sum(best["pipeline"]), sum(best["whole_windows"])
    result = {
        "audio_s": audio_s,
        "repeats": repeats,
        "rtf_model_only": audio_s / model_s,
        "rtf_model_whole_windows": audio_s / whole_s,
        "rtf_pipeline": audio_s / pipeline_s,
        "rtf_pipeline_int8": audio_s / sum(best["pipeline_int8"]),
        "pipeline_over_model": model_s / pipeline_s,
        "pipeline_over_whole_windows": whole_s / pipeline_s,
    }
    if repeats > 1:  # each has been timed cold
        result["pipeline_over_model_cold"] = sum(best["model_cold"]) / sum(best["pipeline_cold"])
    if bp_predict:
        basic_pitch_s = sum(best["basic_pitch"])
        result["rtf_basic_pitch_predict"] = audio_s / basic_pitch_s
        result["pipeline_over_basic_pitch"] = basic_pitch_s / pipeline_s
    return result


SETTLE_S = 0.1
INT8 = Preset(name="default", decode=BasicPitchOptions(precision="int8"))


def _model_windows(region: Region, model: Model) -> list[np.ndarray]:
    audio = open_region(region)
    return list(model.batches(resample(audio.chunks(), from_hz=audio.sample_rate_hz, to_hz=SAMPLE_RATE_HZ)))


def _whole_graph(model: Model):
    """Basic Pitch's graph as it is, run on a batch of windows: the floor before midibridge cut it in two."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
    return lambda windows: session.run(None, {ONNX_INPUT: windows[:, :, np.newaxis]})


def _basic_pitch():
    """Basic Pitch's predict() and its loaded ONNX model, or (None, None) when basic_pitch is not installed."""
    try:
        logging.disable(logging.WARNING)  # its import warns about every backend it does not find
        from basic_pitch import ICASSP_2022_MODEL_PATH
        from basic_pitch.inference import Model, predict
    except ImportError:
        return None, None
    finally:
        logging.disable(logging.NOTSET)
    return predict, Model(ICASSP_2022_MODEL_PATH)


def _quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def _scores(manifest: Path, out: Path) -> dict:
    evaluate = manifest.resolve().parent.parent / "bench" / "evaluate.py"  # beside the corpus, as in ../shared
    if not evaluate.is_file():
        print(f"note: no {evaluate}: the note scores are left out")
        return {}
    scores = {"ours_vs_truth": _evaluate(evaluate, manifest, out / "midibridge")}
    scores["int8_vs_truth"] = _evaluate(evaluate, manifest, out / "midibridge-int8")
    # Another output as the reference: how closely two agree.
    scores["int8_vs_float32"] = _evaluate(evaluate, _against(manifest, out / "midibridge"), out / "midibridge-int8")
    if any((out / "basic-pitch").glob("*.mid")):
        scores["basic_pitch_vs_truth"] = _evaluate(evaluate, manifest, out / "basic-pitch")
        scores["ours_vs_basic_pitch"] = _evaluate(evaluate, _against(manifest, out / "basic-pitch"), out / "midibridge")
    return scores


def _against(manifest: Path, reference: Path) -> Path:
    """A copy of `manifest` whose cases' ground truth is `reference`'s MIDI files."""
    cases = json.loads(manifest.read_text())
    for case in cases["cases"]:
        case["midi"] = str((reference / f"{case['id']}.mid").resolve())
    copy = reference.parent / f"manifest-against-{reference.name}.json"
    copy.write_text(json.dumps(cases))
    return copy


def _evaluate(script: Path, manifest: Path, predictions: Path) -> dict:
    report = predictions.parent / f"eval-{predictions.name}-vs-{manifest.stem}.json"
    subprocess.run(
        [sys.executable, str(script), str(manifest), str(predictions), "--json", str(report), "--quiet"],
        check=True,
        capture_output=True,
    )
    overall = json.loads(report.read_text())["overall"]
    return {
        key: overall[key]
        for key in (
            "notenum_on_f",
            "notenum_onoff_f",
            "bend_on_f",
            "bend_onoff_f",
            "onset_err_ms_median",
            "n_est",
            "n_ref",
        )
    }


def _whole_process(cases, corpus: Path, out: Path, *, minutes: float, repeats: int) -> dict:
    """`midibridge convert` and `basic-pitch` as whole processes on one long file, runs interleaved."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="midibridge-bench-") as tmp:
        audio = _concatenated(cases, corpus, Path(tmp) / "long.flac", minutes)
        commands = {"midibridge": [*_CONVERT, str(audio), "-o", str(Path(tmp) / "x.mid")]}
        if (bin_dir / "basic-pitch").exists():
            commands["basic-pitch"] = [str(bin_dir / "basic-pitch"), tmp, str(audio)]
        runs = {name: [] for name in commands}
        for _ in range(repeats):
            for name, command in commands.items():
                for stale in Path(tmp).glob("*_basic_pitch.mid"):
                    stale.unlink()
                runs[name].append(_run_measured(command))
    result = {"audio_s": minutes * 60}
    for name, measured in runs.items():
        result[name] = {
            "wall_s": float(np.median([m[0] for m in measured])),
            "peak_rss_mb": max(m[1] for m in measured),
        }
    if "basic-pitch" in result:
        result["speedup"] = result["basic-pitch"]["wall_s"] / result["midibridge"]["wall_s"]
    return result


# `midibridge` of this interpreter's midibridge (the console script may be another checkout's).
_CLI = [sys.executable, "-m", "midibridge.plugin_host.cli"]
_CONVERT = [*_CLI, "convert", "--in-process"]


def _short_file(cases, corpus: Path, *, repeats: int, out: Path) -> dict:
    """A 10 s file's whole `convert` (median wall), in its own process and through a running daemon (the model loaded
    once, as DAW adapters use it), and where a fresh interpreter's time goes."""
    runs = max(repeats, 3)
    with tempfile.TemporaryDirectory(prefix="midibridge-bench-") as tmp:
        audio = _concatenated(cases, corpus, Path(tmp) / "short.flac", 10 / 60)
        files = [str(audio), "-o", str(Path(tmp) / "short.mid")]
        wall_s = float(np.median([_run_measured([*_CONVERT, *files])[0] for _ in range(runs)]))
        daemon = Daemon(workers=os.cpu_count() or 1, threads=0, out=out)
        try:
            through = [  # each at a new timeline position, or the daemon's result cache answers; the first warms up
                _run_measured([*_CLI, "convert", "--daemon", *files, "--position", str(run)], env=daemon.env)[0]
                for run in range(runs + 1)
            ]
        finally:
            daemon.stop()
        stages = startup(audio, repeats=runs)
    return {"audio_s": 10.0, "wall_s": wall_s, "daemon_wall_s": float(np.median(through[1:])), "stages": stages}


def _long_file(cases, corpus: Path, *, minutes: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="midibridge-bench-") as tmp:
        audio = _concatenated(cases, corpus, Path(tmp) / "long.flac", minutes)
        wall_s, rss_mb = _run_measured([*_CONVERT, str(audio), "-o", str(Path(tmp) / "long.mid")])
    return {"audio_s": minutes * 60, "wall_s": wall_s, "peak_rss_mb": rss_mb}


# A child's peak RSS includes the image it was forked from, so a small
# interpreter starts the measured command instead of this large one.
_MEASURE = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def _run_measured(command: list[str], *, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of `command`, with `env` added to installed_env()."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        capture_output=True,
        text=True,
        check=True,
        env={**installed_env(), **(env or {})},
    )
    wall_s, rss_mb, exit_code = done.stdout.split()
    if exit_code != "0":
        raise RuntimeError(f"{command[0]} failed: {done.stderr[-2000:]}")
    return float(wall_s), float(rss_mb)


def _concatenated(cases, corpus: Path, target: Path, minutes: float) -> Path:
    """A mono FLAC of `minutes`, the corpus audio end to end (repeated as needed), written chunk by chunk."""
    needed = int(minutes * 60 * 44100)
    with AudioFile(str(target), "w", samplerate=44100, num_channels=1) as sink:
        while needed > 0:
            for case in cases:
                with AudioFile(str(corpus / case["audio"])).resampled_to(44100) as source:
                    block = source.read(min(source.frames, needed))
                sink.write(block[:1])
                needed -= block.shape[1]
                if needed <= 0:
                    break
    return target


def _print(report: dict) -> None:
    speed = report["in_process"]
    print(
        f"\nin-process, {speed['audio_s']:.0f} s of audio, best of {speed['repeats']} rounds, "
        f"real-time factors (higher is faster):"
    )
    print(f"  model alone, whole windows   {speed['rtf_model_whole_windows']:7.1f}x   (Basic Pitch's way: old floor)")
    print(f"  model alone, stitched        {speed['rtf_model_only']:7.1f}x   (midibridge's way: the floor)")
    print(
        f"  midibridge pipeline          {speed['rtf_pipeline']:7.1f}x   "
        f"= {speed['pipeline_over_model']:.3f} x model-only, {speed['pipeline_over_whole_windows']:.3f} x the old floor"
    )
    if "pipeline_over_model_cold" in speed:
        print(
            f"    (each timed right after another program's model, caches cold: "
            f"{speed['pipeline_over_model_cold']:.3f} x model-only)"
        )
    print(
        f"  midibridge pipeline, int8    {speed['rtf_pipeline_int8']:7.1f}x   "
        f'= {speed["rtf_pipeline_int8"] / speed["rtf_pipeline"]:.3f} x float32 ([decode] precision = "int8")'
    )
    if "rtf_basic_pitch_predict" in speed:
        print(
            f"  basic_pitch predict() (ONNX) {speed['rtf_basic_pitch_predict']:7.1f}x   "
            f"(midibridge is {speed['pipeline_over_basic_pitch']:.2f}x faster)"
        )
    for name, score in report["scores"].items():
        print(
            f"  {name:22} onset F1 {score['notenum_on_f']:.3f}  onset+offset F1 {score['notenum_onoff_f']:.3f}  "
            f"with bends {score['bend_on_f']:.3f}/{score['bend_onoff_f']:.3f}  "
            f"median onset error {score['onset_err_ms_median']:+.1f} ms"
        )
    limit = report["limit"]
    print(
        f"\nphysical limit: float32 matmul {limit['matmul_gflops']:.0f} GFLOP/s (numpy); the model needs "
        f"{limit['stitched']:.3f} GFLOP per audio second stitched ({limit['whole_windows']:.3f} on whole windows): "
        f"{limit['matmul_gflops'] / limit['stitched']:.0f}x real time at most; the pipeline reaches "
        f"{speed['rtf_pipeline'] * limit['stitched'] / limit['matmul_gflops']:.0%} of it"
    )
    cli = report["cli"]
    print(f"\nwhole process on a {cli['audio_s'] / 60:g}-minute file (median wall, peak RSS):")
    for name in ("midibridge", "basic-pitch"):
        if name in cli:
            print(f"  {name:12} {cli[name]['wall_s']:6.2f} s  {cli[name]['peak_rss_mb']:6.0f} MB")
    if "speedup" in cli:
        print(f"  midibridge is {cli['speedup']:.2f}x faster")
    short = report["short_file"]
    stages = "  ".join(f"{name.removesuffix('_s')} {seconds:.3f}" for name, seconds in short["stages"].items())
    print(
        f"\n10 s file, whole `convert`: {short['wall_s']:.2f} s (median), through a running daemon "
        f"{short['daemon_wall_s']:.2f} s; seconds by stage in its own process: {stages}"
    )
    if report["long_file"]:
        run = report["long_file"]
        print(
            f"\n{run['audio_s'] / 60:g}-minute file: {run['wall_s']:.1f} s wall, peak RSS {run['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    sys.exit(main())
