"""A client written from bridge/PROTOCOL.md's "Live streams" alone: it opens a stream, sends a played line as the
periods of a host's audio, reads the events as they are decided, and closes it; the daemon's refusals are the
document's. Raw frames with json and pyzmq, nothing from midibridge, against `midibridge serve` as a user starts it
(tests/conformance_peer.py)."""

import numpy as np
from conformance_peer import (  # noqa: F401, F811 (the module's daemon, as pytest fixtures)
    RATE_HZ,
    ask,
    audio,
    daemon,
    frames,
    receive,
    refused,
    sock,
    tones,
)

LINE = [(64, 0.5, 0.9), (67, 1.0, 1.4), (60, 1.5, 2.1), (72, 2.3, 2.8)]
PERIOD = 512  # samples per block, as a host's audio period


def open_stream(sock, request_id: str = "o1", **fields) -> dict:
    reply = ask(sock, frames("stream", request_id, {"action": "open", "sample_rate_hz": RATE_HZ, **fields}))
    assert reply.kind == "stream" and reply.request_id == request_id, reply
    return reply.header


def block(stream_id: str, seq: int, samples: np.ndarray, request_id: str = "a") -> list[bytes]:
    header = {"action": "audio", "stream_id": stream_id, "seq": seq}
    return frames("stream", f"{request_id}{seq}", header, samples.astype("<f4").tobytes())


def test_a_line_streamed_in_periods_comes_back_as_its_notes_in_order_and_close_ends_the_last(daemon, sock):
    opened = open_stream(sock, preset="lead")
    assert opened["action"] == "open" and opened["stream_id"] and opened["events"] == []
    assert opened["sample_rate_hz"] == RATE_HZ and 0.0 < opened["lookahead_s"] <= 0.1

    line = np.concatenate([tones(LINE, 3.0), np.zeros(RATE_HZ // 2, np.float32)])
    blocks = [line[i : i + PERIOD] for i in range(0, len(line), PERIOD)]
    events, answered = [], []
    for seq, samples in enumerate(blocks):
        sock.send(block(opened["stream_id"], seq, samples))
        if seq >= 8:  # a client keeps a few blocks in flight, no more
            reply = receive(sock)
            answered.append(reply.header["seq"])
            events += reply.header["events"]
    while len(answered) < len(blocks):
        reply = receive(sock)
        assert reply.kind == "stream" and reply.header["action"] == "audio", reply
        answered.append(reply.header["seq"])
        events += reply.header["events"]
    assert answered == list(range(len(blocks))), "one reply per block, in the order they were sent"

    closed = ask(sock, frames("stream", "c1", {"action": "close", "stream_id": opened["stream_id"]}))
    assert closed.kind == "stream" and closed.header["action"] == "close"
    events += closed.header["events"]

    assert [e["time_s"] for e in events] == sorted(e["time_s"] for e in events)
    assert all(set(e) == {"kind", "time_s", "pitch", "velocity", "semitones"} for e in events)
    ons = [(e["pitch"], e["time_s"]) for e in events if e["kind"] == "note_on"]
    assert [pitch for pitch, _ in ons] == [p for p, _, _ in LINE]
    assert all(abs(time_s - start_s) < 0.05 for (_, time_s), (_, start_s, _) in zip(ons, LINE))
    assert all(1 <= e["velocity"] <= 127 for e in events if e["kind"] == "note_on")
    assert [e["kind"] for e in events if e["kind"] != "bend"] == ["note_on", "note_off"] * len(LINE)
    assert events[-1]["kind"] == "note_off"


def test_a_preset_that_cannot_stream_is_refused_and_says_which_can(sock):
    error = refused(sock, frames("stream", "o2", {"action": "open", "sample_rate_hz": 48000, "preset": "default"}))
    assert error["code"] == "cannot_stream"
    assert "vocal" in error["message"] and "lead" in error["message"]
    assert refused(sock, frames("stream", "o3", {"action": "open", "sample_rate_hz": 1e7}))["code"] == (
        "invalid_sample_rate"
    )


def test_a_stream_belongs_to_the_socket_that_opened_it_and_ends_at_close(daemon, sock):
    opened = open_stream(sock, "o4")
    other = daemon.socket()
    try:
        error = refused(other, block(opened["stream_id"], 0, np.zeros(PERIOD)))
        assert error["code"] == "unknown_stream"
    finally:
        other.close()
    assert ask(sock, frames("stream", "c2", {"action": "close", "stream_id": opened["stream_id"]})).kind == "stream"
    error = refused(sock, block(opened["stream_id"], 1, np.zeros(PERIOD)))
    assert error["code"] == "unknown_stream"


def test_a_malformed_stream_request_is_refused_at_once(sock):
    opened = open_stream(sock, "o5")
    stream_id = opened["stream_id"]
    assert refused(sock, frames("stream", "m1", {"action": "rewind", "stream_id": stream_id}))["code"] == (
        "invalid_header"
    )
    no_buffer = frames("stream", "m2", {"action": "audio", "stream_id": stream_id, "seq": 0})
    assert refused(sock, no_buffer)["code"] == "invalid_header"
    half_sample = frames("stream", "m3", {"action": "audio", "stream_id": stream_id, "seq": 0}, b"\0\0\0")
    assert refused(sock, half_sample)["code"] == "invalid_samples"
    assert refused(sock, frames("stream", "m4", {"action": "close"}))["code"] == "invalid_header"
    assert ask(sock, frames("stream", "c3", {"action": "close", "stream_id": stream_id})).kind == "stream"
