"""The SwiftF0 engine's decoding options: how pitch and confidence become notes. Standard library only, like every
option group (model.options), so that presets are read and checked without numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...options import OptionGroup, Spec

DECODE_SPECS = {
    "voicing_threshold": Spec(float, 0.0, 1.0, open_low=True, open_high=True),
    "silence_threshold_dbfs": Spec(float, -120.0, 0.0),
    "min_note_ms": Spec(float, 16.0, 10_000.0),
    "min_gap_ms": Spec(float, 0.0, 2_000.0),
    "split_semitones": Spec(float, 0.5, 12.0),
    "onset_threshold_db": Spec(float, 0.5, 60.0),
    "dip_db": Spec(float, 0.0, 60.0),
    "attack_db": Spec(float, 0.0, 60.0),
    "attack_from": Spec(str, choices=("loudness", "overtones")),
    "crossfades": Spec(bool),
    "glides": Spec(str, choices=("split", "bend")),
    "glide_min_ms": Spec(float, 0.0, 2_000.0),
    "bend_range_semitones": Spec(float, 0.0, 48.0, open_low=True),
    "pitch_bends": Spec(str, choices=("off", "on")),
    "low_bass": Spec(bool),
    "live_pitch_from_audio": Spec(bool),
    "live_off_key_semitones": Spec(float, 0.0, 0.5, open_low=True),
}


@dataclass(frozen=True, kw_only=True)
class SwiftF0Options(OptionGroup):
    """How SwiftF0's frames become notes. Defaults were chosen on rendered flute, trumpet and bass (README).

    voicing_threshold: SwiftF0's confidence for a sounding frame (0.5 is its
    calibration); a sounding stretch goes on down to 0.2 below it.
    silence_threshold_dbfs: quieter frames (32 ms RMS) are silence.
    min_note_ms: shorter pieces join a neighbour or go. min_gap_ms: shorter
    silences inside a line are bridged.
    split_semitones: a new note starts only when the pitch's running centre
    (a median over about one vibrato period) moves this far from the level
    the note holds, so vibrato, slides and slow drift stay one note carried
    by bends.
    onset_threshold_db: a band-level rise this large is a (re-)articulation: it
    starts a note, also on the same pitch.
    dip_db: a loudness dip this deep, with a rise on each side within 32 ms,
    is one too (a legato re-tongued note; 0: off).
    attack_db: a note starts where its loudness comes within this of its
    attack's peak, where a listener hears a soft or consonant-led onset begin
    (0: where the rise begins, as a synthesiser's note-on).
    attack_from: "loudness" (the frame's) or "overtones" (the level of the
    note's 2nd and 3rd harmonics: a sung vowel's, which its consonant lacks).
    crossfades: a pitch that jumps (nothing passing between the two notes)
    is a new sound fading in under the old one, as a sampled voice sings
    legato: the new note starts where its partials begin to rise, not where
    they take over.
    glides: "split" (a slide between notes gives two notes) or "bend" (one note
    bent to the next pitch, when the slide takes at least glide_min_ms, has no
    onset and stays within bend_range_semitones).
    bend_range_semitones: bends are clipped to ±this (the MIDI files carry ±2).
    pitch_bends: "on" (continuous, cent-accurate, back to 0 at each note's end) or "off".
    low_bass: find notes below SwiftF0's 46.9 Hz floor (E1, B0) from their harmonics.
    live_pitch_from_audio: live only: a new pitch the raw audio repeats at starts its note before SwiftF0's newest
    frame shows it (clean wind lines; on bowed strings it started wrong notes); so does a semitone step from the
    sounding note that the audio makes (from within 0.3 semitone of one key to within 0.2 of the next).
    live_off_key_semitones: live only: a new note whose pitch so far lies further than this from its key waits until
    it has lasted a pitch window (144 ms), since the decode could still put it on the next key (a singer holding
    65.6 is 65 at first, then 66).
    """

    voicing_threshold: float = 0.5
    silence_threshold_dbfs: float = -60.0
    min_note_ms: float = 60.0
    min_gap_ms: float = 40.0
    split_semitones: float = 0.75
    onset_threshold_db: float = 4.0
    dip_db: float = 0.0
    attack_db: float = 0.0
    attack_from: str = "loudness"
    crossfades: bool = False
    glides: str = "split"
    glide_min_ms: float = 64.0
    bend_range_semitones: float = 2.0
    pitch_bends: str = "on"
    low_bass: bool = True
    live_pitch_from_audio: bool = False
    # Chosen on the tuning songs among 0.1-0.3 semitones and 1-2.5 pitch windows, as the one that left the 95th
    # percentile of the decision delay where it was.
    live_off_key_semitones: float = 0.2

    SPECS: ClassVar = DECODE_SPECS
    WHERE: ClassVar = "swift-f0 decode options"
