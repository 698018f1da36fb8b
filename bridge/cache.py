"""Results kept for repeats: a job with the same audio content, region, tempo, preset and weights gets the same answer.

The key hashes the audio itself (a file's hash is remembered per path, size
and modification time, so an unchanged file is read once), not its name, and
holds the SHA-256 of the weights of the engine the preset uses (ENGINES), so
an engine's new weights never get a result of its old ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict

from midibridge.model.engines import ENGINES

from .headers import WireRegion


class ResultCache:
    def __init__(self, *, entries: int):
        self.entries = entries
        self._results: OrderedDict[str, tuple[dict, bytes]] = OrderedDict()
        self._file_hashes: dict[tuple, str] = {}

    def __len__(self) -> int:
        return len(self._results)

    def key(self, region: WireRegion, buffers: list, tempo: dict, preset: dict) -> str | None:
        """What makes two jobs the same, or None when the audio cannot be read (the worker will say why). `preset`:
        a preset's table (model.presets.Preset.to_dict), with whatever else changes the answer. Blocking I/O."""
        try:
            if buffers:
                content = hashlib.sha256(buffers[0].bytes if hasattr(buffers[0], "bytes") else buffers[0]).hexdigest()
            else:
                content = self._file_hash(region["path"])
        except OSError:
            return None
        place = {k: v for k, v in region.items() if k != "path"}
        weights = ENGINES[preset["engine"]["name"]].weights_sha256
        return hashlib.sha256(json.dumps([content, place, tempo, preset, weights], sort_keys=True).encode()).hexdigest()

    def get(self, key: str | None) -> tuple[dict, bytes] | None:
        hit = self._results.get(key) if key else None
        if hit is not None:
            self._results.move_to_end(key)
        return hit

    def put(self, key: str | None, result: tuple[dict, bytes]) -> None:
        if not key:
            return
        self._results[key] = result
        self._results.move_to_end(key)
        while len(self._results) > self.entries:
            self._results.popitem(last=False)

    def _file_hash(self, path: str) -> str:
        stat = os.stat(path)
        if not os.path.isfile(path):
            raise IsADirectoryError(path)
        seen = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if seen not in self._file_hashes:
            digest = hashlib.sha256()
            with open(path, "rb") as file:
                while block := file.read(1 << 20):
                    digest.update(block)
            self._file_hashes[seen] = digest.hexdigest()
        return self._file_hashes[seen]
