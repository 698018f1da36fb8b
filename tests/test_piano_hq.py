"""A pianist picks `piano-hq` (Transkun) and every path works as with any other preset: the command line in-process
and through the daemon, the daemon's progress, cancel and interactive worker, a batch and its resume, Ardour
(ardour7-lua) and REAPER (a fake host: REAPER cannot run here). The Ray cluster's turn is in test_cluster.py."""

import json
import subprocess
import time

import mido
import pytest
from ardour_session import Placed, make_session, read_session
from ardour_session import convert as ardour_convert
from conftest import Note, matches, render
from daemon_helpers import DaemonProcess, wait_for
from fake_reaper import FakeReaper, FakeTake
from test_cli_daemon import MIDIBRIDGE, run
from test_reaper import run_action

from midibridge.bridge import protocol as p
from midibridge.model.engines import ENGINES
from midibridge.model.engines.transkun.constants import SAMPLE_RATE_HZ
from midibridge.model.engines.transkun.engine import window_count
from midibridge.model.errors import Cancelled
from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import load_preset
from midibridge.model.region import Region
from midibridge.model.vocabulary import Stage

# Two bars of a left-hand chord under a right-hand line, as a pianist plays it.
CHORDS = [Note(pitch, 0.5 + 2.0 * bar, 2.3 + 2.0 * bar, 70) for bar in range(2) for pitch in (48, 52, 55)]
LINE = [Note(72 + (0, 2, 4, 5, 7, 5, 4, 2)[i], 0.5 + 0.5 * i, 0.95 + 0.5 * i, 90) for i in range(8)]
PIECE = sorted(CHORDS + LINE, key=lambda n: (n.start_s, n.pitch))


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    return render(PIECE, tmp_path_factory.mktemp("piano-hq") / "piece.wav", sample_rate_hz=44100)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("piano-hq-daemon"), workers=1)
    yield running
    running.stop()


def test_piano_hq_hears_every_note_of_chords_under_a_line_and_writes_them_at_the_regions_position(
    daemon, piece, tmp_path
):
    region = ["--start", 0.25, "--duration", 4.5, "--position", 8.0, "--bpm", 100, "--preset", "piano-hq", "--json"]

    through_daemon = run(daemon, "convert", piece, *region, "-o", tmp_path / "daemon.mid")
    in_process = run(daemon, "convert", piece, *region, "-o", tmp_path / "local.mid", "--in-process")

    assert through_daemon.returncode == in_process.returncode == 0, through_daemon.stderr + in_process.stderr
    assert (tmp_path / "daemon.mid").read_bytes() == (tmp_path / "local.mid").read_bytes()
    clip = json.loads(through_daemon.stdout)
    assert clip["position_s"] == 8.0 and clip["bpm"] == 100
    found = [Note(n["pitch"], n["start_s"] + 0.25, n["end_s"] + 0.25, n["velocity"]) for n in clip["notes"]]
    heard = matches(found, [n for n in PIECE if n.start_s < 4.75])
    assert len(heard) == len(found) == len([n for n in PIECE if n.start_s < 4.75]), "every note, and no other"
    chords, line = [n.velocity for n in found if n.pitch < 60], [n.velocity for n in found if n.pitch >= 72]
    assert max(chords) < min(line), (
        f"the chords are played softer than the line, and Transkun's velocities say so: {chords}, {line}"
    )
    smf = mido.MidiFile(tmp_path / "daemon.mid")
    assert sum(m.type == "note_on" and m.velocity > 0 for m in smf.tracks[-1]) == len(found)


def test_a_long_region_reports_progress_inside_each_window_and_a_cancel_ends_its_run_at_once(long_audio):
    """Transkun runs 16 s windows of several seconds each: the progress a DAW shows moves inside them, and a cancel
    does not wait for the window to end (onnxruntime's run is terminated). Times are compared with the run's own
    pace (a window's time in this run), so that a loaded machine slows both sides alike."""
    transcriber = Transcriber()
    reports: list[tuple[float, float]] = []
    cancelled_at: list[float] = []

    def on_progress(stage, fraction):
        reports.append((time.monotonic(), fraction))
        if stage == Stage.INFER and fraction > 2.3 / 6:  # inside the third of six windows
            cancelled_at.append(time.monotonic())
            raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        transcriber.transcribe(
            Region.from_file(long_audio, duration_s=32.0), preset=load_preset("piano-hq"), on_progress=on_progress
        )
    stopped_after_s = time.monotonic() - cancelled_at[0]

    fractions = [fraction for _, fraction in reports[1:]]
    assert fractions == sorted(fractions) and len(fractions) > 6, "progress moves on, more often than once a window"
    assert any(0 < fraction * 6 % 1 for fraction in fractions), "and inside windows"
    window_s = (cancelled_at[0] - reports[1][0]) / (fractions[-1] * 6)  # a window's run and decode, at this pace
    gaps_s = [later - earlier for (earlier, _), (later, _) in zip(reports[2:], reports[3:])]
    assert max(gaps_s) < window_s / 2, f"reports {max(gaps_s):.2f} s apart at most, windows take {window_s:.2f} s"
    assert stopped_after_s < window_s / 2, f"cancelled {stopped_after_s:.2f} s after asked ({window_s:.2f} s a window)"


def submit(sock, request_id: str, kind: str, header: dict) -> list[str]:
    """Send a request on a bare socket (nothing waits for its results); its job ids once accepted."""
    sock.send_multipart(p.encode(kind, request_id, header))
    while True:  # other jobs' progress may come first
        assert sock.poll(30_000), f"no answer to {request_id} within 30 s"
        answer = p.decode(sock.recv_multipart())
        if answer.request_id == request_id:
            assert answer.kind == p.ACCEPTED, answer.header
            return answer.header["job_ids"]


def inference_progress(sock, job_id: str) -> tuple[float, float]:
    """When the job's next `infer` progress arrived, and its fraction."""
    while True:
        message = wait_for(sock, {p.PROGRESS}, job_id)
        if message.header["stage"] == Stage.INFER:
            return time.monotonic(), message.header["fraction"]


def test_a_cancelled_piano_hq_job_in_the_daemon_ends_and_its_worker_serves_the_next_one(daemon, long_audio, piece):
    """The cancel is answered well within a window's time, measured in this run (a loaded machine slows both)."""
    sock = daemon.raw()
    region = {"path": str(long_audio), "duration_s": 60.0}
    windows = window_count(60 * SAMPLE_RATE_HZ)
    [job_id] = submit(sock, "long", p.TRANSCRIBE, {"region": region, "preset": "piano-hq"})
    first_s, first = inference_progress(sock, job_id)
    later_s, later = first_s, first
    while later < first + 1 / windows:  # a whole window's progress, to measure its pace
        later_s, later = inference_progress(sock, job_id)
    window_s = (later_s - first_s) / ((later - first) * windows)
    workers_before = daemon.worker_pids()
    with daemon.client() as client:
        asked_s = time.monotonic()
        assert client.cancel([job_id]) == {job_id: "cancelling"}
    answer = wait_for(sock, {p.ERROR, p.RESULT}, job_id, timeout_s=10.0)
    answered_after_s = time.monotonic() - asked_s
    sock.close()

    assert answer.header["code"] == "cancelled", answer.header
    assert answered_after_s < window_s / 2, f"answered in {answered_after_s:.2f} s, a window takes {window_s:.2f} s"
    with daemon.client() as client:
        assert client.transcribe(Region.from_file(piece), preset="piano-hq").clip.notes
    assert daemon.worker_pids() == workers_before, "the worker stopped its run, and was not killed for it"


def test_a_piano_hq_batch_leaves_the_worker_kept_for_interactive_jobs_free(daemon, long_audio, piece, tmp_path):
    """The daemon keeps a worker for jobs someone waits for: a long piano-hq batch must not take it."""
    sock = daemon.raw()
    regions = [{"path": str(long_audio), "start_s": start_s, "duration_s": 40.0} for start_s in (0.0, 40.0)]
    batch = submit(sock, "batch", p.BATCH, {"regions": regions, "preset": "piano-hq", "priority": "batch"})
    wait_for(sock, {p.PROGRESS}, batch[0])

    # a region no earlier test asked for: the daemon's cache must not answer it
    converted = run(daemon, "convert", piece, "--duration", 5.0, "--preset", "piano-hq", "-o", tmp_path / "now.mid")
    with daemon.client() as client:
        batch_then = client.status(batch)
        client.cancel(batch)
    sock.close()

    assert converted.returncode == 0, converted.stderr
    assert sum(m.type == "note_on" for m in mido.MidiFile(tmp_path / "now.mid").tracks[-1]) >= len(CHORDS)
    assert {job["state"] for job in batch_then["jobs"]} <= {"running", "queued"}, "the batch had not finished"


def test_a_piano_hq_batch_keeps_transkuns_weights_in_its_index_and_a_rerun_skips_it(piece, tmp_path):
    takes, out = tmp_path / "takes", tmp_path / "midi"
    takes.mkdir()
    (takes / "piece.wav").write_bytes(piece.read_bytes())
    first = run_local("batch", takes, "-o", out, "--preset", "piano-hq", "--in-process")
    again = run_local("batch", takes, "-o", out, "--preset", "piano-hq", "--in-process")

    assert first.returncode == 0 and "converted 1 of 1 regions" in first.stdout, first.stderr
    assert "1 unchanged since the last run, skipped" in again.stdout
    [entry] = json.loads((out / "index.json").read_text())["regions"]
    assert entry["model"] == {"engine": "transkun", "sha256": ENGINES["transkun"].weights_sha256}
    assert entry["notes"] == len(PIECE)


def test_an_ardour_region_converted_with_piano_hq_lands_at_its_position_on_a_new_midi_track(daemon, piece, tmp_path):
    rate = 44100
    session = make_session(tmp_path / "session", rate, [Placed("Keys", piece, 3.0, 0.0, 6.0)])

    done = ardour_convert(daemon, session, "--preset", "piano-hq")

    assert done.returncode == 0, done.stdout + done.stderr
    found = read_session(session)
    [midi] = found["midi"]
    assert midi["position"] == round(3.0 * rate) and midi["track"].startswith("Keys")
    assert sorted(n["pitch"] for n in found["notes"]) == sorted(n.pitch for n in PIECE)


def test_a_reaper_item_converted_with_piano_hq_becomes_a_midi_item_at_its_position(daemon, piece, monkeypatch):
    reaper = FakeReaper(bpm=120.0)
    keys = reaper.add_track("Keys")
    reaper.add_item(keys, position=2.0, length=6.0, take=FakeTake(str(piece)), selected=True)

    run_action(reaper, "selected", daemon, monkeypatch, preset="piano-hq")

    [item] = reaper.tracks[1].items
    assert item.position == 2.0
    assert sorted(pitch for _, _, _, pitch, _ in item.take.notes) == sorted(n.pitch for n in PIECE)


def run_local(*args):
    return subprocess.run([MIDIBRIDGE, *map(str, args)], capture_output=True, text=True, timeout=300)
