"""Preprocessing steps as data: one table gives each step's parameters (spec and default) and the pedalboard
plugins it becomes.

Standard library only at import time: presets are read and checked without
numpy or pedalboard; `plugins()` is handed the pedalboard module by the code
that runs the chain (model.preprocess).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .options import Spec

SLOPES_DB = (6, 12, 18, 24, 36, 48)  # first-order sections of 6 dB/octave each
REQUIRED = object()  # a parameter with no default


@dataclass(frozen=True)
class Param:
    spec: Spec
    default: object = REQUIRED


@dataclass(frozen=True)
class StepKind:
    """A kind of step: its parameters, and `plugins(pedalboard, params, normalize_gain_db)` → plugin list."""

    params: dict[str, Param]
    plugins: Callable[..., list] = field(repr=False)

    @property
    def defaults(self) -> dict:
        return {name: param.default for name, param in self.params.items() if param.default is not REQUIRED}

    @property
    def specs(self) -> dict[str, Spec]:
        """The step's table as a [[chain]] entry is checked against: a parameter without a default is required."""
        return {name: replace(param.spec, required=param.default is REQUIRED) for name, param in self.params.items()}


def _filters(stage: str):
    def plugins(pb, p, _):
        return [getattr(pb, stage)(cutoff_frequency_hz=p["cutoff_hz"]) for _ in range(p["slope_db_per_octave"] // 6)]

    return plugins


def _dynamics(stage: str):
    def plugins(pb, p, _):
        return [
            getattr(pb, stage)(
                threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"], release_ms=p["release_ms"]
            )
        ]

    return plugins


def _vst3(pb, p, _):
    from .errors import OptionError
    from .vocabulary import Code

    try:
        return [pb.load_plugin(p["path"], parameter_values=p["parameters"])]
    except Exception as error:  # pedalboard raises ImportError, ValueError or RuntimeError by cause
        raise OptionError(
            Code.PLUGIN_UNAVAILABLE,
            f"VST3 plugin {p['path']} cannot be loaded: {error}. Check that it is a VST3 "
            f"plugin for this system and that its parameter names are right.",
        ) from error


_CUTOFF = Param(Spec(float, 1.0, 20_000.0))
_SLOPE = Param(Spec(int, choices=SLOPES_DB), 12)
_Q, _DEPTH = Param(Spec(float, 0.1, 100.0), 30.0), Param(Spec(float, 0.0, 60.0), 30.0)
_ATTACK_MS, _RELEASE_MS = Param(Spec(float, 0.0, 1000.0), 1.0), Param(Spec(float, 0.0, 5000.0), 100.0)

STEPS: dict[str, StepKind] = {
    "highpass": StepKind({"cutoff_hz": _CUTOFF, "slope_db_per_octave": _SLOPE}, _filters("HighpassFilter")),
    "lowpass": StepKind({"cutoff_hz": _CUTOFF, "slope_db_per_octave": _SLOPE}, _filters("LowpassFilter")),
    "notch": StepKind(
        {"frequency_hz": Param(Spec(float, 1.0, 20_000.0)), "q": _Q, "depth_db": _DEPTH},
        lambda pb, p, _: [pb.PeakFilter(cutoff_frequency_hz=p["frequency_hz"], gain_db=-p["depth_db"], q=p["q"])],
    ),
    "hum": StepKind(
        {
            "mains_hz": Param(Spec(float, 40.0, 70.0)),
            "harmonics": Param(Spec(int, 1, 16), 4),
            "q": _Q,
            "depth_db": _DEPTH,
        },
        lambda pb, p, _: [
            pb.PeakFilter(cutoff_frequency_hz=p["mains_hz"] * k, gain_db=-p["depth_db"], q=p["q"])
            for k in range(1, p["harmonics"] + 1)
        ],
    ),
    "noise_gate": StepKind(
        {
            "threshold_db": Param(Spec(float, -100.0, 0.0)),
            "ratio": Param(Spec(float, 1.0, 100.0), 10.0),
            "attack_ms": _ATTACK_MS,
            "release_ms": _RELEASE_MS,
        },
        _dynamics("NoiseGate"),
    ),
    "compressor": StepKind(
        {
            "threshold_db": Param(Spec(float, -60.0, 0.0)),
            "ratio": Param(Spec(float, 1.0, 100.0)),
            "attack_ms": Param(Spec(float, 0.0, 1000.0), 5.0),
            "release_ms": _RELEASE_MS,
        },
        _dynamics("Compressor"),
    ),
    "gain": StepKind({"gain_db": Param(Spec(float, -60.0, 60.0))}, lambda pb, p, _: [pb.Gain(gain_db=p["gain_db"])]),
    "limiter": StepKind(
        {"threshold_db": Param(Spec(float, -60.0, 0.0)), "release_ms": Param(Spec(float, 1.0, 5000.0), 100.0)},
        lambda pb, p, _: [pb.Limiter(threshold_db=p["threshold_db"], release_ms=p["release_ms"])],
    ),
    # Measured over the region first (model.preprocess), then applied as the gain that reaches the level.
    "normalize": StepKind(
        {
            "target": Param(Spec(str, choices=("peak", "rms")), "peak"),
            "level_dbfs": Param(Spec(float, -60.0, 0.0), -1.0),
        },
        lambda pb, p, gain_db: [pb.Gain(gain_db=gain_db)],
    ),
    "vst3": StepKind({"path": Param(Spec(str)), "parameters": Param(Spec(dict), {})}, _vst3),
}
