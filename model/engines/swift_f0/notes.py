"""Frames in, notes out: SwiftF0's pitch and confidence, with loudness, onsets and spectra, turned into notes the way a
musician hears them (numpy only). The steps of `decode_notes`, in order:

1. voicing: confidence ≥ voicing_threshold (with hysteresis), audio above the silence threshold; where the pitch's own
   partial and 3rd harmonic are missing, it moves up an octave; where the pitch is the 2nd or 3rd harmonic of a note
   below SwiftF0's floor, it moves down to it (low_bass);
2. octave jumps shorter than half the pitch window fold back; gaps under min_gap_ms are bridged;
3. pitch segments with hysteresis: a running median over PITCH_WINDOW_MS follows the note's centre; a new note
   starts only when the centre moves split_semitones away from the level the note holds (which follows slow drift),
   so vibrato, slides and a singer's drifting intonation stay one note;
4. boundary timing: a pitch boundary moves back to a loudness valley just before it, or to where the new note's own
   partials rose (a slow swell under the old note's release);
5. onsets (band-level rises ≥ onset_threshold_db, loudness dips ≥ dip_db) split a note (repeated notes of one
   pitch); voicing starts and pitch boundaries near an onset move onto it;
6. the passing pitches of a glide go (a piece that holds its pitch is a note of a fast run, and stays); pieces
   under min_note_ms join a neighbour; touching pieces of one pitch with no onset between join; glides "bend" joins
   the two notes of a slow slide into one bent note;
7. each note: the nearest MIDI note to its median pitch (of the frames near the level its segment held), velocity
   from its attack's loudness, its start where its attack comes within attack_db of its peak (where a listener hears
   it begin), bends = the smoothed pitch minus the note's, a point each time it moves a cent; notes never overlap.

A segment is [first frame, end frame (exclusive), MIDI pitch].
"""

from __future__ import annotations

import numpy as np

from ...clip import Bend, Note
from .constants import (
    ATTACK_MAX_DELAY_MS,
    ATTACK_MIN_RISE_DB,
    ATTACK_MS,
    ATTACK_OVERTONES,
    BEND_RESOLUTION_CENTS,
    CROSSFADE_RISE_FRACTION,
    DB_FLOOR,
    DIP_SIDE_MS,
    FRAME_S,
    GLIDE_HOLD_MS,
    GLIDE_HOLD_SEMITONES,
    GLIDE_PIECE_MAX_MS,
    HARMONIC_SEMITONES,
    HELD_SEMITONES,
    LEVEL_MS,
    LOW_PROBE_MAX_HZ,
    MISSING_FUNDAMENTAL_DB,
    ONSET_SETTLE_MS,
    ONSET_SNAP_MS,
    PARTIAL_BACKTRACK_MS,
    PARTIAL_MIN_RISE_DB,
    PARTIAL_RISE_FRACTION,
    PASSING_SEMITONES,
    PASSING_SIDE_MS,
    PITCH_WINDOW_MS,
    SEMITONE_HIGHEST,
    SEMITONE_LOWEST,
    STRAY_SEMITONES,
    VALLEY_BACK_MS,
    VALLEY_MIN_DB,
    VELOCITY_RANGE_DB,
    VELOCITY_WINDOW_MS,
    VOICING_HYSTERESIS,
)
from .features import Frames
from .options import SwiftF0Options
from .series import dips, hold, last_min, median, midi_pitch, running_median, true_runs

Segment = list


def decode_notes(frames: Frames, options: SwiftF0Options, *, first_frame: int = 0) -> tuple[Note, ...]:
    """The notes of a monophonic line, in seconds from frame 0, where `frames` begin at frame `first_frame` (live
    decodes the newest frames of a stream)."""
    if len(frames) == 0:
        return ()
    loudness = frames.loudness_db.astype(np.float64)
    window = max(1, _frames(PITCH_WINDOW_MS)) | 1
    min_length = max(1, _frames(options.min_note_ms))
    pitch, voiced = pitch_and_voicing(frames, options)
    sounding = _fold_and_bridge(pitch, voiced, window, _frames(options.min_gap_ms))
    segments = _pitch_segments(pitch, voiced, window, options.split_semitones)
    _to_valleys(segments, loudness)
    to_partial_rise(segments, frames.semitone_db, pitch, min_length, options.crossfades)
    found = onsets(frames.onset_db.astype(np.float64), loudness, options)
    segments, starts = _apply_onsets(segments, found, voiced, min_length, _frames(ONSET_SETTLE_MS))
    _drop_glide_pieces(segments, pitch, starts)
    segments = _absorb_short(segments, starts, min_length)
    glided = _merge_glides(segments, pitch, starts, options) if options.glides == "bend" else set()
    segments = [s for s in segments if s[1] - s[0] >= min_length]
    for s0, s1 in zip(segments, segments[1:]):  # one note at a time
        s0[1] = min(s0[1], s1[0])
    smooth = running_median(pitch, 3)
    return tuple(
        _note(a, b, p, pitch, smooth, sounding, loudness, frames.semitone_db, a in glided, options, first_frame)
        for a, b, p in segments
        if b > a
    )


def _frames(ms: float) -> int:
    return int(round(ms / 1000 / FRAME_S))


def pitch_and_voicing(frames: Frames, options: SwiftF0Options) -> tuple[np.ndarray, np.ndarray]:
    """(n,) MIDI pitch (float) and (n,) voiced flags: step 1 of decode_notes, which live's early note-on reads too."""
    f0 = frames.pitch_hz.astype(np.float64)
    pitch = midi_pitch(f0)  # unvoiced frames' 0 Hz read as 1 mHz there
    pitch += 12.0 * _missing_fundamental(pitch, frames.semitone_db)
    confidence = frames.confidence.astype(np.float64)
    voiced = confidence >= options.voicing_threshold
    low = np.zeros(len(f0), bool)
    if options.low_bass:
        shift = frames.low_shift_semitones.astype(np.float64)
        low = (f0 < LOW_PROBE_MAX_HZ) & (running_median((shift > 0).astype(float), 5) > 0.5)
        pitch -= np.where(low, running_median(shift, 5), 0.0)
        voiced |= low  # SwiftF0 is unsure below its range; the harmonic evidence decides there
    for a, b in true_runs(low | (confidence >= options.voicing_threshold - VOICING_HYSTERESIS)):
        if voiced[a:b].any():
            voiced[a:b] = True
    voiced &= frames.loudness_db >= options.silence_threshold_dbfs
    return pitch, voiced


def _missing_fundamental(pitch: np.ndarray, semitone_db: np.ndarray) -> np.ndarray:
    """(n,) True where the pitch is an octave below the sound: its own partial and its 3rd harmonic are both
    MISSING_FUNDAMENTAL_DB below its octave, which is then the fundamental (SwiftF0 drops a flute an octave now and
    then)."""
    key = np.rint(pitch).astype(int) - SEMITONE_LOWEST
    rows = np.nonzero((key >= 0) & (key + 19 < semitone_db.shape[1]))[0]
    level = semitone_db[rows].astype(np.float32)
    at = np.arange(len(rows))
    own, octave, third = (level[at, key[rows] + h] for h in (0, 12, 19))
    missing = np.zeros(len(pitch), bool)
    missing[rows] = octave - np.maximum(own, third) >= MISSING_FUNDAMENTAL_DB
    return missing


def _fold_and_bridge(pitch: np.ndarray, voiced: np.ndarray, window: int, gap: int) -> np.ndarray:
    """In place: fold short octave jumps, bridge gaps of at most `gap` frames (pitch interpolated). Returns the
    voiced flags from before bridging."""
    runs = true_runs(voiced)
    for a, b in runs:
        off = pitch[a:b] - running_median(pitch[a:b], window)
        octaves = np.rint(off / 12.0)
        pitch[a:b] -= 12.0 * octaves * ((octaves != 0) & (np.abs(off - 12.0 * octaves) < 1.0))
    sounding = voiced.copy()
    for (_, b0), (a1, _) in zip(runs, runs[1:]):
        if a1 - b0 <= gap:
            voiced[b0:a1] = True
            pitch[b0:a1] = np.interp(np.arange(b0, a1), [b0 - 1, a1], [pitch[b0 - 1], pitch[a1]])
    return sounding


def _pitch_segments(pitch: np.ndarray, voiced: np.ndarray, window: int, split_semitones: float) -> list[Segment]:
    """Notes of one pitch each: a new one starts when the running centre moves split_semitones from the level the note
    holds (its centre's mean, following over LEVEL_MS, so that a singer's slow drift or a note held between two keys
    does not split it)."""
    segments: list[Segment] = []
    follow = max(1, _frames(LEVEL_MS))
    for a, b in true_runs(voiced):
        centre = running_median(pitch[a:b], window)
        level = float(median(centre[:window]))
        start, held = a, 0
        for i in range(a, b):
            if abs(centre[i - a] - level) > split_semitones:
                j = i
                while j > max(start, i - window) and abs(pitch[j - 1] - level) > 0.5:
                    j -= 1  # back to where the raw pitch left the old note
                if j > start:
                    segments.append([start, j, int(np.rint(level))])
                    start = j
                level, held = float(centre[i - a]), 0
            else:
                held += 1
                level += (centre[i - a] - level) / min(held, follow)
        segments.append([start, b, int(np.rint(level))])
    return segments


def _to_valleys(segments: list[Segment], loudness: np.ndarray) -> None:
    """Move a pitch boundary back to a loudness dip just before it (no further than VALLEY_BACK_MS, or it reaches the
    dip before an earlier note of a fast run): the old note's release meeting the new attack."""
    for s0, s1 in zip(segments, segments[1:]):
        if s0[1] != s1[0]:
            continue
        j = s1[0]
        lo = max(s0[0] + 1, j - _frames(VALLEY_BACK_MS))
        if j - lo >= 2:
            k = last_min(loudness, lo, j + 1)
            if k < j and loudness[lo : j + 1].max() - loudness[k] >= VALLEY_MIN_DB:
                s0[1] = s1[0] = k


def to_partial_rise(
    segments: list[Segment], semitone_db: np.ndarray, pitch: np.ndarray, min_length: int, crossfades: bool
) -> None:
    """Move a pitch boundary back to where the new note's own partials (those the old one lacks) rose
    PARTIAL_RISE_FRACTION of the way (in dB) from their floor: slow swells under a release (voice, strings). With
    `crossfades`, where the (n,) frame pitch jumps (no frame within PASSING_SIDE_MS passing between the two keys), the
    new note is a second sound fading in under the old one rather than one voice moving: it starts at
    CROSSFADE_RISE_FRACTION of the rise."""
    n, back, side = len(semitone_db), _frames(PARTIAL_BACKTRACK_MS), _frames(PASSING_SIDE_MS)
    for s0, s1 in zip(segments, segments[1:]):
        p, q = s0[2], s1[2]
        if s0[1] != s1[0] or p == q:
            continue
        own = [
            q + h - SEMITONE_LOWEST
            for h in HARMONIC_SEMITONES
            if all(abs(q + h - p - g) >= 1 for g in HARMONIC_SEMITONES) and SEMITONE_LOWEST <= q + h <= SEMITONE_HIGHEST
        ]
        j = s1[0]
        lo = max(s0[0] + min_length, j - back)
        if not own or lo >= j:
            continue
        level_db = semitone_db[lo : min(n, j + 5)][:, own].astype(np.float32).mean(axis=1)
        top, floor = level_db[j - lo :].max(), level_db[: j - lo + 1].min()
        if top - floor < PARTIAL_MIN_RISE_DB:
            continue
        near = pitch[max(0, j - side) : j + side]
        passing = (near > min(p, q) + PASSING_SEMITONES) & (near < max(p, q) - PASSING_SEMITONES)
        fraction = CROSSFADE_RISE_FRACTION if crossfades and not passing.any() else PARTIAL_RISE_FRACTION
        threshold = floor + fraction * (top - floor)
        t = j - lo
        while t > 0 and level_db[t - 1] >= threshold:
            t -= 1
        s0[1] = s1[0] = lo + t


def onsets(onset_db: np.ndarray, loudness: np.ndarray, options: SwiftF0Options) -> np.ndarray:
    """Onset frames: peaks (the largest within ±2 frames) of the onset strength ≥ onset_threshold_db, each moved to the
    loudness valley within the 4 frames before (the flux peaks while the attack fills its 64 ms window); after
    silence, the first frame with sound; and loudness dips of dip_db within DIP_SIDE_MS on each side."""
    padded = np.concatenate(([-np.inf] * 2, onset_db, [-np.inf] * 2))  # not np.pad: 20x its work here, per decode
    around = np.max(np.stack([padded[0:-4], padded[1:-3], padded[3:-1], padded[4:]]), axis=0)
    peaks = np.nonzero((onset_db >= options.onset_threshold_db) & (onset_db >= around))[0]
    valleys = np.array([last_min(loudness, max(0, k - 4), k + 1) for k in peaks], dtype=int)
    valleys += (loudness[valleys] < options.silence_threshold_dbfs) & (valleys < peaks)
    if options.dip_db > 0:  # a legato re-tongued note rises too little for the onset strength: its dip tells
        valleys = np.concatenate([valleys, dips(loudness, _frames(DIP_SIDE_MS), options.dip_db)])
    return np.unique(valleys)


def _apply_onsets(
    segments: list[Segment], onsets: np.ndarray, voiced: np.ndarray, min_length: int, settle: int
) -> tuple[list[Segment], set[int]]:
    """Segments split at re-articulations, starts moved onto near onsets; and the frames where onsets start notes."""
    starts: set[int] = set()
    if len(onsets) == 0:
        return segments, starts
    snap = _frames(ONSET_SNAP_MS)
    changes = {s[1] for s, t in zip(segments, segments[1:]) if s[1] == t[0] and s[2] != t[2]}
    out: list[Segment] = []
    for a, b, p in segments:
        if a == 0 or not voiced[a - 1]:  # voicing starts late or early: the onset decides
            near = onsets[(np.abs(onsets - a) <= snap) & (onsets >= (out[-1][1] if out else 0)) & (onsets < b - 1)]
            if len(near):
                a = int(near[np.argmin(np.abs(near - a))])
                starts.add(a)
        cut = a
        for k in onsets[(onsets > a) & (onsets < b)]:
            # A pitch change's own spectral change makes onsets just after or before it: not a second note.
            after = min_length if cut in starts else max(min_length, settle)
            before = max(min_length, settle) if b in changes else min_length
            if k - cut >= after and b - k >= before:
                out.append([cut, int(k), p])
                cut = int(k)
                starts.add(cut)
        out.append([cut, b, p])
    for s0, s1 in zip(out, out[1:]):  # pitch boundaries snap onto a near onset
        if s0[1] == s1[0] and s1[0] not in starts:
            near = onsets[np.abs(onsets - s1[0]) <= snap]
            if len(near):
                k = int(near[np.argmin(np.abs(near - s1[0]))])
                if s0[0] < k < s1[1]:
                    s0[1] = s1[0] = k
                    starts.add(k)
    return out, starts


def _drop_glide_pieces(segments: list[Segment], pitch: np.ndarray, starts: set[int]) -> None:
    """A short piece between touching neighbours, pitched between them, whose pitch drifts half a semitone or more
    towards the next and never holds its own pitch (its median, which a run played between two keys holds off the
    key) for GLIDE_HOLD_MS (a note of a fast run does), is a glide passing by: it goes, and the neighbours meet where
    the pitch crosses their midpoint."""
    longest, hold = _frames(GLIDE_PIECE_MAX_MS), _frames(GLIDE_HOLD_MS)
    i = 1
    while i < len(segments) - 1:
        s0, s, s1 = segments[i - 1], segments[i], segments[i + 1]
        up = np.sign(s1[2] - s0[2])
        if (
            s0[1] == s[0]
            and s[1] == s1[0]
            and s[0] not in starts
            and s[1] - s[0] <= longest
            and min(s0[2], s1[2]) < s[2] < max(s0[2], s1[2])
        ):
            span = pitch[s[0] : s[1]]
            q = max(1, len(span) // 4)
            steady = np.abs(span - median(span)) <= GLIDE_HOLD_SEMITONES
            held = max((b - a for a, b in true_runs(steady)), default=0)
            if held < hold and (median(span[-q:]) - median(span[:q])) * up >= 0.5:
                cross = np.nonzero((span - 0.5 * (s0[2] + s1[2])) * up >= 0)[0]
                k = s[0] + (int(cross[0]) if len(cross) else len(span) // 2)
                s0[1] = s1[0] = min(max(k, s0[0] + 1), s1[1] - 1)
                del segments[i]
                i = 1
                continue
        i += 1


def _absorb_short(segments: list[Segment], starts: set[int], min_length: int) -> list[Segment]:
    merged: list[Segment] = []
    for s in segments:
        touching = merged and merged[-1][1] == s[0]
        if touching and s[1] - s[0] < min_length and s[0] not in starts:
            merged[-1][1] = s[1]  # a short piece joins the note before
        elif touching and merged[-1][1] - merged[-1][0] < min_length and merged[-1][0] not in starts:
            merged[-1] = [merged[-1][0], s[1], s[2]]  # … or the note after
        else:
            merged.append(list(s))
    out: list[Segment] = []
    for s in merged:  # touching pieces of one pitch, no onset between: one note
        if out and out[-1][1] == s[0] and out[-1][2] == s[2] and s[0] not in starts:
            out[-1][1] = s[1]
        else:
            out.append(s)
    return out


def _merge_glides(segments: list[Segment], pitch: np.ndarray, starts: set[int], options: SwiftF0Options) -> set[int]:
    """In place: two touching notes joined by a slide of at least glide_min_ms within the bend range, no onset
    between, become one note; returns the start frames of those notes."""
    glided: set[int] = set()
    slow = options.glide_min_ms / 1000 / FRAME_S
    out: list[Segment] = []
    for s in segments:
        if out and out[-1][1] == s[0] and s[0] not in starts:
            previous = out[-1]
            lo, hi = sorted((previous[2], s[2]))
            i = j = s[0]  # the slide: where the pitch is a quarter tone inside both notes
            while i > previous[0] and lo + 0.25 < pitch[i - 1] < hi - 0.25:
                i -= 1
            while j < s[1] and lo + 0.25 < pitch[j] < hi - 0.25:
                j += 1
            if hi - lo <= options.bend_range_semitones and j - i >= slow:
                previous[1] = s[1]
                glided.add(previous[0])
                continue
        out.append(s)
    segments[:] = out
    return glided


def _note(
    a: int,
    b: int,
    pitch: int,
    frame_pitch: np.ndarray,
    smooth: np.ndarray,
    sounding: np.ndarray,
    loudness: np.ndarray,
    semitone_db: np.ndarray,
    glided: bool,
    options: SwiftF0Options,
    first_frame: int,
) -> Note:
    heard = sounding[a:b]
    if not glided:  # a glide is the note it starts on, bent
        pitch = _held_pitch(frame_pitch[a:b], heard, pitch)
    pitch = int(np.clip(pitch, 0, 127))
    velocity = attack_velocity(loudness[a : min(b, a + _frames(VELOCITY_WINDOW_MS))])
    level = _overtone_db(semitone_db[a:b], pitch) if options.attack_from == "overtones" else loudness[a:b]
    start = a + _heard_start(level, options.attack_db)
    first = int(np.ceil(start))  # bends from the note's start on
    offset_s = first_frame * FRAME_S
    return Note(
        pitch,
        start * FRAME_S + offset_s,
        b * FRAME_S + offset_s,
        velocity,
        _bends(first, pitch, smooth[first:b], heard[first - a :], glided, options, offset_s),
    )


def _held_pitch(frame_pitch: np.ndarray, heard: np.ndarray, level: int) -> int:
    """The MIDI pitch a note holds: the median of its heard (n,) frame pitches within HELD_SEMITONES of the level its
    segment held, so that a start moved onto an onset before the pitch changed (the old note's last frames) or a scoop
    does not pull it to a neighbour; all heard frames if none is that near."""
    held = heard & (np.abs(frame_pitch - level) <= HELD_SEMITONES)
    chosen = held if held.any() else heard
    return int(np.rint(median(frame_pitch[chosen] if chosen.any() else frame_pitch)))


def attack_velocity(attack_db: np.ndarray) -> int:
    """MIDI velocity 1 … 127 from the loudness (dBFS) of a note's attack frames: its loudest mapped over
    VELOCITY_RANGE_DB."""
    return int(np.clip(round(127 * 10 ** ((float(np.max(attack_db)) + 3.0) / VELOCITY_RANGE_DB)), 1, 127))


def _overtone_db(semitone_db: np.ndarray, key: int) -> np.ndarray:
    """(n,) level (dB) of a note's ATTACK_OVERTONES over its (n, N_SEMITONES) semitone spectrum, their powers summed:
    a sung vowel's, which the consonant before it lacks (SSVD's annotators mark where the 2nd harmonic appears)."""
    rows = [key + h - SEMITONE_LOWEST for h in ATTACK_OVERTONES if SEMITONE_LOWEST <= key + h <= SEMITONE_HIGHEST]
    power = 10.0 ** (semitone_db[:, rows].astype(np.float64) / 10.0)
    return 10.0 * np.log10(np.maximum(power.sum(axis=1), 10.0 ** (DB_FLOOR / 10.0)))


def _heard_start(level: np.ndarray, attack_db: float) -> float:
    """The (fractional) frame, from a note's first, where it is heard to start, from the level (dB) of its (n,) frames:
    where that first comes within attack_db of its attack's peak (the loudest of its first ATTACK_MS, or of its first
    half if shorter), as listeners and annotators place a soft or consonant-led onset, interpolated between frames, and
    no later than ATTACK_MAX_DELAY_MS. Its first frame when attack_db is 0 or the note rises less than
    ATTACK_MIN_RISE_DB (a legato change, or a tremolo's swell, has no attack to place)."""
    if attack_db <= 0 or len(level) < 2:
        return 0.0
    rise = level[: min(len(level) // 2, _frames(ATTACK_MS)) + 1]
    if rise.max() - rise[0] < ATTACK_MIN_RISE_DB:
        return 0.0
    threshold = rise.max() - attack_db
    j = int(np.argmax(rise >= threshold))
    if j == 0:
        return 0.0
    return min(_frames(ATTACK_MAX_DELAY_MS), j - 1 + (threshold - rise[j - 1]) / (rise[j] - rise[j - 1]))


def _bends(
    a: int, pitch: int, smooth: np.ndarray, heard: np.ndarray, glided: bool, options: SwiftF0Options, offset_s: float
) -> tuple[Bend, ...]:
    """A Bend each time the note's smoothed pitch (n,) moves BEND_RESOLUTION_CENTS; none for a note that never
    strays that far. The MIDI writer returns the wheel to 0 at the note's end."""
    if options.pitch_bends == "off":
        return ()
    off = hold(smooth - pitch, heard)  # silent frames hold the nearest heard value
    if not glided:
        off = hold(off, np.abs(off) <= STRAY_SEMITONES, side="last")  # stray frames hold the last good one
    off = np.clip(off, -options.bend_range_semitones, options.bend_range_semitones)
    step = BEND_RESOLUTION_CENTS / 100.0
    bends, last = [], 0.0
    for k, value in enumerate(off.tolist()):
        if abs(value - last) >= step:
            bends.append(Bend(round((a + k) * FRAME_S, 6) + offset_s, round(value, 4)))
            last = value
    return tuple(bends)
