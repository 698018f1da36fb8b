"""`midibridge serve --cluster`: the daemon's workers as Ray actors, so a studio's DAWs and batches share a cluster
through one daemon whose workers stay warm.

Each worker is an ordinary midibridge worker (bridge.worker.run) living in
a Ray actor of one CPU slot: it connects back to the daemon's worker socket
over TCP and speaks the worker dialect as a local worker does, so queueing,
priorities, progress, cancel, the heartbeat watchdog and job retries are the
daemon's own. That socket listens where the cluster reaches this machine;
it is CURVE with fresh keys, and lets in only the key pair the daemon gives
its actors (through Ray). Imported only when `serve --cluster` is given.
"""

from __future__ import annotations

import os
import subprocess

from . import cluster
from .cluster import RayError, ray
from .security import WorkerKeys


class ClusterWorkers:
    """The daemon's link to the cluster: where its worker socket listens, its keys, and how a worker starts."""

    def __init__(self, address: str):
        cluster.connect(address)  # says how to install Ray when it is missing
        self.keys = WorkerKeys.fresh()
        self.endpoint = f"tcp://{ray.util.get_node_ip_address()}:*"  # the daemon binds, then says the port

    @staticmethod
    def slots() -> int:
        return int(ray.cluster_resources().get("CPU", 0))

    def launch(self, identity: bytes, endpoint: str) -> ActorProcess:
        return ActorProcess(endpoint, identity.decode(), self.keys.for_workers())

    @staticmethod
    def close() -> None:
        ray.shutdown()


class ActorProcess:
    """A worker in a Ray actor, shaped as the Popen the daemon's WorkerPool expects."""

    def __init__(self, endpoint: str, identity: str, keys: WorkerKeys):
        self.actor = _RemoteWorker.remote()
        self._pid = self.actor.pid.remote()  # answered before `serve` takes the actor for good
        self._serving = self.actor.serve.remote(endpoint, identity, keys)
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        ready, _ = ray.wait([self._pid], timeout=0)
        try:
            return ray.get(self._pid) if ready else None
        except RayError:
            return None

    def poll(self) -> int | None:
        if self.returncode is None and ray.wait([self._serving], timeout=0)[0]:
            try:
                self.returncode = ray.get(self._serving)
            except RayError:  # the actor died, or its node did
                self.returncode = -9
        return self.returncode

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)
        self.returncode = -9 if self.returncode is None else self.returncode

    terminate = kill

    def wait(self, timeout: float | None = None) -> int:
        """A killed actor counts as gone at once: the daemon's loop never waits on a node that may be dead."""
        if self.returncode is None and not ray.wait([self._serving], timeout=timeout)[0]:
            raise subprocess.TimeoutExpired("ray actor", timeout or 0)
        return self.poll()


class _WorkerActor:
    def pid(self) -> int:
        return os.getpid()

    def serve(self, endpoint: str, identity: str, keys: WorkerKeys) -> int:
        from .worker import run

        return run(endpoint, identity, threads=1, keys=keys)  # one CPU slot: one onnxruntime thread


# Never restarted by Ray: a lost worker is the daemon's to replace, as a local one is.
_RemoteWorker = None if ray is None else ray.remote(num_cpus=1, max_restarts=0)(_WorkerActor)
