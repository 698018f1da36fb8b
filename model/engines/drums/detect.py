"""Hits from the networks' activations: peak picking per class group, the kick from PFNMF, the group's note.

Shapes: F frames, B mel bands, N = len(OUTPUT_NOTES) network outputs, G = len(GROUPS).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .constants import (
    COINCIDENT_FRAMES,
    FRAME_RATE_HZ,
    GROUP_OF_NOTE,
    GROUPS,
    LEVEL_FRAMES,
    NOTE_CHOICE_FRAMES,
    OUTPUT_NOTES,
    VELOCITY_BAND_HZ,
)
from .features import mel_band_centres_hz
from .nmf import onset_novelty, pfnmf
from .options import DrumOptions

KICK, SNARE, HIHAT, TOMS, CYMBALS = (GROUPS.index(g) for g in ("kick", "snare", "hihat", "toms", "cymbals"))


@lru_cache(maxsize=1)
def group_matrix() -> np.ndarray:
    """(N, G) 0/1 float32: which group each output note belongs to."""
    m = np.zeros((len(OUTPUT_NOTES), len(GROUPS)), np.float32)
    for i, note in enumerate(OUTPUT_NOTES):
        m[i, GROUPS.index(GROUP_OF_NOTE[note])] = 1.0
    return m


def pick_peaks(activation: np.ndarray, threshold: float, half_width_frames: int) -> np.ndarray:
    """activation: (F,). Frames that reach threshold and are the maximum within ±half_width_frames (the first
    frame of a plateau wins). Returns (P,) int64 frame indices."""
    if len(activation) == 0:
        return np.zeros(0, np.int64)
    w = max(1, half_width_frames)
    padded = np.concatenate([np.full(w, -np.inf), activation, np.full(w, -np.inf)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)  # (F, 2w+1)
    is_peak = (
        (activation >= threshold)
        & (activation > windows[:, :w].max(axis=1))
        & (activation >= windows[:, w + 1 :].max(axis=1))
    )
    return np.flatnonzero(is_peak)


def band_levels_db(power: np.ndarray) -> np.ndarray:
    """power: (F, B) mel power. Returns (F, G) level in dB of each group's velocity band."""
    centres = mel_band_centres_hz()
    out = np.empty((len(power), len(GROUPS)), np.float32)
    for g, group in enumerate(GROUPS):
        low_hz, high_hz = VELOCITY_BAND_HZ[group]
        out[:, g] = 10.0 * np.log10(power[:, (centres >= low_hz) & (centres <= high_hz)].sum(axis=1) + 1e-12)
    return out


def _near(frames: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(len(frames),) bool: within COINCIDENT_FRAMES of any of `others`."""
    if len(others) == 0:
        return np.zeros(len(frames), bool)
    return np.abs(frames[:, None] - others[None, :]).min(axis=1) <= COINCIDENT_FRAMES


def detect(
    act: np.ndarray, logmel: np.ndarray, templates: np.ndarray, options: DrumOptions
) -> list[tuple[int, int, float]]:
    """act: (F, N) onset probabilities; logmel: (F, B) log10 mel power; templates: (B, G) PFNMF kick templates.

    Returns [(frame, gm_note, band level dB)]. Kicks are peaks of the kick template's PFNMF onset novelty that the
    network confirms; a snare at a kick, and a metal hit (hi-hat or cymbal) at a snare, need more (real kits'
    kick+hi-hat hits fire false snares); metal hits are split into hi-hats and cymbals by their activations.
    """
    n = len(act)
    groups = group_matrix()
    power = 10.0 ** logmel.astype(np.float64)  # (F, B)
    group_act = np.minimum(act @ groups, 1.0)  # (F, G)
    loud = np.log10(power.sum(axis=1)) >= options.silence_floor_dbfs / 10.0
    group_act[~loud] = 0.0
    half_width = max(1, int(round(options.min_interval_ms / 1000 * FRAME_RATE_HZ)))
    peaks = {"toms": pick_peaks(group_act[:, TOMS], options.toms_threshold, half_width)}

    novelty = onset_novelty(pfnmf(power.T, templates))[KICK]
    kick = pick_peaks(np.where(loud, novelty, 0.0), options.kick_nmf_threshold, half_width)
    confirmed = (
        np.array(
            [group_act[max(0, p - COINCIDENT_FRAMES) : p + COINCIDENT_FRAMES + 1, KICK].max() for p in kick]
        ).reshape(-1)
        >= options.kick_network_gate
    )
    peaks["kick"] = kick[confirmed]

    snare = pick_peaks(group_act[:, SNARE], options.snare_threshold, half_width)
    peaks["snare"] = snare[
        ~_near(snare, peaks["kick"]) | (group_act[snare, SNARE] >= options.snare_with_kick_threshold)
    ]

    metal = np.minimum(group_act[:, HIHAT] + group_act[:, CYMBALS], 1.0)
    metal_peaks = pick_peaks(metal, options.hihat_threshold, half_width)
    metal_peaks = metal_peaks[
        ~_near(metal_peaks, peaks["snare"]) | (metal[metal_peaks] >= options.hihat_with_snare_threshold)
    ]
    hihat_score = np.array([group_act[p : p + NOTE_CHOICE_FRAMES, HIHAT].max() for p in metal_peaks]).reshape(-1)
    cymbal_score = np.array([group_act[p : p + NOTE_CHOICE_FRAMES, CYMBALS].max() for p in metal_peaks]).reshape(-1)
    cymbal_first = cymbal_score > options.cymbal_over_hihat_ratio * hihat_score
    peaks["hihat"] = metal_peaks[~cymbal_first | (hihat_score >= options.hihat_with_cymbal_threshold)]
    peaks["cymbals"] = metal_peaks[cymbal_first | (cymbal_score >= options.cymbals_threshold)]

    levels = band_levels_db(power)
    hits = []
    for group, frames in peaks.items():
        g = GROUPS.index(group)
        members = np.flatnonzero(groups[:, g])
        for p in frames:
            strongest = int(np.argmax(act[p : p + NOTE_CHOICE_FRAMES][:, members].sum(axis=0)))
            hits.append(
                (int(p), OUTPUT_NOTES[members[strongest]], float(levels[p : min(n, p + LEVEL_FRAMES), g].max()))
            )
    return hits
