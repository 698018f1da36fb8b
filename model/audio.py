"""Decode a region to mono float32 chunks at its source rate, and resample a chunk stream to the model's rate.

Only the region is read, chunk by chunk, so a long file costs memory in
proportion to one chunk, not to the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pedalboard import Resample
from pedalboard.io import AudioFile, StreamResampler

from .containers import Cut, find_cut, mp3_gapless
from .decimate import Decimator
from .errors import AudioError
from .region import MAX_CHANNELS, MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ, Region
from .vocabulary import Code

CHUNK_S = 2.0
# A host that rounds a region's end to its own sample grid may ask for a
# hair more than the source holds; that much is read as "to the end".
END_TOLERANCE_S = 0.001
# Measured on the corpus against Basic Pitch (which resamples with soxr_hq):
# note F1 0.992 / 0.996 / 0.997 with 8 / 16 / 32 zero crossings, F1 against
# the ground truth equal to 0.002; 8 runs at ~1000x real time, 16 at ~650x,
# which would cost 15 % of the model's own time. A rate that falls by a whole
# factor (44.1 kHz to 22.05 kHz) goes through model.decimate instead: ~4x
# cheaper, a stopband ~80 dB down; on the corpus note F1 against Basic Pitch
# 0.984 (0.984 with this sinc), against the ground truth 0.604 (0.604).
RESAMPLE_QUALITY = Resample.Quality.WindowedSinc8


@dataclass
class RegionAudio:
    """An opened region: its source rate, its length in source samples, and its audio as mono chunks.

    `truncated_at_sample` is where, counted from the region's start, the audio
    of a file cut short stops (the chunks stop there too); None when the
    region is whole.
    """

    region: Region
    sample_rate_hz: float
    n_samples: int
    _chunks: Iterator[np.ndarray]
    truncated_at_sample: int | None = None

    def chunks(self) -> Iterator[np.ndarray]:
        """Mono float32 chunks of the region, in order; raises AudioError on NaN or inf."""
        offset = 0
        for chunk in self._chunks:
            _check_finite(chunk, offset, self)
            offset += chunk.shape[0]
            yield chunk


def open_region(region: Region, *, chunk_s: float = CHUNK_S, allow_truncated: bool = False) -> RegionAudio:
    """Validate `region` against its source and return it ready to stream.

    Every problem found before audio is decoded (missing file, unreadable
    file, region outside the source, empty region, bad sample rate, a region
    reaching past where a file cut short stops) raises AudioError with a code
    and a message naming the region. `allow_truncated` instead gives such a
    region with the audio there is, and `truncated_at_sample` set.
    """
    if (region.path is None) == (region.samples is None):
        raise AudioError(Code.INVALID_REGION, "a region needs exactly one of a file path and raw samples")
    if region.path is not None:
        return _open_file(region, region.path, chunk_s, allow_truncated)
    return _open_samples(region, chunk_s)


def resample(
    chunks: Iterator[np.ndarray], *, from_hz: float, to_hz: float, quality: str | None = None
) -> Iterator[np.ndarray]:
    """Resample a stream of mono chunks; the output is sample-aligned with the input and as long as it. `quality`
    names a pedalboard Resample.Quality (None: RESAMPLE_QUALITY)."""
    resampler = stream_resampler(from_hz=from_hz, to_hz=to_hz, quality=quality)
    if resampler is None:
        yield from chunks
        return
    for chunk in chunks:
        out = resampler.process(chunk[np.newaxis, :])
        if out.shape[1]:
            yield out[0]
    tail = resampler.process()
    if tail.shape[1]:
        yield tail[0]


def stream_resampler(*, from_hz: float, to_hz: float, quality: str | None = None) -> StreamResampler | Decimator | None:
    """A mono resampler from `from_hz` to `to_hz` (None: the rates are the same); `process(chunk)` per chunk,
    `process()` for the tail. The one resampler `resample` and live streams (model.live) use: a Decimator when the
    rate falls by a whole factor and no quality is asked for, else pedalboard's StreamResampler."""
    if from_hz == to_hz:
        return None
    factor = from_hz / to_hz
    if quality is None and factor == round(factor) and factor >= 2:
        return Decimator(round(factor))
    return StreamResampler(
        from_hz, to_hz, 1, RESAMPLE_QUALITY if quality is None else getattr(Resample.Quality, quality)
    )


def resampled_length(n_samples: int, *, from_hz: float, to_hz: float) -> int:
    """How many samples `resample` yields for `n_samples` of input (to within one)."""
    return round(n_samples * to_hz / from_hz)


def _open_file(region: Region, path: str, chunk_s: float, allow_truncated: bool) -> RegionAudio:
    if os.path.isdir(path):
        raise AudioError(Code.AUDIO_UNREADABLE, f"{path} is a directory, not an audio file")
    if not os.path.exists(path):
        raise AudioError(Code.AUDIO_NOT_FOUND, f"audio file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise AudioError(
            Code.AUDIO_UNREADABLE, f"audio file {path} is not readable: no read permission (check its owner and mode)"
        )
    try:
        source = AudioFile(path)
    except Exception as error:  # pedalboard raises several types for undecodable input
        raise AudioError(
            Code.AUDIO_UNREADABLE,
            f"{path} cannot be decoded as audio ({error}). midibridge reads WAV, FLAC, AIFF, MP3 and OGG.",
        ) from error
    rate = float(source.samplerate)
    # pedalboard decodes MP3's encoder delay and padding as audio; skipping
    # them keeps a region's times those of the music (as DAWs import it).
    skip, padding = mp3_gapless(path) if path.lower().endswith(".mp3") else (0, 0)
    try:
        _check_rate(rate, path)
        cut = find_cut(path, source.frames)
        # Ogg states no length: past the end of a cut Ogg file is past where it was cut, not outside the source.
        start, count = _region_bounds(
            region,
            rate,
            source.frames - skip - padding,
            exact=source.exact_duration_known and not (cut and cut.promised_frames is None),
        )
        truncated_at = _truncated_at(region, rate, start, count, cut, skip, padding, allow_truncated)
    except AudioError:
        source.close()
        raise
    # pedalboard would read the missing part as silence: stop where the audio does.
    readable = count if truncated_at is None else truncated_at

    def read() -> Iterator[np.ndarray]:
        step = max(1, int(chunk_s * rate))
        with source:
            source.seek(skip + start)
            remaining = readable
            while remaining > 0:
                try:
                    block = source.read(min(step, remaining))
                except Exception as error:
                    raise AudioError(
                        Code.AUDIO_UNREADABLE,
                        f"{path} is damaged: decoding stopped at sample {readable - remaining + start} ({error})",
                    ) from error
                if block.shape[1] == 0:
                    break  # the file holds less than its header claimed; keep what was there
                remaining -= block.shape[1]
                yield _to_mono(block)

    return RegionAudio(region, rate, count, read(), truncated_at)


def _truncated_at(
    region: Region, rate: float, start: int, count: int, cut: Cut | None, skip: int, padding: int, allow: bool
) -> int | None:
    """Where the audio of a cut file stops, from the region's start, when the region reaches past it; else None.

    A region wholly inside what the file holds is whole. One that reaches
    past it (or runs "to the end", which is missing) raises audio_truncated
    unless `allow`.
    """
    if cut is None:
        return None
    held = max(cut.held_frames - skip, 0)
    if region.duration_s is not None and start + count <= held + END_TOLERANCE_S * rate:
        return None
    if allow:
        return min(max(held - start, 0), count)
    ends_s = held / rate
    if cut.promised_frames is None:
        promised = "without the end-of-stream page a whole Ogg file ends with (Ogg states no length up front)"
    else:
        promised = f"but its header promises {(cut.promised_frames - skip - padding) / rate:.3f} s"
    raise AudioError(
        Code.AUDIO_TRUNCATED,
        f"{region.path} is truncated: its audio ends at {ends_s:.3f} s {promised}, and region "
        f"{region.describe()} reaches past that. Re-export the file (or copy it again), or pass "
        f"--allow-truncated to transcribe the audio up to {ends_s:.3f} s.",
    )


def _open_samples(region: Region, chunk_s: float) -> RegionAudio:
    rate = region.sample_rate_hz
    if rate is None:
        raise AudioError(Code.INVALID_SAMPLE_RATE, "raw samples need their sample rate (sample_rate_hz)")
    _check_rate(float(rate), "the raw samples")
    samples = np.asarray(region.samples, dtype=np.float32)
    if samples.ndim == 2 and samples.shape[0] > MAX_CHANNELS:
        raise AudioError(
            Code.INVALID_SAMPLES,
            f"raw samples shaped {samples.shape} look like (n_samples, n_channels); "
            f"pass them as (n_channels, n_samples)",
        )
    if samples.ndim not in (1, 2):
        raise AudioError(
            Code.INVALID_SAMPLES,
            f"raw samples must be shaped (n_samples,) or (n_channels, n_samples), not {samples.shape}",
        )
    samples = samples.reshape(1, -1) if samples.ndim == 1 else samples
    start, count = _region_bounds(region, float(rate), samples.shape[1], exact=True)
    step = max(1, int(chunk_s * rate))
    chunks = (_to_mono(samples[:, i : min(i + step, start + count)]) for i in range(start, start + count, step))
    return RegionAudio(region, float(rate), count, chunks)


def _region_bounds(region: Region, rate: float, available: int, *, exact: bool) -> tuple[int, int]:
    """(first sample, sample count) of `region` in a source of `available` samples at `rate`."""
    length_s = available / rate
    where = region.describe()
    if available == 0:
        raise AudioError(Code.REGION_EMPTY, f"region {where}: the source holds no audio")
    start = round(region.start_s * rate)
    if exact and start >= available:
        raise AudioError(
            Code.REGION_OUTSIDE_SOURCE,
            f"region {where} starts at {region.start_s:g} s but the source is only {length_s:.3f} s long",
        )
    if region.duration_s is None:
        return start, max(available - start, 0)
    count = round(region.duration_s * rate)
    if count == 0:
        raise AudioError(Code.REGION_EMPTY, f"region {where} is shorter than one sample at {rate:g} Hz")
    overshoot = start + count - available
    if exact and overshoot > 0:
        if overshoot > END_TOLERANCE_S * rate:
            raise AudioError(
                Code.REGION_OUTSIDE_SOURCE,
                f"region {where} ends {overshoot / rate:.3f} s past the end of the source ({length_s:.3f} s long)",
            )
        count = available - start
    return start, count


def _check_rate(rate: float, what: str) -> None:
    if not (MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ):
        raise AudioError(
            Code.INVALID_SAMPLE_RATE,
            f"{what}: sample rate {rate:g} Hz is outside {MIN_SAMPLE_RATE_HZ:g}…{MAX_SAMPLE_RATE_HZ:g} Hz",
        )


def _to_mono(block: np.ndarray) -> np.ndarray:
    if block.shape[0] == 1:
        return np.ascontiguousarray(block[0], dtype=np.float32)
    return block.mean(axis=0, dtype=np.float32)


def _check_finite(chunk: np.ndarray, offset: int, audio: RegionAudio) -> None:
    if np.isfinite(chunk).all():
        return
    index = int(np.flatnonzero(~np.isfinite(chunk))[0])
    value = chunk[index]
    at = offset + index
    raise AudioError(
        Code.AUDIO_NOT_FINITE,
        f"region {audio.region.describe()}: sample {at} ({at / audio.sample_rate_hz:.3f} s in) is {value}; "
        f"audio must be finite. Check the plugin or file that produced it.",
    )
