"""Resuming a batch: what a region's .mid was made from, and whether the last run's .mid still stands for it.

A region's fingerprint is its content (the audio file's bytes, the region's
start, duration and position, the tempo), the preset (its name and a hash of
its whole table) and the model (the engine and its weights' hash). A rerun
into the same directory keeps a region whose .mid is there and whose
index.json entry has the same input and fingerprint; everything else runs
again. Standard library only: no model is loaded to decide.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from midibridge.model.clip import Tempo
from midibridge.model.engines import ENGINES
from midibridge.model.presets import Preset
from midibridge.model.region import Region

FINGERPRINT_KEYS = ("content_sha256", "preset", "model")
CHUNK_BYTES = 1 << 20


def fingerprint(region: Region, *, tempo: Tempo, preset: Preset) -> dict:
    """The keys a region's index.json entry records about what made its .mid; content_sha256 is None when the file
    cannot be read (that region fails, and is never skipped)."""
    audio = _file_sha256(Path(region.path).resolve())
    content = None if audio is None else _sha256_json(
        {"audio_sha256": audio, "start_s": region.start_s, "duration_s": region.duration_s,
         "position_s": region.position_s, "tempo": tempo.to_dict()})
    weights = ENGINES[preset.engine].weights_sha256
    return {"content_sha256": content, "preset": {"name": preset.name, "sha256": _sha256_json(preset.to_dict())},
            "model": {"engine": preset.engine, "sha256": weights}}


def previous_entries(index_path: Path) -> dict[str, dict]:
    """The last run's converted regions by .mid file name; none when there was no readable index.json."""
    try:
        regions = json.loads(index_path.read_text())["regions"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {Path(entry["midi"]).name: entry for entry in regions if isinstance(entry, dict) and "midi" in entry}


def still_good(previous: dict | None, *, source: str, fingerprint: dict, midi: Path, allow_truncated: bool) -> bool:
    """Whether the last run's entry and .mid can stand for this region as it is now. A clip of a truncated file
    stands only while truncation is allowed: without it, that region is an error again."""
    return (previous is not None and fingerprint["content_sha256"] is not None and midi.is_file()
            and previous.get("input") == source and (allow_truncated or "truncated_at_s" not in previous)
            and all(previous.get(key) == fingerprint[key] for key in FINGERPRINT_KEYS))


def _file_sha256(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return _hash_file(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)  # a session's regions often share one take: each version is read once
def _hash_file(path: Path, size: int, mtime_ns: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
