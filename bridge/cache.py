"""Results kept for repeats: a job with the same fingerprint (model.fingerprint: the audio's content, the region, the
tempo, the preset and the weights of its engine) gets the same answer, whatever the file is called."""

from __future__ import annotations

from collections import OrderedDict

from midibridge.model.fingerprint import file_sha256, fingerprint, samples_sha256

from .headers import WireRegion
from .protocol import frame_bytes


class ResultCache:
    def __init__(self, *, entries: int):
        self.entries = entries
        self._results: OrderedDict[str, tuple[dict, list]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._results)

    def key(self, region: WireRegion, buffers: list, tempo: dict, preset: dict, *, allow_truncated: bool) -> str | None:
        """What makes two jobs the same (model.fingerprint, the one a batch's resume uses too), or None when the
        audio cannot be read (the worker will say why). `preset`: a preset's table (Preset.to_dict). Blocking I/O."""
        audio: str | None
        if buffers:
            samples = region["samples"]
            audio = samples_sha256(
                frame_bytes(buffers[0]), sample_rate_hz=samples["sample_rate_hz"], channels=samples["channels"]
            )
        else:
            audio = file_sha256(region["path"])
        return fingerprint(
            audio,
            start_s=region.get("start_s", 0.0),
            duration_s=region.get("duration_s"),
            position_s=region.get("position_s", 0.0),
            tempo=tempo,
            preset=preset,
        ).key(allow_truncated=allow_truncated)

    def get(self, key: str | None) -> tuple[dict, list] | None:
        """A finished job's (result header, buffers) for `key`, if kept."""
        if not key or key not in self._results:
            return None
        self._results.move_to_end(key)
        return self._results[key]

    def put(self, key: str | None, result: tuple[dict, list]) -> None:
        if not key:
            return
        self._results[key] = result
        self._results.move_to_end(key)
        while len(self._results) > self.entries:
            self._results.popitem(last=False)
