"""Worker-side fuzzing: a real worker that says what it should not, and the daemon still answers every job once.

The daemon's own worker process runs each job for real, then (through the
`scripted` fault of tests/faults/sitecustomize.py) sends hypothesis-drawn
messages just before and after its true answer: well-formed ones out of
order (a result for a job it was never given, progress after its result,
two results, a `job` of its own), and broken ones (not the worker protocol,
another version, headers of the wrong types, not JSON or over 1 MiB, the
wrong number of buffers, too few frames, text that is not UTF-8). What the
daemon must make of them is what bridge.headers' worker table says it can
read: the first message it cannot read fails the job `internal` (if it is
still open) and the worker is replaced; a readable answer for the job ends
it; anything else is a late word, ignored. Whatever was sent, the job gets
exactly one result or error, naming its job and request; no job stays
running; `hello` is answered. A process the daemon never started, talking
on the workers' socket, is not heard at all. `pytest --long` tries 300 jobs.
"""

import json
import time

import pytest
import zmq
from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from test_fuzz import JSON

from midibridge.bridge import headers
from midibridge.bridge import protocol as p

WORKER = p.WORKER_PROTOCOL_ID
# A well-formed header and buffers for each worker message type; the fuzzing starts from these.
MIDI, CLIP = (
    b"MThd\0\0\0\6\0\1\0\1\3\xc0",
    json.dumps({"position_s": 0, "duration_s": 1, "bpm": 120, "mpe": False, "notes": []}).encode(),
)
WELL_FORMED = {
    p.W_READY: ({"pid": 1, "model_sha256": "0" * 64, "package_version": p.package_version(), "node": "here"}, []),
    p.W_HEARTBEAT: ({}, []),
    p.W_PROGRESS: ({"stage": "infer", "fraction": 0.5}, []),
    p.W_RESULT: ({"note_count": 0}, [MIDI, CLIP]),
    p.W_ERROR: ({"code": "audio_unreadable", "message": "scripted"}, []),
    p.W_JOB: ({"region": {"path": "/a.wav"}, "preset": {}, "tempo": {}}, []),  # the daemon's to send, not a worker's
    p.W_CANCEL: ({}, []),
}
HUGE_HEADER = json.dumps({"stage": "infer", "fraction": 0.5, "padding": "x" * p.MAX_HEADER_BYTES}).encode()


@st.composite
def worker_message(draw) -> list[bytes]:
    kind = draw(st.sampled_from(sorted(WELL_FORMED)))
    header, buffers = dict(WELL_FORMED[kind][0]), list(WELL_FORMED[kind][1])
    frames = [WORKER, kind.encode(), draw(st.sampled_from([b"{job}", b"{job}", b"never-given", b""])), None]
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(st.sampled_from(["protocol", "type", "id", "field", "drop", "header", "buffers", "frames"]))
        if mutation == "protocol":
            frames[0] = draw(
                st.sampled_from([p.PROTOCOL_ID, b"midibridge-worker/3.0", b"midibridge-worker/", b"", b"\xff\xfe"])
                | st.binary(max_size=24)
            )
        elif mutation == "type":
            frames[1] = draw(
                st.sampled_from([b"", b"\xff", b"results", b"PROGRESS", b"hello"])
                | st.text(max_size=10).map(str.encode)
            )
        elif mutation == "id":
            frames[2] = draw(st.sampled_from([b"\xff\xfe", b"{job}"]) | st.binary(max_size=12))
        elif mutation == "field":  # a known field of the wrong type, or a field the daemon sets itself
            name = draw(st.sampled_from([*header, "job_id", "cached", "note_count", "code"]))
            header[name] = draw(JSON | st.sampled_from([float("nan"), float("inf"), 2**70, -1, True]))
        elif mutation == "drop" and header:
            del header[draw(st.sampled_from(sorted(header)))]
        elif mutation == "header":
            frames[3] = draw(st.sampled_from([b"{not json", b"[]", b"null", b"", HUGE_HEADER]) | st.binary(max_size=24))
        elif mutation == "buffers":
            buffers = draw(st.lists(st.binary(max_size=32), max_size=3))
        elif mutation == "frames":
            return frames[: draw(st.integers(1, 3))]  # frames 0 to 2 are set by now
    if frames[3] is None:
        frames[3] = json.dumps(header).encode()
    return [*frames, *buffers]


def readable(frames: list[bytes], job_id: str) -> p.Message | None:
    """The message as the daemon reads it, or None if it cannot."""
    try:
        message = p.decode([job_id.encode() if f == b"{job}" else f for f in frames], protocol_id=WORKER)
        headers.check_worker_message(message)
    except p.ProtocolError:
        return None
    return message


def expected_end(before: list, job_id: str) -> tuple[str, str | None]:
    """The job's one answer: the first unreadable message fails it; a readable answer for it ends it; else its own."""
    for frames in before:
        message = readable(frames, job_id)
        if message is None:
            return p.ERROR, "internal"
        if message.kind in (p.W_RESULT, p.W_ERROR) and message.request_id == job_id:
            return message.kind, message.header.get("code")
    return p.RESULT, None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-workers")
    script = home / "script.json"
    running = DaemonProcess(home, "--interactive-workers", "0", workers=1, fault=f"scripted:{script}")
    running.script = script
    running.audio = write_audio(
        home / "short.wav", synthesize([Note(64, 0.05, 0.4, 100)], sample_rate_hz=22050, length_s=0.5), 22050
    )
    yield running
    assert running.process.poll() is None, "the daemon survived its workers"
    running.stop()


class Journal:
    """Every reply a client socket gets, filed by job: how many answers each job had is counted, not assumed."""

    def __init__(self, sock):
        self.sock, self.replies = sock, {}

    def read(self, timeout_s: float) -> p.Message | None:
        if not self.sock.poll(timeout_s * 1000):
            return None
        message = p.decode(self.sock.recv_multipart())
        self.replies.setdefault(message.header.get("job_id"), []).append(message)
        return message

    def ask(self, kind: str, request_id: str, header: dict) -> p.Message:
        self.sock.send_multipart(p.encode(kind, request_id, header))
        while (message := self.read(30.0)) is not None:
            if message.request_id == request_id and message.kind != p.PROGRESS:
                return message
        raise AssertionError(f"no answer to {kind}")

    def end_of(self, job_id: str) -> p.Message:
        deadline = time.monotonic() + 60
        while not any(r.kind in (p.RESULT, p.ERROR) for r in self.replies.get(job_id, [])):
            assert self.read(max(deadline - time.monotonic(), 0)) is not None, f"job {job_id} was never answered"
        return self.replies[job_id][-1]

    def answers(self, job_id: str) -> list[p.Message]:
        return [r for r in self.replies[job_id] if r.kind in (p.RESULT, p.ERROR)]


def settled(journal: Journal, replaced: int) -> dict:
    """Status once the daemon has replaced `replaced` workers in all and its worker is ready again."""
    deadline = time.monotonic() + 60
    while True:
        status = journal.ask(p.STATUS, "status", {}).header
        if status["workers_replaced"] == replaced and all(w["ready"] for w in status["workers"]):
            return status
        assert time.monotonic() < deadline, f"expected {replaced} workers replaced: {status}"
        time.sleep(0.1)


def test_whatever_a_worker_sends_each_job_gets_one_answer_and_a_misbehaving_worker_is_replaced(
    daemon, figures, long_run
):
    journal = Journal(daemon.raw())
    count = {"jobs": 0, "messages": 0, "replaced": 0}

    @settings(
        max_examples=300 if long_run else 25,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(before=st.lists(worker_message(), max_size=3), after=st.lists(worker_message(), max_size=2))
    @example(
        before=[[WORKER, b"result", b"never-given", b'{"note_count": 0}', MIDI, CLIP]],  # a job never given
        after=[
            [WORKER, b"progress", b"{job}", b'{"stage": "notes", "fraction": 1.0}'],  # progress after the end
            [WORKER, b"result", b"{job}", b'{"note_count": 0}', MIDI, CLIP],
        ],
    )  # a second result
    @example(before=[[WORKER, b"result", b"{job}", b'{"note_count": 0}', MIDI]], after=[])  # one buffer
    @example(before=[[WORKER, b"result", b"{job}", b'{"note_count": 2}', MIDI, CLIP]], after=[])  # notes miscounted
    @example(before=[[WORKER, b"result", b"{job}", b'{"note_count": 0}', b"RIFF", b"[]"]], after=[])  # not a clip
    @example(
        before=[
            [WORKER, b"progress", b"{job}", b'{"stage": "infer", "fraction": 0.5, "job_id": "other"}'],
            [WORKER, b"result", b"{job}", b'{"note_count": 0, "job_id": "other", "cached": true}', MIDI, CLIP],
        ],
        after=[],
    )  # fields that are the daemon's to set
    @example(before=[[WORKER, b"result", b"{job}", b'{"note_count": 0, "spare": NaN}', MIDI, CLIP]], after=[])
    @example(before=[[p.PROTOCOL_ID, b"progress", b"{job}", b'{"stage": "infer", "fraction": 0.5}']], after=[])
    @example(before=[[WORKER, b"progress", b"{job}", HUGE_HEADER]], after=[])
    def job_with_a_scripted_worker(before, after):
        count["jobs"] += 1
        n = count["jobs"]
        latin = [[f.decode("latin-1") for f in frames] for frames in before + after]
        daemon.script.with_suffix(".tmp").write_text(
            json.dumps({"before": latin[: len(before)], "after": latin[len(before) :]})
        )
        daemon.script.with_suffix(".tmp").replace(daemon.script)
        # A region of its own (position_s), so that the cache never answers for the worker.
        accepted = journal.ask(p.TRANSCRIBE, f"w{n}", {"region": {"path": str(daemon.audio), "position_s": n}})
        [job_id] = accepted.header["job_ids"]
        end = journal.end_of(job_id)
        if any(readable(frames, job_id) is None for frames in before + after):
            count["replaced"] += 1
        status = settled(journal, count["replaced"])
        count["messages"] += len(before) + len(after)

        assert (end.kind, end.header.get("code")) == expected_end(before, job_id), (before, end.header)
        assert all(r.request_id == f"w{n}" and r.header["job_id"] == job_id for r in journal.replies[job_id])
        if end.kind == p.RESULT:  # as a client reads it
            assert end.header["cached"] is False and end.buffers[0].startswith(b"MThd")
            assert len(json.loads(end.buffers[1])["notes"]) == end.header["note_count"]
        assert status["counts"].get("running", 0) == 0 and status["queued"] == 0
        assert journal.ask(p.HELLO, "alive", {}).kind == p.HELLO

    job_with_a_scripted_worker()
    time.sleep(0.5)  # a late second answer would come by now
    while journal.read(0.1):
        pass
    once = [job_id for job_id, replies in journal.replies.items() if job_id and len(journal.answers(job_id)) == 1]
    assert len(once) == count["jobs"], "every job answered exactly once"
    with daemon.client(timeout_s=30.0) as client:  # and a well-formed job still works
        assert client.hello()["workers"] == 1
    journal.sock.close()
    figures["worker messages fuzzed"] = count["messages"]
    figures["jobs answered once"] = len(once)
    figures["workers replaced"] = count["replaced"]
    figures["jobs left running"] = 0


def test_a_process_the_daemon_never_started_is_not_heard_on_the_workers_socket(daemon, figures):
    stranger = zmq.Context.instance().socket(zmq.DEALER)
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.setsockopt(zmq.ROUTING_ID, b"W-stranger")
    stranger.connect(f"ipc://{daemon.home}/run/midibridge/workers-{daemon.process.pid}.sock")
    journal = Journal(daemon.raw())
    replaced = journal.ask(p.STATUS, "before", {}).header["workers_replaced"]

    accepted = journal.ask(p.TRANSCRIBE, "real", {"region": {"path": str(daemon.audio), "position_s": 10_000}})
    [job_id] = accepted.header["job_ids"]
    lies = [
        [WORKER, b"ready", b"", json.dumps(WELL_FORMED[p.W_READY][0]).encode()],
        [WORKER, b"result", job_id.encode(), b'{"note_count": 0}', MIDI, CLIP],
        [WORKER, b"error", job_id.encode(), b'{"code": "internal", "message": "a lie"}'],
        [WORKER, b"progress", job_id.encode(), HUGE_HEADER],
        [b"garbage"],
    ]
    for frames in lies:
        stranger.send_multipart(frames)
    end = journal.end_of(job_id)
    status = settled(journal, replaced)
    stranger.close()
    journal.sock.close()

    assert end.kind == p.RESULT and json.loads(end.buffers[1])["notes"], "the real worker's answer, not the stranger's"
    assert [w["identity"] for w in status["workers"]] != ["W-stranger"]
    figures["worker messages fuzzed"] = figures.get("worker messages fuzzed", 0) + len(lies)
