"""`midibridge host transcribe`: the line protocol DAW adapters use, since their script languages read lines easily.

Request: a file, one region per line, tab-separated:

    id  path  start_s  duration_s  position_s  bpm  beats_per_bar  bar_offset_beats

(the trim into the source, the region's length and timeline position, and the
host's tempo there). Answer on stdout, flushed line by line as regions finish:

    PROGRESS 0.420                  all regions together, 0..1
    NOTES 3 57                      region 3 has 57 notes; they follow
    N 3 0.511000 1.020000 64 90     region 3: start_s end_s (from the region start) pitch velocity
    ERROR 4 [audio_not_found] …     region 4 failed; the others go on
    DONE 5 1                        regions converted, regions failed

It goes through the daemon (started when none runs), or in-process with --in-process.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from model.clip import Tempo
from model.errors import OptionError
from model.region import Region

from . import runner
from .jobs import JobResult, OverallProgress

FIELDS = ("id", "path", "start_s", "duration_s", "position_s", "bpm", "beats_per_bar", "bar_offset_beats")


@dataclass(frozen=True)
class HostRegion:
    id: int
    region: Region
    tempo: Tempo


def read_requests(path: Path) -> list[HostRegion]:
    """The regions of a request file; OptionError names the line and field that is wrong."""
    requests = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) != len(FIELDS):
            raise OptionError(f"{path}:{number}: {len(values)} fields; a request line has {len(FIELDS)} "
                              f"tab-separated fields: {' '.join(FIELDS)}", code="invalid_request")
        try:
            id_, source, start, duration, position, bpm, beats_per_bar, bar_offset = values
            requests.append(HostRegion(int(id_), Region.from_file(source, start_s=float(start),
                                                                  duration_s=float(duration),
                                                                  position_s=float(position)),
                                       Tempo(bpm=float(bpm), beats_per_bar=float(beats_per_bar),
                                             bar_offset_beats=float(bar_offset))))
        except ValueError as error:
            raise OptionError(f"{path}:{number}: {error}", code="invalid_request") from error
    return requests


def transcribe(requests: list[HostRegion], *, preset: str | None, where: str, out=sys.stdout) -> int:
    """Answer `requests` in lines on `out`; returns how many failed."""
    overall = OverallProgress(len(requests))
    failed = 0

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    results = runner.run([r.region for r in requests], where=where, preset=preset,
                         tempo=[r.tempo for r in requests],
                         on_progress=lambda update: say(f"PROGRESS {overall.update(update):.3f}"))
    for result in results:
        failed += result.error is not None
        for line in answer_lines(requests[result.index].id, result):
            say(line)
        say(f"PROGRESS {overall.done(result.index):.3f}")
    say(f"DONE {overall.finished - failed} {failed}")
    return failed


def answer_lines(region_id: int, result: JobResult) -> list[str]:
    if result.error is not None:
        message = " ".join(str(result.error).split())  # one line, whatever the message held
        return [f"ERROR {region_id} [{result.error.code}] {message}"]
    notes = result.clip.notes
    return [f"NOTES {region_id} {len(notes)}"] + [
        f"N {region_id} {n.start_s:.6f} {n.end_s:.6f} {n.pitch} {n.velocity}" for n in notes]
