"""A batch: many regions into one folder of .mid files with index.json and index.html, the same from the command line
(`midibridge batch`) and from Python:

    from midibridge import Batch

    done = Batch("midi", preset="bass").run(["stems/", "song/song.ardour"])
    print(done.converted, done.failed)

The folder is a library that grows (plugin_host.resume): a rerun skips what
still stands, a new source never takes another's .mid. Files are written
whole; a run stopped by Ctrl-C (or by an error about the whole request)
writes index.json and the report for what finished, the rest marked, so a
rerun converts only those.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from midibridge.model.clip import Clip, Tempo
from midibridge.model.errors import MidibridgeError
from midibridge.model.region import Region
from midibridge.model.vocabulary import Code, Priority

from . import resume, runner
from .results import ClientError, ProgressCallback, RegionResult
from .runner import Backend

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg")


@dataclass(frozen=True)
class BatchItem:
    """One region of a batch: where it came from, the region, its tempo (None: the batch's), its .mid stem, and a
    session region's details for its index.json entry."""

    source: str
    region: Region
    tempo: Tempo | None
    stem: str
    details: dict


@dataclass
class BatchSummary:
    """How a run went: `entries` are this run's index.json entries, in the order of its items."""

    folder: Path
    entries: list[dict]
    skipped: int = 0  # unchanged since an earlier run
    earlier: int = 0  # entries of earlier batches the library keeps
    where: str = ""
    failed: list[dict] = field(default_factory=list)

    @property
    def converted(self) -> int:
        return sum("midi" in entry for entry in self.entries)


@dataclass(frozen=True)
class BatchPlan:
    """A run's regions (`items`) with their index.json heads, .mid names and fingerprints; `index` holds the entries
    that still stand (the others empty until they run), `todo` the items to run, `rows` the library after the run
    (plugin_host.resume.merged)."""

    items: list[BatchItem]
    heads: list[dict]
    names: list[str]
    prints: list[dict]
    index: list[dict]
    todo: list[int]
    rows: list[int | dict]


class Batch:
    """Regions into `folder` (made if missing) with `preset`, at `tempo` (a session region brings its own)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        preset: str | None = None,
        tempo: Tempo = Tempo(),
        allow_truncated: bool = False,
    ):
        from midibridge.model.presets import load_preset

        self.folder = Path(folder)
        self.preset_name = preset
        self.preset = load_preset(preset)  # a bad preset stops the batch before anything runs or is made
        self.tempo = tempo
        self.allow_truncated = allow_truncated
        self.summary: BatchSummary | None = None  # as it stands: also after a run that was stopped
        make_folder(self.folder)

    def plan(self, inputs: list[str | os.PathLike]) -> BatchPlan:
        """What a run of `inputs` (files, folders, Ardour sessions) does: which regions still stand in the library,
        which run, under which .mid names. Reads the audio files (to hash them), writes nothing."""
        items = batch_items([str(i) for i in inputs])
        heads = [entry_head(item) for item in items]
        library = resume.read_library(self.folder)
        places = resume.match(library, heads)
        names = resume.mid_names(library, places, [item.stem for item in items], folder=self.folder)
        prints = [resume.fingerprint(item.region, tempo=item.tempo or self.tempo, preset=self.preset) for item in items]
        index: list[dict] = [{} for _ in items]
        todo = []
        for i, place in enumerate(places):
            previous = None if place is None else library[place]
            if previous is not None and resume.still_good(
                previous, fingerprint=prints[i], midi=self.folder / names[i], allow_truncated=self.allow_truncated
            ):
                index[i] = previous  # as it was, byte for byte
            else:
                todo.append(i)
        return BatchPlan(items, heads, names, prints, index, todo, resume.merged(library, places, folder=self.folder))

    def run(
        self,
        work: list[str | os.PathLike] | BatchPlan,
        *,
        backend: Backend | None = None,
        on_progress: ProgressCallback | None = None,
        on_result: Callable[[RegionResult], None] | None = None,
    ) -> BatchSummary:
        """Convert `work` (inputs, or their plan) on `backend` (plugin_host.runner: InProcess(), Daemon(),
        Cluster(address=…)); None: through the daemon when one runs (its jobs at batch priority), else in this
        process. Returns what was done; Ctrl-C and an error about the whole request are raised after index.json is
        written (`summary` says what finished)."""
        plan = work if isinstance(work, BatchPlan) else self.plan(work)
        out, index, todo, heads = self.folder, plan.index, plan.todo, plan.heads
        backend = backend or runner.choose(daemon=None, priority=Priority.BATCH)
        self.summary = BatchSummary(
            out, index, skipped=len(index) - len(todo), earlier=len(plan.rows) - len(index), where=backend.where
        )
        jobs = [runner.Job(plan.items[i].region, plan.items[i].tempo or self.tempo) for i in todo]
        # Nothing to do starts nothing: no daemon, no cluster.
        results = (
            backend.run(jobs, preset=self.preset_name, allow_truncated=self.allow_truncated, on_progress=on_progress)
            if todo
            else _no_results()
        )
        try:
            with closing(results):  # leaving early (Ctrl-C) stops what still runs, wherever it runs
                for result in results:
                    i = todo[result.index]
                    index[i] = record(heads[i], out / plan.names[i], result, fingerprint=plan.prints[i])
                    if on_result:
                        on_result(result)
        except (KeyboardInterrupt, MidibridgeError) as stop:  # what finished stays listed: a rerun skips it
            failed_run = isinstance(stop, MidibridgeError)
            if failed_run and not any(index[i] for i in todo):
                raise  # nothing written: the folder stays as it was
            ended = (
                f"stopped before this region finished ({stop})"
                if failed_run
                else "was interrupted before this region finished"
            )
            for i in todo:
                index[i] = index[i] or {
                    **heads[i],
                    "error": {
                        "code": stop.code if isinstance(stop, MidibridgeError) else Code.CANCELLED,
                        "message": f"the batch {ended}; rerun the batch into the same directory to convert it",
                    },
                }
            write_index(out, plan.rows, index, where=backend.where)
            raise
        write_index(out, plan.rows, index, where=backend.where)
        self.summary.failed = [entry for entry in index if entry.get("error")]
        return self.summary


def batch_items(inputs: list[str]) -> list[BatchItem]:
    """Files as regions at 0 s; directories' audio files (sorted); every audio region of an Ardour session, named by
    its .ardour file or by its folder (a folder with one .ardour file at its top)."""
    from .ardour_adapter import session_file_of, session_regions

    items: list[BatchItem] = []
    for item in map(Path, inputs):
        session = session_file_of(item) if item.suffix == ".ardour" or item.is_dir() else None
        if session is not None:
            for found in session_regions(session):
                region = found.region
                items.append(
                    BatchItem(
                        str(region.path),
                        region,
                        found.tempo,
                        f"{found.track}-{found.name}",
                        {
                            "session": str(session),
                            "track": found.track,
                            "region": found.name,
                            "start_s": region.start_s,
                            "source_duration_s": region.duration_s,
                        },
                    )
                )
        elif item.is_dir():
            items += [
                BatchItem(str(p), Region.from_file(p), None, p.stem, {})
                for p in sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            ]
        else:  # a missing or odd file becomes that region's error, not the whole batch's
            items.append(BatchItem(str(item), Region.from_file(item), None, item.stem, {}))
    return items


def make_folder(out: Path) -> None:
    """A batch's directory, made if needed and writable, before anything else is read or written."""
    if out.exists() and not out.is_dir():
        raise ClientError(
            Code.OUTPUT_NOT_A_DIRECTORY,
            f"{out} is a file, not a directory: -o names the directory "
            f"the .mid files, index.json and index.html go into. Give a "
            f"new or existing directory, e.g. -o midi",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ClientError(
            Code.OUTPUT_UNWRITABLE,
            f"cannot make the directory {out}: {error.strerror}. Give -o a directory you can write to.",
        ) from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise ClientError(
            Code.OUTPUT_UNWRITABLE,
            f"cannot write into the directory {out}: permission denied. Give -o a directory you can write to.",
        )


def entry_head(item: BatchItem) -> dict:
    """The start of a region's index.json entry: its source, by absolute paths (so that entries of batches run from
    different directories say which file each is), and a session region's details."""
    details = item.details
    if "session" in details:
        details = {**details, "session": os.path.abspath(details["session"])}
    return {"input": os.path.abspath(item.source), **details}


def _no_results() -> Generator[RegionResult, None, None]:
    yield from ()


def record(head: dict, midi: Path, result: RegionResult, *, fingerprint: dict) -> dict:
    """One entry of a batch's index.json, from its `head` (entry_head); writes the region's .mid when it has one. A
    converted region's entry keeps its `fingerprint` (plugin_host.resume), so a rerun can tell whether the .mid
    still stands."""
    if result.error is not None:
        return {**head, "error": {"code": result.error.code, "message": str(result.error)}}
    clip, smf = result.clip, result.smf
    assert clip is not None and smf is not None, "a region without an error has its clip and MIDI file"
    write_file(midi, smf, whole=True)
    truncated = {} if clip.truncated_at_s is None else {"truncated_at_s": clip.truncated_at_s}
    return {
        **head,
        "midi": str(midi),
        "position_s": clip.position_s,
        "duration_s": clip.duration_s,
        **truncated,
        "notes": len(clip.notes),
        **fingerprint,
    }


def write_index(out: Path, rows: list[int | dict], index: list[dict], *, where: str) -> None:
    """index.json (what each region became and what made it: the same wherever the batch ran) and index.html, whose
    piano rolls show what each .mid holds (read back, so the page is the same whichever run wrote a file). `rows`
    are the regions it lists (plugin_host.resume.merged): this run's by number in `index`, earlier entries as they
    were."""
    from midibridge.model.midi import clip_from_bytes

    from .report import render_report

    def clip_of(entry: dict) -> Clip | None:
        try:
            return clip_from_bytes((out / Path(entry["midi"]).name).read_bytes(), position_s=entry["position_s"])
        except (OSError, EOFError, ValueError, KeyError, IndexError):  # what mido raises on a file that is not MIDI
            return None  # a .mid deleted or spoilt since: its row says so, the rest of the library still shows

    entries = [index[row] if isinstance(row, int) else row for row in rows]
    clips = [clip_of(entry) if "midi" in entry else None for entry in entries]
    write_file(out / "index.json", json.dumps({"regions": entries}, indent=1).encode(), whole=True)
    write_file(out / "index.html", render_report(entries=entries, clips=clips, where=where).encode(), whole=True)


def write_file(path: Path, data: bytes, *, whole: bool = False) -> None:
    """Write `data` to `path`. `whole`: to a temporary name beside it, then renamed over it, so an interrupted batch
    never leaves half a file; only for regular files (convert's -o may be /dev/stdout or a pipe)."""
    target = path.with_name(f".{path.name}.partial") if whole else path
    try:
        target.write_bytes(data)
        if whole:
            os.replace(target, path)
    except OSError as error:
        if whole:
            target.unlink(missing_ok=True)
        raise ClientError(
            Code.OUTPUT_UNWRITABLE, f"cannot write {path}: {error.strerror}. Choose another path."
        ) from error
