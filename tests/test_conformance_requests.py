"""A client written from bridge/PROTOCOL.md alone: every request, every reply, every default; the errors are
tests/test_conformance_errors.py's (it runs first, so the last test here counts every code provoked).

This module and its peer (tests/conformance_peer.py) know the daemon only as
the doc describes it: they start `midibridge serve`, wait for the discovery
file, and speak raw frames with json and pyzmq (nothing from midibridge). One daemon
(one worker, a queue of 2, a 1 s grace) serves the whole module; its last
test stops it. A second daemon, bound to a non-loopback address with CURVE,
plays the remote peer for `forbidden`.

Not here, as no client can provoke them: `worker_died`, `worker_hung` and
`internal` (tests/test_faults.py, tests/test_daemon_liveness.py and the
worker-side fuzzing in tests/test_fuzz_workers.py), `plugin_unavailable`
(tests/test_faults.py), `model_missing` and `model_corrupt` (tests/test_weights.py). A frame over
`max_frame_bytes` (256 MiB to send) costing its sender the connection is tests/test_fuzz.py's.
"""

import json
import socket
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from conformance_peer import (  # noqa: F401, F811 (the module's daemon, as pytest fixtures)
    PROVOKED,
    Served,
    ask,
    audio,
    daemon,
    frames,
    free_port,
    job_replies,
    receive,
    refused,
    run,
    sock,
    submit,
)

# Requests and their replies -------------------------------------------------------------------------


def test_the_discovery_file_names_the_endpoint_the_pid_and_the_protocol(daemon):
    assert daemon.record["endpoint"] == daemon.endpoint and daemon.record["pid"] == daemon.process.pid
    assert daemon.record["protocol"] == "midibridge/2.1" and daemon.record.get("public_key") is None


def test_hello_describes_the_daemon_and_its_limits_with_their_defaults(daemon, sock):
    reply = ask(sock, frames("hello", "h1", {"client": "conformance"}))

    assert reply.kind == "hello" and reply.request_id == "h1"
    assert reply.header["protocol"] == "midibridge/2.1" and reply.header["package_version"]
    assert set(reply.header["model"]) == {"name", "sha256"} and len(reply.header["model"]["sha256"]) == 64
    assert {"default", "piano", "vocal"} <= set(reply.header["presets"])
    assert reply.header["workers"] == 1 and reply.header["interactive_workers"] == 0
    assert reply.header["pid"] == daemon.process.pid
    assert reply.header["limits"] == {
        "max_frame_bytes": 256 << 20,
        "max_header_bytes": 1 << 20,
        "max_region_s": 4 * 3600,
        "max_batch_regions": 2,
        "max_queued": 2,  # a batch must fit the queue (--queue 2) whole
        "result_ttl_s": 600,
        "progress_timeout_s": 60,
        "cancel_timeout_s": 1,
    }
    assert ask(sock, frames("hello", "h2")).kind == "hello", "client is optional"


def test_hello_lists_every_engine_with_its_weights_name_and_sha256(sock):
    """2.1: `engines` says which weights each engine's results come from; `model` stays the default engine's."""
    reply = ask(sock, frames("hello", "h3"))
    engines = reply.header["engines"]

    assert set(engines) == {"basic-pitch", "swift-f0", "drums", "transkun"}
    assert all(set(e) == {"description", "weights", "sha256"} and e["description"] for e in engines.values())
    assert {name: e["weights"] for name, e in engines.items()} == {
        "basic-pitch": "nmp.onnx",
        "swift-f0": "model.onnx",
        "drums": "model.npz",
        "transkun": "transkun-2.0.onnx",
    }
    assert all(len(e["sha256"]) == 64 and int(e["sha256"], 16) >= 0 for e in engines.values())
    assert reply.header["model"] == {"name": "basic-pitch nmp.onnx", "sha256": engines["basic-pitch"]["sha256"]}


def test_a_client_of_an_older_minor_version_is_answered(sock):
    """Minor versions only add optional fields: a 2.0 client's hello gets the 2.1 answer, which it may read as 2.0."""
    reply = ask(sock, [b"midibridge/2.0", b"hello", b"v20", b"{}"])

    assert reply.kind == "hello" and reply.header["model"]["name"] == "basic-pitch nmp.onnx"


def test_presets_lists_each_with_its_source_and_description(sock):
    reply = ask(sock, frames("presets", "p1"))

    assert reply.kind == "presets" and reply.request_id == "p1"
    listed = {p["name"]: p for p in reply.header["presets"]}
    assert {"default", "vocal"} <= set(listed)
    assert all(
        set(p) == {"name", "source", "description"} and p["source"] in ("built-in", "user") for p in listed.values()
    )
    assert listed["vocal"]["source"] == "built-in"


def test_the_example_exchange(sock, audio):
    sock.send(
        frames(
            "transcribe",
            "r7",
            {
                "region": {"path": str(audio["melody"]), "start_s": 1.5, "duration_s": 4.0, "position_s": 12.5},
                "tempo": {"bpm": 96},
                "preset": "vocal",
            },
        )
    )
    accepted = receive(sock)
    assert accepted.kind == "accepted" and accepted.request_id == "r7"
    [job_id] = accepted.header["job_ids"]
    replies = job_replies(sock, [job_id])[job_id]
    *progress, result = replies

    assert all(r.kind == "progress" and r.request_id == "r7" and r.header["job_id"] == job_id for r in progress)
    stages = [r.header["stage"] for r in progress]
    order = ["queued", "decode", "infer", "notes"]
    assert stages == sorted(stages, key=order.index), "stages come in order"
    assert all(0 <= r.header["fraction"] <= 1 for r in progress)
    assert (stages[-1], progress[-1].header["fraction"]) == ("notes", 1.0), "the last progress, just before the result"
    assert result.kind == "result" and result.request_id == "r7"
    assert result.header == {"job_id": job_id, "note_count": result.header["note_count"], "cached": False}
    midi, clip_json = result.buffers
    assert midi.startswith(b"MThd")
    clip = json.loads(clip_json.decode("utf-8"))
    assert set(clip) == {"position_s", "duration_s", "bpm", "mpe", "notes"}
    assert (clip["position_s"], clip["duration_s"], clip["bpm"]) == (12.5, 4.0, 96.0)
    assert clip["notes"] and result.header["note_count"] == len(clip["notes"])
    for note in clip["notes"]:
        assert set(note) == {"pitch", "start_s", "end_s", "velocity", "bends"}
        assert all(set(bend) == {"time_s", "semitones"} for bend in note["bends"])
    # The melody's first note, at 2.0 s of the file, is 0.5 s into the clip: times are from the clip's start.
    assert clip["notes"][0]["pitch"] == 64 and abs(clip["notes"][0]["start_s"] - 0.5) < 0.06

    mismatch = refused(sock, [b"midibridge/3.0", b"hello", b"r8", b"{}"])
    assert mismatch == {
        "code": "version_mismatch",
        "message": "this peer speaks midibridge protocol 2.1, the other 3.0; upgrade the older side",
    }


def test_a_region_and_its_options_default_as_the_doc_says(sock, audio):
    bare = run(sock, "d1", {"region": {"path": str(audio["melody"])}})
    clip = json.loads(bare.buffers[1])
    assert bare.kind == "result"
    assert (clip["position_s"], clip["duration_s"], clip["bpm"]) == (0, 6.0, 120.0), "start 0, to the end, 120 BPM"
    assert clip["notes"][0]["pitch"] == 64 and abs(clip["notes"][0]["start_s"] - 2.0) < 0.06

    # Spelt out, the defaults give the very same clip, to the byte.
    spelt = run(
        sock,
        "d2",
        {
            "region": {"path": str(audio["melody"]), "start_s": 0, "duration_s": None, "position_s": 0},
            "tempo": {"bpm": 120, "beats_per_bar": 4, "bar_offset_beats": None},
            "preset": "default",
            "priority": "interactive",
            "allow_truncated": False,
        },
    )
    assert spelt.kind == "result" and spelt.buffers == bare.buffers

    each_alone = json.loads(
        run(
            sock, "d3", {"region": {"path": str(audio["melody"]), "duration_s": 3.0}, "tempo": {"beats_per_bar": 3}}
        ).buffers[1]
    )
    assert each_alone["bpm"] == 120.0, "each tempo field defaults alone"
    own = json.loads(
        run(
            sock,
            "d4",
            {"region": {"path": str(audio["melody"]), "duration_s": 3.0, "tempo": {"bpm": 90}}, "tempo": {"bpm": 100}},
        ).buffers[1]
    )
    assert own["bpm"] == 90.0, "a region's tempo before the request's"


def test_a_batch_answers_each_region_in_order_and_its_jobs_end_on_their_own(sock, audio):
    [good, missing] = submit(
        sock,
        "b1",
        {"regions": [{"path": str(audio["melody"]), "duration_s": 2.5}, {"path": "/nowhere/at/all.wav"}]},
        kind="batch",
    )
    ends = {job_id: replies[-1] for job_id, replies in job_replies(sock, [good, missing]).items()}

    assert ends[good].kind == "result" and ends[good].request_id == "b1"
    assert ends[missing].kind == "error" and ends[missing].header["code"] == "audio_not_found"
    assert ends[missing].header["job_id"] == missing and ends[missing].request_id == "b1"
    summaries = {s["job_id"]: s for s in ask(sock, frames("status", "s1", {"job_ids": [good, missing]})).header["jobs"]}
    assert summaries[good]["priority"] == "batch", "the default priority of a batch"
    assert summaries[missing]["state"] == "failed" and summaries[missing]["error"] == ends[missing].header


def test_status_summarises_jobs_known_and_unknown_with_the_same_fields(sock, audio):
    [job_id] = submit(sock, "s2", {"region": {"path": str(audio["melody"]), "duration_s": 2.0}, "preset": "piano"})
    job_replies(sock, [job_id])
    reply = ask(sock, frames("status", "s3", {"job_ids": [job_id, "never-was"]}))

    assert reply.kind == "status" and reply.request_id == "s3"
    assert set(reply.header) == {
        "jobs",
        "counts",
        "queued",
        "workers",
        "workers_replaced",
        "cache_entries",
        "accepting",
    }
    known, unknown = reply.header["jobs"]
    fields = {"job_id", "state", "priority", "attempts", "age_s", "error"}
    assert set(known) == set(unknown) == fields
    assert known["state"] == "done" and known["priority"] == "interactive" and known["error"] is None
    assert known["attempts"] == 1 and known["age_s"] >= 0
    assert unknown == {
        "job_id": "never-was",
        "state": "unknown",
        "priority": None,
        "attempts": 0,
        "age_s": None,
        "error": None,
    }
    [worker] = reply.header["workers"]
    assert set(worker) == {"identity", "pid", "ready", "job_id", "interactive_only"}
    assert reply.header["accepting"] is True and reply.header["queued"] == 0
    assert ask(sock, frames("status", "s4")).header["jobs"] == [], "without job_ids: every job not yet ended (none)"


# A busy worker: queueing, busy, cancel, fetch -------------------------------------------------------


@pytest.fixture
def long_job(daemon, sock, audio):
    """The one worker busy with a five-minute region, on its own socket; cancelled afterwards."""
    owner = daemon.socket()
    [job_id] = submit(owner, "long", {"region": {"path": str(audio["long"])}})
    while True:  # until it runs
        reply = receive(owner)
        if reply.kind == "progress" and reply.header["stage"] != "queued":
            break
    yield owner, job_id
    ask(sock, frames("cancel", "tidy", {"job_ids": [job_id]}))
    owner.close()


def test_waiting_jobs_hear_queued_progress_with_the_jobs_ahead_and_status_lists_them(sock, audio, long_job):
    _, running = long_job
    batch = submit(sock, "q1", {"regions": [{"path": str(audio["melody"]), "duration_s": 1.0}] * 2}, kind="batch")
    first = {}
    while len(first) < 2:
        reply = receive(sock)
        first.setdefault(reply.header["job_id"], reply)
    unfinished = ask(sock, frames("status", "q2")).header

    assert [first[j].header for j in batch] == [
        {"job_id": batch[0], "stage": "queued", "fraction": 0, "jobs_ahead": 0},
        {"job_id": batch[1], "stage": "queued", "fraction": 0, "jobs_ahead": 1},
    ]
    assert {j["job_id"]: j["state"] for j in unfinished["jobs"]} == {
        running: "running",
        batch[0]: "queued",
        batch[1]: "queued",
    }
    assert unfinished["queued"] == 2 and unfinished["counts"]["queued"] == 2
    assert unfinished["workers"][0]["job_id"] == running

    # The queue (--queue 2) is full: a request that does not fit is refused whole, nothing queued.
    assert refused(sock, frames("transcribe", "q3", {"region": {"path": str(audio["melody"])}}))["code"] == "busy"
    assert (
        refused(sock, frames("batch", "q4", {"regions": [{"path": str(audio["melody"])}] * 3}))["code"] == "too_large"
    ), "over max_batch_regions"

    cancel = ask(sock, frames("cancel", "q5", {"job_ids": [*batch, "never-was"]}))
    assert cancel.kind == "cancel" and cancel.header == {
        "jobs": {batch[0]: "cancelled", batch[1]: "cancelled", "never-was": "unknown"}
    }
    ends = job_replies(sock, batch)
    assert all(r[-1].header["code"] == "cancelled" and r[-1].request_id == "q1" for r in ends.values())
    again = ask(sock, frames("cancel", "q6", {"job_ids": [batch[0]]}))
    assert again.header == {"jobs": {batch[0]: "cancelled"}}, "already ended: its state"


def test_cancelling_a_running_job_answers_cancelling_then_cancelled_within_the_bound(sock, long_job):
    owner, job_id = long_job
    asked = time.monotonic()
    cancel = ask(sock, frames("cancel", "c1", {"job_ids": [job_id]}))
    end = job_replies(owner, [job_id])[job_id][-1]
    waited = time.monotonic() - asked

    assert cancel.header == {"jobs": {job_id: "cancelling"}}
    assert end.kind == "error" and end.header["code"] == "cancelled" and end.request_id == "long"
    assert waited < 1 + 4, "cancel_timeout_s (1 s), plus delivery (generously)"
    assert ask(sock, frames("cancel", "c2", {"job_ids": [job_id]})).header == {"jobs": {job_id: "cancelled"}}


def test_a_reconnected_client_takes_its_jobs_back_with_fetch(daemon, sock, audio, long_job):
    owner, running = long_job
    owner.close()  # the client that sent it is gone
    newcomer = daemon.socket()
    fetched = ask(newcomer, frames("fetch", "f1", {"job_id": running}))
    assert fetched.kind == "accepted" and fetched.header == {"job_ids": [running]}
    ask(sock, frames("cancel", "f2", {"job_ids": [running]}))
    end = job_replies(newcomer, [running])[running][-1]
    assert end.kind == "error" and end.header["code"] == "cancelled" and end.request_id == "f1", (
        "its later replies go to the fetching socket, under the fetch's request id"
    )

    [done] = submit(sock, "f3", {"region": {"path": str(audio["melody"]), "duration_s": 2.0}})
    result = job_replies(sock, [done])[done][-1]
    again = ask(newcomer, frames("fetch", "f4", {"job_id": done}))
    assert again.kind == "result" and again.header == result.header and again.buffers == result.buffers
    assert ask(newcomer, frames("fetch", "f5", {"job_id": running})).header["code"] == "cancelled"
    assert refused(newcomer, frames("fetch", "f6", {"job_id": "never-was"}))["code"] == "unknown_job"
    newcomer.close()


# forbidden: a peer on another address -------------------------------------------------------------


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # picks the route; sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_remote_peer_may_not_stop_the_daemon_read_outside_the_allowed_roots_or_name_a_preset_file(tmp_path, audio):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address but loopback: no remote peer to play")
    public_file, secret_file = zmq.auth.create_certificates(str(tmp_path), "studio")
    clients = tmp_path / "config" / "midibridge" / "curve" / "clients"
    clients.mkdir(parents=True)
    (clients / "studio.key").write_bytes(Path(public_file).read_bytes())
    allowed = tmp_path / "shared"
    allowed.mkdir()
    served = Served(
        tmp_path,
        f"tcp://{address}:{free_port()}",
        "--curve",
        "--allow-root",
        str(allowed),
        "--workers",
        "1",
        "--interactive-workers",
        "0",
    )
    try:
        remote = served.socket(curve_keys=zmq.auth.load_certificate(secret_file))
        stop = refused(remote, frames("shutdown", "r1"))
        outside = refused(remote, frames("transcribe", "r2", {"region": {"path": str(audio["melody"])}}))
        preset = refused(
            remote,
            frames("transcribe", "r3", {"region": {"path": str(allowed / "a.wav")}, "preset": "/etc/my-preset.toml"}),
        )
        still = ask(remote, frames("hello", "r4"))
        remote.close()
    finally:
        served.stop()
    assert stop["code"] == outside["code"] == preset["code"] == "forbidden"
    assert still.kind == "hello" and served.process.returncode == 0


# Last: shutdown --------------------------------------------------------------------------------------


def test_shutdown_ends_queued_jobs_refuses_new_ones_and_ends_running_ones_after_the_grace(daemon, sock, audio, figures):
    [running] = submit(sock, "z1", {"region": {"path": str(audio["long"])}})
    [queued] = submit(sock, "z2", {"region": {"path": str(audio["melody"]), "duration_s": 5.5}})  # not cached

    stopping = ask(sock, frames("shutdown", "z3"))
    late = refused(sock, frames("transcribe", "z4", {"region": {"path": str(audio["melody"])}}))
    ends = job_replies(sock, [running, queued])

    assert stopping.kind == "shutdown" and stopping.header == {"stopping": True}
    assert late["code"] == "shutting_down"
    assert ends[queued][-1].header["code"] == ends[running][-1].header["code"] == "shutting_down"
    assert daemon.process.wait(30) == 0 and not daemon.discovery_file.exists(), "it removes its discovery file"
    figures["error codes provoked"] = len(PROVOKED - {None})
