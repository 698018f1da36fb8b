"""Every fixed number of the drum engine, in one place; the rest is derived from these."""

from __future__ import annotations

# Analysis signal: the pipeline resamples to this rate.
SAMPLE_RATE_HZ = 22050
FFT_SIZE = 1024  # samples at SAMPLE_RATE_HZ (46 ms Hann window)
HOP_SIZE = 256  # samples at SAMPLE_RATE_HZ between frames
FRAME_RATE_HZ = SAMPLE_RATE_HZ / HOP_SIZE  # ~86.1 frames per second
N_MEL_BANDS = 64
MEL_LOW_HZ = 30.0
MEL_HIGH_HZ = SAMPLE_RATE_HZ / 2
LOG_FLOOR = 1e-7  # added to mel power before log10 (about -70 dB)

# Network input: log-mel frames from CONTEXT_BEFORE frames before the frame
# being classified to CONTEXT_AFTER frames after it.
CONTEXT_BEFORE = 3
CONTEXT_AFTER = 8
CONTEXT_FRAMES = CONTEXT_BEFORE + 1 + CONTEXT_AFTER

# Streaming: frames analysed per block, plus margins on both sides that give
# every block frame its full context and peak-picking neighbourhood, so hits do
# not depend on where blocks end (and PFNMF's per-block scale stays ~48 s).
BLOCK_FRAMES = 4096  # ~48 s per block
BLOCK_MARGIN_FRAMES = 32  # > CONTEXT_AFTER + peak-picking half-width

# Output vocabulary: network output index -> (General MIDI drum note, class group).
# A hit is detected on its group; the note within a group is its strongest output.
OUTPUT_NOTES = (36, 38, 37, 42, 44, 46, 41, 45, 48, 49, 51)
GROUP_OF_NOTE = {
    36: "kick",
    38: "snare",
    37: "snare",
    42: "hihat",
    44: "hihat",
    46: "hihat",
    41: "toms",
    45: "toms",
    48: "toms",
    49: "cymbals",
    51: "cymbals",
}
GROUPS = ("kick", "snare", "hihat", "toms", "cymbals")

# Detection.
COINCIDENT_FRAMES = 2  # peaks this many frames (23 ms) apart count as one moment
NOTE_CHOICE_FRAMES = 2  # frames from a peak on whose outputs a group's note is chosen
LEVEL_FRAMES = 3  # frames from a peak over which its band level is taken
# Frequency band (Hz) whose level sets a hit's velocity, per class group.
VELOCITY_BAND_HZ = {
    "kick": (30, 200),
    "snare": (150, 5000),
    "hihat": (5000, 11025),
    "toms": (60, 1000),
    "cymbals": (3000, 11025),
}

# A hit is a note this long: drum sounds decay on their own, so only its start carries information.
NOTE_LENGTH_S = 0.05

# Kick PFNMF: free components beside the fixed templates, KL multiplicative updates per block, seed.
NMF_FREE_COMPONENTS = 2
NMF_ITERATIONS = 30
NMF_SEED = 0
