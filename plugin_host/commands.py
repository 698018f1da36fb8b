"""What each `midibridge` command does (cli.py holds their arguments)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from midibridge.bridge import discovery
from midibridge.bridge.protocol import ENDPOINT_ENV
from midibridge.model.clip import Clip, Tempo, note_name
from midibridge.model.errors import MidibridgeError
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, Priority

from . import runner
from .results import ClientError, JobResult, OverallProgress, Progress

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg")


def convert(args: argparse.Namespace) -> int:
    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    region = Region.from_file(args.input, start_s=args.start, duration_s=args.duration, position_s=args.position)
    output = Path(args.output) if args.output else Path(Path(args.input).stem + ".mid")
    refuse_overwriting(output, source=Path(args.input))
    local = args.model is not None or args.threads
    where = "in-process" if local else runner.choose(daemon=args.daemon)
    result = next(runner.run([region], where=where, preset=args.preset, tempo=tempo, model_path=args.model,
                             threads=args.threads, allow_truncated=args.allow_truncated))
    if result.error is not None:
        raise result.error
    write_file(output, result.smf)
    if result.clip.truncated_at_s is not None:
        print(truncation_warning(args.input, result.clip.truncated_at_s, result.clip.duration_s), file=sys.stderr)
    if args.json:
        print(json.dumps(result.clip.to_dict()))
    else:
        print_clip(result.clip, output)
    return 0


def refuse_overwriting(output: Path, *, source: Path) -> None:
    """Before any work: never write a clip over its own audio, nor over a file that is not a MIDI file (a MIDI
    file there is replaced: converting again is what a user does). Devices and pipes (/dev/stdout) are written."""
    if not output.is_file():
        return
    if source.exists() and output.samefile(source):
        raise ClientError(Code.OUTPUT_IS_INPUT, f"-o {output} is the audio file being converted: writing the MIDI "
                                                f"file there would destroy it. Give another output, e.g. -o "
                                                f"{source.with_suffix('.mid').name}")
    try:
        with output.open("rb") as existing:
            head = existing.read(4)
    except OSError:
        return  # unreadable: writing it fails too, and says so (output_unwritable)
    if head not in (b"MThd", b""):  # an empty file holds nothing to lose
        raise ClientError(Code.OUTPUT_NOT_MIDI, f"{output} exists and is not a MIDI file; midibridge does not write "
                                                f"over it. Give another output path with -o, or move that file away "
                                                f"first")


@dataclass(frozen=True)
class BatchItem:
    """One region of a batch: where it came from, the region, its tempo (None: the command's), its .mid name."""

    source: str
    region: Region
    tempo: Tempo | None
    stem: str
    details: dict


def batch(args: argparse.Namespace) -> int:
    from midibridge.model.presets import load_preset

    from . import resume

    out = Path(args.output_dir)
    make_folder(out)
    items = batch_items(args.inputs)
    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    preset = load_preset(args.preset)  # a bad preset stops the batch before anything runs
    heads = [entry_head(item) for item in items]
    library = resume.read_library(out)
    places = resume.match(library, heads)
    names = resume.mid_names(library, places, [item.stem for item in items], folder=out)
    prints = [resume.fingerprint(item.region, tempo=item.tempo or tempo, preset=preset) for item in items]
    index: list[dict] = [{} for _ in items]
    todo = []
    for i, place in enumerate(places):
        previous = None if place is None else library[place]
        if resume.still_good(previous, fingerprint=prints[i], midi=out / names[i],
                             allow_truncated=args.allow_truncated):
            index[i] = previous  # as it was, byte for byte
        else:
            todo.append(i)
    rows = resume.merged(library, places, folder=out)
    where = "cluster" if args.cluster else runner.choose(daemon=args.daemon)
    shown_where = f"on the Ray cluster at {args.cluster}" if args.cluster else where
    bar = ProgressLine(len(todo))
    results = runner.run([items[i].region for i in todo], where=where, preset=args.preset, priority=Priority.BATCH,
                         tempo=[items[i].tempo or tempo for i in todo], on_progress=bar.update,
                         allow_truncated=args.allow_truncated, cluster=args.cluster,
                         ship_audio=args.ship_audio) if todo else (result for result in ())
    try:
        with closing(results):  # leaving early (Ctrl-C) stops what still runs, wherever it runs
            for result in results:
                i = todo[result.index]
                index[i] = record(heads[i], out / names[i], result, fingerprint=prints[i])
                bar.done(result)
    except (KeyboardInterrupt, MidibridgeError) as stop:  # the regions that finished stay listed: a rerun skips them
        bar.close()
        failed_run = isinstance(stop, MidibridgeError)
        if failed_run and not any(index[i] for i in todo):
            raise  # nothing written: the folder stays as it was
        ended = f"stopped before this region finished ({stop})" if failed_run else \
            "was interrupted before this region finished"
        for i in todo:
            index[i] = index[i] or {**heads[i], "error": {
                "code": stop.code if failed_run else Code.CANCELLED,
                "message": f"the batch {ended}; rerun the batch into the same directory to convert it"}}
        write_index(out, rows, index, where=shown_where)
        done = sum("midi" in entry for entry in index)
        print(f"midibridge: {'stopped' if failed_run else 'interrupted'}: {done} of {len(index)} regions converted "
              f"into {out} and kept; rerun the same batch to convert the rest", file=sys.stderr)
        raise
    bar.close()
    write_index(out, rows, index, where=shown_where)
    failed = [entry for entry in index if entry.get("error")]
    skipped = f"; {len(items) - len(todo)} unchanged since the last run, skipped" if len(todo) < len(items) else ""
    kept = len(rows) - len(items)
    earlier = f" (with {kept} region{'s' * (kept != 1)} of earlier batches)" if kept else ""
    print(f"converted {len(index) - len(failed)} of {len(index)} regions into {out} ({shown_where}{skipped}); "
          f"index: {out / 'index.json'}{earlier}, report: {out / 'index.html'}")
    for entry in failed:
        print(f"  failed: {entry['input']}: [{entry['error']['code']}] {entry['error']['message']}", file=sys.stderr)
    for entry in index:  # after the progress bar, which owns stderr's last line while it runs
        if entry.get("truncated_at_s") is not None:
            print(truncation_warning(entry["input"], entry["truncated_at_s"], entry["duration_s"]), file=sys.stderr)
    return 1 if failed else 0


def make_folder(out: Path) -> None:
    """A batch's directory, made if needed and writable, before anything else is read or written."""
    if out.exists() and not out.is_dir():
        raise ClientError(Code.OUTPUT_NOT_A_DIRECTORY, f"{out} is a file, not a directory: -o names the directory the "
                                                       f".mid files, index.json and index.html go into. Give a new or "
                                                       f"existing directory, e.g. -o midi")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ClientError(Code.OUTPUT_UNWRITABLE, f"cannot make the directory {out}: {error.strerror}. Give -o a "
                                                  f"directory you can write to.") from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise ClientError(Code.OUTPUT_UNWRITABLE, f"cannot write into the directory {out}: permission denied. Give -o "
                                                  f"a directory you can write to.")


def entry_head(item: BatchItem) -> dict:
    """The start of a region's index.json entry: its source, by absolute paths (so that entries of batches run from
    different directories say which file each is), and a session region's details."""
    details = item.details
    if "session" in details:
        details = {**details, "session": os.path.abspath(details["session"])}
    return {"input": os.path.abspath(item.source), **details}


def write_index(out: Path, rows: list[int | dict], index: list[dict], *, where: str) -> None:
    """index.json (what each region became and what made it: the same wherever the batch ran) and index.html, whose
    piano rolls show what each .mid holds (read back, so the page is the same whichever run wrote a file). `rows`
    are the regions it lists (plugin_host.resume.merged): this run's by number in `index`, earlier entries as they
    were."""
    from midibridge.model.midi import clip_from_bytes

    from .report import render_report

    def clip_of(entry: dict) -> Clip | None:
        try:
            return clip_from_bytes((out / Path(entry["midi"]).name).read_bytes(), position_s=entry["position_s"])
        except (OSError, EOFError, ValueError, KeyError, IndexError):  # what mido raises on a file that is not MIDI
            return None  # a .mid deleted or spoilt since: its row says so, the rest of the library still shows

    entries = [index[row] if isinstance(row, int) else row for row in rows]
    clips = [clip_of(entry) if "midi" in entry else None for entry in entries]
    write_file(out / "index.json", json.dumps({"regions": entries}, indent=1).encode(), whole=True)
    write_file(out / "index.html", render_report(entries=entries, clips=clips, where=where).encode(), whole=True)


def batch_items(inputs: list[str]) -> list[BatchItem]:
    """Files as regions at 0 s; directories' audio files (sorted); every audio region of an Ardour session, named by
    its .ardour file or by its folder (a folder with one .ardour file at its top)."""
    from .ardour_adapter import session_file_of, session_regions

    items: list[BatchItem] = []
    for item in map(Path, inputs):
        session = session_file_of(item) if item.suffix == ".ardour" or item.is_dir() else None
        if session is not None:
            for found in session_regions(session):
                region = found.region
                items.append(BatchItem(region.path, region, found.tempo, f"{found.track}-{found.name}",
                                       {"session": str(session), "track": found.track, "region": found.name,
                                        "start_s": region.start_s, "source_duration_s": region.duration_s}))
        elif item.is_dir():
            items += [BatchItem(str(p), Region.from_file(p), None, p.stem, {}) for p in
                      sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())]
        else:  # a missing or odd file becomes that region's error, not the whole batch's
            items.append(BatchItem(str(item), Region.from_file(item), None, item.stem, {}))
    return items


def record(head: dict, midi: Path, result: JobResult, *, fingerprint: dict) -> dict:
    """One entry of a batch's index.json, from its `head` (entry_head); writes the region's .mid when it has one. A
    converted region's entry keeps its `fingerprint` (plugin_host.resume), so a rerun can tell whether the .mid
    still stands."""
    if result.error is not None:
        return {**head, "error": {"code": result.error.code, "message": str(result.error)}}
    write_file(midi, result.smf, whole=True)
    clip = result.clip
    truncated = {} if clip.truncated_at_s is None else {"truncated_at_s": clip.truncated_at_s}
    return {**head, "midi": str(midi), "position_s": clip.position_s, "duration_s": clip.duration_s,
            **truncated, "notes": len(clip.notes), **fingerprint}


def truncation_warning(source: str, truncated_at_s: float, duration_s: float) -> str:
    """The stderr line for a clip transcribed with --allow-truncated from a file cut short."""
    return (f"midibridge: warning [{Code.AUDIO_TRUNCATED}]: {source} is truncated: its audio stops {truncated_at_s:.3f} s "
            f"into the {duration_s:.3f} s region, so the clip has no notes after that")


class ProgressLine:
    """A one-line progress bar on stderr, when stderr is a terminal: regions and seconds of audio done."""

    def __init__(self, total: int):
        self.overall = OverallProgress(total)
        self.audio_s = 0.0
        self.live = sys.stderr.isatty()

    def update(self, progress: Progress) -> None:
        self._draw(self.overall.update(progress))

    def done(self, result: JobResult) -> None:
        if result.clip is not None:
            self.audio_s += result.clip.duration_s
        self._draw(self.overall.done(result.index))

    def _draw(self, share: float) -> None:
        if self.live:
            filled = round(30 * share)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.overall.finished}/{self.overall.total} "
                             f"regions, {self.audio_s:.1f} s of audio {share:4.0%}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")
            self.live = False


def ardour_convert(args: argparse.Namespace) -> int:
    from midibridge.model.presets import load_preset

    from .ardour_adapter import convert_session

    load_preset(args.preset)  # an unknown preset stops here: before Ardour starts, the backup and the save
    lines = convert_session(Path(args.session), tracks=args.tracks, preset=args.preset,
                            keep_previous=args.keep_previous, in_process=args.in_process)
    for line in lines:
        outcome = f"{line.notes} notes" if line.error is None else f"FAILED {line.error}"
        if line.earlier:
            regions = ("the MIDI region an earlier run" if line.earlier == 1 else
                       f"the {line.earlier} MIDI regions earlier runs") + " made from it"
            outcome += f"; kept {regions} beside the new one" if args.keep_previous else f"; replaced {regions}"
        print(f"{line.track}\t{line.position_s:.6f} s\t{outcome}")
    failed = sum(line.error is not None for line in lines)
    replaced = "" if args.keep_previous or not any(line.earlier for line in lines) else \
        " (one Edit > Undo in Ardour brings back what it replaced)"
    print(f"converted {len(lines) - failed} of {len(lines)} regions; the session is saved{replaced}")
    return 1 if failed else 0


def install(args: argparse.Namespace) -> int:
    scripts_dir = Path(args.scripts_dir) if args.scripts_dir else None
    if args.daw == "ardour":
        from .ardour_adapter import INSTALL_HELP, install_scripts

        written, help_text = install_scripts(scripts_dir), INSTALL_HELP
    else:
        from .reaper_adapter import INSTALL_HELP, install_scripts

        written, help_text = install_scripts(scripts_dir, preset=args.preset), INSTALL_HELP
    for path in written:
        print(f"installed {path}")
    print(help_text)
    return 0


def host_transcribe(args: argparse.Namespace) -> int:
    from .host_lines import read_requests, transcribe

    requests = read_requests(Path(args.requests))
    transcribe(requests, preset=args.preset, where="in-process" if args.in_process else "daemon")
    return 0


def serve(args: argparse.Namespace) -> int:
    from midibridge.bridge.daemon import Daemon, DaemonConfig

    logging.basicConfig(level=logging.INFO, format="midibridge serve: %(message)s")
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    retries = args.job_retries or 0
    if args.cluster:  # a worker a CPU slot (0: as many as the cluster has); a job on a lost node runs again
        workers, retries = args.workers or 0, 2 if args.job_retries is None else args.job_retries
    config = DaemonConfig(endpoint=args.endpoint, workers=workers, threads_per_worker=args.threads,
                          max_queued=args.queue, result_ttl_s=args.result_ttl, cache_entries=args.cache,
                          allowed_roots=args.allow_root, curve=args.curve, job_retries=retries,
                          grace_s=args.grace, progress_timeout_s=args.progress_timeout,
                          interactive_workers=args.interactive_workers, model_path=args.model, cluster=args.cluster)
    return Daemon(config).run()  # a DaemonError (cannot_serve) is said as every error is, by cli.main


def ping(args: argparse.Namespace) -> int:
    found = _running_daemon()
    if found is None:
        return 1
    with _client_of(found) as client:
        started = time.perf_counter()
        info = client.hello()
        round_trip_ms = (time.perf_counter() - started) * 1000
    print(f"midibridge daemon at {found['endpoint']}: pid {info['pid']}, {info['protocol']}, package "
          f"{info['package_version']}, {info['workers']} workers, model {info['model']['sha256'][:12]}…, "
          f"round trip {round_trip_ms:.1f} ms")
    return 0


def status(args: argparse.Namespace) -> int:
    found = _running_daemon()
    if found is None:
        return 1
    with _client_of(found) as client:
        info = client.status()
    counts = ", ".join(f"{n} {state}" for state, n in info["counts"].items())
    print(f"midibridge daemon at {found['endpoint']} (pid {found['pid']}): {info['queued']} queued; jobs: "
          f"{counts}; {len(info['workers'])} workers ({info['workers_replaced']} replaced), "
          f"{info['cache_entries']} cached results{'' if info['accepting'] else '; stopping'}")
    for worker in info["workers"]:
        doing = f"job {worker['job_id']}" if worker["job_id"] else ("idle" if worker["ready"] else "starting")
        kept = " (kept for interactive jobs)" if worker["interactive_only"] else ""
        print(f"  worker {worker['identity']} pid {worker['pid']}{kept}: {doing}")
    return 0


def _running_daemon() -> dict | None:
    """The discovery record of the daemon on the default endpoint; None, said on stdout, when none runs there."""
    found = discovery.read_discovery()
    if found is None:
        print(f"no midibridge daemon is running on {discovery.default_endpoint()}; start one with `midibridge serve` "
              f"(set {ENDPOINT_ENV} to reach a daemon on another endpoint)")
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
    broken = [preset for preset in listed if preset.error is not None]
    for preset in broken:
        print(f"midibridge: error [{preset.error.code}]: preset {preset.name!r} ({preset.path}) cannot be used: fix "
              f"the file (`midibridge presets validate {preset.path}` says what is wrong) or remove it",
              file=sys.stderr)
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
    """Install the weights fetched from a wheel (Basic Pitch's, the only ones); say where the others come from."""
    from midibridge.model.engines import ENGINES

    fetched = {name: kind for name, kind in ENGINES.items() if kind.installable}
    for name, kind in fetched.items():
        path = kind.weights.install_weights(wheel=args.wheel, force=args.force)
        print(f"{name}: {kind.weights.WEIGHTS_FILE_NAME} installed and verified: {path}")
    for name, kind in ENGINES.items():
        if name not in fetched:
            print(f"{name}: {kind.weights.WEIGHTS_FILE_NAME}, {kind.weights.SOURCE}, needs no install "
                  f"(`midibridge model info` checks it)")
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


def write_file(path: Path, data: bytes, *, whole: bool = False) -> None:
    """Write `data` to `path`. `whole`: to a temporary name beside it, then renamed over it, so an interrupted batch
    never leaves half a file; only for regular files (convert's -o may be /dev/stdout or a pipe)."""
    target = path.with_name(f".{path.name}.partial") if whole else path
    try:
        target.write_bytes(data)
        if whole:
            os.replace(target, path)
    except OSError as error:
        if whole:
            target.unlink(missing_ok=True)
        raise ClientError(Code.OUTPUT_UNWRITABLE, f"cannot write {path}: {error.strerror}. Choose another path.") \
            from error


def print_clip(clip: Clip, output: Path) -> None:
    print(f"wrote {output}: {len(clip.notes)} notes, clip at {clip.position_s:.3f} s, "
          f"{clip.duration_s:.2f} s long, {clip.bpm:g} BPM")
    if not clip.notes:
        print("no notes found (silent or unpitched audio)")
        return
    print(f"{'start_s':>9} {'end_s':>9} {'pitch':>5} {'name':>4} {'velocity':>8} {'bends':>5}")
    for note in clip.notes:
        print(f"{note.start_s:9.3f} {note.end_s:9.3f} {note.pitch:5d} {note_name(note.pitch):>4} "
              f"{note.velocity:8d} {len(note.bends):5d}")
