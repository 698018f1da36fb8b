"""The thin client as a DAW adapter uses it: light to import, and it rides out a daemon that restarts."""

import subprocess
import sys
import threading
import time

import pytest

from model.region import Region
from plugin_host.client import Client, DaemonUnavailable

from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess, free_port


def test_the_client_and_the_protocol_import_without_numpy_or_onnxruntime():
    probe = ("import sys, plugin_host.client, plugin_host.cli, bridge.protocol; "
             "print(sorted(m for m in ('numpy', 'onnxruntime', 'pedalboard', 'mido') if m in sys.modules))")

    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == "[]"


def test_a_daemon_on_ipc_serves_this_machines_clients(tmp_path, piano_line):
    running = DaemonProcess(tmp_path, endpoint=f"ipc://{tmp_path}/front.sock", workers=1)
    try:
        with running.client() as client:
            assert client.transcribe(Region.from_file(piano_line, duration_s=2.0)).clip.notes
            client.shutdown()
        assert running.process.wait(30) == 0
    finally:
        running.stop()


def test_no_daemon_means_a_clear_error_after_the_retries():
    started = time.monotonic()
    with Client(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.3, retries=2) as client:
        with pytest.raises(DaemonUnavailable) as caught:
            client.hello()

    assert "after 3 tries of 0.3 s" in str(caught.value) and "midibridge serve" in str(caught.value)
    assert time.monotonic() - started < 3.0


def test_a_client_waiting_on_a_daemon_that_restarts_gets_its_result_from_the_new_one(tmp_path):
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
    second = DaemonProcess(tmp_path / "second", endpoint=endpoint, workers=1)
    try:
        waiting.join(180)
        with second.client() as client:
            counts = client.status()["counts"]
    finally:
        second.stop()
    assert not errors and results and len(results[0].clip.notes) > 200
    assert counts["done"] == 1, "the client sent the region again to the new daemon"
