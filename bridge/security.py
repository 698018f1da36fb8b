"""Who may talk to the daemon: loopback and ipc by default, CURVE with allowed client keys for anything else.

Keys live in the user config dir: `curve/server.key` and `.key_secret` (made
on first use), and `curve/clients/*.key`, the public keys of the clients
allowed in. A remote client may read only files under the allowed roots.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import platformdirs
import zmq
import zmq.auth

from midibridge.model.vocabulary import Code

from .protocol import ProtocolError

WORKER_ZAP_DOMAIN = "midibridge-workers"


def curve_dir() -> Path:
    return platformdirs.user_config_path("midibridge") / "curve"


def clients_dir() -> Path:
    return curve_dir() / "clients"


def is_local_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and TCP on a loopback address."""
    parsed = urlparse(endpoint)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = (parsed.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or "*": not provably loopback


def is_local_peer(address: str | None) -> bool:
    """The peer of a received frame ("Peer-Address" metadata): ipc and loopback peers are local."""
    if not address:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def server_keys() -> tuple[bytes, bytes]:
    """(public, secret) of this daemon, made on first use."""
    directory = curve_dir()
    secret_file = directory / "server.key_secret"
    if not secret_file.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        zmq.auth.create_certificates(str(directory), "server")
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:  # a file holding only a public key where the secret one belongs
        raise ProtocolError(Code.CANNOT_SERVE, f"{secret_file} holds no secret key: delete {directory} and start again")
    return public, secret


def enable_curve_server(socket: zmq.Socket, context: zmq.Context):
    """Make `socket` a CURVE server that lets in only the keys in clients_dir(); returns the authenticator and public
    key."""
    from zmq.auth.asyncio import AsyncioAuthenticator

    public, secret = server_keys()
    clients = clients_dir()
    clients.mkdir(parents=True, exist_ok=True)
    authenticator = AsyncioAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(clients))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return authenticator, public


@dataclass(frozen=True)
class WorkerKeys:
    """CURVE keys for a worker socket that other machines reach (workers on a Ray cluster): the daemon's, and
    the one key pair its workers share. Made fresh by each daemon; its workers get them through Ray."""

    server_public: bytes
    server_secret: bytes
    worker_public: bytes
    worker_secret: bytes

    @classmethod
    def fresh(cls) -> WorkerKeys:
        return cls(*zmq.curve_keypair(), *zmq.curve_keypair())

    def for_workers(self) -> WorkerKeys:
        """What a worker needs: the daemon's secret key stays with the daemon."""
        return WorkerKeys(self.server_public, b"", self.worker_public, self.worker_secret)

    def secure_worker(self, socket: zmq.Socket) -> None:
        socket.curve_serverkey = self.server_public
        socket.curve_publickey, socket.curve_secretkey = self.worker_public, self.worker_secret

    def secure_daemon(self, socket: zmq.Socket, context: zmq.Context, authenticator):
        """Make `socket` a CURVE server that lets in only the workers' key (its own ZAP domain); returns the
        context's authenticator, started here when the daemon had none."""
        if authenticator is None:
            from zmq.auth.asyncio import AsyncioAuthenticator

            authenticator = AsyncioAuthenticator(context)
            authenticator.start()
        authenticator.configure_curve_callback(domain=WORKER_ZAP_DOMAIN, credentials_provider=self)
        socket.zap_domain = WORKER_ZAP_DOMAIN.encode()
        socket.curve_secretkey, socket.curve_publickey = self.server_secret, self.server_public
        socket.curve_server = True
        return authenticator

    def callback(self, domain: str, key: bytes) -> bool:  # zmq.auth's credentials provider
        return domain == WORKER_ZAP_DOMAIN and key == self.worker_public  # both Z85


def check_path_allowed(path: str, roots: list[str]) -> None:
    """Refuse, for a remote client, a path outside every allowed root (after resolving links and ..)."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if os.path.commonpath([real, base]) == base:
            return
    allowed = ", ".join(roots) if roots else "none configured (serve --allow-root DIR)"
    raise ProtocolError(
        Code.FORBIDDEN,
        f"remote clients may read files only under the allowed roots ({allowed}), "
        f"not {path}; or send the samples inline",
    )
