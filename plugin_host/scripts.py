"""What the DAW adapters' scripts share: the command they run midibridge with, and how they are installed."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def midibridge_command(*, in_process: bool = False) -> str:
    """The shell command a DAW script runs to transcribe: this installation's `midibridge host transcribe`."""
    console = Path(sys.executable).parent / "midibridge"
    base = (
        shlex.quote(str(console))
        if console.exists()
        else f"{shlex.quote(sys.executable)} -m midibridge.plugin_host.cli"
    )
    return f"{base} host transcribe" + (" --in-process" if in_process else "")


def write_scripts(directory: Path, scripts: dict[str, str]) -> list[Path]:
    """Write {file name: text} into `directory` (made if missing); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in scripts.items():
        (directory / name).write_text(text)
        written.append(directory / name)
    return written
