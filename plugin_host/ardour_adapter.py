"""Ardour: install the action scripts, convert a saved session headless, and read a session's audio regions.

The Lua in plugin_host/ardour/ is put together here: a line that says how to
run midibridge, the core (shared) and the editor helpers (action scripts only).
Action scripts cannot `require`, and Ardour keeps only an action's `factory`
function (dumped to bytecode, see LuaScripting::get_factory_bytecode): so all
of that goes inside the factory, where the wrapper's marker line is. The
headless script has the marker too, at its top.
"""

from __future__ import annotations

import bisect
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from midibridge.model.clip import Tempo
from midibridge.model.presets import available_presets
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code

from .results import ClientError
from .scripts import midibridge_command, write_scripts

LUA = Path(__file__).parent / "ardour"
ACTIONS = {"midibridge_convert_selected.lua": "convert_selected.lua", "midibridge_convert_all.lua": "convert_all.lua"}
ARDOUR_LUA = "ardour7-lua"
TICKS_PER_BEAT = 1920
SUPERCLOCKS_PER_SECOND = 282_240_000.0  # Ardour 7's default timebase, when a session file does not say


class ArdourError(ClientError):
    """Ardour is missing or failed (`ardour`), or the session or a track named is not there."""


MARKER = "-- @MIDIBRIDGE@"
PRESETS_PLACEHOLDER = "@PRESETS@"


def assemble(wrapper: str, *, command: str, editor: bool) -> str:
    parts = ["midibridge_core.lua"] + (["midibridge_editor.lua"] if editor else [])
    code = f"local MB_COMMAND = [==[{command}]==]\n\n" + "\n".join((LUA / part).read_text() for part in parts)
    header = f"-- Made by `midibridge install ardour` from {', '.join(parts + [wrapper])} in {LUA}: edit those.\n"
    # The preset prompt lists the presets there are when the script is installed: a list typed in would go stale.
    text = (LUA / wrapper).read_text().replace(PRESETS_PLACEHOLDER, ", ".join(sorted(available_presets())))
    before, _, after = text.partition(MARKER)
    return header + before.rstrip(" \t") + code + "\n" + after.partition("\n")[2]  # the marker's line goes


def default_scripts_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Preferences" / "Ardour7" / "scripts"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ardour7" / "scripts"


def install_scripts(scripts_dir: Path | None = None) -> list[Path]:
    return write_scripts(
        scripts_dir or default_scripts_dir(),
        {name: assemble(wrapper, command=midibridge_command(), editor=True) for name, wrapper in ACTIONS.items()},
    )


INSTALL_HELP = """In Ardour: Edit > Lua Scripts > Script Manager > Action Scripts, pick an empty slot, Add/Set,
and choose "midibridge: convert selected regions to MIDI" (and, in another slot, "midibridge:
convert all audio tracks to MIDI (batch)"); set the preset there, and whether a run replaces (or
keeps) the MIDI regions an earlier run made from the same audio regions. Each becomes a button in the
editor toolbar's script area and an entry under Edit > Lua Scripts; to bind a key, open
Window > Keyboard Shortcuts, search "Lua", and assign one to that script slot's action.
A slot keeps its own copy of the script from when it was set: after installing a new midibridge,
Add/Set its slots again."""


@dataclass(frozen=True)
class SessionLine:
    """One line of a headless run's report. `earlier`: the MIDI regions earlier runs made from this audio region
    that the run found (and replaced, unless kept)."""

    track: str
    position_s: float
    notes: int | None
    error: str | None = None
    earlier: int = 0


def convert_session(
    session: Path,
    *,
    tracks: list[str],
    preset: str | None,
    keep_previous: bool = False,
    in_process: bool = False,
    echo=print,
) -> list[SessionLine]:
    """Run the conversion over a saved session (its folder or .ardour file) with ardour7-lua; the session file is
    backed up first. The tracks are checked against the session file before anything starts."""
    session_file = find_session_file(session)
    _check_tracks(session_file, tracks)
    if shutil.which(ARDOUR_LUA) is None:
        raise ArdourError(
            Code.ARDOUR,
            f"{ARDOUR_LUA} (Ardour 7's headless Lua interpreter) is not installed: "
            f"`sudo apt install ardour`, or run `make setup`",
        )
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = session_file.with_name(f"{session_file.name}.before-midibridge-{stamp}")
    shutil.copy2(session_file, backup)
    echo(f"backed up {session_file.name} to {backup.name}")
    script = assemble("headless.lua", command=midibridge_command(in_process=in_process), editor=False)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="midibridge-", delete=False) as file:
        file.write(script)
    try:
        return _run_headless(
            Path(file.name), session_file, [preset or "", "keep" if keep_previous else "replace", *tracks]
        )
    finally:
        os.unlink(file.name)


def _run_headless(script: Path, session_file: Path, args: list[str]) -> list[SessionLine]:
    command = [ARDOUR_LUA, str(script), str(session_file.parent.resolve()), session_file.stem, *args]
    lines, fatal = [], None
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL
    ) as process:
        for raw in process.stdout or ():
            kind, _, rest = raw.rstrip("\n").partition(" ")
            if kind != "MB":
                continue  # Ardour's own chatter
            fields = rest.split("\t")
            if fields[0] == "REGION":
                lines.append(SessionLine(fields[1], float(fields[2]), int(fields[3]), earlier=int(fields[4])))
            elif fields[0] == "FAILED":
                lines.append(SessionLine(fields[1], float(fields[2]), None, f"{fields[3]}: {fields[4]}"))
            elif rest.startswith("FATAL"):
                fatal = rest.removeprefix("FATAL ")
    if fatal or process.returncode:
        raise ArdourError(
            Code.ARDOUR, f"{ARDOUR_LUA} failed on {session_file}: {fatal or f'exit status {process.returncode}'}"
        )
    return lines


def session_file_of(path: Path) -> Path | None:
    """The Ardour session `path` names: a .ardour file, or the one .ardour file at the top of a folder (a
    session's folder); None for a folder with none. A folder with several (snapshots) is refused, naming them."""
    path = Path(path)
    if path.suffix == ".ardour":
        if not path.is_file():
            raise ArdourError(
                Code.ARDOUR_SESSION, f"{path} does not exist: pass an Ardour session's folder or its .ardour file"
            )
        return path
    found = sorted(p for p in path.glob("*.ardour") if p.is_file()) if path.is_dir() else []
    if len(found) > 1:
        raise ArdourError(
            Code.ARDOUR_SESSION,
            f"{path} holds {len(found)} Ardour session files ({', '.join(p.name for p in found)}): "
            f"pass the one you mean, e.g. {found[0]}",
        )
    return found[0] if found else None


def find_session_file(session: Path) -> Path:
    """The .ardour file of `session` (a session's folder, or the file itself); ArdourError when it names none."""
    found = session_file_of(session)
    if found is None:
        reason = (
            "holds no .ardour file"
            if Path(session).is_dir()
            else "is not an Ardour session"
            if Path(session).exists()
            else "does not exist"
        )
        raise ArdourError(
            Code.ARDOUR_SESSION, f"{session} {reason}: pass an Ardour session's folder or its .ardour file"
        )
    return found


def _check_tracks(session_file: Path, names: list[str]) -> None:
    """Refuse track names that are not audio tracks of the session, naming the ones there are."""
    there = list(_audio_tracks(_read_xml(session_file)).values())
    missing = [name for name in names if name not in there]
    if missing:
        listed = ", ".join(there) if there else "none"
        raise ArdourError(
            Code.UNKNOWN_TRACK,
            f"{session_file.name} has no audio track named {', '.join(map(repr, missing))}; its audio "
            f"tracks: {listed}. Pass names as Ardour shows them, or leave out --tracks for all of them",
        )


# Reading a session file (read-only), for `midibridge batch SESSION` ----------------


@dataclass(frozen=True)
class SessionRegion:
    track: str
    name: str
    region: Region
    tempo: Tempo


def session_regions(session_file: Path) -> list[SessionRegion]:
    """Every audio region of every audio track of a saved Ardour 7 session: source, trim, position, tempo there."""
    root = _read_xml(session_file)
    tempo_map = _TempoMap(root.find("TempoMap"))
    search = [session_file.parent / "interchange" / root.get("name", session_file.stem) / "audiofiles"]
    for option in root.iter("Option"):
        if option.get("name") == "audio-search-path" and option.get("value"):
            search += [Path(p) for p in option.get("value").split(":")]
    sources = {s.get("id"): s.get("name") for s in root.iter("Source") if s.get("type") == "audio"}
    tracks = _audio_tracks(root)
    found = []
    playlists = root.find("Playlists")
    for playlist in playlists if playlists is not None else ():
        track = tracks.get(playlist.get("id"))
        if track is None or playlist.get("type") != "audio":
            continue
        for region in playlist.findall("Region"):
            length, _, position = region.get("length").partition("@")
            start_s = tempo_map.seconds(region.get("start"))
            position_s = tempo_map.seconds(position)
            duration_s = tempo_map.seconds(length)
            source = _resolve(sources.get(region.get("source-0"), ""), search)
            found.append(
                SessionRegion(
                    track,
                    region.get("name"),
                    Region.from_file(source, start_s=start_s, duration_s=duration_s, position_s=position_s),
                    tempo_map.tempo_at(position_s),
                )
            )
    return sorted(found, key=lambda r: (r.track, r.region.position_s))


def _read_xml(session_file: Path):
    try:
        return ElementTree.parse(session_file).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ArdourError(
            Code.ARDOUR_SESSION, f"cannot read the Ardour session file {session_file}: {error}"
        ) from error


def _audio_tracks(root) -> dict[str, str]:
    """{playlist id: track name} of a session file's audio tracks (a MIDI track has a midi-playlist instead)."""
    return {r.get("audio-playlist"): r.get("name") for r in root.iter("Route") if r.get("audio-playlist")}


def _resolve(name: str, search: list[Path]) -> str:
    if os.path.isabs(name):
        return name
    for directory in search:
        if (directory / name).exists():
            return str(directory / name)
    return str(search[0] / name)  # missing: the region's job will say so


class _TempoMap:
    """Ardour 7's tempo map as saved: constant tempo and meter points, times as a<superclock> or b<ticks>."""

    def __init__(self, node):
        rate = node.get("superclocks-per-second") if node is not None else None
        self.superclock = float(rate) if rate else SUPERCLOCKS_PER_SECOND
        self.tempos = [
            (int(t.get("sclock")), float(t.get("npm")) * 4 / float(t.get("note-type")), _beats(t.get("quarters")))
            for t in (node.iter("Tempo") if node is not None else ())
        ]
        self.tempos = sorted(self.tempos) or [(0, 120.0, 0.0)]
        self.meters = sorted(
            (
                int(m.get("sclock")),
                float(m.get("divisions-per-bar")) * 4 / float(m.get("note-value")),
                _beats(m.get("quarters")),
            )
            for m in (node.iter("Meter") if node is not None else ())
        )
        self.meters = self.meters or [(0, 4.0, 0.0)]

    def seconds(self, value: str) -> float:
        if value.startswith("a"):
            return int(value[1:]) / self.superclock
        quarters = int(value[1:]) / TICKS_PER_BEAT
        index = max(bisect.bisect_right([t[2] for t in self.tempos], quarters) - 1, 0)
        sclock, qpm, at_quarters = self.tempos[index]
        return sclock / self.superclock + (quarters - at_quarters) * 60.0 / qpm

    def quarters(self, seconds: float) -> float:
        index = max(bisect.bisect_right([t[0] / self.superclock for t in self.tempos], seconds) - 1, 0)
        sclock, qpm, at_quarters = self.tempos[index]
        return at_quarters + (seconds - sclock / self.superclock) * qpm / 60.0

    def tempo_at(self, seconds: float) -> Tempo:
        index = max(bisect.bisect_right([t[0] / self.superclock for t in self.tempos], seconds) - 1, 0)
        meter = max((m for m in self.meters if m[0] / self.superclock <= seconds), default=self.meters[0])
        bar_offset = (self.quarters(seconds) - meter[2]) % meter[1]
        return Tempo(bpm=self.tempos[index][1], beats_per_bar=meter[1], bar_offset_beats=bar_offset)


def _beats(text: str | None) -> float:
    """Ardour's "B:T" beats (1920 ticks a beat) as a number of quarter notes."""
    beats, _, ticks = (text or "0:0").partition(":")
    return int(beats) + int(ticks or 0) / TICKS_PER_BEAT
