"""The daemon's bookkeeping on its own, without sockets or processes: the job table and the result cache."""

import os
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from midibridge.bridge.cache import ResultCache
from midibridge.bridge.jobs import Job, JobTable
from midibridge.bridge.protocol import ProtocolError
from midibridge.model.clip import Tempo
from midibridge.model.engines import ENGINES
from midibridge.model.fingerprint import file_sha256, sha256_json
from midibridge.model.presets import load_preset, resolve_preset
from midibridge.model.region import Region
from midibridge.model.vocabulary import JobState, Priority
from midibridge.plugin_host import resume

DEFAULT = resolve_preset("default").to_dict()


def jobs(table: JobTable, n: int, *, priority: Priority = Priority.BATCH) -> list[Job]:
    return [Job(table.new_id(), b"client", "r1", {"path": "/a.wav"}, [], {}, {}, priority=priority) for _ in range(n)]


def test_a_right_click_runs_before_the_batch_that_was_queued_first():
    table = JobTable(max_queued=10, result_ttl_s=60)
    batch, right_click = jobs(table, 3), jobs(table, 1, priority=Priority.INTERACTIVE)
    table.submit(batch)
    table.submit(right_click)

    assert table.jobs_ahead(right_click[0]) == 0 and table.jobs_ahead(batch[0]) == 1
    assert [table.next_queued() for _ in range(4)] == right_click + batch
    assert table.next_queued() is None


def test_the_worker_kept_for_interactive_jobs_never_takes_a_batch_job():
    table = JobTable(max_queued=10, result_ttl_s=60)
    table.submit(jobs(table, 2))

    assert table.next_queued(interactive_only=True) is None and table.waiting == 2


def test_a_request_that_does_not_fit_the_queue_is_refused_whole():
    table = JobTable(max_queued=4, result_ttl_s=60)
    table.submit(jobs(table, 3))

    with pytest.raises(ProtocolError) as refused:
        table.submit(jobs(table, 2))

    assert refused.value.code == "busy" and "holds 3 of 4 jobs" in str(refused.value)
    assert table.waiting == 3 and len(table.jobs) == 3, "nothing of the refused request was queued"


def test_a_job_whose_worker_died_runs_next_and_counts_its_attempts():
    table = JobTable(max_queued=4, result_ttl_s=60)
    first, second = jobs(table, 2)
    table.submit([first, second])
    table.start(table.next_queued(), b"worker-1")
    table.requeue_first(first)

    again = table.next_queued()
    table.start(again, b"worker-2")

    assert again is first and (first.state, first.worker, first.attempts) == (JobState.RUNNING, b"worker-2", 2)


def test_a_cancelled_queued_job_leaves_the_queue_and_finished_jobs_expire():
    table = JobTable(max_queued=4, result_ttl_s=0.05)
    done, dropped = jobs(table, 2)
    table.submit([done, dropped])
    table.start(table.next_queued(), b"worker")
    table.finish(done, {"note_count": 0}, [b"MThd", b"{}"])
    table.fail(dropped, {"code": "cancelled", "message": "cancelled"}, state=JobState.CANCELLED)

    assert table.waiting == 0 and table.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0, "cancelled": 1}
    time.sleep(0.1)
    table.expire()
    assert table.jobs == {}


def test_the_cache_knows_a_repeat_by_its_audio_not_its_name(tmp_path):
    cache = ResultCache(entries=2)
    take, copy = tmp_path / "take.wav", tmp_path / "copy.wav"
    take.write_bytes(b"RIFF same audio")
    copy.write_bytes(b"RIFF same audio")
    place = {"start_s": 0.0, "duration_s": None, "position_s": 1.0}

    def key(path, tempo=None, **changed):
        return cache.key(
            {"path": str(path), **place, **changed}, [], tempo or {"bpm": 120}, DEFAULT, allow_truncated=False
        )

    assert key(take) == key(copy)
    assert len({key(take), key(take, position_s=2.0), key(take, {"bpm": 96})}) == 3
    assert key(tmp_path / "gone.wav") is None, "not cached: the worker says why it fails"


def test_a_pipe_or_a_device_is_never_read_for_the_cache(tmp_path):
    """Opening a FIFO blocks until a writer comes (as a file on a dead network mount does): the daemon's loop must not
    wait on it. Such audio is not cached; its worker reads it, and the daemon's watchdog ends a read that hangs."""
    stuck = tmp_path / "dead_mount.wav"
    os.mkfifo(stuck)
    region = {"path": str(stuck), "start_s": 0.0, "duration_s": None, "position_s": 0.0}

    assert ResultCache(entries=1).key(region, [], {"bpm": 120}, DEFAULT, allow_truncated=False) is None
    assert file_sha256("/dev/zero") is None


def test_the_cache_and_a_batchs_resume_share_one_fingerprint(tmp_path):
    """What the daemon takes for a repeat is what a batch rerun skips: one fingerprint, model.fingerprint."""
    take = tmp_path / "take.wav"
    take.write_bytes(b"RIFF audio")
    region, tempo, preset = Region.from_file(take, start_s=1.0, position_s=4.0), Tempo(bpm=96), load_preset("vocal")

    recorded = resume.fingerprint(region, tempo=tempo, preset=preset)
    key = ResultCache(entries=1).key(
        {"path": str(take), "start_s": 1.0, "duration_s": None, "position_s": 4.0},
        [],
        tempo.to_dict(),
        preset.to_dict(),
        allow_truncated=False,
    )

    assert key == sha256_json([recorded, {"allow_truncated": False}])


def test_inline_samples_at_another_rate_are_other_audio():
    cache, samples = ResultCache(entries=1), b"\0\0\x80\x3f" * 100

    def key(rate):
        region = {"samples": {"frame": 0, "sample_rate_hz": rate, "channels": 1}, "start_s": 0.0}
        return cache.key(region, [samples], {"bpm": 120}, DEFAULT, allow_truncated=False)

    assert key(44100) == key(44100.0) != key(48000)


@pytest.mark.parametrize("engine, preset", [("basic-pitch", "piano"), ("swift-f0", "vocal"), ("drums", "drums")])
def test_new_weights_of_an_engine_never_get_the_results_of_its_old_ones(engine, preset, tmp_path, monkeypatch):
    """An upgraded SwiftF0 or drum model is a new answer for the presets that use it, and only for them."""
    cache = ResultCache(entries=2)
    take = tmp_path / "take.wav"
    take.write_bytes(b"RIFF audio")
    region = {"path": str(take), "start_s": 0.0, "duration_s": None, "position_s": 0.0}
    presets = {name: resolve_preset(name).to_dict() for name in ("piano", "vocal", "drums")}
    before = {
        name: cache.key(region, [], {"bpm": 120}, table, allow_truncated=False) for name, table in presets.items()
    }

    monkeypatch.setitem(ENGINES, engine, replace(ENGINES[engine], weights=SimpleNamespace(WEIGHTS_SHA256="0" * 64)))
    after = {name: cache.key(region, [], {"bpm": 120}, table, allow_truncated=False) for name, table in presets.items()}

    assert [name for name in presets if after[name] != before[name]] == [preset]


def test_the_cache_keeps_the_most_recently_used_results():
    cache = ResultCache(entries=2)
    for key in ("a", "b"):
        cache.put(key, ({"key": key}, b""))
    cache.get("a")
    cache.put("c", ({"key": "c"}, b""))

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (({"key": "a"}, b""), None, ({"key": "c"}, b""))
    assert len(cache) == 2
