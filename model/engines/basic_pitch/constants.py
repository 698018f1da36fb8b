"""Every signal constant of Basic Pitch's model, derived from the few that define it.

Lengths are in samples at `SAMPLE_RATE_HZ` unless the name says frames (one
frame = `FFT_HOP_SAMPLES` samples) or seconds.
"""

import math

SAMPLE_RATE_HZ = 22050
FFT_HOP_SAMPLES = 256
WINDOW_S = 2

# The model sees windows one hop short of two seconds and answers with one
# frame per hop, the first centred on the window's first sample.
WINDOW_SAMPLES = SAMPLE_RATE_HZ * WINDOW_S - FFT_HOP_SAMPLES
FRAMES_PER_WINDOW = WINDOW_SAMPLES // FFT_HOP_SAMPLES + 1

# Windows overlap so that the frames near a window's edges, which see
# zero padding, can be dropped: half the overlap at each side.
OVERLAP_FRAMES = 30
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP_SAMPLES
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES
EDGE_FRAMES = OVERLAP_FRAMES // 2
KEPT_FRAMES_PER_WINDOW = FRAMES_PER_WINDOW - 2 * EDGE_FRAMES
# Zeros put before the audio so that the first kept frame sits at sample 0.
LEAD_IN_SAMPLES = EDGE_FRAMES * FFT_HOP_SAMPLES

# The model is run in two parts (inference.py). The front, the constant-Q
# transform normalised per window, sees the whole window, so it runs on these
# windows as Basic Pitch does. The back (harmonic stacking and the 2-D
# convolutions) reaches only nearby frames: it runs once over the kept frames
# of consecutive windows, stitched, with this many frames of context each side.
# Its convolutions' heights in frames, path by path, as Basic Pitch's model
# builds them (tests/test_inference.py checks them against the graph):
CONTOUR_KERNEL_FRAMES = (3, 5)  # on the stacked CQT
NOTE_KERNEL_FRAMES = (7, 7)  # on the contour
ONSET_KERNEL_FRAMES = ((5,), (3,))  # on the stacked CQT, then on it beside the note


def _reach(heights: tuple[int, ...]) -> int:
    return sum(height // 2 for height in heights)


CONTOUR_REACH_FRAMES = _reach(CONTOUR_KERNEL_FRAMES)
NOTE_REACH_FRAMES = CONTOUR_REACH_FRAMES + _reach(NOTE_KERNEL_FRAMES)
CONTEXT_FRAMES = max(NOTE_REACH_FRAMES, _reach(ONSET_KERNEL_FRAMES[0])) + _reach(ONSET_KERNEL_FRAMES[1])
# The back runs over about this many kept frames at a time (8 windows' worth):
# enough that the context is 2 % more work, little enough to be 10 MB.
BACK_FRAMES = 8 * KEPT_FRAMES_PER_WINDOW
# Its first run takes the frames of the front's first batch, one window, that need nothing of the next: it starts
# once 2 s of audio are decoded and one window's features made, and the front's next batch runs beside it.
FIRST_BACK_FRAMES = KEPT_FRAMES_PER_WINDOW - CONTEXT_FRAMES

# Pitch axes: one note bin per piano key, three contour bins per semitone.
N_PITCHES = 88
LOWEST_PITCH = 21  # A0, MIDI note number of note bin 0
HIGHEST_PITCH = LOWEST_PITCH + N_PITCHES - 1
CONTOUR_BINS_PER_SEMITONE = 3
N_CONTOUR_BINS = N_PITCHES * CONTOUR_BINS_PER_SEMITONE
LOWEST_FREQUENCY_HZ = 27.5  # A0

# Basic Pitch converts lengths in ms to frames with the nominal frame rate.
NOMINAL_FRAME_RATE_HZ = SAMPLE_RATE_HZ / FFT_HOP_SAMPLES

# The ONNX graph's tensor names. Outputs are requested by name: the graph's
# own order (contour, note, onset) is not the order one would guess.
ONNX_INPUT = "serving_default_input_2:0"
# Where the front ends: the normalised CQT after its batch normalisation, (n, frames, N_FEATURE_BINS, 1).
ONNX_FEATURES = "model_1/batch_normalization/FusedBatchNormV3;model_1/batch_normalization/FusedBatchNormV33"
N_HARMONICS = 8
# The CQT's bins: the piano's keys and the semitones the harmonic stacking shifts by, up to the Nyquist frequency
# (basic_pitch.models.get_cqt): 103 semitones.
N_FEATURE_BINS = CONTOUR_BINS_PER_SEMITONE * min(
    N_PITCHES + math.ceil(12 * math.log2(N_HARMONICS)),
    math.floor(12 * math.log2(SAMPLE_RATE_HZ / 2 / LOWEST_FREQUENCY_HZ)),
)
ONNX_OUTPUTS = {
    "note": "StatefulPartitionedCall:1",
    "onset": "StatefulPartitionedCall:2",
    "contour": "StatefulPartitionedCall:0",
}
