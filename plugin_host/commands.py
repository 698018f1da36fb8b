"""What each `midibridge` command does (cli.py holds their arguments)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from midibridge.bridge import discovery
from midibridge.bridge.protocol import ENDPOINT_ENV
from midibridge.model.clip import Clip, Tempo, note_name
from midibridge.model.errors import MidibridgeError
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, Priority

from . import runner
from .results import ClientError, OverallProgress, Progress, RegionResult


def convert(args: argparse.Namespace) -> int:
    from .batch import write_file

    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    region = Region.from_file(args.input, start_s=args.start, duration_s=args.duration, position_s=args.position)
    output = Path(args.output) if args.output else Path(Path(args.input).stem + ".mid")
    refuse_overwriting(output, source=Path(args.input))
    local = args.model is not None or args.threads  # options of this process's model
    backend = (
        runner.InProcess(model_path=args.model, threads=args.threads) if local else runner.choose(daemon=args.daemon)
    )
    result = next(backend.run([runner.Job(region, tempo)], preset=args.preset, allow_truncated=args.allow_truncated))
    if result.error is not None:
        raise result.error
    clip, smf = result.clip, result.smf
    assert clip is not None and smf is not None, "a region without an error has its clip and MIDI file"
    write_file(output, smf)  # not whole: -o may be /dev/stdout or a pipe
    if clip.truncated_at_s is not None:
        print(truncation_warning(args.input, clip.truncated_at_s, clip.duration_s), file=sys.stderr)
    if args.json:
        print(json.dumps(clip.to_dict()))
    else:
        print_clip(clip, output)
    return 0


def refuse_overwriting(output: Path, *, source: Path) -> None:
    """Before any work: never write a clip over its own audio, nor over a file that is not a MIDI file (a MIDI
    file there is replaced: converting again is what a user does). Devices and pipes (/dev/stdout) are written."""
    if not output.is_file():
        return
    if source.exists() and output.samefile(source):
        raise ClientError(
            Code.OUTPUT_IS_INPUT,
            f"-o {output} is the audio file being converted: writing the MIDI "
            f"file there would destroy it. Give another output, e.g. -o "
            f"{source.with_suffix('.mid').name}",
        )
    try:
        with output.open("rb") as existing:
            head = existing.read(4)
    except OSError:
        return  # unreadable: writing it fails too, and says so (output_unwritable)
    if head not in (b"MThd", b""):  # an empty file holds nothing to lose
        raise ClientError(
            Code.OUTPUT_NOT_MIDI,
            f"{output} exists and is not a MIDI file; midibridge does not write "
            f"over it. Give another output path with -o, or move that file away "
            f"first",
        )


def batch(args: argparse.Namespace) -> int:
    from .batch import Batch

    job = Batch(
        args.output_dir,
        preset=args.preset,
        tempo=Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar),
        allow_truncated=args.allow_truncated,
    )
    plan = job.plan(args.inputs)
    backend = (
        runner.Cluster(address=args.cluster, ship_audio=args.ship_audio)
        if args.cluster
        else runner.choose(daemon=args.daemon, priority=Priority.BATCH)
    )
    bar = ProgressLine(len(plan.todo))
    try:
        done = job.run(plan, backend=backend, on_progress=bar.update, on_result=bar.done)
    except (KeyboardInterrupt, MidibridgeError) as stop:
        bar.close()
        if job.summary is not None and any(job.summary.entries):
            how = "stopped" if isinstance(stop, MidibridgeError) else "interrupted"
            print(
                f"midibridge: {how}: {job.summary.converted} of {len(job.summary.entries)} regions converted into "
                f"{job.folder} and kept; rerun the same batch to convert the rest",
                file=sys.stderr,
            )
        raise
    bar.close()
    out, total = job.folder, len(done.entries)
    skipped = f"; {done.skipped} unchanged since the last run, skipped" if done.skipped else ""
    earlier = f" (with {done.earlier} region{'s' * (done.earlier != 1)} of earlier batches)" if done.earlier else ""
    print(
        f"converted {total - len(done.failed)} of {total} regions into {out} ({done.where}{skipped}); "
        f"index: {out / 'index.json'}{earlier}, report: {out / 'index.html'}"
    )
    for entry in done.failed:
        print(f"  failed: {entry['input']}: [{entry['error']['code']}] {entry['error']['message']}", file=sys.stderr)
    for entry in done.entries:  # after the progress bar, which owns stderr's last line while it runs
        if entry.get("truncated_at_s") is not None:
            print(truncation_warning(entry["input"], entry["truncated_at_s"], entry["duration_s"]), file=sys.stderr)
    return 1 if done.failed else 0


def truncation_warning(source: str, truncated_at_s: float, duration_s: float) -> str:
    """The stderr line for a clip transcribed with --allow-truncated from a file cut short."""
    return (
        f"midibridge: warning [{Code.AUDIO_TRUNCATED}]: {source} is truncated: its audio stops "
        f"{truncated_at_s:.3f} s into the {duration_s:.3f} s region, so the clip has no notes after that"
    )


class ProgressLine:
    """A one-line progress bar on stderr, when stderr is a terminal: regions and seconds of audio done."""

    def __init__(self, total: int):
        self.overall = OverallProgress(total)
        self.audio_s = 0.0
        self.live = sys.stderr.isatty()

    def update(self, progress: Progress) -> None:
        self._draw(self.overall.update(progress))

    def done(self, result: RegionResult) -> None:
        if result.clip is not None:
            self.audio_s += result.clip.duration_s
        self._draw(self.overall.done(result.index))

    def _draw(self, share: float) -> None:
        if self.live:
            filled = round(30 * share)
            sys.stderr.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.overall.finished}/{self.overall.total} "
                f"regions, {self.audio_s:.1f} s of audio {share:4.0%}"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")
            self.live = False


def ardour_convert(args: argparse.Namespace) -> int:
    from midibridge.model.presets import load_preset

    from .ardour_adapter import convert_session

    load_preset(args.preset)  # an unknown preset stops here: before Ardour starts, the backup and the save
    lines = convert_session(
        Path(args.session),
        tracks=args.tracks,
        preset=args.preset,
        keep_previous=args.keep_previous,
        in_process=args.in_process,
    )
    for line in lines:
        outcome = f"{line.notes} notes" if line.error is None else f"FAILED {line.error}"
        if line.earlier:
            regions = (
                "the MIDI region an earlier run"
                if line.earlier == 1
                else f"the {line.earlier} MIDI regions earlier runs"
            ) + " made from it"
            outcome += f"; kept {regions} beside the new one" if args.keep_previous else f"; replaced {regions}"
        print(f"{line.track}\t{line.position_s:.6f} s\t{outcome}")
    failed = sum(line.error is not None for line in lines)
    replaced = (
        ""
        if args.keep_previous or not any(line.earlier for line in lines)
        else " (one Edit > Undo in Ardour brings back what it replaced)"
    )
    print(f"converted {len(lines) - failed} of {len(lines)} regions; the session is saved{replaced}")
    return 1 if failed else 0


def install(args: argparse.Namespace) -> int:
    scripts_dir = Path(args.scripts_dir) if args.scripts_dir else None
    if args.daw == "ardour":
        from . import ardour_adapter

        written, help_text = ardour_adapter.install_scripts(scripts_dir), ardour_adapter.INSTALL_HELP
    else:
        from . import reaper_adapter

        written = reaper_adapter.install_scripts(scripts_dir, preset=args.preset)
        help_text = reaper_adapter.INSTALL_HELP
    for path in written:
        print(f"installed {path}")
    print(help_text)
    return 0


def host_transcribe(args: argparse.Namespace) -> int:
    from .host_lines import read_requests, transcribe

    requests = read_requests(Path(args.requests))
    transcribe(requests, preset=args.preset, backend=runner.InProcess() if args.in_process else runner.Daemon())
    return 0


def serve(args: argparse.Namespace) -> int:
    import logging  # only the daemon logs: importing it cost every other command's start 3-7 ms

    from midibridge.bridge.daemon import DaemonConfig, serve

    # A private daemon's warnings (a lost worker, a job that runs again) go to its command's stderr, as its own.
    logging.basicConfig(
        level=logging.WARNING if args.private else logging.INFO,
        format="midibridge: %(message)s" if args.private else "midibridge serve: %(message)s",
    )
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    retries = args.job_retries or 0
    if args.cluster:  # a worker a CPU slot (0: as many as the cluster has); a job on a lost node runs again
        workers, retries = args.workers or 0, 2 if args.job_retries is None else args.job_retries
    config = DaemonConfig(
        endpoint=args.endpoint,
        workers=workers,
        threads_per_worker=args.threads,
        max_queued=args.queue,
        result_ttl_s=args.result_ttl,
        cache_entries=args.cache,
        allowed_roots=args.allow_root,
        curve=args.curve,
        job_retries=retries,
        grace_s=args.grace,
        progress_timeout_s=args.progress_timeout,
        interactive_workers=args.interactive_workers,
        model_path=args.model,
        preload=tuple(args.preload),
        cluster=args.cluster,
        ship_audio=args.ship_audio,
        private=args.private,
    )
    return serve(config)  # a DaemonError (cannot_serve) is said as every error is, by cli.main


def ping(args: argparse.Namespace) -> int:
    found = _running_daemon()
    if found is None:
        return 1
    with _client_of(found) as client:
        started = time.perf_counter()
        info = client.hello()
        round_trip_ms = (time.perf_counter() - started) * 1000
    print(
        f"midibridge daemon at {found['endpoint']}: pid {info['pid']}, {info['protocol']}, package "
        f"{info['package_version']}, {info['workers']} workers, model {info['model']['sha256'][:12]}…, "
        f"round trip {round_trip_ms:.1f} ms"
    )
    return 0


def status(args: argparse.Namespace) -> int:
    found = _running_daemon()
    if found is None:
        return 1
    with _client_of(found) as client:
        info = client.status()
    counts = ", ".join(f"{n} {state}" for state, n in info["counts"].items())
    print(
        f"midibridge daemon at {found['endpoint']} (pid {found['pid']}): {info['queued']} queued; jobs: "
        f"{counts}; {len(info['workers'])} workers ({info['workers_replaced']} replaced), "
        f"{info['cache_entries']} cached results{'' if info['accepting'] else '; stopping'}"
    )
    for worker in info["workers"]:
        doing = f"job {worker['job_id']}" if worker["job_id"] else ("idle" if worker["ready"] else "starting")
        kept = " (kept for interactive jobs)" if worker["interactive_only"] else ""
        print(f"  worker {worker['identity']} pid {worker['pid']}{kept}: {doing}")
    return 0


def _running_daemon() -> dict | None:
    """The discovery record of the daemon on the default endpoint; None, said on stdout, when none runs there."""
    found = discovery.read_discovery()
    if found is None:
        print(
            f"no midibridge daemon is running on {discovery.default_endpoint()}; start one with `midibridge serve` "
            f"(set {ENDPOINT_ENV} to reach a daemon on another endpoint)"
        )
    return found


def _client_of(found: dict):
    from .client import Client  # ZeroMQ only for the commands that talk to the daemon

    return Client(found["endpoint"], timeout_s=2.0, retries=0)


def presets_list(args: argparse.Namespace) -> int:
    """Every preset, a broken file among them marked with its error; exit 1 when one is broken."""
    from midibridge.model.presets import list_presets

    listed = list_presets()
    for preset in listed:
        shown = preset.description if preset.error is None else f"BROKEN [{preset.error.code}]: {preset.error}"
        print(f"{preset.name:18} {preset.source:9} {shown}")
    broken = [(preset, preset.error) for preset in listed if preset.error is not None]
    for preset, error in broken:
        print(
            f"midibridge: error [{error.code}]: preset {preset.name!r} ({preset.path}) cannot be used: fix "
            f"the file (`midibridge presets validate {preset.path}` says what is wrong) or remove it",
            file=sys.stderr,
        )
    return 1 if broken else 0


def presets_show(args: argparse.Namespace) -> int:
    from midibridge.model.presets import load_preset, preset_to_toml

    preset = load_preset(args.preset)
    print(f"# {preset.name}: from {preset.source}")
    print(preset_to_toml(preset), end="")
    return 0


def presets_validate(args: argparse.Namespace) -> int:
    from midibridge.model.presets import read_preset

    preset = read_preset(Path(args.path), source=args.path)
    print(f"{args.path}: valid preset {preset.name!r} ({len(preset.chain)} processing steps)")
    return 0


def model_install(args: argparse.Namespace) -> int:
    """Install the weights fetched from wheels (every such engine's, or those named); say where the others come from."""
    from midibridge.model.engines import ENGINES

    installable = [name for name, kind in ENGINES.items() if kind.installable]
    unknown = [name for name in args.engines if name not in installable]
    if unknown:
        raise ClientError(
            Code.INVALID_OPTION,
            f"no engine {unknown[0]!r} installs weights: name {' or '.join(installable)} (the others need no install)",
        )
    fetched = {name: ENGINES[name] for name in installable if name in (args.engines or installable)}
    if args.wheel and len(fetched) != 1:
        raise ClientError(
            Code.INVALID_OPTION,
            f"--wheel {args.wheel} is one engine's wheel, and this installs {', '.join(fetched)}: name the engine it "
            f"is for, e.g. `midibridge model install {next(iter(fetched))} --wheel {args.wheel}`",
        )
    for name, kind in fetched.items():
        path = kind.weights.install_weights(wheel=args.wheel, force=args.force)
        print(f"{name}: {kind.weights.WEIGHTS_FILE_NAME} installed and verified: {path}")
    for name, kind in ENGINES.items():
        if not kind.installable and not args.engines:
            print(
                f"{name}: {kind.weights.WEIGHTS_FILE_NAME}, {kind.weights.SOURCE}, needs no install "
                f"(`midibridge model info` checks it)"
            )
    return 0


def model_info(args: argparse.Namespace) -> int:
    """Every engine's weights: path, hash, an ONNX graph's inputs and outputs; 1 when any is missing or wrong."""
    from midibridge.model.engines import DEFAULT_ENGINE, ENGINES
    from midibridge.model.engines.weights import describe
    from midibridge.model.errors import ModelError

    broken = 0
    for name, kind in ENGINES.items():
        print(f"{name}: {kind.weights.WEIGHTS_FILE_NAME}, {kind.weights.SOURCE}")
        try:  # --model is the default engine's, as everywhere
            info = describe(kind.weights.find_weights(args.model if name == DEFAULT_ENGINE else None))
        except ModelError as error:
            print(f"midibridge: error [{error.code}]: {error}", file=sys.stderr)
            broken += 1
            continue
        print(f"  path:   {info['path']}\n  sha256: {info['sha256']}")
        for direction in ("inputs", "outputs"):
            for tensor in info[direction]:
                print(f"  {direction[:-1]:6}  {tensor['name']:28} {tensor['type']:14} {tensor['shape']}")
    return 1 if broken else 0


def print_clip(clip: Clip, output: Path) -> None:
    print(
        f"wrote {output}: {len(clip.notes)} notes, clip at {clip.position_s:.3f} s, "
        f"{clip.duration_s:.2f} s long, {clip.bpm:g} BPM"
    )
    if not clip.notes:
        print("no notes found (silent or unpitched audio)")
        return
    print(f"{'start_s':>9} {'end_s':>9} {'pitch':>5} {'name':>4} {'velocity':>8} {'bends':>5}")
    for note in clip.notes:
        print(
            f"{note.start_s:9.3f} {note.end_s:9.3f} {note.pitch:5d} {note_name(note.pitch):>4} "
            f"{note.velocity:8d} {len(note.bends):5d}"
        )
