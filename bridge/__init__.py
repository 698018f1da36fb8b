"""midibridge's daemon: the ZeroMQ wire protocol (protocol, discovery, security), its lifecycle (daemon), requests,
jobs, the worker processes (supervisor, workers, worker) and the replies (outbox). No DAWs."""
