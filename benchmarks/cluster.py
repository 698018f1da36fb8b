"""Benchmark a batch on a Ray cluster against the local daemon, on ../shared's corpus.

    python -m benchmarks.cluster [--corpus DIR] [--runs 3]

Prints (a script, not a test: compare the ratios, measured in one run):
- the same 16 files as one `midibridge batch`, through a warm local daemon
  (2 workers) and on a 2-node Ray cluster on loopback (one CPU slot each),
  on the same 2 cores, alternating, median of --runs: wall times and their
  ratio (daemon / cluster: above 1, the cluster is faster);
- a one-file batch both ways: the fixed cost of a batch (joining the cluster,
  starting actors, loading the model), and the 16 files four times over (64
  regions, links of other names, so the daemon's cache never answers): how
  that cost amortises;
- the cluster's cost per region: 48 regions of 0.5 s through the actors
  (steady state, first result to last) against the same work in this
  process on one thread, and the driver's CPU time per region (the batch's
  and its private daemon's, which is Ray's driver);
- the 16 files through `midibridge serve --cluster` (a daemon whose two
  workers are actors on the same cluster, warm between batches) against the
  local daemon, alternating;
- from those, on paper, regions of 30 s per second for 10 and 100 nodes of
  two slots: each slot spends a region's work plus the overhead, and one
  driver serves every slot, so its CPU time per region caps the whole.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from midibridge.model.clip import Tempo
from midibridge.model.region import Region

from .corpus import corpus_manifest, corpus_parser
from .daemon import Daemon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ray_cluster import LoopbackCluster  # noqa: E402  (the tests' loopback cluster: one way to start it)

N_FILES = 16
SMALL_S, N_SMALL = 0.5, 48
REGION_S = 30.0
SLOTS_PER_NODE = 2
MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/cluster"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    manifest = corpus_manifest(args)
    if manifest is None:
        return 0
    files = [manifest.parent / case["audio"] for case in json.loads(manifest.read_text())["cases"]][:N_FILES]
    args.out.mkdir(parents=True, exist_ok=True)
    daemon, cluster = Daemon(workers=2, threads=0, out=args.out), LoopbackCluster(nodes=2)
    try:
        ways = {"daemon": (daemon.env, ["--daemon"]), "cluster": (daemon.env, ["--cluster", cluster.address])}
        sizes = {"batch": files, "one_file": files[:1], "four_times": _links(files, 4, args.out / "links")}
        report = {"audio_s": _audio_s(files), **{size: {way: [] for way in ways} for size in sizes}}
        _alternate(report, ways, sizes, args.runs, args.out)
        _same_outputs(args.out / "daemon-batch", args.out / "cluster-batch")
        report["per_region"] = _per_region(files, cluster.address)
        # serve --cluster holds both slots for as long as it runs: measured after, against the local daemon again.
        on_cluster = Daemon(
            workers=2, threads=1, out=args.out, options=("--cluster", cluster.address, "--interactive-workers", "0")
        )
        try:
            ways = {"daemon": ways["daemon"], "cluster_daemon": (on_cluster.env, ["--daemon"])}
            sizes = {"batch": files, "one_file": files[:1]}
            report["serve_cluster"] = {size: {way: [] for way in ways} for size in sizes}
            _alternate(report["serve_cluster"], ways, sizes, args.runs, args.out, first_tempo=150)
            _same_outputs(args.out / "daemon-batch", args.out / "cluster_daemon-batch")
        finally:
            on_cluster.stop()
    finally:
        daemon.stop()
        cluster.stop()
    report["projection"] = _projection(report)
    (args.out / "cluster.json").write_text(json.dumps(report, indent=1))
    _print(report)
    return 0


def _alternate(report: dict, ways: dict, sizes: dict, runs: int, out: Path, *, first_tempo: int = 100) -> None:
    """Each batch size each way, in turn, `runs` times; a tempo of each run's own, so no daemon's cache answers."""
    for run in range(runs):
        for n, (size, inputs) in enumerate(sizes.items()):
            for way, (env, flag) in ways.items():
                tempo = ["--bpm", str(first_tempo + 10 * run + n)]
                report[size][way].append(_timed_batch(inputs, [*flag, *tempo], env, out / f"{way}-{size}"))


def _audio_s(files: list[Path]) -> float:
    from pedalboard.io import AudioFile

    total = 0.0
    for path in files:
        with AudioFile(str(path)) as source:
            total += source.frames / source.samplerate
    return total


def _timed_batch(files: list[Path], flag: list[str], env: dict, out: Path) -> float:
    """Seconds for the whole `midibridge batch` command, from a fresh output directory (nothing resumed)."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [MIDIBRIDGE, "batch", *map(str, files), "-o", str(out), *flag], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"batch {' '.join(flag)} failed: {done.stderr}")
    return elapsed


def _links(files: list[Path], copies: int, folder: Path) -> list[Path]:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    links = []
    for copy in range(copies):
        for path in files:
            links.append(folder / f"{path.stem}-{copy}{path.suffix}")
            links[-1].symlink_to(path.resolve())
    return links


def _same_outputs(a: Path, b: Path) -> None:
    for path in a.glob("*.mid"):
        if path.read_bytes() != (b / path.name).read_bytes():
            raise RuntimeError(f"{path.name}: the cluster wrote other bytes than the daemon")


def _per_region(files: list[Path], address: str) -> dict:
    """Steady-state cost per region on the cluster against the same regions here on one thread."""
    from midibridge.model.pipeline import Transcriber
    from midibridge.plugin_host.runner import Cluster, Job

    regions = [
        Region.from_file(files[i % len(files)], start_s=5.0 + i % 7, duration_s=SMALL_S, position_s=float(i))
        for i in range(N_SMALL)
    ]
    transcriber = Transcriber(threads=1)
    transcriber.convert(regions[0])  # warm
    started = time.perf_counter()
    for region in regions:
        transcriber.convert(region)
    local_s = (time.perf_counter() - started) / N_SMALL
    finished, cpu_before = [], _cpu_s()
    for _ in Cluster(address=address).run([Job(region, Tempo()) for region in regions]):
        finished.append(time.perf_counter())
    driver_cpu_s = (_cpu_s() - cpu_before) / N_SMALL  # the private daemon has exited: its time is counted
    slot_s = 2 * (finished[-1] - finished[0]) / (len(finished) - 1)  # two slots, each a region at a time
    return {
        "local_one_thread_s": local_s,
        "cluster_slot_s": slot_s,
        "overhead_s": slot_s - local_s,
        "driver_cpu_s": driver_cpu_s,
    }


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have exited."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _projection(report: dict) -> dict:
    """Regions of 30 s a second for N nodes: min(N x slots / work, 1 / driver CPU per region)."""
    cost = report["per_region"]
    # One slot's seconds for a 30 s region, from the 64-region batch (the batch's fixed cost spread over it).
    work_s = (
        statistics.median(report["four_times"]["cluster"])
        * 2
        / (4 * N_FILES)
        * REGION_S
        / (report["audio_s"] / N_FILES)
    )
    driver_cap = 1.0 / cost["driver_cpu_s"]
    return {
        "work_per_30s_region_s": work_s,
        "driver_cap_regions_per_s": driver_cap,
        **{str(nodes): min(nodes * SLOTS_PER_NODE / work_s, driver_cap) for nodes in (1, 10, 100)},
    }  # work_s holds the overhead: it was measured through the cluster


def _print(report: dict) -> None:
    batch, one, four = (
        {way: statistics.median(times) for way, times in report[key].items()}
        for key in ("batch", "one_file", "four_times")
    )
    served = {
        size: {way: statistics.median(times) for way, times in runs.items()}
        for size, runs in report["serve_cluster"].items()
    }
    print(
        f"\n{N_FILES} files ({report['audio_s']:.0f} s of audio) as one batch, median of "
        f"{len(report['batch']['daemon'])} runs, alternating (the same .mid bytes both ways):"
    )
    for way, seconds in batch.items():
        print(
            f"  {way:8} {seconds:6.2f} s ({report['audio_s'] / seconds:.0f}x real time); a one-file batch "
            f"{one[way]:.2f} s; {4 * N_FILES} regions {four[way]:.2f} s"
        )
    print(
        f"  throughput, cluster / daemon: {batch['daemon'] / batch['cluster']:.3f} ({N_FILES} regions), "
        f"{four['daemon'] / four['cluster']:.3f} ({4 * N_FILES} regions)"
    )
    print(
        f"\nthe same {N_FILES} files through `serve --cluster` (its two workers actors on the cluster), against the "
        f"local daemon in the same runs:"
    )
    for way, seconds in served["batch"].items():
        print(f"  {way:14} {seconds:6.2f} s; a one-file batch {served['one_file'][way]:.2f} s")
    print(f"  throughput, cluster daemon / daemon: {served['batch']['daemon'] / served['batch']['cluster_daemon']:.3f}")
    cost = report["per_region"]
    print(f"\nper region ({N_SMALL} regions of {SMALL_S:g} s, steady state):")
    ms = {key: f"{seconds * 1000:.1f} ms" for key, seconds in cost.items()}
    print(
        f"  one thread here {ms['local_one_thread_s']}; a cluster slot {ms['cluster_slot_s']}; "
        f"overhead {ms['overhead_s']}; driver CPU {ms['driver_cpu_s']}"
    )
    projection = report["projection"]
    print(
        f"\non paper, {REGION_S:g} s regions ({projection['work_per_30s_region_s']:.2f} s of one slot's work each), "
        f"nodes of {SLOTS_PER_NODE} slots; one driver caps it at {projection['driver_cap_regions_per_s']:.0f} "
        f"regions/s:"
    )
    for nodes in ("1", "10", "100"):
        rate = projection[nodes]
        print(f"  {nodes:>3} node(s): {rate:7.1f} regions/s = {rate * REGION_S / 3600:6.2f} hours of audio a second")


if __name__ == "__main__":
    sys.exit(main())
