"""A real Ray cluster on loopback for the cluster tests: `ray start` processes, one CPU slot each.

Each node has an address of its own in 127.0.0.0/8 (127.0.0.2 for the head,
then .3, .4 …), so nothing Ray sends leaves loopback: Ray turns 127.0.0.1
itself into the machine's outward address. Usage statistics are off. Every
node runs `ray start --block` in a process group of its own, so killing the
group, and the workers its raylet started (each in a session of its own), is
a node dying with everything on it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from daemon_helpers import free_port

RAY = str(Path(sys.executable).parent / "ray")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # for every process the tests start: nodes, drivers, daemons
ENV = dict(os.environ)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class LoopbackCluster:
    """`nodes` Ray nodes on 127.0.0.2, .3, …, one CPU slot each; `env` is the nodes' environment (a fault to inject)."""

    def __init__(self, *, nodes: int = 2, env: dict = ENV):
        self.env = env
        self.ips: dict[subprocess.Popen, str] = {}
        # Short: Ray's Unix sockets live under it, and a socket path may not pass 107 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="mbray-")
        port = free_port()
        self.address = f"127.0.0.2:{port}"
        self.nodes: list[subprocess.Popen] = []
        self._start("127.0.0.2", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}")
        for _ in range(nodes - 1):
            self.add_node()

    def _start(self, ip: str, *args: str) -> subprocess.Popen:
        node = subprocess.Popen(
            [RAY, "start", "--num-cpus=1", "--disable-usage-stats", "--block", f"--node-ip-address={ip}", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.nodes.append(node)
        self.ips[node] = ip
        self.wait_for(alive=len(self.nodes))
        return node

    def add_node(self) -> subprocess.Popen:
        return self._start(f"127.0.0.{len(self.nodes) + 2}", f"--address={self.address}")

    def kill(self, node: subprocess.Popen) -> None:
        """The node dies at once, as a machine that loses power: SIGKILL to it and everything it started."""
        for pid in [*descendants(node.pid), node.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait()

    def state(self) -> dict:
        """What the head says now: nodes alive and CPU slots free (asked from a driver of its own)."""
        script = (
            f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
            "print(json.dumps({'alive': sum(n['Alive'] for n in ray.nodes()), "
            "'free_cpus': ray.available_resources().get('CPU', 0)}))"
        )
        done = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def wait_for(self, *, timeout_s: float = 60.0, **wanted) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                state = self.state()
                if all(state[key] == value for key, value in wanted.items()):
                    return state
            except (subprocess.SubprocessError, ValueError, IndexError):
                state = None  # the head is still starting
            if time.monotonic() > deadline:
                raise TimeoutError(f"the loopback Ray cluster never reached {wanted}; last seen {state}")
            time.sleep(0.5)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.poll() is None:
                self.kill(node)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
