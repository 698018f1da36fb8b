"""Benchmark the daemon against transcribing in-process, on ../shared's corpus.

    python -m benchmarks.daemon [--corpus DIR] [--runs 7]

Prints (a script, not a test: compare the ratios, measured in one run):
- warm end-to-end latency of one 30 s region through the daemon and in-process
  (best and median of --runs; every request differs, so no cache answers it);
- batch throughput of 16 regions of 30 s with 1 and 2 workers: with every
  core's threads for a job alone and one thread beside others (the default,
  "adaptive"), one thread always, or every core's threads always;
- the daemon's memory (daemon + workers): resident when idle, peak under load;
- how long a 10 s interactive region takes while a 60-minute batch holds both
  workers, against the same on an idle daemon.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from midibridge.bridge.discovery import read_discovery
from midibridge.model.region import Region
from midibridge.model.vocabulary import Priority
from midibridge.plugin_host.client import Client

from .corpus import corpus_manifest, corpus_parser

REGION_S = 30.0
INTERACTIVE_S = 10.0
BATCH_S = 3600.0


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/daemon"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    cases = json.loads(manifest.read_text())["cases"]
    files = [manifest.parent / case["audio"] for case in cases if case["duration_s"] >= REGION_S][:16]
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"latency": _latency(files[0], args.runs, args.out), "throughput": {}}
    for workers, threads in ((1, 0), (2, 0), (2, 1), (2, 2)):
        report["throughput"][f"{workers}x{threads or 'all'}"] = _throughput(files, workers, threads, args.out)
    report["interactive"] = _interactive_behind_a_batch(files, args.runs, args.out)
    (args.out / "daemon.json").write_text(json.dumps(report, indent=1))
    _print(report)
    return 0


class Daemon:
    """`midibridge serve` on a private endpoint and runtime dir."""

    def __init__(self, *, workers: int, threads: int, out: Path, options: tuple[str, ...] = ()):
        self.home = tempfile.TemporaryDirectory(prefix="midibridge-bench-")
        self.endpoint = f"ipc://{self.home.name}/frontend.sock"
        # What a command run with it needs to find this daemon.
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.home.name, MIDIBRIDGE_ENDPOINT=self.endpoint)
        with open(out / f"daemon-{workers}x{threads}.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "midibridge.plugin_host.cli",
                    "serve",
                    "--endpoint",
                    self.endpoint,
                    "--workers",
                    str(workers),
                    "--threads",
                    str(threads),
                    *options,
                ],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=self.home.name,
            )
        self._runtime_dir = os.environ.get("XDG_RUNTIME_DIR")  # put back by stop()
        os.environ["XDG_RUNTIME_DIR"] = self.home.name  # so that read_discovery() finds this one
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if read_discovery(self.endpoint) and all(w["ready"] for w in self.status()["workers"]):
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon did not start")

    def client(self) -> Client:
        return Client(self.endpoint, timeout_s=10.0)

    def status(self) -> dict:
        with self.client() as client:
            return client.status()

    def memory_mb(self, field: str) -> float:
        """VmRSS (now) or VmHWM (peak) of the daemon and its workers, summed."""
        pids = [self.process.pid] + [w["pid"] for w in self.status()["workers"]]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.home.cleanup()
        if self._runtime_dir is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = self._runtime_dir


def _latency(audio: Path, runs: int, out: Path) -> dict:
    from midibridge.model.pipeline import Transcriber

    transcriber = Transcriber()
    daemon = Daemon(workers=os.cpu_count() or 1, threads=0, out=out)  # as `midibridge serve` starts by default
    try:
        idle_mb = daemon.memory_mb("VmRSS")
        timings = {"daemon": [], "in_process": []}
        with daemon.client() as client:
            for run in range(runs + 1):  # the first of each is the warm-up
                region = Region.from_file(audio, duration_s=REGION_S, position_s=float(run))
                started = time.perf_counter()
                client.transcribe(region)
                timings["daemon"].append(time.perf_counter() - started)
                started = time.perf_counter()
                transcriber.convert(region)  # the same work product: notes and a MIDI file
                timings["in_process"].append(time.perf_counter() - started)
    finally:
        daemon.stop()
    result = {"idle_rss_mb": idle_mb}
    for where, values in timings.items():
        result[where] = {"best_s": min(values[1:]), "median_s": statistics.median(values[1:])}
    result["daemon_over_in_process"] = result["daemon"]["median_s"] / result["in_process"]["median_s"]
    return result


def _throughput(files: list[Path], workers: int, threads: int, out: Path) -> dict:
    daemon = Daemon(workers=workers, threads=threads, out=out)
    try:
        idle_mb = daemon.memory_mb("VmRSS")
        regions = [Region.from_file(f, duration_s=REGION_S, position_s=float(i)) for i, f in enumerate(files)]
        with daemon.client() as client:
            started = time.perf_counter()
            results = list(client.batch(regions, priority=Priority.BATCH))
            elapsed = time.perf_counter() - started
        peak_mb = daemon.memory_mb("VmHWM")
    finally:
        daemon.stop()
    failed = [r.error for r in results if r.error]
    return {
        "regions": len(regions),
        "wall_s": elapsed,
        "rtf": len(regions) * REGION_S / elapsed,
        "failed": len(failed),
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": peak_mb,
    }


def _interactive_behind_a_batch(files: list[Path], runs: int, out: Path) -> dict:
    """Latency of a 10 s interactive region on an idle daemon, then while a 60-minute batch holds every worker."""
    daemon = Daemon(workers=2, threads=0, out=out)
    batch = [
        Region.from_file(files[i % len(files)], duration_s=REGION_S, position_s=1000.0 + i)
        for i in range(round(BATCH_S / REGION_S))
    ]
    try:
        with daemon.client() as client:
            idle = [_interactive_once(client, files[0], position_s=float(run)) for run in range(runs + 1)][1:]
        with daemon.client() as batcher:
            results = batcher.batch(batch, priority=Priority.BATCH)
            running = threading.Thread(target=lambda: next(results, None))  # submits it, waits for the first
            running.start()
            time.sleep(3.0)
            with daemon.client() as client:
                behind = [_interactive_once(client, files[0], position_s=100.0 + run) for run in range(runs)]
                busy = sum(1 for w in client.status()["workers"] if w["job_id"])
            running.join()
            results.close()  # cancels the rest of the batch
    finally:
        daemon.stop()
    return {
        "idle_median_s": statistics.median(idle),
        "behind_batch_median_s": statistics.median(behind),
        "behind_batch_max_s": max(behind),
        "busy_workers_during": busy,
        "runs": runs,
    }


def _interactive_once(client: Client, audio: Path, *, position_s: float) -> float:
    started = time.perf_counter()
    client.transcribe(Region.from_file(audio, start_s=5.0, duration_s=INTERACTIVE_S, position_s=position_s))
    return time.perf_counter() - started


def _print(report: dict) -> None:
    latency = report["latency"]
    print(f"\none {REGION_S:g} s region, warm (best / median of the runs):")
    for where in ("daemon", "in_process"):
        print(f"  {where:11} {latency[where]['best_s']:.3f} s / {latency[where]['median_s']:.3f} s")
    print(f"  daemon / in-process (medians): {latency['daemon_over_in_process']:.3f}")
    print(f"\n16 regions of {REGION_S:g} s as one batch:")
    for name, run in report["throughput"].items():
        workers, threads = name.split("x")
        threads = {"all": "adaptive threads"}.get(threads, f"{threads} thread(s) each")
        print(
            f"  {workers} worker(s), {threads}: {run['wall_s']:.2f} s, {run['rtf']:.0f}x real time, "
            f"RSS idle {run['idle_rss_mb']:.0f} MB, peak {run['peak_rss_mb']:.0f} MB, {run['failed']} failed"
        )
    interactive = report["interactive"]
    print(f"\na {INTERACTIVE_S:g} s interactive region (median of {interactive['runs']}), 2 workers:")
    print(f"  idle daemon: {interactive['idle_median_s']:.3f} s")
    print(
        f"  behind a {BATCH_S / 60:g}-minute batch ({interactive['busy_workers_during']} workers busy): "
        f"{interactive['behind_batch_median_s']:.3f} s (max {interactive['behind_batch_max_s']:.3f} s)"
    )


if __name__ == "__main__":
    sys.exit(main())
