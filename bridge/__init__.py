"""midibridge's daemon: the ZeroMQ wire protocol (protocol, discovery, security), its lifecycle (daemon), requests,
jobs, its workers (supervisor, worker_pool, worker; ray_workers on a cluster) and the replies (outbox). No DAWs."""
