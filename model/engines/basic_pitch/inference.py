"""Basic Pitch's ONNX model over a stream of audio: windowing, batching, stitching, and the true time of every frame.

The audio arrives as chunks at `SAMPLE_RATE_HZ`; windows are cut as soon as
enough audio is there and run through the model's front several per
`session.run`; their kept frames are stitched and run through its back once
(graph.py cuts the model in two, constants.py says why there). Memory holds a
few windows and one segment of frames, not the recording.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar, cast

import numpy as np
import onnxruntime

from ...errors import WeightsError
from ...read_ahead import read_ahead
from ...vocabulary import Code, Stage
from .. import ProgressCallback
from .constants import (
    BACK_FRAMES,
    CONTEXT_FRAMES,
    EDGE_FRAMES,
    FFT_HOP_SAMPLES,
    FIRST_BACK_FRAMES,
    HOP_SAMPLES,
    KEPT_FRAMES_PER_WINDOW,
    LEAD_IN_SAMPLES,
    N_CONTOUR_BINS,
    N_FEATURE_BINS,
    N_PITCHES,
    ONNX_FEATURES,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    SAMPLE_RATE_HZ,
    WINDOW_SAMPLES,
)
from .graph import graph_parts
from .spill import RowSpill
from .weights import find_weights

T = TypeVar("T")
READ_AHEAD_NAME = "basic-pitch"  # its helpers' threads: basic-pitch-read-ahead

DEFAULT_BATCH_WINDOWS = 4  # measured: 2 to 16 windows per run are within noise on 2 cores; 1 is ~15 % slower


def frame_count(n_samples: int) -> int:
    """How many frames cover `n_samples` of audio: every frame whose time lies inside it."""
    if n_samples <= 0:
        return 0
    last_window = (n_samples - 1) // HOP_SAMPLES
    rest = n_samples - last_window * HOP_SAMPLES
    return last_window * KEPT_FRAMES_PER_WINDOW + -(-rest // FFT_HOP_SAMPLES)


def window_count(n_samples: int) -> int:
    """How many windows `frame_count(n_samples)` frames come from."""
    return -(-n_samples // HOP_SAMPLES) if n_samples > 0 else 0


def frame_times_s(n_frames: int) -> np.ndarray:
    """(n_frames,) float64: the true time of each frame, seconds from the first sample.

    Frame k of window w sits at sample w × HOP_SAMPLES + k × FFT_HOP_SAMPLES:
    within a window frames are one FFT hop apart, but windows advance by
    HOP_SAMPLES, which is not a whole number of hops.
    """
    window, frame = np.divmod(np.arange(n_frames), KEPT_FRAMES_PER_WINDOW)
    return (window * HOP_SAMPLES + frame * FFT_HOP_SAMPLES) / SAMPLE_RATE_HZ


@dataclass
class Activations:
    """The model's answer for a stretch of audio, one row per frame.

    note: (n_frames, 88) float32, in memory (the decoder edits a copy).
    onset: (n_frames, 88) float32, array-like read by row slices.
    contour: (n_frames, 264) float32, array-like read by row slices.
    """

    note: np.ndarray
    onset: object
    contour: object

    @property
    def n_frames(self) -> int:
        return self.note.shape[0]

    def close(self) -> None:
        for part in (self.onset, self.contour):
            if isinstance(part, RowSpill):
                part.close()

    def __enter__(self) -> Activations:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Model:
    """Basic Pitch's weights and how to run them over a stream of windows.

    The front runs on Basic Pitch's overlapping windows, `batch_windows` per
    run, in a helper thread; the back once over their kept frames, stitched
    (constants.py says why), on `threads` threads, at `precision` (options.PRECISIONS;
    quantise.py says what "int8" changes). Models with the same weights, thread
    count and precision share onnxruntime sessions: a process loads the model
    once, however many it makes. The weights are checked when a Model is made;
    its sessions are made in a helper thread from then on (`_sessions_in_thread`).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        threads: int = 0,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
        precision: str = "float32",
    ):
        self.path = find_weights(path)
        self.batch_windows = batch_windows
        self.precision = precision
        self._sessions = _sessions(self.path, threads, precision)
        self._output_names = list(ONNX_OUTPUTS.values())

    @property
    def _front(self) -> onnxruntime.InferenceSession:
        return self._sessions.result().front

    @property
    def _back(self) -> onnxruntime.InferenceSession:
        return self._sessions.result().back

    def features(self, windows: np.ndarray) -> np.ndarray:
        """(n, WINDOW_SAMPLES) float32 → (n, FRAMES_PER_WINDOW, N_FEATURE_BINS): the front, window by window."""
        return self._front.run([ONNX_FEATURES], {ONNX_INPUT: windows[:, :, np.newaxis]})[0][..., 0]

    def outputs(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """(n + 2 × CONTEXT_FRAMES, N_FEATURE_BINS) consecutive frames → {"note", "onset": (n, N_PITCHES),
        "contour": (n, N_CONTOUR_BINS)}: the back, for every frame but the context at each end."""
        results = self._back.run(self._output_names, {ONNX_FEATURES: features[np.newaxis, :, :, np.newaxis]})
        return {name: rows[0, CONTEXT_FRAMES:-CONTEXT_FRAMES] for name, rows in zip(ONNX_OUTPUTS, results)}

    def run(
        self, features: Iterable[np.ndarray], *, on_batch: Callable[[int], None] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """The outputs of consecutive batches of windows, from their features (`features()`, in order), segment by
        segment: every kept frame once. `on_batch(n)` is called as each batch's n windows are done."""
        return map(self.outputs, segments(features, on_batch=on_batch))

    def activations(
        self, audio: Iterable[np.ndarray], *, expected_samples: int, on_progress: ProgressCallback | None = None
    ) -> Activations:
        """Run the model over mono chunks at SAMPLE_RATE_HZ and return every frame inside the audio.

        `expected_samples` sizes buffers and progress; the audio's true length wins.
        """
        note = _GrowingRows(frame_count(expected_samples) + KEPT_FRAMES_PER_WINDOW, N_PITCHES)
        onset, contour = RowSpill(N_PITCHES), RowSpill(N_CONTOUR_BINS)
        sinks: dict[str, _GrowingRows | RowSpill] = {"note": note, "onset": onset, "contour": contour}
        expected_windows = max(window_count(expected_samples), 1)
        done = 0

        def progress(n_windows: int) -> None:
            nonlocal done
            done += n_windows
            if on_progress:
                on_progress(Stage.INFER, min(done / expected_windows, 1.0))

        counter = _Counter(audio)
        # Decoding and resampling read ahead in a helper of their own, the front in another: in the front's helper
        # they added 0.9 ms per second of audio to the pipeline's wall beside the model alone, 0.3 in their own.
        features = (self.features(windows) for windows in read_ahead(self.batches(counter), name=READ_AHEAD_NAME))
        try:
            for outputs in self.run(read_ahead(features, name=READ_AHEAD_NAME), on_batch=progress):
                for name, rows in outputs.items():
                    sinks[name].append(rows)
        except BaseException:
            onset.close()
            contour.close()
            raise
        n_frames = frame_count(counter.n_samples)
        onset.truncate(n_frames)
        contour.truncate(n_frames)
        return Activations(note=note.rows(n_frames), onset=onset, contour=contour)

    def batches(self, audio: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Basic Pitch's windows of mono chunks at SAMPLE_RATE_HZ in batches, each an array of its own: one window
        first, so that the back starts on its frames while the front runs the next, then `batch_windows` at a time
        (the last batch may be smaller)."""
        return fill_batches(cut_windows(audio), itertools.chain([1], itertools.repeat(self.batch_windows)))


def segments(features: Iterable[np.ndarray], *, on_batch: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    """The back's inputs (`Model.outputs`) from consecutive batches of windows' features: FIRST_BACK_FRAMES first,
    then twice as many each time up to BACK_FRAMES, so that the back never waits long for the front as it starts."""
    frames = FrameStream()
    n_frames = FIRST_BACK_FRAMES
    for batch in features:
        frames.add(batch)
        while (segment := frames.take(n_frames)) is not None:
            yield segment
            n_frames = min(2 * n_frames, BACK_FRAMES)
        if on_batch:
            on_batch(batch.shape[0])
    yield from frames.finish()


class FrameStream:
    """The front's windows in, the back's segments out: each window's kept frames once, in order, with
    CONTEXT_FRAMES of the frames around them at each end of a segment.

    Before the first kept frame come the first window's own lead-in frames and
    after the last one the last window's trailing frames, as Basic Pitch's
    windows have them; between windows a segment reads on into the next
    window's kept frames.
    """

    def __init__(self) -> None:
        self._rows: np.ndarray | None = None  # context, then frames not yet run; None before the first window
        self._tail = np.zeros((0, N_FEATURE_BINS), dtype=np.float32)

    def add(self, features: np.ndarray) -> None:
        """(n, FRAMES_PER_WINDOW, N_FEATURE_BINS): the front's answer for the next n windows."""
        kept = features[:, EDGE_FRAMES : EDGE_FRAMES + KEPT_FRAMES_PER_WINDOW].reshape(-1, N_FEATURE_BINS)
        before = features[0, EDGE_FRAMES - CONTEXT_FRAMES : EDGE_FRAMES] if self._rows is None else self._rows
        self._rows = np.concatenate([before, kept])
        self._tail = features[-1, EDGE_FRAMES + KEPT_FRAMES_PER_WINDOW :][:CONTEXT_FRAMES].copy()

    def take(self, n_frames: int) -> np.ndarray | None:
        """The next segment of `n_frames` frames with its context; None until there are enough frames for it."""
        if self._rows is None or self._rows.shape[0] < n_frames + 2 * CONTEXT_FRAMES:
            return None
        segment = self._rows[: n_frames + 2 * CONTEXT_FRAMES]
        self._rows = self._rows[n_frames:]
        return segment

    def finish(self) -> Iterator[np.ndarray]:
        """The last segment: every frame left, with the last window's trailing frames as its context."""
        if self._rows is not None and self._rows.shape[0] > CONTEXT_FRAMES:
            yield np.concatenate([self._rows, self._tail])
        self._rows = None


@dataclass(frozen=True)
class _SessionPair:
    front: onnxruntime.InferenceSession
    back: onnxruntime.InferenceSession


class _InThread(Generic[T]):
    """`make(*args)` run in a helper thread from now on; `result()` waits for it and gives what it made, or raises its
    error in the thread that needs it. Not a daemon: a process that ends at once waits for onnxruntime rather than
    leave it half done."""

    def __init__(self, name: str, make: Callable[..., T], *args: object):
        self._made: T | BaseException | None = None
        self._helper = threading.Thread(target=self._make, args=(make, *args), name=name)
        self._helper.start()

    def _make(self, make: Callable[..., T], *args: object) -> None:
        try:
            self._made = make(*args)
        except BaseException as error:  # raised by result(), in the thread that needs it
            self._made = error

    def result(self) -> T:
        self._helper.join()
        if isinstance(self._made, BaseException):
            raise self._made
        return cast(T, self._made)


def _sessions_in_thread(path: Path, threads: int, precision: str) -> _InThread[_SessionPair]:
    """A Model's sessions, made in a helper thread: a convert decodes and resamples its first audio meanwhile
    (onnxruntime releases the GIL as it builds them; a 10 s convert's sessions took 60-80 ms on 2 loaded cores, its
    decoding 85 ms). An error making them is raised where they are first used."""
    return _InThread("basic-pitch-sessions", _make_sessions, path, threads, precision)


_sessions = functools.cache(_sessions_in_thread)  # one pair per weights, thread count and precision in a process


def _make_sessions(path: Path, threads: int, precision: str) -> _SessionPair:
    if precision == "int8":
        from .quantise import calibration_audio, int8_back  # with logging, 3-8 ms a float32 convert's start skips

        model = Model(path, threads=threads)  # float32: its front is int8's too, and it calibrates the back

        def calibration() -> Iterator[np.ndarray]:
            return segments(map(model.features, model.batches([calibration_audio()])))

        return _SessionPair(model._front, _session(int8_back(graph_parts(path).back, calibration), path, threads))
    parts = graph_parts(path)
    # The back's session is built beside the front's: onnxruntime builds them without the GIL (42 -> 27 ms).
    back = _InThread("basic-pitch-back-session", _session, parts.back, path, threads)
    # The front runs in read_ahead's helper, beside the back: on one thread its many small operations ran 1.22-1.27x
    # faster (10 corpus files, whole converts) than on all cores between the back's runs.
    return _SessionPair(_session(parts.front, path, 1), back.result())


def _session(model: bytes, path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # onnxruntime's warnings are for its developers, not our users
    # Idle pool threads sleep instead of spinning: a spinning back took the cores the read-ahead helper decodes,
    # resamples and runs the front on (corpus, interleaved: 9 % less CPU, the pipeline 4-5 % faster).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise WeightsError(
            Code.MODEL_CORRUPT,
            f"onnxruntime cannot load {path}: {error}. Reinstall it with `midibridge model install --force`.",
        ) from error


class _Counter:
    """Passes chunks through and counts their samples."""

    def __init__(self, chunks: Iterable[np.ndarray]):
        self._chunks = chunks
        self.n_samples = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self._chunks:
            self.n_samples += chunk.shape[0]
            yield chunk


class _GrowingRows:
    """A preallocated (capacity, n_columns) float32 array filled row block by row block, doubling when full."""

    def __init__(self, capacity: int, n_columns: int):
        self._data = np.empty((capacity, n_columns), dtype=np.float32)
        self._n_rows = 0

    def append(self, rows: np.ndarray) -> None:
        end = self._n_rows + rows.shape[0]
        if end > self._data.shape[0]:
            grown = np.empty((max(end, 2 * self._data.shape[0]), self._data.shape[1]), dtype=np.float32)
            grown[: self._n_rows] = self._data[: self._n_rows]
            self._data = grown
        self._data[self._n_rows : end] = rows
        self._n_rows = end

    def rows(self, n_rows: int) -> np.ndarray:
        return self._data[: min(n_rows, self._n_rows)]


def cut_windows(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Cut WINDOW_SAMPLES windows every HOP_SAMPLES from LEAD_IN_SAMPLES zeros + the audio.

    Yields every window whose first kept frame lies inside the audio; the last
    ones are zero-padded. Windows are views into a buffer that holds less than
    two windows of audio.
    """
    buffer = np.zeros(LEAD_IN_SAMPLES, dtype=np.float32)
    buffer_start = 0  # index of buffer[0] in the lead-in + audio stream
    window = 0
    n_audio = 0
    for chunk in chunks:
        n_audio += chunk.shape[0]
        buffer = np.concatenate([buffer, chunk])
        while window * HOP_SAMPLES + WINDOW_SAMPLES <= buffer_start + buffer.shape[0]:
            offset = window * HOP_SAMPLES - buffer_start
            yield buffer[offset : offset + WINDOW_SAMPLES]
            window += 1
        consumed = window * HOP_SAMPLES - buffer_start
        buffer = buffer[consumed:]
        buffer_start += consumed
    while window * HOP_SAMPLES < n_audio:
        offset = window * HOP_SAMPLES - buffer_start
        yield buffer[offset : offset + WINDOW_SAMPLES]  # shorter than a window: fill_batches pads it
        window += 1


def fill_batches(windows: Iterator[np.ndarray], sizes: Iterator[int]) -> Iterator[np.ndarray]:
    """(n, WINDOW_SAMPLES) float32 batches of consecutive windows, n from `sizes` in turn (the last batch may be
    smaller); a short window is zero-padded."""
    batch, filled = np.zeros((next(sizes), WINDOW_SAMPLES), dtype=np.float32), 0
    for window in windows:
        batch[filled, : window.shape[0]] = window
        filled += 1
        if filled == batch.shape[0]:
            yield batch
            batch, filled = np.zeros((next(sizes), WINDOW_SAMPLES), dtype=np.float32), 0
    if filled:
        yield batch[:filled]
