"""The `midibridge` command.

Start-up stays lean: numpy, onnxruntime and pedalboard are imported only by
the commands that transcribe, and only when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from model.clip import DEFAULT_BPM, Clip
from model.errors import ModelError

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except ModelError as error:
        print(f"midibridge: error [{error.code}]: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `midibridge convert … | head`: the reader left, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midibridge", description="Turn audio into MIDI clips for your DAW.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    convert = commands.add_parser("convert", help="transcribe an audio file (or a region of it) to a MIDI file")
    convert.add_argument("input", help="audio file: WAV, FLAC, AIFF, MP3 or OGG")
    convert.add_argument("--start", type=float, default=0.0, metavar="S", help="offset into the file, seconds")
    convert.add_argument("--duration", type=float, default=None, metavar="S",
                         help="length of the region, seconds (default: to the end)")
    convert.add_argument("--position", type=float, default=0.0, metavar="S",
                         help="where the region sits on the host's timeline, seconds")
    convert.add_argument("--bpm", type=float, default=DEFAULT_BPM, help="host tempo (default 120)")
    convert.add_argument("--beats-per-bar", type=float, default=4.0, metavar="N",
                         help="host bar length in quarter notes, for quantising (default 4)")
    convert.add_argument("--preset", default=None, metavar="NAME|PATH",
                         help="processing preset (default: Basic Pitch's behaviour); see `midibridge presets list`")
    convert.add_argument("--model", default=None, metavar="PATH", help="Basic Pitch's nmp.onnx")
    convert.add_argument("--threads", type=int, default=0, metavar="N",
                         help="onnxruntime threads (default 0: one per core)")
    convert.add_argument("-o", "--output", default=None, metavar="OUT.mid",
                         help="MIDI file to write (default: INPUT's name with .mid, in the current directory)")
    convert.add_argument("--json", action="store_true", help="print the clip as JSON instead of a table")
    convert.set_defaults(run=_convert)

    presets = commands.add_parser("presets", help="list, show or check processing presets")
    preset_commands = presets.add_subparsers(title="preset commands", metavar="ACTION")
    listing = preset_commands.add_parser("list", help="every preset a name reaches: name, source, description")
    listing.set_defaults(run=_presets_list)
    show = preset_commands.add_parser("show", help="print a preset as TOML, defaults filled in")
    show.add_argument("preset", metavar="NAME|PATH")
    show.set_defaults(run=_presets_show)
    validate = preset_commands.add_parser("validate", help="check a preset file and say what is wrong")
    validate.add_argument("path", metavar="PATH")
    validate.set_defaults(run=_presets_validate)

    model = commands.add_parser("model", help="install or inspect the model weights")
    model_commands = model.add_subparsers(title="model commands", metavar="ACTION")
    install = model_commands.add_parser("install", help="fetch basic-pitch's nmp.onnx into the user data dir")
    install.add_argument("--wheel", default=None, metavar="PATH", help="use this basic-pitch wheel, no download")
    install.add_argument("--force", action="store_true", help="reinstall even when a good copy is there")
    install.set_defaults(run=_model_install)
    info = model_commands.add_parser("info", help="print the model's path, hash, inputs and outputs")
    info.add_argument("--model", default=None, metavar="PATH")
    info.set_defaults(run=_model_info)
    return parser


def _convert(args) -> int:
    from model.clip import Tempo
    from model.presets import load_preset
    from model.region import Region

    preset = load_preset(args.preset)  # a bad preset fails before the model loads
    tempo = Tempo(bpm=args.bpm, beats_per_bar=args.beats_per_bar)
    region = Region.from_file(args.input, start_s=args.start, duration_s=args.duration, position_s=args.position)
    output = Path(args.output) if args.output else Path(Path(args.input).stem + ".mid")

    from model.midi import clip_to_bytes
    from model.pipeline import Transcriber

    clip = Transcriber(model_path=args.model, threads=args.threads).transcribe(region, preset=preset, tempo=tempo)
    _write(output, clip_to_bytes(clip))
    if args.json:
        print(json.dumps(clip.to_dict()))
    else:
        _print_clip(clip, output)
    return 0


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ModelError(f"cannot write {path}: {error.strerror}. Choose another path with -o.",
                         code="output_unwritable") from error


def _print_clip(clip: Clip, output: Path) -> None:
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


def _presets_list(args) -> int:
    from model.presets import available_presets, read_preset

    for name, (source, path) in sorted(available_presets().items()):
        print(f"{name:18} {source:9} {read_preset(path, source=source).description}")
    return 0


def _presets_show(args) -> int:
    from model.presets import load_preset, preset_to_toml

    preset = load_preset(args.preset)
    print(f"# {preset.name}: from {preset.source}")
    print(preset_to_toml(preset), end="")
    return 0


def _presets_validate(args) -> int:
    from model.presets import read_preset

    preset = read_preset(Path(args.path), source=args.path)
    print(f"{args.path}: valid preset {preset.name!r} ({len(preset.chain)} processing steps)")
    return 0


def _model_install(args) -> int:
    from model.weights import install_model

    path = install_model(wheel=args.wheel, force=args.force)
    print(f"model installed and verified: {path}")
    return 0


def _model_info(args) -> int:
    from model.inference import Model

    info = Model(args.model).describe()
    print(f"path:   {info['path']}\nsha256: {info['sha256']}")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            print(f"{kind[:-1]:6}  {tensor['name']:28} {tensor['type']:14} {tensor['shape']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
