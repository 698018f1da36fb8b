"""Every signal constant of the SwiftF0 engine, derived from the few that define it.

Lengths are in samples at `SAMPLE_RATE_HZ` unless the name says frames (one
frame = `HOP_SAMPLES` samples, 16 ms; frame i is centred on sample i × HOP_SAMPLES).
"""

SAMPLE_RATE_HZ = 16_000
HOP_SAMPLES = 256
FRAME_S = HOP_SAMPLES / SAMPLE_RATE_HZ

# The model: inputs "audio" float32 [1, N], "fmin"/"fmax" float32 scalars; outputs "pitch" (Hz) and
# "confidence", [1, max(1, N // HOP_SAMPLES)]. Its range is fixed by its 95 pitch bins.
MODEL_MIN_HZ = 46.875
MODEL_MAX_HZ = 2093.75
# Its receptive field is ±2815 samples: its front's spectra read FRONT_REACH_SAMPLES around a frame (the longest window
# is 2048 samples), its convolutions 7 frames on each side (stages.py). Windows get whole frames of context on each
# side, as the package does.
FRONT_REACH_SAMPLES = 1023
CONTEXT_BEFORE_FRAMES = 11
CONTEXT_AFTER_FRAMES = 10
WINDOW_FRAMES = 625  # 10 s per model run: a 30 s clip is three windows, run on every core at once; per frame the
# model costs the same from 5 to 30 s windows (measured, one thread), the context frames are 3 % more
# The model answers digital silence with random voicing; the package zeroes frames whose audio peaks below this.
SILENCE_PEAK = 1e-3

# Spectral features: a 1024-sample (64 ms) STFT per frame.
FFT_SAMPLES = 1024
FFT_BLOCK_FRAMES = 512  # frames transformed per numpy call: bounds the STFT's scratch memory
FRONT_BLOCK_FRAMES = 64  # the same for the model's front (front.py): 64 to 1024 measured, 64 the fastest
DB_FLOOR = -100.0
# Onset strength: half-octave band levels 50 Hz … 9 kHz, each band's rise over ONSET_LAG_FRAMES (≈ the STFT
# window), counted over the bands within ONSET_ACTIVE_RANGE_DB of the frame's loudest.
BAND_LOWEST_HZ = 50.0
N_BANDS = 14
ONSET_LAG_FRAMES = 3
ONSET_ACTIVE_RANGE_DB = 50.0
# Semitone spectrum (peak power within a quarter tone of each semitone), E1 … B8: times note boundaries.
SEMITONE_LOWEST, SEMITONE_HIGHEST = 28, 119
N_SEMITONES = SEMITONE_HIGHEST - SEMITONE_LOWEST + 1

# Low bass: SwiftF0 starts at 46.875 Hz, so E1 (41.2 Hz) or B0 (30.9 Hz) come out at their 2nd or 3rd
# harmonic. A 4096-sample DFT (zero-padded to 8192) probes frames tracked below LOW_PROBE_MAX_HZ.
LOW_NOTE_MAX_HZ = 48.0
SUB_HARMONICS = (2, 3)
LOW_PROBE_MAX_HZ = LOW_NOTE_MAX_HZ * max(SUB_HARMONICS)
LOW_PROBE_MIN_DBFS = -70.0
LOW_FFT_SAMPLES = 4096
LOW_FFT_PADDED = 8192
LOW_BLOCK_FRAMES = 128
SUB_HARMONIC_MIN_DB = -6.0  # the lower note's own partials within this of the tracked ones …
LOW_HARMONICITY_MIN_DB = 10.0  # … and periodic: its partials this far above the gaps between them

# Segmentation, in ms (converted to frames where used).
PITCH_WINDOW_MS = 144.0  # running median that follows a note's centre: about one vibrato period
LEVEL_MS = 160.0  # the level a note holds follows its centre this slowly (a mean over the note's first LEVEL_MS)
VOICING_HYSTERESIS = 0.2  # a voiced stretch goes on down to the voicing threshold minus this
DIP_SIDE_MS = 32.0  # a loudness dip (dip_db) is the lowest within this on each side, which both rise from it
ONSET_SNAP_MS = 48.0  # voicing starts and pitch boundaries this near an onset move onto it
ONSET_SETTLE_MS = 96.0  # onsets this near a pitch change are its own spectral change, not a new note (a run's
# notes last ≈ 150 ms: the pitch window's 144 ms lost their re-articulations)
VALLEY_MIN_DB = 4.0  # a loudness dip this deep before a pitch boundary moves the boundary back to it …
VALLEY_BACK_MS = 64.0  # … from at most this far
PARTIAL_RISE_FRACTION = 0.6  # a new note starts where its own partials rose this far (in dB) from their floor …
PARTIAL_MIN_RISE_DB = 12.0  # … if they rose at least this much,
PARTIAL_BACKTRACK_MS = 300.0  # … looking back at most this far;
CROSSFADE_RISE_FRACTION = 0.4  # … or this far (crossfades) where the pitch jumps: no frame passes PASSING_SEMITONES
PASSING_SEMITONES, PASSING_SIDE_MS = 0.3, 48.0  # inside both keys within this of the boundary (one voice glides)
GLIDE_PIECE_MAX_MS = 160.0  # passing pitches of a glide last at most this …
GLIDE_HOLD_MS, GLIDE_HOLD_SEMITONES = 64.0, 0.3  # … and never hold within this of their median this long
HELD_SEMITONES = 1.0  # a note's pitch is the median of its frames this near the level its segment held
STRAY_SEMITONES = 1.5  # frames this far off their note (not a glide) hold the last good bend
BEND_RESOLUTION_CENTS = 1.0  # a new bend each time the pitch moves this much
ATTACK_MS = 128.0  # a note's attack peaks within this of its start (attack_db places the onset on it) …
ATTACK_MIN_RISE_DB = 6.0  # … if it rises at least this much
ATTACK_MAX_DELAY_MS = 48.0  # … moving it no further (a run's short notes swell in over most of their length)
VELOCITY_WINDOW_MS = 112.0  # velocity from the loudest 32 ms within this of a note's start
VELOCITY_RANGE_DB = 40.0  # dynamics mapped onto velocities 1 … 127; a full-scale sine (−3 dBFS RMS) is 127
HARMONIC_SEMITONES = (0, 12, 19, 24, 28, 31)  # harmonics 1 … 6 above their fundamental
ATTACK_OVERTONES = HARMONIC_SEMITONES[1:3]  # attack_from "overtones": the 2nd and 3rd harmonics' level
MISSING_FUNDAMENTAL_DB = 30.0  # a pitch whose own partial and 3rd harmonic are this far below its octave is that octave

# Live's early note-on: the newest frame alone starts a new pitch where the raw audio repeats at its period
# (periodicity ≥ HEARD_PERIODICITY) in each of HEARD_WINDOWS windows of HEARD_WINDOW_MS (at least two periods),
# HEARD_STEP_MS apart, and not at an octave or a twelfth above (tuning clips: 2 frames, or 0.9, decided 4-17 ms later).
EARLY_HEARD_FRAMES = 1
HEARD_WINDOW_MS = 32.0
HEARD_STEP_MS = 8.0
HEARD_WINDOWS = 3
HEARD_PERIODICITY = 0.95
HEARD_SEARCH_SEMITONES = 0.5
HEARD_ABOVE = HARMONIC_SEMITONES[1:3]  # an octave and a twelfth
# The steady frames' note-on needs the raw audio to repeat at the pitch this much too: a singer's consonant or the
# upper partials of an attack read as a steady pitch at the newest frames, whose note-on the decode then ended at once
# (tuning clips, sung agreement +0.013, lead +0.007; every value from 0.5 to 0.9 the same).
STEADY_PERIODICITY = 0.7
HEARD_WINDOW_SAMPLES = round(HEARD_WINDOW_MS / 1000 * SAMPLE_RATE_HZ)
HEARD_STEP_SAMPLES = round(HEARD_STEP_MS / 1000 * SAMPLE_RATE_HZ)
