"""Every signal constant of Basic Pitch's model, derived from the few that define it.

Lengths are in samples at `SAMPLE_RATE_HZ` unless the name says frames (one
frame = `FFT_HOP_SAMPLES` samples) or seconds.
"""

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
ONNX_OUTPUTS = {
    "note": "StatefulPartitionedCall:1",
    "onset": "StatefulPartitionedCall:2",
    "contour": "StatefulPartitionedCall:0",
}
