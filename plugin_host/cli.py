"""The `midibridge` command: its arguments; plugin_host.commands does the work.

Start-up stays lean: numpy, onnxruntime and pedalboard are imported only by
the commands that transcribe in this process, and only when they run.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys

from midibridge.bridge.discovery import default_endpoint
from midibridge.bridge.protocol import ENDPOINT_ENV, MAX_BATCH_REGIONS, PROTOCOL_ID, package_version
from midibridge.model.clip import DEFAULT_BPM
from midibridge.model.engines import ENGINES
from midibridge.model.errors import MidibridgeError

from . import commands


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "ship_audio", False) and not args.cluster:
        parser.error("--ship-audio sends the audio to a Ray cluster's nodes: give --cluster ADDRESS as well")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except MidibridgeError as error:
        print(f"midibridge: error [{error.code}]: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `midibridge convert … | head`: the reader left, which is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0


def _live(args: argparse.Namespace) -> int:
    from .live import run  # JACK, numpy and the model load for this command only

    return run(args)


class _Version(argparse.Action):
    """--version: the package's version is read only when asked (importlib.metadata cost every start 17 ms)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"midibridge {package_version()} (protocol {PROTOCOL_ID.decode()})")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midibridge", description="Turn audio into MIDI clips for your DAW.")
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    convert = sub.add_parser("convert", help="transcribe an audio file (or a region of it) to a MIDI file")
    convert.add_argument("input", help="audio file: WAV, FLAC, AIFF, MP3 or OGG")
    convert.add_argument("--start", type=float, default=0.0, metavar="S", help="offset into the file, seconds")
    convert.add_argument(
        "--duration", type=float, default=None, metavar="S", help="length of the region, seconds (default: to the end)"
    )
    convert.add_argument(
        "--position", type=float, default=0.0, metavar="S", help="where the region sits on the host's timeline, seconds"
    )
    _job_options(convert)
    convert.add_argument("--model", default=None, metavar="PATH", help="Basic Pitch's nmp.onnx (runs in this process)")
    convert.add_argument(
        "--threads",
        type=_count(0),
        default=0,
        metavar="N",
        help="onnxruntime threads in this process (default 0: one per core)",
    )
    convert.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="OUT.mid",
        help="MIDI file to write (default: INPUT's name with .mid, in the current directory)",
    )
    convert.add_argument("--json", action="store_true", help="print the clip as JSON instead of a table")
    convert.set_defaults(run=commands.convert)

    batch = sub.add_parser(
        "batch",
        help="transcribe many files, every audio file of a directory, or every audio "
        "region of an Ardour session file (read only)",
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, directories or SESSION.ardour files")
    batch.add_argument(
        "-o",
        "--output-dir",
        default="midi",
        metavar="DIR",
        help="where the .mid files and index.json go (default ./midi)",
    )
    where = _job_options(batch)
    where.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="run on the Ray cluster whose head is at ADDRESS (HOST:PORT; auto: $RAY_ADDRESS), one "
        "actor per CPU slot; every node reads the inputs at their paths here, unless "
        "--ship-audio. Needs the extra: pip install 'midibridge[cluster]'",
    )
    batch.add_argument(
        "--ship-audio",
        action="store_true",
        help="with --cluster: send each file's bytes to the nodes instead of having them read it",
    )
    batch.set_defaults(run=commands.batch)

    serve = sub.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument(
        "--endpoint",
        default=default_endpoint(),
        help=f"tcp://HOST:PORT or ipc://PATH (default ${ENDPOINT_ENV} or {default_endpoint()}); any "
        f"address but loopback needs --curve",
    )
    serve.add_argument(
        "--workers",
        type=_count(0),
        default=None,
        help="worker processes (default: cores; with --cluster, the cluster's CPU slots)",
    )
    serve.add_argument("--threads", type=_count(0), default=0, metavar="N", help="onnxruntime threads per worker")
    serve.add_argument(
        "--interactive-workers",
        type=_count(0),
        default=1,
        metavar="N",
        help="workers kept for interactive jobs (a DAW's right-click, convert), so they never wait "
        "behind a batch (default 1)",
    )
    serve.add_argument(
        "--queue",
        type=_count(1),
        default=MAX_BATCH_REGIONS,
        metavar="N",
        help=f"jobs that may wait; more get `busy`, and a batch may hold at most this many regions "
        f"(default {MAX_BATCH_REGIONS})",
    )
    serve.add_argument(
        "--result-ttl",
        type=_seconds(above=0),
        default=600.0,
        metavar="S",
        help="how long finished results can be fetched by job id",
    )
    serve.add_argument("--cache", type=_count(0), default=256, metavar="N", help="results kept for repeated requests")
    serve.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory remote clients may read files under (repeatable)",
    )
    serve.add_argument(
        "--curve", action="store_true", help="CURVE encryption and client keys (required beyond loopback and ipc)"
    )
    serve.add_argument(
        "--job-retries",
        type=_count(0),
        default=None,
        metavar="N",
        help="times a job whose worker died is tried again (default 0: it fails; with --cluster 2)",
    )
    serve.add_argument(
        "--grace",
        type=_seconds(above=None),
        default=10.0,
        metavar="S",
        help="on SIGINT/SIGTERM, how long running jobs may finish",
    )
    serve.add_argument(
        "--progress-timeout",
        type=_seconds(above=0),
        default=60.0,
        metavar="S",
        help="a running job that makes no progress this long fails worker_hung, and its worker is "
        "replaced (default 60)",
    )
    serve.add_argument("--model", default=None, metavar="PATH")
    serve.add_argument(
        "--preload",
        action="append",
        default=[],
        choices=sorted(ENGINES),
        metavar="ENGINE",
        help="an engine every worker loads before it takes jobs, beside the default one (repeatable; "
        "the others load when a job first asks)",
    )
    serve.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="run the workers as actors on the Ray cluster whose head is at ADDRESS (HOST:PORT; "
        "auto: $RAY_ADDRESS), one per CPU slot, so every client of this daemon shares it; "
        "the nodes read files at the paths clients name, unless --ship-audio. Needs pip install "
        "'midibridge[cluster]'",
    )
    serve.add_argument(
        "--ship-audio",
        action="store_true",
        help="with --cluster: send each job's file to its worker instead of having its node read it",
    )
    serve.add_argument(
        "--private",
        action="store_true",
        help="plumbing for `batch --cluster`: a daemon for the command that starts it, which says "
        "on stdout when it serves (or why not), stops when its stdin closes, and ends its jobs "
        "when a worker cannot start",
    )
    serve.set_defaults(run=commands.serve)

    ardour = sub.add_parser("ardour", help="convert a saved Ardour session headless")
    ardour_commands = ardour.add_subparsers(title="ardour commands", metavar="ACTION")
    session = ardour_commands.add_parser("convert", help="every audio region of a session (closed in Ardour) to MIDI")
    session.add_argument(
        "session",
        metavar="SESSION",
        help="the session's folder, or its .ardour file (a snapshot's .ardour file converts that snapshot)",
    )
    session.add_argument("--tracks", nargs="+", default=[], metavar="NAME", help="only these audio tracks")
    session.add_argument(
        "--preset",
        default=None,
        metavar="NAME|PATH",
        help="processing preset (default: Basic Pitch's behaviour); see `midibridge presets list`",
    )
    session.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the MIDI regions earlier runs made from the same audio regions, beside the new "
        "ones (default: the new ones replace them)",
    )
    session.add_argument("--in-process", action="store_true", help="transcribe without the daemon")
    session.set_defaults(run=commands.ardour_convert)

    install = sub.add_parser("install", help="put midibridge's scripts where a DAW finds them")
    install.add_argument("daw", choices=("ardour", "reaper"))
    install.add_argument("--scripts-dir", default=None, metavar="DIR", help="instead of the DAW's own scripts folder")
    install.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help="REAPER: the preset the actions use (Ardour asks when you bind an action)",
    )
    install.set_defaults(run=commands.install)

    host = sub.add_parser("host", help="plumbing for DAW adapters")
    host_commands = host.add_subparsers(title="host commands", metavar="ACTION")
    lines = host_commands.add_parser(
        "transcribe", help='regions listed in a file in, notes out as lines (README: "Your own adapter")'
    )
    lines.add_argument("requests", metavar="REQUESTS")
    lines.add_argument("--preset", default=None, metavar="NAME|PATH")
    lines.add_argument("--in-process", action="store_true", help="transcribe without the daemon")
    lines.set_defaults(run=commands.host_transcribe)

    live = sub.add_parser("live", help="a JACK client: audio in, MIDI out while you play (swift-f0 presets)")
    live.add_argument(
        "--preset", default="lead", metavar="NAME|PATH", help="vocal, lead, strings-solo or bass (default: lead)"
    )
    live.add_argument("--input", nargs="+", default=[], metavar="PORT", help="JACK audio ports to connect to its in")
    live.add_argument("--midi-out", nargs="+", default=[], metavar="NAME", help="JACK MIDI ports to send its notes to")
    live.add_argument("--client-name", default="midibridge", metavar="NAME", help="its JACK client name")
    live.add_argument("--latency-report", action="store_true", help="print latency and work figures when it stops")
    live.set_defaults(run=_live)

    ping = sub.add_parser("ping", help="is a daemon running? its endpoint, version and round trip")
    ping.set_defaults(run=commands.ping)
    status = sub.add_parser("status", help="the running daemon's queue, jobs and workers")
    status.set_defaults(run=commands.status)

    presets = sub.add_parser("presets", help="list, show or check processing presets")
    preset_commands = presets.add_subparsers(title="preset commands", metavar="ACTION")
    preset_commands.add_parser("list", help="every preset a name reaches: name, source, description").set_defaults(
        run=commands.presets_list
    )
    show = preset_commands.add_parser("show", help="print a preset as TOML, defaults filled in")
    show.add_argument("preset", metavar="NAME|PATH")
    show.set_defaults(run=commands.presets_show)
    validate = preset_commands.add_parser("validate", help="check a preset file and say what is wrong")
    validate.add_argument("path", metavar="PATH")
    validate.set_defaults(run=commands.presets_validate)

    model = sub.add_parser("model", help="install or inspect the engines' weights")
    model_commands = model.add_subparsers(title="model commands", metavar="ACTION")
    weights = model_commands.add_parser(
        "install",
        help="fetch the weights that come from a wheel (basic-pitch's nmp.onnx, transkun's graphs) into the user data "
        "dir; the other engines' come with their packages",
    )
    weights.add_argument(
        "engines",
        nargs="*",
        metavar="ENGINE",
        help="only these engines: "
        + ", ".join(name for name, kind in ENGINES.items() if kind.installable)
        + " (default: all of them)",
    )
    weights.add_argument(
        "--wheel", default=None, metavar="PATH", help="the named ENGINE's wheel, read instead of a download"
    )
    weights.add_argument("--force", action="store_true", help="reinstall even when a good copy is there")
    weights.set_defaults(run=commands.model_install)
    info = model_commands.add_parser("info", help="print every engine's weights: path, hash, inputs and outputs")
    info.add_argument("--model", default=None, metavar="PATH", help="Basic Pitch's nmp.onnx to describe")
    info.set_defaults(run=commands.model_info)
    return parser


def _job_options(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """The options every transcribing command has; returns the group that says where the work runs."""
    parser.add_argument("--bpm", type=float, default=DEFAULT_BPM, help="host tempo (default 120)")
    parser.add_argument(
        "--beats-per-bar",
        type=float,
        default=4.0,
        metavar="N",
        help="host bar length in quarter notes, for quantising (default 4)",
    )
    parser.add_argument(
        "--preset",
        default=None,
        metavar="NAME|PATH",
        help="processing preset (default: Basic Pitch's behaviour); see `midibridge presets list`",
    )
    parser.add_argument(
        "--allow-truncated",
        action="store_true",
        help="a file cut short (error audio_truncated): transcribe the audio it still has, and say so",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--daemon",
        dest="daemon",
        action="store_const",
        const=True,
        default=None,
        help="go through the daemon, starting it if needed (default: when one is running)",
    )
    where.add_argument(
        "--in-process",
        dest="daemon",
        action="store_const",
        const=False,
        help="transcribe in this process even when a daemon runs",
    )
    return where


# Numbers a daemon's settings take, checked by argparse ("argument --queue: …", exit 2) before anything starts.
# The region's and the tempo's numbers are checked where they are made (Region, Tempo), for every caller alike.


def _count(minimum: int):
    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number ≥ {minimum}, not {text!r}")
        return value

    return count


def _seconds(*, above: float | None):
    """Seconds, finite; > `above`, or ≥ 0 when `above` is None."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (value <= above if above is not None else value < 0):
            bound = f"> {above:g}" if above is not None else "≥ 0"
            raise argparse.ArgumentTypeError(f"must be a finite number of seconds {bound}, not {text!r}")
        return value

    return seconds


def run() -> None:
    """The `midibridge` command as a process: main(), then exit with its status."""
    status = main()
    # Exiting, the interpreter collects garbage once more over every object the command made, which the process's
    # end frees anyway; frozen, they are left out (a 10 s convert's exit 70 -> 30 ms).
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
