"""midibridge's daemon: the ZeroMQ wire protocol, the job queue and the worker processes."""
