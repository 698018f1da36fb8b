"""Load: 50 clients at once, each sending 20 requests (single regions and batches of three) on loopback.

Every request id is answered, every job once, each with its own region's
clip; a full queue answers `busy` (the client waits and sends again) instead
of growing without bound; the daemon's memory stays bounded. Raw sockets, so
that a duplicate or a stray reply cannot hide behind the client library.
`pytest --long` sends 100 requests per client.
"""

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess

from midibridge.bridge import protocol as p

CLIENTS = 50
STEP_S = 0.5  # one note, of its own pitch, every half second
PITCHES = [40 + i for i in range(40)]


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    home = tmp_path_factory.mktemp("load")
    notes = [Note(pitch, i * STEP_S + 0.05, i * STEP_S + 0.4, 110) for i, pitch in enumerate(PITCHES)]
    audio = write_audio(
        home / "ladder.wav", synthesize(notes, sample_rate_hz=22050, length_s=len(PITCHES) * STEP_S), 22050
    )
    running = DaemonProcess(home, "--queue", "32", workers=2)
    yield running, audio
    running.stop()


def region(audio: Path, step: int, position_s: float) -> dict:
    return {"path": str(audio), "start_s": step * STEP_S, "duration_s": STEP_S, "position_s": position_s}


def client_run(daemon: DaemonProcess, audio: Path, client: int, requests: int, record: dict) -> None:
    """One client's requests in turn; busy answers are waited out and sent again under a new request id."""
    sock = daemon.raw()
    rng = random.Random(client)
    try:
        for n in range(requests):
            steps = [rng.randrange(len(PITCHES)) for _ in range(1 if rng.random() < 0.7 else 3)]
            wanted = {}  # position_s -> expected pitch: positions are unique to this request
            regions = []
            for k, step in enumerate(steps):
                position = client * 10_000.0 + n * 10.0 + k
                wanted[position] = PITCHES[step]
                regions.append(region(audio, step, position))
            kind, header = (
                (p.TRANSCRIBE, {"region": regions[0]}) if len(regions) == 1 else (p.BATCH, {"regions": regions})
            )
            attempt = 0
            while True:
                request_id = f"c{client}-r{n}-a{attempt}"
                started = time.perf_counter()
                sock.send_multipart(p.encode(kind, request_id, header))
                first = _next(sock, request_id)
                if first.kind == p.ERROR and first.header["code"] == "busy":
                    record["busy"] += 1
                    attempt += 1
                    time.sleep(0.05 + rng.random() * 0.2)
                    continue
                assert first.kind == p.ACCEPTED, first.header
                break
            jobs = set(first.header["job_ids"])
            assert len(jobs) == len(regions)
            answers = {}
            while len(answers) < len(jobs):
                message = _next(sock, None)
                if message.kind == p.PROGRESS:
                    continue
                assert message.request_id == request_id, "a reply names the request it answers"
                job_id = message.header["job_id"]
                assert job_id in jobs and job_id not in answers, "every job answered once"
                answers[job_id] = message
            record["latency_s"].append(time.perf_counter() - started)
            for message in answers.values():
                assert message.kind == p.RESULT, message.header
                clip = p.clip_from_buffer(message.buffers[1])
                assert wanted[clip["position_s"]] in {note["pitch"] for note in clip["notes"]}, "the right clip"
            record["requests"] += 1
            record["jobs"] += len(jobs)
    except Exception as error:  # reported by the test
        record["errors"].append(f"client {client}: {error!r}")
    finally:
        sock.close()


def _next(sock, request_id, timeout_s=120.0):
    if not sock.poll(timeout_s * 1000):
        raise AssertionError(f"no reply for {timeout_s} s (waiting for {request_id})")
    return p.decode(sock.recv_multipart())


def memory_mb(daemon: DaemonProcess) -> float:
    pids = [daemon.process.pid] + daemon.worker_pids()
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def test_fifty_clients_get_every_answer_once_with_the_right_clip(scale, long_run, figures):
    daemon, audio = scale
    requests = 100 if long_run else 20
    record = {"busy": 0, "requests": 0, "jobs": 0, "latency_s": [], "errors": []}
    threads = [threading.Thread(target=client_run, args=(daemon, audio, c, requests, record)) for c in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    elapsed = time.perf_counter() - started
    peak_mb = memory_mb(daemon)

    assert not record["errors"], record["errors"][:5]
    assert record["requests"] == CLIENTS * requests
    assert record["busy"] > 0, "a full queue said busy instead of growing"
    assert peak_mb < 1500, f"daemon and workers peaked at {peak_mb:.0f} MB"
    latencies = np.array(record["latency_s"]) * 1000
    figures.update(
        {
            "clients × requests": f"{CLIENTS} × {requests}",
            "jobs": record["jobs"],
            "busy answers": record["busy"],
            "lost or mismatched replies": 0,
            "p50 / p99 latency": f"{np.percentile(latencies, 50):.0f} / {np.percentile(latencies, 99):.0f} ms",
            "throughput": f"{record['requests'] / elapsed:.0f} requests/s",
            "peak RSS (daemon + 2 workers)": f"{peak_mb:.0f} MB",
        }
    )
