"""Partially fixed NMF (PFNMF) kick activations, in numpy.

Fixed columns are mean mel power spectra of isolated hits per class group (kick, snare, hi-hat, toms,
cymbals) learnt from the rendered training set; NMF_FREE_COMPONENTS free columns absorb everything else
(bass, guitars, room). Shapes: B mel bands, F frames, G fixed templates.
"""

from __future__ import annotations

import numpy as np

from .constants import NMF_FREE_COMPONENTS, NMF_ITERATIONS, NMF_SEED

EPS = 1e-12  # keeps divisions finite in silent frames


def pfnmf(power: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """power: (B, F) mel power; fixed: (B, G) templates (columns sum to 1).

    Returns H (G, F): activations of the fixed templates, from KL-divergence multiplicative updates with
    the fixed columns held and the free columns learnt. Deterministic (seeded initialisation).
    """
    rng = np.random.default_rng(NMF_SEED)
    n_bands, n_frames = power.shape
    g = fixed.shape[1]
    w = np.concatenate([fixed, rng.random((n_bands, NMF_FREE_COMPONENTS)) + 1e-3], axis=1)
    h = rng.random((g + NMF_FREE_COMPONENTS, n_frames)) + 1e-3
    for _ in range(NMF_ITERATIONS):
        ratio = power / (w @ h + EPS)
        h *= (w.T @ ratio) / (w.sum(axis=0)[:, None] + EPS)
        ratio = power / (w @ h + EPS)
        w[:, g:] *= (ratio @ h[g:].T) / (h[g:].sum(axis=1)[None, :] + EPS)
        w[:, g:] /= w[:, g:].sum(axis=0, keepdims=True) + EPS
    return h[:g]


def onset_novelty(h: np.ndarray) -> np.ndarray:
    """h: (G, F) activations (power). Returns (G, F) half-wave rectified frame differences of their square
    roots (amplitude, so a hit 20 dB down scores 0.1, not 0.01), scaled so that the strongest onset of
    any template in the block is 1 (a block without onsets stays 0)."""
    amplitude = np.sqrt(h)
    nov = np.maximum(np.diff(amplitude, axis=1, prepend=amplitude[:, :1]), 0.0)
    return nov / max(float(nov.max(initial=0.0)), EPS)
