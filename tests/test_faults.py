"""Faults: workers killed or hung mid-job, a daemon that restarts under a waiting client, full disks, missing
plugins. Every job ends with a result or an error; no client waits forever; nothing else is disturbed."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess, free_port, submit_raw, wait_for

from midibridge.bridge import protocol as p
from midibridge.model.region import Region
from midibridge.plugin_host.results import ClientError

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def injected(figures, n=1):
    figures["faults injected"] = figures.get("faults injected", 0) + n


@pytest.fixture
def solo(tmp_path):
    """One worker, none kept aside: the job under test is on the only worker there is."""
    running = DaemonProcess(tmp_path, "--interactive-workers", "0", workers=1)
    yield running
    running.stop()


def test_a_worker_killed_mid_job_fails_that_job_and_the_next_job_succeeds(solo, long_audio, piano_line, figures):
    sock = solo.raw()
    job = submit_raw(sock, long_audio)
    wait_for(sock, {p.PROGRESS}, job)
    [pid] = solo.worker_pids()

    os.kill(pid, signal.SIGKILL)
    injected(figures)

    error = wait_for(sock, {p.ERROR, p.RESULT}, job)
    sock.close()
    assert error.header["code"] == "worker_died" and "Other jobs go on" in error.header["message"]
    with solo.client(timeout_s=30.0) as client:
        assert client.transcribe(Region.from_file(piano_line, duration_s=2.0)).clip.notes
        status = client.status()
    assert status["workers_replaced"] == 1 and status["workers"][0]["pid"] != pid


def test_a_hung_worker_is_killed_after_the_heartbeat_timeout_and_its_job_answered(
    solo, long_audio, piano_line, figures
):
    sock = solo.raw()
    job = submit_raw(sock, long_audio)
    wait_for(sock, {p.PROGRESS}, job)
    [pid] = solo.worker_pids()

    os.kill(pid, signal.SIGSTOP)  # alive, silent: what a worker stuck in native code looks like
    injected(figures)
    stopped_at = time.monotonic()

    error = wait_for(sock, {p.ERROR, p.RESULT}, job, timeout_s=30.0)
    waited = time.monotonic() - stopped_at
    sock.close()
    assert error.header["code"] == "worker_hung"
    assert p.HEARTBEAT_LIVENESS * p.HEARTBEAT_INTERVAL_S <= waited < 20
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with solo.client(timeout_s=30.0) as client:
        assert client.transcribe(Region.from_file(piano_line, duration_s=2.0)).clip.notes


def test_with_retries_a_job_whose_worker_died_runs_again(tmp_path, long_audio, figures):
    retrying = DaemonProcess(tmp_path, "--job-retries", "1", workers=1)
    try:
        sock = retrying.raw()
        job = submit_raw(sock, long_audio)
        wait_for(sock, {p.PROGRESS}, job)
        os.kill(retrying.worker_pid_of(job), signal.SIGKILL)
        injected(figures)
        finished = wait_for(sock, {p.ERROR, p.RESULT}, job, timeout_s=120.0)
        sock.close()
        assert finished.kind == p.RESULT and p.clip_from_buffer(finished.buffers[1])["notes"]
    finally:
        retrying.stop()


def test_killing_one_of_two_workers_during_a_batch_answers_every_job(tmp_path, long_audio, piano_line, figures):
    running = DaemonProcess(tmp_path, workers=2)
    try:
        regions = [Region.from_file(long_audio, duration_s=120.0)] + [
            Region.from_file(piano_line, start_s=i * 0.5, duration_s=3.0) for i in range(6)
        ]
        killed = []

        def kill_the_long_one(progress):
            if progress.index == 0 and progress.stage == "infer" and not killed:
                with running.client() as client:
                    busy = [w for w in client.status()["workers"] if w["job_id"] == progress.job_id]
                if busy:
                    os.kill(busy[0]["pid"], signal.SIGKILL)
                    killed.append(busy[0]["pid"])

        with running.client(timeout_s=10.0) as client:
            results = list(client.batch(regions, on_progress=kill_the_long_one))
        injected(figures)
    finally:
        running.stop()
    assert killed and sorted(r.index for r in results) == list(range(7))
    assert [r.error.code for r in results if r.error] == ["worker_died"]
    assert all(r.clip.notes for r in results if r.index > 0)


def test_a_client_waiting_on_a_daemon_that_restarts_gets_its_result_from_the_new_one(tmp_path, figures):
    notes = [Note(60 + i % 12, 0.5 + 0.5 * i, 0.9 + 0.5 * i, 100) for i in range(230)]
    audio = write_audio(tmp_path / "two_minutes.wav", synthesize(notes, sample_rate_hz=22050, length_s=120.0), 22050)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    first = DaemonProcess(tmp_path / "first", endpoint=endpoint, workers=1)
    running, results, errors = threading.Event(), [], []

    def wait_for_clip():
        try:
            with first.client(timeout_s=2.0, retries=30) as client:
                results.append(client.transcribe(Region.from_file(audio), on_progress=lambda _: running.set()))
        except Exception as error:  # reported below
            errors.append(error)

    waiting = threading.Thread(target=wait_for_clip)
    waiting.start()
    assert running.wait(60), "the job started on the first daemon"
    first.process.kill()  # with the job half done: the new daemon has never heard of it
    injected(figures)
    second = DaemonProcess(tmp_path / "second", endpoint=endpoint, workers=1)
    try:
        waiting.join(180)
        with second.client() as client:
            counts = client.status()["counts"]
    finally:
        second.stop()
    assert not errors and results and len(results[0].clip.notes) > 200
    assert counts["done"] == 1, "the client sent the region again to the new daemon"


@pytest.mark.parametrize("target", ["/dev/full", "/proc/version/x.mid", "/"])
def test_convert_to_a_full_disk_or_an_unwritable_path_says_so(piano_line, target, figures):
    done = subprocess.run(
        [MIDIBRIDGE, "convert", str(piano_line), "-o", target, "--in-process"], capture_output=True, text=True
    )
    injected(figures)

    assert done.returncode == 1 and "[output_unwritable]" in done.stderr and "Traceback" not in done.stderr


def test_a_preset_whose_plugin_is_missing_or_broken_fails_that_request_only(solo, piano_line, tmp_path, figures):
    broken = tmp_path / "Broken.vst3"
    broken.write_bytes(b"\0" * 64)
    with solo.client() as client:
        with pytest.raises(ClientError) as missing:
            client.transcribe(
                Region.from_file(piano_line),
                preset={"schema": 1, "chain": [{"step": "vst3", "path": str(tmp_path / "Nowhere.vst3")}]},
            )
        with pytest.raises(ClientError) as unloadable:
            client.transcribe(
                Region.from_file(piano_line), preset={"schema": 1, "chain": [{"step": "vst3", "path": str(broken)}]}
            )
        assert client.transcribe(Region.from_file(piano_line, duration_s=2.0)).clip.notes
        assert client.status()["workers_replaced"] == 0
    injected(figures, 2)
    assert missing.value.code == unloadable.value.code == "plugin_unavailable"
