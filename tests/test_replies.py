"""Every reply a real daemon sends, to every request and for every way a job ends, matches its table in
bridge.headers.REPLIES: the replies' spec is the one a client writer reads, and it cannot drift from the daemon."""

import dataclasses
import time

import numpy as np
import pytest
from daemon_helpers import DaemonProcess

from midibridge.bridge import headers as h
from midibridge.bridge import protocol as p
from midibridge.model.vocabulary import Stage


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    home = tmp_path_factory.mktemp("replies")
    broken = home / "config" / "midibridge" / "presets" / "broken.toml"
    broken.parent.mkdir(parents=True)
    broken.write_text("schema = = 2")  # listed by `presets` with its error
    running = DaemonProcess(home, "--interactive-workers", "0", workers=1)  # one worker: a batch's jobs queue
    yield running
    running.stop()


class Replies:
    """One client socket; every reply it gets is checked against its table as it comes, and kept."""

    def __init__(self, sock):
        self.sock, self.seen = sock, []

    def send(self, kind: str, request_id: str, header: dict | None = None) -> None:
        self.sock.send_multipart(p.encode(kind, request_id, header))

    def wait(self, wanted, timeout_s: float = 60.0) -> p.Message:
        deadline = time.monotonic() + timeout_s
        while not (found := [m for m in self.seen if wanted(m)]):
            assert self.sock.poll(max(deadline - time.monotonic(), 0) * 1000), "no such reply came"
            message = p.decode(self.sock.recv_multipart())
            h.check_reply(message)  # raises, naming the field, for a reply off its table
            self.seen.append(message)
        return found[0]

    def ask(self, kind: str, request_id: str, header: dict | None = None) -> p.Message:
        self.send(kind, request_id, header)
        return self.wait(lambda m: m.request_id == request_id)

    def end_of(self, job_id: str) -> p.Message:
        return self.wait(lambda m: m.kind in (p.RESULT, p.ERROR) and m.header.get("job_id") == job_id)


def test_every_reply_the_daemon_sends_matches_its_table(daemon, piano_line):
    replies = Replies(daemon.raw())
    hello = replies.ask(p.HELLO, "hello")
    listing = replies.ask(p.PRESETS, "presets")
    regions = [
        {"path": str(piano_line), "duration_s": 1.0},
        {"path": str(piano_line), "duration_s": 1.5},
        {"path": "/nowhere/take.wav"},
    ]
    done, second, missing = replies.ask(p.BATCH, "batch", {"regions": regions}).header["job_ids"]
    ends = [replies.end_of(job_id) for job_id in (done, second, missing)]
    status = replies.ask(p.STATUS, "status", {"job_ids": [done, missing, "never-was"]})
    replies.ask(p.STATUS, "unfinished")
    again = replies.ask(p.TRANSCRIBE, "again", {"region": regions[0]})
    cached = replies.end_of(again.header["job_ids"][0])
    fetched = replies.ask(p.FETCH, "fetch", {"job_id": done})
    replies.ask(p.FETCH, "fetch-unknown", {"job_id": "never-was"})
    replies.ask(p.CANCEL, "cancel", {"job_ids": [done, "never-was"]})
    replies.ask(p.TRANSCRIBE, "bad", {"region": {"path": "relative.wav"}})
    opened = replies.ask(p.STREAM, "open", {"action": "open", "preset": "lead", "sample_rate_hz": 16000})
    stream = {"stream_id": opened.header["stream_id"]}
    replies.sock.send_multipart(
        p.encode(p.STREAM, "audio", {"action": "audio", **stream, "seq": 0}, [np.zeros(512, "<f4").tobytes()])
    )
    replies.wait(lambda m: m.request_id == "audio")
    replies.ask(p.STREAM, "close", {"action": "close", **stream})
    replies.ask(p.SHUTDOWN, "shutdown")
    replies.sock.close()

    assert {m.kind for m in replies.seen} == set(h.REPLIES), "every kind of reply was seen, and checked"
    queued = [m for m in replies.seen if m.kind == p.PROGRESS and m.header["stage"] == Stage.QUEUED]
    assert queued and all("jobs_ahead" in m.header for m in queued)
    assert "error" in {entry["name"]: entry for entry in listing.header["presets"]}["broken"]
    assert [m.kind for m in ends] == [p.RESULT, p.RESULT, p.ERROR] and cached.header["cached"]
    assert status.header["jobs"][1]["error"] == ends[2].header and status.header["jobs"][2]["state"] == "unknown"
    assert fetched.kind == p.RESULT and fetched.buffers == ends[0].buffers

    # The hello of a newer minor version, with a field of its own, is still read; one without its limits is not.
    h.check_reply(dataclasses.replace(hello, header={**hello.header, "engines": [{"name": "basic-pitch"}]}))
    limits = {k: v for k, v in hello.header["limits"].items() if k != "max_queued"}
    with pytest.raises(p.ProtocolError, match=r"^reply hello limits: max_queued is required \(a whole number\)$"):
        h.check_reply(dataclasses.replace(hello, header={**hello.header, "limits": limits}))
