"""The thin client as a DAW adapter uses it: light to import, and it rides out a daemon that restarts."""

import subprocess
import sys
import time

import pytest

from midibridge.model.region import Region
from midibridge.plugin_host.client import Client, DaemonUnavailable

from daemon_helpers import DaemonProcess, free_port


def test_converting_in_process_does_not_load_zeromq_and_the_client_does_not_load_numpy():
    probe = ("import sys, midibridge.plugin_host.cli, midibridge.plugin_host.runner, midibridge.plugin_host.host_lines; "
             "print('zmq' in sys.modules)")

    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_client_and_the_protocol_import_without_numpy_or_onnxruntime():
    probe = ("import sys, midibridge.plugin_host.client, midibridge.plugin_host.cli, midibridge.bridge.protocol; "
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


def test_a_daemon_started_from_a_folder_holding_folders_named_like_our_packages_works(tmp_path, piano_line):
    # `python -m` puts its working directory first on sys.path; a "presets" folder there once stood in for ours.
    import json
    import os
    from pathlib import Path

    for name in ("presets", "model", "bridge"):
        (tmp_path / name).mkdir()
    (tmp_path / "presets" / "default.toml").write_text("not = [valid")
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"), MIDIBRIDGE_ENDPOINT=f"tcp://127.0.0.1:{free_port()}")
    (tmp_path / "run").mkdir()
    midibridge = str(Path(sys.executable).parent / "midibridge")

    converted = subprocess.run([midibridge, "convert", str(piano_line), "--daemon", "--preset", "piano", "--json",
                                "-o", "x.mid"], cwd=tmp_path, env=env, capture_output=True, text=True)
    stopped = subprocess.run([sys.executable, "-c", "from midibridge.plugin_host.client import Client; Client().shutdown()"],
                             env=env, capture_output=True, text=True)

    assert converted.returncode == 0, converted.stderr + (tmp_path / "run" / "midibridge" / "daemon.log").read_text()
    assert json.loads(converted.stdout)["notes"] and stopped.returncode == 0


def test_overall_progress_counts_finished_regions_and_the_model_runs_of_running_ones():
    from midibridge.plugin_host.results import OverallProgress, Progress

    overall = OverallProgress(4)

    assert overall.update(Progress(0, "a", "infer", 0.5)) == 0.125
    assert overall.update(Progress(0, "a", "notes", 0.0)) == 0.125, "stages after the model keep its share"
    assert overall.done(0) == 0.25 and overall.update(Progress(1, "b", "infer", 1.0)) == 0.5
