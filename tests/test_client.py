"""The thin client as a DAW adapter uses it: light to import, and it rides out a daemon that restarts."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import synthesize, write_audio
from daemon_helpers import DaemonProcess, free_port, submit_raw, wait_for

from midibridge.bridge import protocol as p
from midibridge.model.clip import Note
from midibridge.model.region import Region
from midibridge.plugin_host.client import Client, ClientError, DaemonUnavailable

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def test_converting_in_process_does_not_load_zeromq_and_the_client_does_not_load_numpy():
    probe = (
        "import sys, midibridge.plugin_host.cli, midibridge.plugin_host.runner, midibridge.plugin_host.host_lines; "
        "print('zmq' in sys.modules)"
    )

    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_the_client_and_the_protocol_import_without_numpy_or_onnxruntime():
    probe = (
        "import sys, midibridge.plugin_host.client, midibridge.plugin_host.cli, midibridge.bridge.protocol; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'pedalboard', 'mido') if m in sys.modules))"
    )

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


def counting_tries(client: Client) -> list[str]:
    """The kinds of message `client` sends, as it sends them."""
    sent, send = [], client._send
    client._send = lambda kind, *args: sent.append(kind) or send(kind, *args)
    return sent


def test_no_daemon_fails_at_once_and_says_how_to_start_one():
    """Nothing serves the endpoint and no daemon says it does: one quick hello, not four tries of 5 s."""
    started = time.monotonic()
    with Client(f"tcp://127.0.0.1:{free_port()}") as client:
        tries = counting_tries(client)
        with pytest.raises(DaemonUnavailable) as caught:
            client.status()

    assert tries == ["hello"], "one probe, no retries"
    assert "no midibridge daemon is running on tcp://127.0.0.1:" in str(caught.value)
    assert "Start one with `midibridge serve`" in str(caught.value)
    assert time.monotonic() - started < 5.0, "today's default waited 4 tries x 5 s"


def test_a_daemon_known_to_run_but_silent_gets_every_retry(tmp_path, monkeypatch):
    """A discovery file of a live process: the daemon is there, merely slow, so Lazy Pirate asks again."""
    from midibridge.bridge import discovery

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    discovery.write_discovery(
        {"endpoint": endpoint, "pid": os.getpid(), "protocol": "midibridge/2.0", "public_key": None}
    )
    with Client(endpoint, timeout_s=0.3, retries=2) as client:
        tries = counting_tries(client)
        with pytest.raises(DaemonUnavailable) as caught:
            client.status()

    assert tries == ["status"] * 3
    assert "after 3 tries of 0.3 s" in str(caught.value) and "midibridge serve" in str(caught.value)


@pytest.fixture
def one_worker(tmp_path):
    """One worker and no spare for interactive jobs, a queue of 4."""
    running = DaemonProcess(tmp_path / "home", "--queue", "4", "--interactive-workers", "0", "--grace", "1", workers=1)
    yield running
    running.stop()


def short_takes(folder: Path, count: int) -> list[Path]:
    """`count` different one-second files: each its own note, so none is answered from the daemon's cache."""
    folder.mkdir(exist_ok=True)
    return [
        write_audio(folder / f"take{n:02d}.wav", synthesize([Note(48 + n, 0.1, 0.8, 100)], length_s=1.0), 44100)
        for n in range(count)
    ]


def test_a_batch_larger_than_the_daemons_queue_goes_in_parts_and_every_region_comes_back(one_worker, tmp_path):
    takes = short_takes(tmp_path / "takes", 10)
    seen = set()
    with one_worker.client() as client:
        assert client.hello()["limits"]["max_batch_regions"] == 4
        results = list(
            client.batch(
                [Region.from_file(take) for take in takes],
                priority="batch",
                on_progress=lambda progress: seen.add(progress.index),
            )
        )

    assert sorted(result.index for result in results) == list(range(10)), "each region once"
    assert all(result.error is None and result.clip.notes for result in results)
    assert [result.clip.notes[0].pitch for result in sorted(results, key=lambda r: r.index)] == list(range(48, 58))
    assert seen <= set(range(10)), "progress counts regions of the whole batch, not of a part"


def test_a_batch_sent_while_someone_else_fills_the_queue_waits_its_turn(one_worker, long_audio, tmp_path):
    """The queue is full of another client's jobs (busy): ours go in when those are gone, instead of failing."""
    takes = short_takes(tmp_path / "takes", 3)
    sock = one_worker.raw()
    theirs = [submit_raw(sock, long_audio)]
    wait_for(sock, {p.PROGRESS}, theirs[0])
    theirs += [submit_raw(sock, long_audio, f"w{n}".encode()) for n in range(3)]
    refused = []
    with one_worker.client() as client:
        request = client.request

        def watching(kind, *args):
            try:
                return request(kind, *args)
            except ClientError as error:
                refused.append(error.code)
                if len(refused) == 2:  # they give up their jobs once we have been turned away
                    with one_worker.client() as other:
                        other.cancel(theirs)
                raise

        client.request = watching
        results = list(client.batch([Region.from_file(take) for take in takes]))
    sock.close()

    assert refused[:2] == ["busy", "busy"]
    assert sorted(result.index for result in results) == [0, 1, 2]
    assert all(result.error is None and result.clip.notes for result in results)


def test_a_queued_convert_waits_through_a_daemon_restart_and_succeeds(one_worker, long_audio, piano_line, tmp_path):
    """The daemon is restarted while our convert waits behind another job: it runs on the next daemon."""
    sock = one_worker.raw()
    hog = submit_raw(sock, long_audio)
    wait_for(sock, {p.PROGRESS}, hog)
    convert = subprocess.Popen(
        [MIDIBRIDGE, "convert", str(piano_line), "-o", str(tmp_path / "take.mid"), "--json"],
        env=one_worker.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with one_worker.client() as client:
        while client.status()["counts"]["queued"] == 0:
            assert convert.poll() is None, convert.communicate()
            time.sleep(0.1)
    sock.close()

    assert one_worker.stop() == 0, "SIGTERM: the queued convert is refused shutting_down, the hog cut off"
    assert convert.poll() is None, "the convert waits for the next daemon"
    following = DaemonProcess(tmp_path / "home", endpoint=one_worker.endpoint, workers=1)
    try:
        out, err = convert.communicate(timeout=120)
        with following.client() as client:
            done = client.status()["counts"]["done"]
    finally:
        following.stop()

    assert convert.returncode == 0, err
    assert json.loads(out)["notes"] and (tmp_path / "take.mid").is_file() and done == 1


def test_a_daemon_started_from_a_folder_holding_folders_named_like_our_packages_works(tmp_path, piano_line):
    # `python -m` puts its working directory first on sys.path; a "presets" folder there once stood in for ours.
    for name in ("presets", "model", "bridge"):
        (tmp_path / name).mkdir()
    (tmp_path / "presets" / "default.toml").write_text("not = [valid")
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "run"), MIDIBRIDGE_ENDPOINT=f"tcp://127.0.0.1:{free_port()}")
    (tmp_path / "run").mkdir()

    converted = subprocess.run(
        [MIDIBRIDGE, "convert", str(piano_line), "--daemon", "--preset", "piano", "--json", "-o", "x.mid"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    stopped = subprocess.run(
        [sys.executable, "-c", "from midibridge.plugin_host.client import Client; Client().shutdown()"],
        env=env,
        capture_output=True,
        text=True,
    )

    assert converted.returncode == 0, converted.stderr + (tmp_path / "run" / "midibridge" / "daemon.log").read_text()
    assert json.loads(converted.stdout)["notes"] and stopped.returncode == 0


def test_overall_progress_counts_finished_regions_and_the_model_runs_of_running_ones():
    from midibridge.plugin_host.results import OverallProgress, Progress

    overall = OverallProgress(4)

    assert overall.update(Progress(0, "a", "infer", 0.5)) == 0.125
    assert overall.update(Progress(0, "a", "notes", 0.0)) == 0.125, "stages after the model keep its share"
    assert overall.done(0) == 0.25 and overall.update(Progress(1, "b", "infer", 1.0)) == 0.5
