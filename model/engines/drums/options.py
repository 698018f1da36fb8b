"""The drum engine's decoding options: detection thresholds and velocity. Standard library only, like every option
group (model.options), so that presets are read and checked without numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...options import OptionGroup, Spec

PROBABILITY = Spec(float, 0.0, 1.0, open_low=True)
DECODE_SPECS = {
    "kick_nmf_threshold": PROBABILITY,
    "kick_network_gate": Spec(float, 0.0, 1.0),
    "snare_threshold": PROBABILITY,
    "snare_with_kick_threshold": PROBABILITY,
    "hihat_threshold": PROBABILITY,
    "hihat_with_snare_threshold": PROBABILITY,
    "cymbals_threshold": PROBABILITY,
    "hihat_with_cymbal_threshold": PROBABILITY,
    "cymbal_over_hihat_ratio": Spec(float, 0.0, 1000.0, open_low=True),
    "toms_threshold": PROBABILITY,
    "min_interval_ms": Spec(float, 12.0, 1000.0),
    "silence_floor_dbfs": Spec(float, -120.0, 0.0),
    "velocity_floor_dbfs": Spec(float, -120.0, 0.0),
    "velocity_range_db": Spec(float, 1.0, 120.0),
}


@dataclass(frozen=True, kw_only=True)
class DrumOptions(OptionGroup):
    """How the drum model's activations become hits. Defaults were tuned on three MDB Drums stems (README, Drums).

    *_threshold: network onset probabilities summed over a class's notes.
    kick_nmf_threshold: a kick's PFNMF onset strength relative to the
    strongest onset of its ~48 s block; kick_network_gate: the network's kick
    probability such a kick needs nearby. snare_with_kick_threshold: what a
    snare at a kick needs; hi-hats and cymbals are found together (at
    hihat_threshold; at a snare, hihat_with_snare_threshold), and a hit is a
    cymbal when its cymbal probability exceeds cymbal_over_hihat_ratio × its
    hi-hat's, both when the other reaches cymbals_threshold /
    hihat_with_cymbal_threshold. min_interval_ms: at most one hit of a class
    this close. Quieter frames than silence_floor_dbfs hold no hits. Velocity:
    the hit's level in its class's band, velocity_floor_dbfs → 1 up
    velocity_range_db → 127.
    """

    kick_nmf_threshold: float = 0.1
    kick_network_gate: float = 0.3
    snare_threshold: float = 0.6
    snare_with_kick_threshold: float = 0.6
    hihat_threshold: float = 0.4
    hihat_with_snare_threshold: float = 0.9
    cymbals_threshold: float = 0.7
    hihat_with_cymbal_threshold: float = 0.7
    cymbal_over_hihat_ratio: float = 8.0
    toms_threshold: float = 0.5
    min_interval_ms: float = 30.0
    silence_floor_dbfs: float = -70.0
    velocity_floor_dbfs: float = -65.0
    velocity_range_db: float = 50.0

    SPECS: ClassVar = DECODE_SPECS
    WHERE: ClassVar = "drums decode options"
