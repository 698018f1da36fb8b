"""Every constant of Transkun 2.0 (transkun/pretrained/2.0.conf and its code), derived from the few that define it.

Lengths are in samples at SAMPLE_RATE_HZ unless the name says frames (one frame = HOP_SAMPLES samples) or seconds.
Standard library only.
"""

import math

SAMPLE_RATE_HZ = 44100
HOP_SAMPLES = 1024
FRAME_S = HOP_SAMPLES / SAMPLE_RATE_HZ
FFT_SAMPLES = 4096  # each frame's window, centred on its hop
N_MELS = 229  # the mel filter bank is the checkpoint's (30 Hz to 8 kHz)
MEL_FLOOR = 1e-5  # log(mel + floor), scaled so the floor maps to 0

# Transkun transcribes 16 s windows every 8 s (its `transcribe`, as its command line runs it): the first window
# starts WINDOW_S - HOP_S before the audio, so every stretch of audio is seen by two windows.
WINDOW_S, WINDOW_HOP_S = 16.0, 8.0
WINDOW_SAMPLES = math.ceil(WINDOW_S * SAMPLE_RATE_HZ)
WINDOW_FRAMES = math.ceil(WINDOW_SAMPLES / HOP_SAMPLES) + 1  # 691: the first centred on sample 0
LAST_FRAME = round(WINDOW_SAMPLES / HOP_SAMPLES)  # an interval ending before it has ended inside the window
LEAD_SAMPLES = math.ceil((WINDOW_S - WINDOW_HOP_S) * SAMPLE_RATE_HZ)  # zeros before the audio, and after it
WINDOW_HOP_FRAMES = math.ceil(WINDOW_HOP_S * SAMPLE_RATE_HZ / HOP_SAMPLES)  # 345: windows start on a frame
WINDOW_HOP_SAMPLES = WINDOW_HOP_FRAMES * HOP_SAMPLES
FIRST_FRAME = LEAD_SAMPLES // HOP_SAMPLES  # 344: where the first window's decode starts, the audio's first frame

# The network scores intervals for 90 tracks: sustain and soft pedal (as -CC number) and the 88 keys. midibridge's
# clips hold notes, so the pedals' tracks are attended to in the network but never scored or decoded.
TARGETS = (-64, -67) + tuple(range(21, 109))
N_PEDALS = 2
LOWEST_KEY = 21
N_KEYS = 88

# The network: 6 transformer layers of width 256 (8 heads of 32) over a 4x8-downsampled (frequency, time) grid.
BASE_SIZE = 64
WIDTH = 4 * BASE_SIZE
N_HEADS = 8
N_LAYERS = 6
TIME_STRIDE = 8
# The downsampling convolutions' grid for a window: 691 frames → 349 → 175 → 88, 229 bins → 232 → 116 → 58.
GRID_FRAMES, GRID_BINS = 88, 58
N_GROUPS = 4  # GroupNorm's groups
CONTEXT_SIZE = BASE_SIZE * 4  # per key and frame: what interval scores, velocity and refined times are read from

CHECKPOINT_IN_WHEEL = "transkun/pretrained/2.0.pt"
CHECKPOINT_SHA256 = "50a80010effc2a59ffcd068a95cd2b29bd7f23a27a3515bc3ccd209c89a3d44c"
TRANSKUN_VERSION = "2.0.1"

# The graphs' inputs and outputs (graph.py writes them, engine.py runs them).
AUDIO = "audio"  # (WINDOW_SAMPLES,) float32
QUERY, KEY = "query", "key"  # (N_KEYS, WINDOW_FRAMES, CONTEXT_SIZE): an interval's score is query_end . key_begin
SINGLE_SCORE = "single_frame_score"  # (N_KEYS, WINDOW_FRAMES): a note of one frame; > 0 is one
CONTEXT = "context"  # (N_KEYS, WINDOW_FRAMES, CONTEXT_SIZE)
ONSET_CONTEXT, OFFSET_CONTEXT = "onset_context", "offset_context"  # (n, CONTEXT_SIZE): at intervals' ends
VELOCITY_LOGITS = "velocity_logits"  # (n, 128)
REFINEMENT_LOGITS = "refinement_logits"  # (n, 4): onset and offset shift, onset and offset presence
