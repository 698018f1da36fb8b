"""REAPER: install the two actions (a ReaScript in Python, made from plugin_host/reaper/midibridge_reaper.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .scripts import midibridge_command, write_scripts

SOURCE = Path(__file__).parent / "reaper" / "midibridge_reaper.py"
ACTIONS = {"midibridge_convert_selected_items.py": "selected", "midibridge_convert_all_tracks.py": "all"}

INSTALL_HELP = """In REAPER: Actions > Show action list > New action > Load ReaScript, and pick the two
midibridge_*.py files (they need REAPER's Python support: Options > Preferences > Plug-ins >
ReaScript, "Enable Python for use with ReaScript"). "convert selected items" transcribes the
selected audio items; "convert all tracks" every audio item. Each item's notes land in a new MIDI
item at the item's position, on a track "<track> MIDI" below it, replacing the MIDI item an
earlier run made from that item; one undo step undoes a run.
Bind them to keys or toolbar buttons from the same action list."""


def default_scripts_dir() -> Path:
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "REAPER"
    elif sys.platform == "win32":
        base = Path(os.environ["APPDATA"]) / "REAPER"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "REAPER"
    return base / "Scripts" / "midibridge"


def assemble(scope: str, *, command: str, preset: str | None = None) -> str:
    return (
        SOURCE.read_text() + f"\n\n# Made by `midibridge install reaper`: edit {SOURCE} instead.\n"
        f"MB_COMMAND = {command!r}\nmain({scope!r}, preset={preset!r})\n"
    )


def install_scripts(scripts_dir: Path | None = None, *, preset: str | None = None) -> list[Path]:
    return write_scripts(
        scripts_dir or default_scripts_dir(),
        {name: assemble(scope, command=midibridge_command(), preset=preset) for name, scope in ACTIONS.items()},
    )
