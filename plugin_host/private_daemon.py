"""A daemon for one command: `batch --cluster` runs its regions through a `midibridge serve --private` of its own, on
an endpoint only this user reaches, and stops it when the batch ends, however it ends.

The daemon says on its stdout, as one JSON line, that it serves or why it
cannot (bridge.daemon: e.g. `cluster_unavailable`, raised here with its
code and message). It stops when its stdin closes, which this process holds:
so also when this process is killed. It runs in a session of its own, so a
Ctrl-C reaches only this process, which cancels its jobs and then stops it.
What it logs (warnings: a lost node, a region that runs again) goes to this
process's stderr.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from .results import ClientError, DaemonUnavailable

STOP_TIMEOUT_S = 30.0  # for it to cancel what runs, stop its workers and leave the cluster


@contextmanager
def private_daemon(*options: str) -> Iterator[str]:
    """The endpoint of a `midibridge serve --private OPTIONS` that serves for as long as the `with` block runs."""
    folder = tempfile.mkdtemp(prefix="midibridge-")  # 0700: nobody else reaches the socket in it
    endpoint = f"ipc://{folder}/daemon.sock"
    process = subprocess.Popen(
        [sys.executable, "-m", "midibridge.plugin_host.cli", "serve", "--private", "--endpoint", endpoint, *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
        cwd=folder,
    )
    lifeline, said = process.stdin, process.stdout
    assert lifeline is not None and said is not None, "both are pipes"
    try:
        _wait_until_serving(process, said)
        yield endpoint
    finally:
        lifeline.close()  # it cancels what still runs and stops
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        said.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_serving(process: subprocess.Popen, stdout: IO[bytes]) -> None:
    said = stdout.readline()
    try:
        report = json.loads(said)
    except ValueError:
        report = {}
    if "serving" in report:
        return
    if "code" in report:
        raise ClientError(report["code"], report["message"])
    raise DaemonUnavailable(
        f"the midibridge daemon started for this command exited (status {process.wait()}) "
        f"before it served; what it said is above"
    )
