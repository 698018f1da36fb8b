"""Finding the daemon that serves an endpoint, or starting `midibridge serve` in the background when none does."""

from __future__ import annotations

import subprocess
import sys
import time

from midibridge.bridge import discovery

from .client import START_TIMEOUT_S, Client
from .results import ClientError, DaemonUnavailable


def ensure_daemon(*, endpoint: str | None = None, timeout_s: float = START_TIMEOUT_S) -> dict:
    """The discovery record of the daemon serving `endpoint` (default: the default endpoint), starting
    `midibridge serve` in the background when none does.

    Two commands starting one at once both succeed: the daemon that wins the
    endpoint serves them both. A daemon that answers on the endpoint although
    its discovery file is gone is used as it is.
    """
    endpoint = endpoint or discovery.default_endpoint()
    record = discovery.read_discovery(endpoint) or _answering(endpoint)
    if record:
        return record
    runtime = discovery.runtime_dir()
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = runtime / "daemon.log"
    command = [sys.executable, "-m", "midibridge.plugin_host.cli", "serve", "--endpoint", endpoint]
    # A daemon outlives this command: it keeps its own copy of the log's handle, and holds no one's working folder.
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=runtime
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = discovery.read_discovery(endpoint)
        if record:
            with Client(endpoint, timeout_s=5.0, retries=2) as client:
                client.hello()
            return record
        if process.poll() is not None:
            record = discovery.read_discovery(endpoint) or _answering(endpoint)  # another command's daemon won
            if record:
                return record
            said = log_path.read_text(errors="replace").strip().splitlines()
            raise DaemonUnavailable(
                f"could not start the midibridge daemon on {endpoint}: "
                f"{said[-1] if said else 'it exited'} (log: {log_path})"
            )
        time.sleep(0.05)
    raise DaemonUnavailable(
        f"the midibridge daemon on {endpoint} did not start within {timeout_s:g} s (log: {log_path})"
    )


def _answering(endpoint: str) -> dict | None:
    """A record for a midibridge daemon that answers `hello` on `endpoint` without a discovery file; else None."""
    try:
        with Client(endpoint, timeout_s=0.5, retries=0) as client:
            info = client.hello()
    except ClientError:
        return None
    return {"endpoint": endpoint, "pid": info["pid"], "protocol": info["protocol"], "public_key": None}
