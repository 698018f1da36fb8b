"""A batch folder as a growing library: which entry of its index.json is a region's, the region's .mid name, and
whether the last run's .mid still stands for it.

An entry belongs to a source: the audio file's resolved path (however the
command spelled it: relative, absolute, through a symlinked folder) and, for
a session's region, the session, track and region. A region of a new run
takes its source's entry and .mid name; a new source gets a name no other
source's entry or file has, so a .mid is never overwritten with another
source's notes; every other entry stays, whatever batch made it.

A region's fingerprint is its content (the audio file's bytes, the region's
start, duration and position, the tempo), the preset (its name and a hash of
its whole table) and the model (the engine and its weights' hash). A rerun
keeps a region whose .mid is there and whose entry has the same
fingerprint; everything else runs again. Standard library only: no model is
loaded to decide.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path

from midibridge.model.clip import Tempo
from midibridge.model.fingerprint import file_sha256
from midibridge.model.fingerprint import fingerprint as region_fingerprint
from midibridge.model.presets import Preset
from midibridge.model.region import Region

FINGERPRINT_KEYS = ("content_sha256", "preset", "model")


def fingerprint(region: Region, *, tempo: Tempo, preset: Preset) -> dict:
    """The keys a region's index.json entry records about what made its .mid (model.fingerprint, the one the daemon's
    cache uses too); content_sha256 is None when the file cannot be read (that region fails, never skipped)."""
    audio = None if region.path is None else file_sha256(region.path)  # a batch's regions are files
    return region_fingerprint(
        audio,
        start_s=region.start_s,
        duration_s=region.duration_s,
        position_s=region.position_s,
        tempo=tempo.to_dict(),
        preset=preset.to_dict(),
    ).to_dict()


def read_library(folder: Path) -> list[dict]:
    """The regions index.json lists, in its order; none when there is no readable index.json."""
    try:
        regions = json.loads((folder / "index.json").read_text())["regions"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [entry for entry in regions if isinstance(entry, dict) and isinstance(entry.get("input"), str)]


def source_key(entry: dict) -> tuple:
    """What an entry (or a region's entry to be) was made from, the same however its paths are spelled."""
    session = entry.get("session")
    return (_resolved(entry["input"]), session and _resolved(session), entry.get("track"), entry.get("region"))


def match(library: list[dict], heads: list[dict]) -> list[int | None]:
    """Where each region's source is in `library` (None: a source new to it). `heads` are the regions' entries
    as far as they are known before converting: input, and a session's details. Two regions of one source take
    its entries in turn."""
    found: defaultdict[tuple, deque[int]] = defaultdict(deque)
    for position, entry in enumerate(library):
        found[source_key(entry)].append(position)
    return [found[key].popleft() if found[key] else None for key in map(source_key, heads)]


def mid_names(library: list[dict], places: list[int | None], stems: list[str], *, folder: Path) -> list[str]:
    """Each region's .mid name: the one its source had, else the first of STEM.mid, STEM-2.mid, … that no entry
    names and no file in `folder` holds (a .mid nobody listed may be someone's)."""
    taken = {_mid_name(entry) for entry in library if "midi" in entry}
    names = []
    for place, stem in zip(places, stems):
        if place is not None and "midi" in library[place]:
            name = _mid_name(library[place])
        else:
            stem = "".join(c if c.isalnum() or c in "-_. " else "_" for c in stem)
            name, n = f"{stem}.mid", 1
            while name in taken or (folder / name).exists():
                n += 1
                name = f"{stem}-{n}.mid"
        taken.add(name)
        names.append(name)
    return names


def merged(library: list[dict], places: list[int | None], *, folder: Path) -> list[int | dict]:
    """index.json's regions after a run, as the numbers of this run's regions and earlier entries as they were:
    the library in its order, each source of this run in its place, then this run's new sources. An earlier
    entry whose .mid is gone (deleted by hand) goes with it."""
    ours = {place: i for i, place in enumerate(places) if place is not None}
    rows: list[int | dict] = []
    for position, entry in enumerate(library):
        if position in ours:
            rows.append(ours[position])
        elif "midi" not in entry or (folder / _mid_name(entry)).is_file():
            rows.append(entry)
    return rows + [i for i, place in enumerate(places) if place is None]


def still_good(previous: dict | None, *, fingerprint: dict, midi: Path, allow_truncated: bool) -> bool:
    """Whether the last run's entry for this region's source and its .mid can stand for the region as it is now.
    A clip of a truncated file stands only while truncation is allowed: without it, that region is an error again."""
    return (
        previous is not None
        and fingerprint["content_sha256"] is not None
        and _is_midi(midi)
        and (allow_truncated or "truncated_at_s" not in previous)
        and all(previous.get(key) == fingerprint[key] for key in FINGERPRINT_KEYS)
    )


def _is_midi(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == b"MThd"
    except OSError:
        return False


def _mid_name(entry: dict) -> str:
    return Path(entry["midi"]).name


def _resolved(path: str) -> str:
    return str(Path(path).resolve())
