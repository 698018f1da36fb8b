"""The daemon never wedges and never loses a job: whatever a region or a worker does, every job gets its answer.

A dense hour of music comes back whole; a read that never returns, a worker
that garbles its answer, a cancel the worker cannot hear in time each end
their job with an error and leave the daemon serving. A right-click in the
DAW does not wait behind a batch, and a daemon on a private endpoint serves
only those who ask for it.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Note, synthesize
from daemon_helpers import DaemonProcess, free_port, submit_raw, wait_for

from midibridge.bridge import protocol as p
from midibridge.model.clip import Tempo
from midibridge.model.midi import clip_to_bytes
from midibridge.model.region import Region
from midibridge.model.vocabulary import Priority, Stage
from midibridge.plugin_host.autostart import ensure_daemon
from midibridge.plugin_host.results import ClientError

RATE_HZ = 22050


@pytest.fixture(scope="module")
def dense_hour(tmp_path_factory) -> Path:
    """An hour of busy two-voice music (about 8 notes a second): its notes far outgrow a 1 MiB header."""
    rng = np.random.default_rng(7)
    notes = []
    for voice, (low, high) in enumerate(((40, 60), (62, 88))):
        t = 0.05 * voice
        while t < 59.0:
            length = rng.uniform(0.15, 0.5)
            notes.append(Note(int(rng.integers(low, high)), t, t + length, int(rng.integers(60, 120))))
            t += length + rng.uniform(0.02, 0.12)
    minute = synthesize(notes, sample_rate_hz=RATE_HZ, length_s=60.0)
    path = tmp_path_factory.mktemp("long") / "dense_hour.flac"
    from pedalboard.io import AudioFile

    with AudioFile(str(path), "w", samplerate=RATE_HZ, num_channels=1, bit_depth=16) as sink:
        for _ in range(60):
            sink.write(minute[np.newaxis, :])
    return path


def test_a_dense_hour_comes_back_whole_through_the_daemon_and_the_next_job_is_served(
    tmp_path, dense_hour, transcriber, piano_line
):
    region, tempo = Region.from_file(dense_hour, position_s=30.0), Tempo(bpm=100.0)
    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1)
    try:
        with running.client(timeout_s=30.0) as client:
            through_daemon = client.transcribe(region, tempo=tempo)
            after = client.transcribe(Region.from_file(piano_line, duration_s=2.0))
    finally:
        running.stop()
    in_process = transcriber.transcribe(region, tempo=tempo)

    assert len(in_process.notes) > 20_000, "dense enough that its notes are megabytes of JSON"
    assert len(p.clip_buffer(in_process.to_dict())) > p.MAX_HEADER_BYTES
    assert through_daemon.clip == in_process and through_daemon.smf == clip_to_bytes(in_process)
    assert after.clip.notes, "the worker is free for the next job"


def test_a_job_stuck_in_a_read_fails_worker_hung_and_its_worker_is_replaced(tmp_path, piano_line):
    stuck = tmp_path / "dead_mount.wav"
    os.mkfifo(stuck)  # opening it blocks for ever, as a file on a dead network mount does
    running = DaemonProcess(tmp_path, "--progress-timeout", "3", "--interactive-workers", "0", workers=1)
    try:
        sock = running.raw()
        job = submit_raw(sock, stuck)
        pid = running.worker_pid_of(job)
        asked = time.monotonic()
        error = wait_for(sock, {p.ERROR, p.RESULT}, job, timeout_s=30.0)
        waited = time.monotonic() - asked
        sock.close()
        with running.client(timeout_s=30.0) as client:
            after = client.transcribe(Region.from_file(piano_line, duration_s=2.0))
            status = client.status()
    finally:
        running.stop()
    assert error.header["code"] == "worker_hung" and "made no progress" in error.header["message"]
    assert 3.0 <= waited < 15.0
    assert after.clip.notes and status["workers_replaced"] == 1 and pid not in [w["pid"] for w in status["workers"]]


def test_cancelling_a_job_its_worker_cannot_stop_answers_cancelled_within_the_bound(tmp_path, piano_line):
    stuck = tmp_path / "dead_mount.wav"
    os.mkfifo(stuck)
    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1)
    try:
        sock = running.raw()
        job = submit_raw(sock, stuck)
        with running.client() as client:
            asked = time.monotonic()
            states = client.cancel([job])
        answer = wait_for(sock, {p.ERROR, p.RESULT}, job, timeout_s=10.0)
        waited = time.monotonic() - asked
        sock.close()
        with running.client(timeout_s=30.0) as client:
            after = client.transcribe(Region.from_file(piano_line, duration_s=2.0))
    finally:
        running.stop()
    assert states == {job: "cancelling"}
    assert answer.kind == p.ERROR and answer.header["code"] == "cancelled"
    assert waited < 1.0 + 2 * p.HEARTBEAT_INTERVAL_S, "the bound PROTOCOL.md gives: cancel_timeout_s, plus delivery"
    assert after.clip.notes


def test_a_worker_message_the_daemon_cannot_read_fails_its_job_and_the_worker_is_replaced(tmp_path, piano_line):
    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1, fault="garbled_result")
    try:
        with running.client(timeout_s=30.0) as client:
            with pytest.raises(ClientError) as caught:
                client.transcribe(Region.from_file(piano_line, duration_s=2.0))
            for _ in range(100):  # its replacement loads the model
                status = client.status()
                if status["workers"][0]["ready"]:
                    break
                time.sleep(0.2)
            with pytest.raises(ClientError) as again:  # the new worker garbles too, and is answered the same
                client.transcribe(Region.from_file(piano_line, duration_s=1.0))
    finally:
        running.stop()
    assert caught.value.code == again.value.code == "internal"
    assert "cannot read" in str(caught.value) and "not JSON" in str(caught.value)
    assert status["workers_replaced"] >= 1 and status["counts"]["running"] == 0


def test_an_interactive_region_does_not_wait_behind_a_batch_that_holds_every_worker(tmp_path, long_audio, piano_line):
    running = DaemonProcess(tmp_path, workers=2)  # and one kept for interactive jobs
    try:
        with running.client(timeout_s=30.0) as batcher:
            batch = batcher.batch([Region.from_file(long_audio)] * 3, priority=Priority.BATCH)
            started = threading.Event()
            finished = []

            def drain():
                for _ in batch:
                    started.set()
                    finished.append(time.monotonic())

            waiting = threading.Thread(target=drain)
            waiting.start()
            time.sleep(1.0)  # both workers on the batch, its third region queued
            with running.client(timeout_s=30.0) as daw:
                heard = []
                asked = time.monotonic()
                result = daw.transcribe(Region.from_file(piano_line, duration_s=4.0), on_progress=heard.append)
                answered = time.monotonic()
            with running.client() as client:
                queued = [j for j in client.status()["jobs"] if j["state"] == "queued"]
                client.cancel([j["job_id"] for j in client.status()["jobs"]])
            waiting.join(60)
    finally:
        running.stop()
    assert result.clip.notes
    assert not finished or answered < min(finished), "the right-click came back before any batch region"
    assert answered - asked < 30.0
    assert [j["priority"] for j in queued] == ["batch"], "the batch's third region still waits"
    assert not [h for h in heard if h.stage == Stage.QUEUED], "it never queued"


def test_waiting_jobs_hear_how_many_jobs_run_before_them(tmp_path, long_audio, piano_line):
    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1)
    try:
        with running.client(timeout_s=30.0) as client:
            heard = []
            jobs = client.batch(
                [Region.from_file(long_audio, duration_s=60.0)] + [Region.from_file(piano_line, duration_s=1.0)] * 2,
                on_progress=heard.append,
            )
            first = next(jobs)
            jobs.close()
    finally:
        running.stop()
    ahead = {h.index: h.jobs_ahead for h in heard if h.stage == Stage.QUEUED}
    assert first.index == 0 and ahead == {1: 0, 2: 1}


class UserCancelled(Exception):
    """What a DAW adapter's progress callback raises when its user presses Cancel (or its pipe closes)."""


def test_a_batch_abandoned_mid_way_cancels_its_outstanding_jobs(tmp_path, long_audio):
    def cancel_once_it_runs(progress):
        if progress.stage == "infer":
            raise UserCancelled

    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1)
    try:
        with running.client(timeout_s=30.0) as client:
            with pytest.raises(UserCancelled):
                list(client.batch([Region.from_file(long_audio)] * 3, on_progress=cancel_once_it_runs))
            time.sleep(1.5)  # within the cancel bound, the running one has stopped too
            counts = client.status()["counts"]
    finally:
        running.stop()
    assert counts["queued"] == counts["running"] == 0 and counts["cancelled"] == 3


def test_a_daemon_on_a_private_endpoint_serves_only_those_who_ask_for_it(tmp_path, piano_line):
    private = f"ipc://{tmp_path}/private.sock"
    running = DaemonProcess(tmp_path, endpoint=private, workers=1)
    try:
        env = dict(running.env)
        del env["MIDIBRIDGE_ENDPOINT"]
        default = subprocess.run(
            [sys.executable, "-m", "midibridge.plugin_host.cli", "ping"], env=env, capture_output=True, text=True
        )
        told = subprocess.run(
            [sys.executable, "-m", "midibridge.plugin_host.cli", "ping"],
            env=running.env,
            capture_output=True,
            text=True,
        )
    finally:
        running.stop()
    assert default.returncode == 1 and "no midibridge daemon is running on tcp://" in default.stdout
    assert told.returncode == 0 and private in told.stdout


def test_a_live_daemon_without_its_discovery_file_is_found_and_used(tmp_path, monkeypatch):
    running = DaemonProcess(tmp_path, workers=1)
    try:
        running.discovery_file.unlink()
        monkeypatch.setenv("XDG_RUNTIME_DIR", running.env["XDG_RUNTIME_DIR"])
        record = ensure_daemon(endpoint=running.endpoint, timeout_s=10.0)
    finally:
        running.stop()
    assert record["pid"] == running.process.pid


def test_a_port_held_by_another_program_is_named(tmp_path, monkeypatch):
    port = free_port()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)",
        ]
    )
    try:
        time.sleep(0.5)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
        with pytest.raises(ClientError) as caught:
            ensure_daemon(endpoint=f"tcp://127.0.0.1:{port}", timeout_s=30.0)
    finally:
        holder.kill()
    assert f"pid {holder.pid}" in str(caught.value) and "time.sleep" in str(caught.value)
