"""The daemon on real sockets: every message, batches, cancel, busy, a killed worker, bad messages, CURVE, shutdown."""

import io
import os
import signal
import threading
import time

import mido
import numpy as np
import pytest
import zmq
import zmq.auth
from daemon_helpers import DaemonProcess, exchange, submit_raw, wait_for

from midibridge.bridge import protocol as p
from midibridge.model.clip import Tempo
from midibridge.model.engines import ENGINES
from midibridge.model.region import Region
from midibridge.plugin_host.client import Client, ClientError


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("daemon"), workers=2)
    yield running
    running.stop()


def test_hello_names_the_versions_every_engines_weights_the_presets_the_limits_and_the_workers(daemon):
    with daemon.client() as client:
        hello = client.hello()

    assert hello["protocol"] == "midibridge/2.1" and hello["package_version"] == "0.1.0"
    assert hello["model"] == {"name": "basic-pitch nmp.onnx", "sha256": ENGINES["basic-pitch"].weights_sha256}
    assert {name: engine["sha256"] for name, engine in hello["engines"].items()} == {
        name: kind.weights_sha256 for name, kind in ENGINES.items()
    }
    assert "vocal" in hello["presets"]
    assert hello["workers"] == 2 and hello["limits"]["max_batch_regions"] == 256


def test_a_region_comes_back_as_a_clip_at_its_position_with_progress_on_the_way(daemon, piano_line):
    seen = []
    with daemon.client() as client:
        result = client.transcribe(
            Region.from_file(piano_line, start_s=2.0, duration_s=3.0, position_s=12.5),
            tempo=Tempo(bpm=96.0),
            preset="piano",
            on_progress=seen.append,
        )

    assert result.clip.position_s == 12.5 and result.clip.bpm == 96.0 and result.clip.notes
    assert {s.stage for s in seen} >= {"decode", "infer"} and seen[-1].fraction <= 1.0
    midi = mido.MidiFile(file=io.BytesIO(result.smf))
    assert sum(m.type == "note_on" for m in midi.tracks[1]) == len(result.clip.notes)


def test_inline_samples_give_the_same_clip_as_the_file(daemon, piano_line):
    from pedalboard.io import AudioFile

    with AudioFile(str(piano_line)) as source:
        stereo = np.repeat(source.read(source.frames), 2, axis=0)
    with daemon.client() as client:
        from_file = client.transcribe(Region.from_file(piano_line, duration_s=4.0))
        inline = client.transcribe(Region.from_samples(stereo, sample_rate_hz=44100, duration_s=4.0))

    assert inline.clip == from_file.clip


def test_a_batch_of_16_regions_returns_16_results_each_at_its_own_position(daemon, piano_line):
    regions = [
        Region.from_file(piano_line, start_s=(i % 4) * 2.0, duration_s=2.0, position_s=10.0 * i) for i in range(16)
    ]
    with daemon.client() as client:
        results = list(client.batch(regions, preset="default"))

    assert sorted(r.index for r in results) == list(range(16)) and not [r for r in results if r.error]
    assert all(r.clip.position_s == 10.0 * r.index for r in results)
    assert len({r.job_id for r in results}) == 16


def test_a_repeat_comes_from_the_cache_and_a_finished_job_can_be_fetched_later(daemon, piano_line):
    region = Region.from_file(piano_line, duration_s=5.0, position_s=1.0)
    with daemon.client() as client:
        first = client.transcribe(region, preset="guitar")
        again = client.transcribe(region, preset="guitar")
        other = client.transcribe(region, preset="bass")
    with daemon.client() as reconnected:
        fetched = reconnected.request(p.FETCH, {"job_id": first.job_id})
        with pytest.raises(ClientError) as unknown:
            reconnected.request(p.FETCH, {"job_id": "no-such-job"})

    assert (first.cached, again.cached, other.cached) == (False, True, False) and again.clip == first.clip
    assert fetched.kind == p.RESULT and fetched.header["job_id"] == first.job_id
    assert unknown.value.code == "unknown_job"


def test_presets_and_status_are_answered(daemon):
    with daemon.client() as client:
        presets = {entry["name"]: entry for entry in client.presets()}
        status = client.status(["nope"])

    assert presets["vocal"]["source"] == "built-in" and presets["vocal"]["description"]
    assert status["jobs"] == [
        {"job_id": "nope", "state": "unknown", "priority": None, "attempts": 0, "age_s": None, "error": None}
    ]
    assert len(status["workers"]) == 3, "two workers and one kept for interactive jobs"


def test_a_job_error_names_its_code_and_other_jobs_go_on(daemon, piano_line, tmp_path):
    regions = [
        Region.from_file(tmp_path / "missing.wav"),
        Region.from_file(piano_line, duration_s=2.0),
        Region.from_file(piano_line, start_s=999.0),
    ]
    with daemon.client() as client:
        results = sorted(client.batch(regions), key=lambda r: r.index)

    assert [r.error.code if r.error else "ok" for r in results] == ["audio_not_found", "ok", "region_outside_source"]


def test_bad_preset_or_tempo_refuses_the_whole_request(daemon, piano_line):
    with daemon.client() as client:
        with pytest.raises(ClientError) as unknown:
            client.transcribe(Region.from_file(piano_line), preset="harpsichord")
        with pytest.raises(ClientError) as invalid:
            client.transcribe(Region.from_file(piano_line), preset={"schema": 1, "decode": {"onset_threshold": 3}})
        with pytest.raises(ClientError) as tempo:
            client.request(p.TRANSCRIBE, {"region": {"path": str(piano_line)}, "tempo": {"bpm": 0}})

    assert (unknown.value.code, invalid.value.code, tempo.value.code) == (
        "unknown_preset",
        "invalid_preset",
        "invalid_option",
    )


MALFORMED = {
    "too few frames": ([p.PROTOCOL_ID, b"hello"], "malformed"),
    "not json": ([p.PROTOCOL_ID, b"hello", b"r1", b"{nope"], "malformed"),
    "not an object": ([p.PROTOCOL_ID, b"hello", b"r1", b"[1, 2]"], "malformed"),
    "empty header frame": ([p.PROTOCOL_ID, b"hello", b"r1", b""], "malformed"),
    "wrong protocol": ([b"http/1.1", b"hello", b"r1", b"{}"], "malformed"),
    "other major version": ([b"midibridge/3.0", b"hello", b"r1", b"{}"], "version_mismatch"),
    "unknown type": ([p.PROTOCOL_ID, b"transmogrify", b"r1", b"{}"], "unknown_type"),
    "missing region": ([p.PROTOCOL_ID, b"transcribe", b"r1", b"{}"], "invalid_header"),
    "region of wrong type": ([p.PROTOCOL_ID, b"transcribe", b"r1", b'{"region": "file.wav"}'], "invalid_header"),
    "path and samples": (
        [
            p.PROTOCOL_ID,
            b"transcribe",
            b"r1",
            b'{"region": {"path": "/x", "samples": {"frame": 0, "sample_rate_hz": 1, "channels": 1}}}',
        ],
        "invalid_header",
    ),
    "samples without their buffer": (
        [
            p.PROTOCOL_ID,
            b"transcribe",
            b"r1",
            b'{"region": {"samples": {"frame": 0, "sample_rate_hz": 44100, "channels": 1}}}',
        ],
        "invalid_header",
    ),
    "huge number": (
        [p.PROTOCOL_ID, b"transcribe", b"r1", b'{"region": {"path": "/x", "start_s": 1e400}}'],
        "invalid_header",
    ),
    "NaN": ([p.PROTOCOL_ID, b"transcribe", b"r1", b'{"region": {"path": "/x", "duration_s": NaN}}'], "invalid_header"),
    "boolean for a number": (
        [p.PROTOCOL_ID, b"transcribe", b"r1", b'{"region": {"path": "/x", "start_s": true}}'],
        "invalid_header",
    ),
    "job ids that are not strings": (
        [p.PROTOCOL_ID, b"status", b"r1", b'{"job_ids": [[], {"a": 1}]}'],
        "invalid_header",
    ),
    "region too long": (
        [p.PROTOCOL_ID, b"transcribe", b"r1", b'{"region": {"path": "/x", "duration_s": 1e6}}'],
        "too_large",
    ),
    "header too large": ([p.PROTOCOL_ID, b"hello", b"r1", b'{"client": "' + b"x" * (2 << 20) + b'"}'], "too_large"),
    "bad utf-8": ([p.PROTOCOL_ID, b"\xff\xfe", b"r1", b"{}"], "malformed"),
    "truncated samples": (
        [
            p.PROTOCOL_ID,
            b"transcribe",
            b"r1",
            b'{"region": {"samples": {"frame": 0, "sample_rate_hz": 44100, "channels": 2}}}',
            b"\0" * 7,
        ],
        "invalid_samples",
    ),
}


def test_a_broken_user_preset_is_listed_with_its_error_and_the_rest_still_serve(daemon, piano_line):
    broken = daemon.home / "config" / "midibridge" / "presets" / "my-voice.toml"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("schema = = 2")
    try:
        with daemon.client() as client:
            presets = {entry["name"]: entry for entry in client.presets()}
            result = client.transcribe(Region.from_file(piano_line, duration_s=2.0), preset="piano")
    finally:
        broken.unlink()

    assert (
        presets["my-voice"]["error"]["code"] == "invalid_preset"
        and "not valid TOML" in presets["my-voice"]["error"]["message"]
    )
    assert "error" not in presets["vocal"] and result.clip.notes


def test_malformed_messages_get_an_error_each_and_the_daemon_keeps_serving(daemon):
    sock = daemon.raw()
    try:
        for name, (frames, code) in MALFORMED.items():
            reply = exchange(sock, frames)
            if reply is not None and reply.kind == p.ACCEPTED:  # a job that fails in its worker
                reply = exchange(sock, [p.PROTOCOL_ID, b"status", b"x", b"{}"]) and _job_error(sock)
            assert reply is not None and reply.kind == p.ERROR and reply.header["code"] == code, name
        sock.send_multipart([p.PROTOCOL_ID, b"hello", b"big", b"{}", b"\0" * (p.MAX_FRAME_BYTES + 1)])
    finally:
        sock.close()
    with daemon.client() as client:
        assert client.hello()["workers"] == 2, "an oversized frame only cost its sender the connection"


def _job_error(sock):
    while sock.poll(10_000):
        message = p.decode(sock.recv_multipart())
        if message.kind == p.ERROR and "job_id" in message.header:
            return message
    return None


def test_a_client_of_another_major_version_gets_a_clear_error(tmp_path):
    context = zmq.Context.instance()
    future = context.socket(zmq.ROUTER)
    future.setsockopt(zmq.LINGER, 0)
    port = future.bind_to_random_port("tcp://127.0.0.1")

    def answer_as_version_3():
        if future.poll(5000):
            identity, _, kind, request_id, _ = future.recv_multipart()[:5]
            future.send_multipart([identity, b"midibridge/3.0", kind, request_id, b"{}"])

    thread = threading.Thread(target=answer_as_version_3)
    thread.start()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout_s=5.0, retries=0) as client:
            with pytest.raises(ClientError) as caught:
                client.hello()
    finally:
        thread.join()
        future.close()
    assert caught.value.code == "version_mismatch" and "upgrade the older side" in str(caught.value)


@pytest.fixture
def solo(tmp_path):
    """One worker, a queue of 3, results kept 2 s."""
    running = DaemonProcess(tmp_path, "--queue", "3", "--result-ttl", "2", "--interactive-workers", "0", workers=1)
    yield running
    running.stop()


def test_cancel_stops_a_running_job_and_drops_a_queued_one(solo, long_audio, piano_line):
    sock = solo.raw()
    running = submit_raw(sock, long_audio)
    wait_for(sock, {p.PROGRESS}, running)
    waiting = submit_raw(sock, piano_line, b"r2")
    with solo.client() as client:
        states = client.cancel([running, waiting, "nope"])
    assert states == {running: "cancelling", waiting: "cancelled", "nope": "unknown"}
    for job_id in (waiting, running):
        assert wait_for(sock, {p.ERROR, p.RESULT}, job_id, timeout_s=5.0).header["code"] == "cancelled"
    sock.close()
    with solo.client() as client:
        assert client.transcribe(Region.from_file(piano_line, duration_s=2.0)).clip.notes, "the worker goes on"


def test_a_full_queue_answers_busy_and_queues_nothing(solo, long_audio, piano_line):
    sock = solo.raw()
    running = submit_raw(sock, long_audio)
    wait_for(sock, {p.PROGRESS}, running)
    waiting = [submit_raw(sock, piano_line, f"w{i}".encode()) for i in range(2)]
    with solo.client() as client:  # the request itself: Client.batch would wait for room
        with pytest.raises(ClientError) as caught:
            client.request(p.BATCH, {"regions": [{"path": str(piano_line)}] * 2})
        counts = client.status()["counts"]
        client.cancel([running, *waiting])
    sock.close()
    assert caught.value.code == "busy" and counts["queued"] == 2


def test_a_batch_larger_than_the_queue_is_refused_for_what_it_is(solo, piano_line):
    with solo.client() as client:
        assert client.hello()["limits"]["max_batch_regions"] == 3
        with pytest.raises(ClientError) as caught:  # the request itself: Client.batch would send it in parts
            client.request(p.BATCH, {"regions": [{"path": str(piano_line)}] * 4})
    assert caught.value.code == "too_large" and "at most 3 regions" in str(caught.value)


def test_results_expire_after_their_time(solo, piano_line):
    with solo.client() as client:
        done = client.transcribe(Region.from_file(piano_line, duration_s=1.0))
        time.sleep(3.5)
        with pytest.raises(ClientError) as caught:
            client.request(p.FETCH, {"job_id": done.job_id})
    assert caught.value.code == "unknown_job"


def test_sigterm_lets_a_running_job_finish_answers_it_and_cleans_up(tmp_path, piano_line):
    running = DaemonProcess(tmp_path, "--grace", "30", workers=1)
    sock = running.raw()
    job = submit_raw(sock, piano_line)
    wait_for(sock, {p.PROGRESS}, job)
    worker_pids = running.worker_pids()

    assert running.stop(signal.SIGTERM) == 0

    assert wait_for(sock, {p.RESULT, p.ERROR}, job).kind == p.RESULT
    sock.close()
    assert not running.discovery_file.exists()
    assert not list((tmp_path / "run" / "midibridge").glob("workers-*.sock"))
    for pid in worker_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_second_daemon_on_the_same_endpoint_refuses_to_start(daemon):
    import subprocess
    import sys

    second = subprocess.run(
        [sys.executable, "-m", "midibridge.plugin_host.cli", "serve", "--endpoint", daemon.endpoint],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 1 and "already serves" in second.stderr


def test_only_a_local_client_may_shut_the_daemon_down(tmp_path):
    running = DaemonProcess(tmp_path, workers=1)
    with running.client() as client:
        client.shutdown()
    assert running.process.wait(30) == 0 and not running.discovery_file.exists()
