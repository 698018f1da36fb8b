"""SwiftF0 live: 16 kHz blocks in, note-on, note-off and bend events out as soon as they are decided.

Live and offline share one analysis: each new frame's features come from
FrameExtractor.window (the code that computes an offline window's frames)
and the notes from notes.decode_notes, run again over the last DECODE_FRAMES
frames whenever audio comes in. What this module adds is when a note is
decided: its note-on once the decode shows it starting at least
`lookahead_frames` before the newest frame, or sooner, once the newest
frames hold a new pitch steadily, or the newest frame does and the raw
audio repeats at its period (periodicity.py) (the early note-on, which the
decode must then confirm); its bends up to BEND_LAG_FRAMES before that horizon, its
note-off once it ends before it. The newest frames are provisional (the
model hears CONTEXT_AFTER_FRAMES past a frame; until that audio is in, the
frame is computed again with each block), so the decision at the horizon is
made on what the offline decode would see, less the audio still to come.

The decode keeps the preset's options, min_note_ms included: a piece
shorter than that (a singer's scoop, a consonant) is no note offline, and a
note-on sent for it can never agree. The decode shows a new pitch only
about a pitch window after it begins anyway, so waiting for min_note_ms
costs a note-on no time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...clip import LiveEvent, Note
from ...vocabulary import EventKind
from .constants import (
    CONTEXT_AFTER_FRAMES,
    CONTEXT_BEFORE_FRAMES,
    EARLY_HEARD_FRAMES,
    FRAME_S,
    HARMONIC_SEMITONES,
    HEARD_ABOVE,
    HEARD_PERIODICITY,
    HEARD_SEARCH_SEMITONES,
    HEARD_STEP_SAMPLES,
    HEARD_WINDOW_SAMPLES,
    HEARD_WINDOWS,
    HOP_SAMPLES,
    MODEL_MAX_HZ,
    MODEL_MIN_HZ,
    ONSET_SNAP_MS,
    PITCH_WINDOW_MS,
    SAMPLE_RATE_HZ,
    SEMITONE_HIGHEST,
    SEMITONE_LOWEST,
    STEADY_PERIODICITY,
)
from .features import FrameExtractor, Frames
from .notes import attack_velocity, decode_notes, onsets, pitch_and_voicing, to_partial_rise
from .options import SwiftF0Options
from .periodicity import periodic_pitch, periodicity
from .series import median, midi_pitch

LOOKAHEAD_FRAMES = 3  # 48 ms: a note-on comes this long after the note's start (rendered lines: BENCHMARKS in README)
# 768 ms of frames decoded each time: more than any of the segmentation's windows looks back (300 ms at most). 2 s
# cost 1.6 times the decode's work for the same agreement with convert (benchmark clips; choir line 0.31, now 0.26).
DECODE_FRAMES = 48
STEP_FRAMES = 32  # a block longer than this (0.5 s) is decoded in steps of it
UPDATE_FRAMES = 2  # decode every 32 ms: an update's work is mostly the same whatever it adds (the model's stages
# recompute the ~11 newest frames, the decode reads 48), so each frame would nearly double it
EDGE_STEADY_SEMITONES = 0.5  # pitch steadiness that stands for the confidence the newest frames lack
EDGE_RANGE_SEMITONES = 6 * np.log2(MODEL_MAX_HZ / MODEL_MIN_HZ) - 1  # … inside the model's range, less a semitone
RANGE_CENTRE_MIDI = 69.0 + 12.0 * np.log2(np.sqrt(MODEL_MIN_HZ * MODEL_MAX_HZ) / 440.0)  # … around its centre
# Early note-on: EARLY_FRAMES voiced frames at the newest audio holding one pitch (within EARLY_STEADY_SEMITONES of
# their median, which lies within EARLY_CENTRE_SEMITONES of a semitone other than the one sounding) start its note at
# once; the decode must show that note before the horizon is EARLY_GRACE_FRAMES past its start, or it ends.
EARLY_FRAMES = 4  # or EARLY_HEARD_FRAMES where the audio repeats at the pitch (3 alone cost renders 0.05-0.09 F1)
EARLY_STEADY_SEMITONES = 0.3
EARLY_CENTRE_SEMITONES = 0.35
EARLY_GRACE_FRAMES = 9  # the pitch window: the decode's pitch median shows a change about this late
EARLY_BACK_FRAMES = 8  # how far before the steady frames the note's start is looked for
EARLY_LAG_FRAMES = 3  # … and where the newest frame alone shows a new pitch, it began this long before it
# … with a partial at that pitch within this of the frame's loudest (it reads a flute's attack 12 or 19 semitones low)
EARLY_FUNDAMENTAL_DB = 20.0
AUDIO_KEY_FRACTION = 0.9  # McLeod's: the first repeat at least this close to the best is the period
AUDIO_ABOVE_PERIODICITY = 0.6  # … and not repeating this well at an octave or a twelfth above it
AUDIO_SKIPPED_STEPS = (0, 1, 11)  # from the sounding note: a held note's drift, and its octaves, are the decode's …
# … but not a semitone step the raw audio makes: each of the newest HEARD_WINDOWS windows repeats within
# AUDIO_HOLDS_SEMITONES of the new key, the window before them within LEFT_SEMITONES of the sounding note, and the
# pitch jumped at least STEP_MIN_SEMITONES (a trumpet held between two keys drifts half a semitone: no step). Rendered
# chromatic lines: median note-on delay 193 -> 103 ms (flute), 137 -> 55 ms (clarinet), the same notes. A repeat of
# the sounding pitch stays the decode's: one the audio holds, sent at once, split a rendered flute's notes in two.
AUDIO_HOLDS_SEMITONES = 0.2
LEFT_SEMITONES = 0.3
STEP_MIN_SEMITONES = 0.7
# Bends are decided this far behind the horizon, so that a note can start before what is decided (events stay in
# time order): the decode moves a pitch boundary back by up to its pitch window (to where the raw pitch left the old
# note, a loudness valley, an onset), and an early note's start is looked for as far back. The frames there have
# heard more audio, and agree better with convert's bends. 3 frames: sung agreement 0.68, 6: 0.70, 9: 0.72.
BEND_LAG_FRAMES = round(PITCH_WINDOW_MS / 1000 / FRAME_S)
BEND_STEP = 0.01  # semitones: a bend is sent when the pitch moved a cent since the last one sent


@dataclass
class _Sounding:
    pitch: int
    start_s: float  # of its note-on
    bend: float = 0.0  # the last bend sent
    early: bool = False  # begun from the newest frames; the decode has not shown it yet


@dataclass(frozen=True)
class _Pending:
    """An early note the newest frames show, waiting for the raw audio to repeat at its pitch: as the steady frames'
    note-on asks (`steady`), or as the newest frame's alone does."""

    pitch: int
    start_s: float
    velocity: int
    steady: bool


class SwiftF0Stream:
    """One live stream's state: recent audio and features, and the note it sounds. Feed 16 kHz mono float32 blocks of
    any length; each call returns the events the new audio decided, in time order."""

    def __init__(self, extractor: FrameExtractor, options: SwiftF0Options, *, lookahead_frames: int = LOOKAHEAD_FRAMES):
        self.lookahead_frames = lookahead_frames
        self._extractor = extractor
        self._model = extractor.model_stream()
        self._options = options
        # A preset whose shorter pitch pieces are not notes (a singer's scoops) waits for EARLY_FRAMES: the newest frame
        # and the frames SwiftF0 lags by are too short to tell a scoop from a note.
        self._early_heard = options.min_note_ms <= 1000 * (EARLY_HEARD_FRAMES + EARLY_LAG_FRAMES) * FRAME_S
        self._audio = np.zeros(0, np.float32)
        self._audio_start = 0  # global sample of self._audio[0]
        self._frames: Frames | None = None
        self._frames_start = 0  # global frame of self._frames' first row
        self._final = 0  # frames before this one heard all the audio the model reads around them
        self._on: _Sounding | None = None
        self._decided_s = 0.0  # events up to here are sent
        self._last_pitch = -1  # of the last note sent
        self._candidate: Note | None = None  # a new note the last decode began
        self._decoded: tuple[Note, ...] = ()  # the last decode's notes
        self._pending: _Pending | None = None

    @property
    def samples_in(self) -> int:
        return self._audio_start + len(self._audio)

    def feed(self, samples: np.ndarray) -> list[LiveEvent]:
        self._audio = np.concatenate([self._audio, np.asarray(samples, np.float32)])
        events: list[LiveEvent] = []
        n = self.samples_in // HOP_SAMPLES
        while (
            self._frames_end + UPDATE_FRAMES <= n
        ):  # a long block in steps, so that every frame is decoded before it is dropped
            step = min(n, self._frames_end + STEP_FRAMES)
            self._decoded = self._update(step)
            events += self._commit(self._decoded, horizon_s=(step - self.lookahead_frames) * FRAME_S)
            events += self._early(step)
        if self._pending is not None and self._repeats_at(self._pending):
            events += self._start_pending()
        elif self._pending is None and self._options.live_pitch_from_audio and self._frames is not None:
            events += self._early_from_audio()
        return events

    def close(self) -> list[LiveEvent]:
        """The events still undecided, everything now final, ending with the sounding note's note-off."""
        events = self.feed(np.zeros(0, np.float32))
        n = self.samples_in // HOP_SAMPLES
        if n > self._frames_end:
            events += self._commit(self._update(n), horizon_s=(n - self.lookahead_frames) * FRAME_S)
        if self._frames is not None:
            events += self._commit(self._decode(self._frames_end), horizon_s=np.inf)
        if self._on is not None:
            events += self._off(self._decided_s)
        return events

    @property
    def _frames_end(self) -> int:
        return self._frames_start + (len(self._frames) if self._frames is not None else 0)

    def _update(self, n: int) -> tuple[Note, ...]:
        """Frames [final, n) computed again with the audio now in, older ones dropped; the decode of the last ones."""
        first = max(0, self._final - CONTEXT_BEFORE_FRAMES)
        audio = self._audio[first * HOP_SAMPLES - self._audio_start :]
        new = self._extractor.window(
            audio, first_frame=first, lo=self._final, hi=n, low_bass=self._options.low_bass, model=self._model
        )
        if self._frames is not None:
            new = _join(self._frames, slice(0, self._final - self._frames_start), new)
        else:
            self._frames_start = self._final
        drop = max(0, n - DECODE_FRAMES - self._frames_start)
        self._frames, self._frames_start = _rows(new, slice(drop, None)), self._frames_start + drop
        self._voice_edge(max(self._frames_start + 2, n - CONTEXT_AFTER_FRAMES) - self._frames_start)
        self._final = max(self._final, n - CONTEXT_AFTER_FRAMES - 1)
        cut = max(0, self._final - CONTEXT_BEFORE_FRAMES) * HOP_SAMPLES - self._audio_start
        self._audio, self._audio_start = self._audio[cut:], self._audio_start + cut
        return self._decode(n)

    def _voice_edge(self, lo: int) -> None:
        """SwiftF0's confidence falls towards 0 over the frames without the audio it reads after them, though its pitch
        holds: there (rows lo… of the frames kept, computed again with each block), a frame that is loud enough and
        within EDGE_STEADY_SEMITONES of the two frames before counts as voiced (a click's two frames do not)."""
        assert self._frames is not None
        pitch = midi_pitch(self._frames.pitch_hz[lo - 2 :])
        steady = (np.abs(pitch[2:] - pitch[1:-1]) < EDGE_STEADY_SEMITONES) & (
            np.abs(pitch[2:] - pitch[:-2]) < EDGE_STEADY_SEMITONES
        )
        loud = self._frames.loudness_db[lo:] >= self._options.silence_threshold_dbfs
        # At the ends of its range the model parks a pitch it cannot tell (a click reads as a steady 2 kHz).
        inside = np.abs(pitch[2:] - RANGE_CENTRE_MIDI) < EDGE_RANGE_SEMITONES
        steady &= inside
        confidence = self._frames.confidence[lo:]  # a view: these rows are this block's own arrays
        confidence[steady & loud] = np.maximum(confidence[steady & loud], self._options.voicing_threshold)

    def _decode(self, n: int) -> tuple[Note, ...]:
        assert self._frames is not None
        first = max(self._frames_start, n - DECODE_FRAMES)
        rows = slice(first - self._frames_start, n - self._frames_start)
        return decode_notes(_rows(self._frames, rows), self._options, first_frame=first)

    def _commit(self, notes: tuple[Note, ...], *, horizon_s: float) -> list[LiveEvent]:
        """Events for what `notes` (the decode of the newest frames) settles up to `horizon_s`."""
        events: list[LiveEvent] = []
        while True:
            if self._on is None:
                new = next((m for m in notes if m.start_s <= horizon_s and self._is_new(m)), None)
                if new is None or not self._settled(new, self._last_pitch, self._decided_s, horizon_s):
                    break
                start = max(new.start_s, self._decided_s)
                events.append(LiveEvent(EventKind.NOTE_ON, start, new.pitch, new.velocity))
                self._on, self._decided_s, self._last_pitch = _Sounding(new.pitch, start), start, new.pitch
            # The note that holds the sounding pitch up to what is decided (a note of that pitch ending before the
            # note-on is an earlier one); None: the decode no longer hears it.
            held = self._held(notes)
            if held is None or held.start_s > horizon_s:
                if self._on.early and horizon_s < self._on.start_s + EARLY_GRACE_FRAMES * FRAME_S:
                    break  # the decode has not reached the note the newest frames began
                events += self._off(self._decided_s)
                continue
            self._on.early = False
            until = min(held.end_s, horizon_s - BEND_LAG_FRAMES * FRAME_S)
            for bend in held.bends:
                semitones = bend.semitones + held.pitch - self._on.pitch
                if self._decided_s < bend.time_s <= until and abs(semitones - self._on.bend) >= BEND_STEP:
                    events.append(LiveEvent(EventKind.BEND, bend.time_s, self._on.pitch, semitones=semitones))
                    self._on.bend = semitones
            if held.end_s > horizon_s:
                self._decided_s = max(self._decided_s, until)
                break
            following = next(
                (m for m in notes if m is not held and held.end_s - FRAME_S <= m.start_s <= held.end_s + FRAME_S), None
            )
            if following is not None and not self._settled(following, held.pitch, held.end_s, horizon_s):
                break  # the boundary is decided with the note after it
            events += self._off(held.end_s)
        return events

    def _held(self, notes: tuple[Note, ...]) -> Note | None:
        """The note that holds the sounding pitch up to what is decided (a note of that pitch ending before the note-on
        is an earlier one); or, if none does, one a semitone off that began before what is decided: the same sound,
        whose median pitch the decode of a bounded window puts on the other side of a key (a choir between two keys).
        None: the decode no longer hears it."""
        assert self._on is not None
        on = self._on

        def holds(m: Note) -> bool:
            return m.end_s > on.start_s and m.end_s >= self._decided_s - FRAME_S

        same = next((m for m in notes if m.pitch == on.pitch and holds(m)), None)
        if same is not None or on.early:
            return same
        return next(
            (m for m in notes if abs(m.pitch - on.pitch) == 1 and m.start_s < self._decided_s - FRAME_S and holds(m)),
            None,
        )

    def _early(self, n: int) -> list[LiveEvent]:
        """A note-on (after the sounding note's note-off) for a new pitch the newest EARLY_FRAMES frames hold steadily,
        decided before the decode's pitch median shows it; its start is where that pitch began (after what is
        decided). The newest frame alone is enough where the newest audio repeats at that pitch (`_heard`); until
        then that pitch waits in `_pending`, heard again with each block; so does one the steady frames hold, until
        the audio repeats at it at all (STEADY_PERIODICITY)."""
        assert self._frames is not None
        self._pending = None
        lo = max(self._frames_start, int(np.ceil(self._decided_s / FRAME_S)), n - EARLY_FRAMES - EARLY_BACK_FRAMES)
        if n - lo < EARLY_HEARD_FRAMES:
            return []
        frames = _rows(self._frames, slice(lo - self._frames_start, n - self._frames_start))
        pitch, voiced = pitch_and_voicing(frames, self._options)
        # Where the model has not heard the audio after a frame, its confidence says nothing: steadiness decides.
        edge = np.arange(lo, n) >= n - CONTEXT_AFTER_FRAMES
        voiced |= edge & (frames.loudness_db >= self._options.silence_threshold_dbfs)
        steady = min(n - lo, EARLY_FRAMES)
        key = self._holds(pitch[-steady:], voiced[-steady:], frames.semitone_db[-steady:])
        if (key is None or steady < EARLY_FRAMES) and self._early_heard:
            steady = EARLY_HEARD_FRAMES
            key = self._holds(pitch[-steady:], voiced[-steady:], frames.semitone_db[-steady:])
        if key is None or (steady < EARLY_FRAMES and not self._early_heard):
            return []
        start, centre = len(pitch) - steady, median(pitch[-steady:])
        while start > 0 and voiced[start - 1] and abs(pitch[start - 1] - centre) <= EDGE_STEADY_SEMITONES:
            start -= 1
        if steady < EARLY_FRAMES:  # SwiftF0 shows a new pitch at the newest frames this late (not before its sound)
            unvoiced = np.nonzero(~voiced[:start])[0]
            start = max(int(unvoiced[-1]) + 1 if len(unvoiced) else 0, start - EARLY_LAG_FRAMES)
        if self._on is not None and start > 0 and voiced[start - 1]:  # a legato change: back as convert moves it
            start = max(0, self._partial_rise(lo + start, n, key) - lo)
        # The pitch settles a few frames after an attack: the note starts at an onset near, as the decode's do.
        near = onsets(frames.onset_db.astype(np.float64), frames.loudness_db.astype(np.float64), self._options)
        near = near[np.abs(near - start) <= round(ONSET_SNAP_MS / 1000 / FRAME_S)]
        if len(near):
            start = int(near[np.argmin(np.abs(near - start))])
        if self._on is None and key == self._last_pitch and start == 0:
            return []  # the pitch just sent goes on: whether it is a new note, the decode decides
        start_s = (lo + start) * FRAME_S
        # Where the decode already shows that note (not yet decided: one decode alone), its start is convert's (a
        # boundary moved back to where the new note's partials rose, which the steady frames come long after).
        shown = next((m for m in self._decoded if m.pitch == key and m.start_s <= start_s < m.end_s), None)
        start_s = max(shown.start_s if shown is not None else start_s, self._decided_s)
        self._pending = _Pending(key, start_s, attack_velocity(frames.loudness_db[start:]), steady == EARLY_FRAMES)
        return self._start_pending() if self._repeats_at(self._pending) else []

    def _early_from_audio(self) -> list[LiveEvent]:
        """A note-on for a new pitch the newest raw audio repeats at, before SwiftF0's newest frame shows
        it: its start is where the audio began to repeat at it, or an onset near."""
        assert self._frames is not None
        if self._frames.loudness_db[-1] < self._options.silence_threshold_dbfs:
            return []
        pitch = self._audio_pitch(len(self._audio))
        if pitch is None:
            return []
        key = int(np.rint(pitch))
        if (
            abs(pitch - key) > EARLY_CENTRE_SEMITONES  # between keys: a slide or a bend
            or abs(pitch - RANGE_CENTRE_MIDI) > EDGE_RANGE_SEMITONES
            or (
                self._on is not None
                and (key - self._on.pitch) % 12 in AUDIO_SKIPPED_STEPS
                and not (abs(key - self._on.pitch) == 1 and self._audio_steps(key, pitch))
            )
            or (self._on is None and key == self._last_pitch)  # a repeat of one pitch is the onsets' to find
            or self._periodicity(key) < HEARD_PERIODICITY  # `_heard`, with the pitches above held lower still:
            or any(self._periodicity(key + h) >= AUDIO_ABOVE_PERIODICITY for h in HEARD_ABOVE)
            # an attack's lower partial, below the pitch SwiftF0 already reads
            or round(float(midi_pitch(self._frames.pitch_hz[-1])) - key) in HARMONIC_SEMITONES[1:]
        ):
            return []
        end = len(self._audio)  # back to the first window that repeats at the key
        while (
            end - HEARD_STEP_SAMPLES >= HEARD_WINDOW_SAMPLES
            and self._periodicity_to(key, end - HEARD_STEP_SAMPLES) >= HEARD_PERIODICITY
        ):
            end -= HEARD_STEP_SAMPLES
        start_s = max((self._audio_start + end - HEARD_WINDOW_SAMPLES) / SAMPLE_RATE_HZ, self._decided_s)
        first = max(self._frames_start, int(start_s / FRAME_S) - round(ONSET_SNAP_MS / 1000 / FRAME_S))
        frames = _rows(self._frames, slice(first - self._frames_start, None))
        near = first + onsets(frames.onset_db.astype(np.float64), frames.loudness_db.astype(np.float64), self._options)
        near = near[np.abs(near * FRAME_S - start_s) <= ONSET_SNAP_MS / 1000]
        if len(near):
            start_s = max(float(near[np.argmin(np.abs(near * FRAME_S - start_s))]) * FRAME_S, self._decided_s)
        loudness = frames.loudness_db[max(0, int(start_s / FRAME_S) - first) :]
        velocity = attack_velocity(loudness if len(loudness) else frames.loudness_db[-1:])
        self._pending = _Pending(key, start_s, velocity, steady=False)
        return self._start_pending()

    def _audio_pitch(self, end: int) -> float | None:
        """The pitch (MIDI) the window of the stream's audio that ends at `end` (an index into it) repeats at, by
        McLeod's method; None if nothing repeats."""
        return periodic_pitch(
            self._audio[:end],
            window_samples=HEARD_WINDOW_SAMPLES,
            lowest_hz=MODEL_MIN_HZ,
            key_fraction=AUDIO_KEY_FRACTION,
        )

    def _audio_steps(self, key: int, newest: float) -> bool:
        """Whether the raw audio stepped from the sounding note to `key`, a semitone away: every one of the newest
        HEARD_WINDOWS windows (the newest's pitch is `newest`) repeats within AUDIO_HOLDS_SEMITONES of `key`, and the
        window just before them within LEFT_SEMITONES of the sounding note, at least STEP_MIN_SEMITONES from the
        newest. Windows are read newest first, up to the first that fails (this runs each period)."""
        assert self._on is not None
        if abs(newest - key) > AUDIO_HOLDS_SEMITONES:
            return False
        for k in range(1, HEARD_WINDOWS):
            pitch = self._audio_pitch(len(self._audio) - k * HEARD_STEP_SAMPLES)
            if pitch is None or abs(pitch - key) > AUDIO_HOLDS_SEMITONES:
                return False
        end = len(self._audio) - (HEARD_WINDOWS - 1) * HEARD_STEP_SAMPLES - HEARD_WINDOW_SAMPLES
        before = self._audio_pitch(end)
        return (
            before is not None
            and abs(before - self._on.pitch) <= LEFT_SEMITONES
            and abs(newest - before) >= STEP_MIN_SEMITONES
        )

    def _partial_rise(self, frame: int, n: int, key: int) -> int:
        """Where the decode would begin a note of `key` that follows the sounding note at `frame` (a global frame):
        back to where its own partials rose (notes.to_partial_rise), over the frames kept up to `n`."""
        assert self._frames is not None and self._on is not None
        first = self._frames_start
        segments = [[0, frame - first, self._on.pitch], [frame - first, n - first, key]]
        min_length = max(1, round(self._options.min_note_ms / 1000 / FRAME_S))
        kept = _rows(self._frames, slice(0, n - first))
        pitch, _ = pitch_and_voicing(kept, self._options)
        to_partial_rise(segments, kept.semitone_db, pitch, min_length, self._options.crossfades)
        return first + segments[1][0]

    def _holds(self, pitch: np.ndarray, voiced: np.ndarray, semitone_db: np.ndarray) -> int | None:
        """The new pitch that frames (k,) hold steadily, voiced, with a partial at it; None if they do not."""
        centre = float(median(pitch))
        key = int(np.rint(centre))
        if (
            not voiced.all()
            or np.ptp(pitch) > EARLY_STEADY_SEMITONES
            or abs(centre - key) > EARLY_CENTRE_SEMITONES
            or abs(centre - RANGE_CENTRE_MIDI) > EDGE_RANGE_SEMITONES
            # There it also reads a held note an octave off now and then: octave leaps are the decode's to decide.
            or (self._on is not None and (key - self._on.pitch) % 12 in (0, 1, 11))
        ):
            return None
        spectrum = semitone_db.astype(np.float32)
        if SEMITONE_LOWEST <= key <= SEMITONE_HIGHEST and np.any(
            spectrum[:, key - SEMITONE_LOWEST] < spectrum.max(axis=1) - EARLY_FUNDAMENTAL_DB
        ):
            return None
        return key

    def _repeats_at(self, pending: _Pending) -> bool:
        if pending.steady:
            return self._periodicity(pending.pitch) >= STEADY_PERIODICITY
        return self._heard(pending.pitch)

    def _heard(self, key: int) -> bool:
        """Whether the newest audio repeats at `key`'s period over its last few windows, and not at a higher pitch
        whose lower octave or twelfth `key` would be (SwiftF0 reads a flute's attack that low first)."""
        return self._periodicity(key) >= HEARD_PERIODICITY and all(
            self._periodicity(key + h) < HEARD_PERIODICITY for h in HEARD_ABOVE
        )

    def _periodicity(self, pitch: int) -> float:
        """How well the newest audio repeats at `pitch`'s period: the least over its last HEARD_WINDOWS windows."""
        return min(self._periodicity_to(pitch, len(self._audio) - k * HEARD_STEP_SAMPLES) for k in range(HEARD_WINDOWS))

    def _periodicity_to(self, pitch: int, end: int) -> float:
        """How well the window of the stream's audio that ends at `end` (an index into it) repeats at `pitch`."""
        return periodicity(
            self._audio[:end], pitch, window_samples=HEARD_WINDOW_SAMPLES, search_semitones=HEARD_SEARCH_SEMITONES
        )

    def _start_pending(self) -> list[LiveEvent]:
        assert self._pending is not None
        note, self._pending = self._pending, None
        events = self._off(note.start_s) if self._on is not None else []
        events.append(LiveEvent(EventKind.NOTE_ON, note.start_s, note.pitch, note.velocity))
        self._on = _Sounding(note.pitch, note.start_s, early=True)
        self._decided_s, self._last_pitch = note.start_s, note.pitch
        self._candidate = None
        return events

    def _confirmed(self, note: Note, horizon_s: float) -> bool:
        """Whether the decode before this one began the same note too: a glide's passing pitch, heard at the newest
        frames, is gone once a frame more shows where it goes. At the end of the stream every note is."""
        seen, self._candidate = self._candidate, note
        return horizon_s == np.inf or (
            seen is not None and seen.pitch == note.pitch and abs(seen.start_s - note.start_s) <= 2 * FRAME_S
        )

    def _settled(self, note: Note, last_pitch: int, last_end_s: float, horizon_s: float) -> bool:
        """Whether a new note is decided: seen in two decodes running, near its key (`_off_key`); on the pitch just
        sounding (which ends at `last_end_s`), within a pitch window of its end (a re-articulation, or the next note's
        attack heard before its pitch is), once it has lasted one."""
        confirmed = self._confirmed(note, horizon_s)
        soon = note.start_s < last_end_s + PITCH_WINDOW_MS / 1000
        return (
            confirmed
            and not self._off_key(note, horizon_s)
            and (
                note.pitch != last_pitch
                or not soon
                or note.start_s <= horizon_s - PITCH_WINDOW_MS / 1000
                or self._repeats(note, horizon_s)
            )
        )

    def _off_key(self, note: Note, horizon_s: float) -> bool:
        """Whether a note younger than a pitch window at the horizon has its voiced frames so far further than
        the options' live_off_key_semitones from its key."""
        if note.start_s <= horizon_s - PITCH_WINDOW_MS / 1000:  # the horizon at the stream's end is inf
            return False
        pitch, voiced = self._note_frames(note, round(horizon_s / FRAME_S))
        return bool(
            voiced.sum() >= 2 and abs(median(pitch[voiced]) - note.pitch) > self._options.live_off_key_semitones
        )

    def _repeats(self, note: Note, horizon_s: float) -> bool:
        """Whether the frames from a repeat's start to the newest hold its pitch: at least as many as a new pitch needs
        to show steadily at the newest audio (SwiftF0's lag and EARLY_FRAMES), all voiced within EDGE_STEADY_SEMITONES
        of it; the next note's attack, heard before its pitch, does not."""
        n = round(horizon_s / FRAME_S) + self.lookahead_frames
        start = int(np.ceil(note.start_s / FRAME_S - 1e-6))
        if n - start < EARLY_FRAMES + EARLY_LAG_FRAMES or start < self._frames_start:
            return False
        pitch, voiced = self._note_frames(note, n)
        voiced |= np.arange(start, n) >= n - CONTEXT_AFTER_FRAMES  # as in _early: the newest frames' steadiness
        return bool(np.all(voiced & (np.abs(pitch - note.pitch) <= EDGE_STEADY_SEMITONES)))

    def _note_frames(self, note: Note, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Pitch (semitones) and voicing of the kept frames from `note`'s start to global frame `n`."""
        assert self._frames is not None
        start = max(int(np.ceil(note.start_s / FRAME_S - 1e-6)), self._frames_start)
        return pitch_and_voicing(
            _rows(self._frames, slice(start - self._frames_start, n - self._frames_start)), self._options
        )

    def _is_new(self, note: Note) -> bool:
        """Not the last note sent, seen again: it starts after what is decided (within a frame, as a boundary moves
        with the newest audio), or straddles it on another pitch."""
        if note.end_s <= self._decided_s + FRAME_S:
            return False
        return note.start_s >= self._decided_s - FRAME_S or note.pitch != self._last_pitch

    def _off(self, time_s: float) -> list[LiveEvent]:
        assert self._on is not None
        pitch, bent = self._on.pitch, self._on.bend != 0.0
        self._on, self._decided_s = None, max(self._decided_s, time_s)
        back = [LiveEvent(EventKind.BEND, self._decided_s, pitch)] if bent else []  # the wheel back, as the SMF writer
        return [*back, LiveEvent(EventKind.NOTE_OFF, self._decided_s, pitch)]


def _rows(frames: Frames, rows: slice) -> Frames:
    return Frames(*(getattr(frames, name)[rows] for name in _COLUMNS))


def _join(old: Frames, kept: slice, new: Frames) -> Frames:
    return Frames(*(np.concatenate([getattr(old, name)[kept], getattr(new, name)]) for name in _COLUMNS))


_COLUMNS = ("pitch_hz", "confidence", "loudness_db", "onset_db", "low_shift_semitones", "semitone_db")
