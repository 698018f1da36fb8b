"""Finding a running daemon: one discovery file per endpoint, written by the daemon that serves it.

Standard library only, like the protocol. A daemon on a private endpoint
(`serve --endpoint ipc:///some/private.sock`) writes the record of that
endpoint only, so the default lookup (the default endpoint, or
$MIDIBRIDGE_ENDPOINT) never sends anyone's jobs to it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from .protocol import DEFAULT_ENDPOINT, ENDPOINT_ENV


def default_endpoint() -> str:
    """$MIDIBRIDGE_ENDPOINT, or DEFAULT_ENDPOINT: where `serve` binds and clients look when told nothing else."""
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def runtime_dir() -> Path:
    """Where running daemons leave their discovery files: $XDG_RUNTIME_DIR/midibridge, or a private temp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "midibridge"
    return Path(tempfile.gettempdir()) / f"midibridge-{os.getuid()}"


def discovery_path(endpoint: str) -> Path:
    """The discovery file of `endpoint`: its name is the endpoint with every run of other characters made `_`."""
    return runtime_dir() / f"daemon-{re.sub(r'[^A-Za-z0-9.-]+', '_', endpoint)}.json"


def read_discovery(endpoint: str | None = None) -> dict | None:
    """The record ({endpoint, pid, protocol, public_key}) of the live daemon serving `endpoint` (default: the
    default endpoint), or None when none does."""
    endpoint = endpoint or default_endpoint()
    try:
        record = json.loads(discovery_path(endpoint).read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.get("endpoint") == endpoint else None


def write_discovery(record: dict) -> None:
    """Publish a daemon's record, atomically (a reader never sees half a file)."""
    path = discovery_path(record["endpoint"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    os.replace(partial, path)


def remove_discovery(endpoint: str, pid: int) -> None:
    """Remove `endpoint`'s record if it is still the one daemon `pid` wrote."""
    record = read_discovery(endpoint)
    if record and record.get("pid") == pid:
        discovery_path(endpoint).unlink(missing_ok=True)


def port_holder(endpoint: str) -> str | None:
    """Which process listens on a tcp endpoint's port, as "pid N (command line)", from /proc; None when unknown."""
    match = re.fullmatch(r"tcp://[^:]+:(\d+)", endpoint)
    if not match:
        return None
    port = int(match.group(1))
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {pid} ({command.strip()})"
        except OSError:
            continue
    return None
