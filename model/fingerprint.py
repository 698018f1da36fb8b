"""What a region's clip is made from, as hashes: one fingerprint for the daemon's result cache and a batch's resume.

A clip depends on the audio (the file's bytes, or inline samples with their
rate), where the region sits in it and on the timeline, the host's tempo,
the preset (its whole table) and the weights of the engine the preset uses.
Two jobs with the same fingerprint give the same clip, to the byte.
Standard library only: deciding whether work can be skipped loads no model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass

from .engines import ENGINES

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """`content_sha256` hashes the audio, the region's place and the tempo; None when the audio cannot be read (such
    a job is never skipped nor cached: it runs, and says why it fails)."""

    content_sha256: str | None
    preset_name: str
    preset_sha256: str
    engine: str
    weights_sha256: str

    def to_dict(self) -> dict:
        """The keys a batch's index.json entry records (plugin_host.resume compares them)."""
        return {
            "content_sha256": self.content_sha256,
            "preset": {"name": self.preset_name, "sha256": self.preset_sha256},
            "model": {"engine": self.engine, "sha256": self.weights_sha256},
        }

    def key(self, **options) -> str | None:
        """One hash of it all and of `options` that change the answer too (e.g. allow_truncated), for the cache."""
        return None if self.content_sha256 is None else sha256_json([self.to_dict(), options])


def fingerprint(
    audio_sha256: str | None, *, start_s: float, duration_s: float | None, position_s: float, tempo: dict, preset: dict
) -> Fingerprint:
    """The fingerprint of a region of audio whose own hash is `audio_sha256` (file_sha256 or samples_sha256), at a
    host `tempo` (model.clip.Tempo.to_dict), through `preset` (model.presets.Preset.to_dict)."""
    content = (
        None
        if audio_sha256 is None
        else sha256_json(
            {
                "audio_sha256": audio_sha256,
                "start_s": float(start_s),
                "position_s": float(position_s),
                "duration_s": None if duration_s is None else float(duration_s),
                "tempo": tempo,
            }
        )
    )
    engine = preset["engine"]["name"]
    return Fingerprint(content, preset["name"], sha256_json(preset), engine, ENGINES[engine].weights_sha256)


def file_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of a file's bytes, None when it cannot be read or is not a regular file (opening a pipe or a
    device may block for ever, and reading it twice gives other bytes); each version of a file (its resolved path,
    size and modification time) is read once, however many regions share it."""
    try:
        resolved = os.path.realpath(path)
        status = os.stat(resolved)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return _hash_file(resolved, status.st_size, status.st_mtime_ns)


def samples_sha256(data: bytes | memoryview, *, sample_rate_hz: float, channels: int) -> str:
    """Inline samples: the same bytes at another rate or channel count are other audio."""
    return sha256_json([hashlib.sha256(data).hexdigest(), float(sample_rate_hz), channels])


def sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def _hash_file(path: str, size: int, mtime_ns: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                digest.update(chunk)
    except OSError:  # a directory, a file gone or locked since
        return None
    return digest.hexdigest()
