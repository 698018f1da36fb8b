"""Hydrogen drum kits (Debian's hydrogen-drumkits) as a training-data source: read a kit's drumkit.xml, map its
instruments to the engine's GM notes by name, and mix its samples in numpy at given hit times (render.py, recipe v4).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile

from midibridge.model.engines.drums.constants import OUTPUT_NOTES, SAMPLE_RATE_HZ

KITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
# Instrument name (lower case) -> GM output note; first match wins, so the specific names come first. Names that say
# nothing of the drum ("cymbal 1", "Sample: ...") match nothing and are left out rather than guessed.
NAME_TO_NOTE = (
    (r"ride bell|bell ride", 51),
    (r"ride", 51),
    (r"crash|china|splash", 49),
    (r"pedal", 44),
    (r"open", 46),
    (r"hi-?hat|\bhh\b", 42),
    (r"low tom|tom low|floor", 41),
    (r"mid(dle)? tom|tom mid", 45),
    (r"high? tom|tom hi", 48),
    (r"stick|rim", 37),
    (r"snare", 38),
    (r"kick|bass drum", 36),
)
CHOKE_FADE_S = 0.01  # a closed or pedalled hi-hat cuts an open one's ring over this long
CHOKING_NOTES = (42, 44)


@dataclass(frozen=True)
class Layer:
    """One sample of an instrument and the velocity range (0..1) Hydrogen plays it for."""

    samples: np.ndarray  # (S,) float32 at SAMPLE_RATE_HZ, the instrument's and layer's gain applied
    min_velocity: float
    max_velocity: float


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    return [c for c in element if c.tag.split("}")[-1] == tag]


def _text(element: ET.Element, tag: str, default: str) -> str:
    found = _children(element, tag)
    return (found[0].text or default) if found else default


def _note_of(name: str) -> int | None:
    return next((note for pattern, note in NAME_TO_NOTE if re.search(pattern, name.lower())), None)


def _load(path: Path, gain: float) -> np.ndarray:
    """(S,) float32 mono at SAMPLE_RATE_HZ, scaled by gain."""
    with AudioFile(str(path)).resampled_to(float(SAMPLE_RATE_HZ)) as f:
        return (f.read(f.frames).mean(axis=0) * gain).astype(np.float32)


def load_kit(name: str) -> dict[int, list[list[Layer]]]:
    """GM output note -> its instruments (round-robin variants, e.g. 'bass drum 1'..'4'), each a list of layers."""
    kit_dir = KITS_DIR / name
    kit: dict[int, list[list[Layer]]] = {}
    root = ET.parse(kit_dir / "drumkit.xml").getroot()
    for instrument in (e for e in root.iter() if e.tag.split("}")[-1] == "instrument"):
        note = _note_of(_text(instrument, "name", ""))
        if note is None or note not in OUTPUT_NOTES:
            continue
        volume = float(_text(instrument, "volume", "1")) * float(_text(instrument, "gain", "1"))
        layers = _children(instrument, "layer")
        if not layers:  # old format: one sample on the instrument itself
            layers = [instrument]
        kit.setdefault(note, []).append(
            [
                Layer(
                    _load(kit_dir / _text(layer, "filename", ""), volume * float(_text(layer, "gain", "1"))),
                    float(_text(layer, "min", "0")),
                    float(_text(layer, "max", "1")),
                )
                for layer in layers
            ]
        )
    return kit


def mix(
    kit: dict[int, list[list[Layer]]],
    hits: list[tuple[float, int, int]],
    seconds: float,
    class_gain: dict[int, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """(round(seconds * SAMPLE_RATE_HZ),) float32: the kit playing hits (time_s, GM output note, velocity 1..127).

    The instrument is drawn at random among the note's variants, the layer among those whose velocity range holds the
    hit's (the nearest one otherwise); the level follows velocity, times the note's class_gain (mic balance).
    """
    out = np.zeros(int(round(seconds * SAMPLE_RATE_HZ)), np.float32)
    chokes = np.array(sorted(t for t, n, _ in hits if n in CHOKING_NOTES))
    fade = np.linspace(1, 0, int(CHOKE_FADE_S * SAMPLE_RATE_HZ), dtype=np.float32)
    for time_s, note, velocity in hits:
        layers = kit[note][int(rng.integers(len(kit[note])))]
        v = velocity / 127
        fits = [layer for layer in layers if layer.min_velocity <= v <= layer.max_velocity]
        fits = fits or [min(layers, key=lambda x: min(abs(x.min_velocity - v), abs(x.max_velocity - v)))]
        sound = fits[int(rng.integers(len(fits)))].samples * (v**1.5 * class_gain[note])
        start = int(round(time_s * SAMPLE_RATE_HZ))
        end = min(len(out), start + len(sound))
        if note == 46 and len(later := chokes[chokes > time_s + 0.02]):
            end = min(end, int(round(later[0] * SAMPLE_RATE_HZ)) + len(fade))
            sound = sound[: end - start].copy()
            tail = min(len(fade), len(sound))
            sound[len(sound) - tail :] *= fade[len(fade) - tail :]
        if start < end:
            out[start:end] += sound[: end - start]
    return out
