"""The daemon's workers as Ray actors (`serve --cluster`, and the private daemon of a `batch --cluster`): a studio's
DAWs and batches share a cluster through one daemon whose workers stay warm.

Each worker is an ordinary midibridge worker (bridge.worker.run) living in
a Ray actor of one CPU slot: it connects back to the daemon's worker socket
over TCP and speaks the worker dialect as a local worker does, so queueing,
priorities, progress, cancel, the heartbeat watchdog and job retries are the
daemon's own. That socket listens where the cluster reaches this machine;
it is CURVE with fresh keys, and lets in only the key pair the daemon gives
its actors (through Ray). The only module that imports Ray, and only when
`--cluster` is given.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from typing import Any

from midibridge.model.vocabulary import Code

from .protocol import BridgeError
from .security import WorkerKeys

try:
    import ray
    from ray.exceptions import RayError
except ImportError:  # the `cluster` extra is not installed: connect() says how to install it
    ray = RayError = None  # type: ignore[assignment,misc]

CONNECT_TIMEOUT_S = 5.0


class ClusterError(BridgeError):
    """A cluster the daemon cannot work on. `code`: cluster_not_installed (no Ray here: the `cluster` extra) or
    cluster_unavailable (no Ray cluster at the address, or no CPU slot in it)."""


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": $RAY_ADDRESS) as its driver."""
    if ray is None:
        raise ClusterError(
            Code.CLUSTER_NOT_INSTALLED,
            "--cluster needs Ray, which is not installed here. Install the extra: pip install 'midibridge[cluster]'",
        )
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise ClusterError(
                Code.CLUSTER_UNAVAILABLE,
                "--cluster auto takes the address from RAY_ADDRESS, which "
                "is not set. Set it (host:port of the head node), or give "
                "the address",
            )
    _check_reachable(address)
    # The driver's own task events only list its submissions in Ray's dashboard; flushing them held every
    # exit for 0.25 s. The actors' events (what ran where) are still reported.
    os.environ.setdefault("RAY_task_events_report_interval_ms", "0")
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError(
            Code.CLUSTER_UNAVAILABLE,
            f"cannot join a Ray cluster at {address}: {error}. Start one with `ray start --head`, or check the address",
        ) from error


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at `address`: Ray itself retries an absent head for minutes."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except ValueError:
        raise ClusterError(
            Code.CLUSTER_UNAVAILABLE,
            f"{address!r} is not a Ray address: give HOST:PORT of the "
            f"head node (as `ray start --head` prints it), or auto",
        ) from None
    except OSError as error:
        raise ClusterError(
            Code.CLUSTER_UNAVAILABLE,
            f"no Ray cluster answers at {address} "
            f"({error.strerror or error}). Start one with `ray start "
            f"--head`, or check the address",
        ) from None


class ClusterWorkers:
    """The daemon's link to the cluster: where its worker socket listens, its keys, and how a worker starts."""

    def __init__(self, address: str):
        connect(address)  # says how to install Ray when it is missing
        if self.slots() < 1:
            ray.shutdown()
            raise ClusterError(
                Code.CLUSTER_UNAVAILABLE,
                "the Ray cluster has no CPU slots: start its nodes with --num-cpus of at least 1",
            )
        self.keys = WorkerKeys.fresh()
        self.endpoint = f"tcp://{ray.util.get_node_ip_address()}:*"  # the daemon binds, then says the port

    @staticmethod
    def slots() -> int:
        return int(ray.cluster_resources().get("CPU", 0))

    def launch(self, identity: bytes, endpoint: str, *, preload: tuple[str, ...] = ()) -> ActorProcess:
        return ActorProcess(endpoint, identity.decode(), self.keys.for_workers(), preload)

    @staticmethod
    def close() -> None:
        ray.shutdown()


class ActorProcess:
    """A worker in a Ray actor, shaped as the Popen the daemon's WorkerPool expects."""

    def __init__(self, endpoint: str, identity: str, keys: WorkerKeys, preload: tuple[str, ...]):
        self.actor = _RemoteWorker.remote()
        self._pid = self.actor.pid.remote()  # answered before `serve` takes the actor for good
        self._serving = self.actor.serve.remote(endpoint, identity, keys, preload)
        self.returncode: int | None = None
        self.failure: str | None = None  # why Ray says the actor ended, for the daemon's log

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
            except RayError as error:  # the actor died, or its node did, or it could not start there
                self.returncode = -9
                self.failure = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return self.returncode

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)
        self.returncode = -9 if self.returncode is None else self.returncode

    terminate = kill

    def wait(self, timeout: float | None = None) -> int:
        """A killed actor counts as gone at once: the daemon's loop never waits on a node that may be dead."""
        if self.returncode is None and not ray.wait([self._serving], timeout=timeout)[0]:
            raise subprocess.TimeoutExpired("ray actor", timeout or 0)
        code = self.poll()
        assert code is not None, "killed, or its serve call returned: either way it has a code"
        return code


class _WorkerActor:
    def pid(self) -> int:
        return os.getpid()

    def serve(self, endpoint: str, identity: str, keys: WorkerKeys, preload: tuple[str, ...]) -> int:
        from .worker import run

        # One CPU slot: one onnxruntime thread. Its node is named as Ray names it, as the cluster's user knows it.
        return run(endpoint, identity, threads=1, keys=keys, preload=preload, node=ray.util.get_node_ip_address())


# Never restarted by Ray: a lost worker is the daemon's to replace, as a local one is.
_RemoteWorker: Any = None if ray is None else ray.remote(num_cpus=1, max_restarts=0)(_WorkerActor)
