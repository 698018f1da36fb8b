"""Render the synthetic training set: random drum patterns -> fluidsynth (several kits) ->
pedalboard augmentation -> log-mel features + per-frame onset targets.

    python render.py OUT_DIR [--recipe v3] [--seed 12] [--seconds-per-kit 240]

Deterministic for a given seed (numpy Generator; fluidsynth renders are deterministic).
Writes OUT_DIR/data.npz with logmel (N, B) float16, targets (N, N_OUTPUTS) uint8,
clip (N,) int16 and OUT_DIR/recipe.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import pedalboard as pb
from pedalboard.io import AudioFile, StreamResampler

from midibridge.model.engines.drums.constants import (
    FRAME_RATE_HZ,
    GROUP_OF_NOTE,
    GROUPS,
    OUTPUT_NOTES,
    SAMPLE_RATE_HZ,
)
from midibridge.model.engines.drums.features import log_mel
from midibridge.model.engines.drums.training import hydrogen

# Other GM drum sounds the patterns play, trained as the nearest output note (low floor tom 43 -> 41, crash 2 -> 49).
NOTE_FOLD = {35: 36, 40: 38, 43: 41, 47: 45, 50: 48, 57: 49, 52: 49, 55: 49, 59: 51, 53: 51}
RESAMPLE_CHUNK_SAMPLES = 1 << 18

RENDER_RATE_HZ = 44100
SF2 = "/usr/share/sounds/sf2"
# (soundfont, channel, bank-128 kit program or None for a bank-0 drum-kit font)
KITS = [
    (f"{SF2}/FluidR3_GM.sf2", 9, 0),
    (f"{SF2}/FluidR3_GM.sf2", 9, 8),
    (f"{SF2}/FluidR3_GM.sf2", 9, 16),
    (f"{SF2}/FluidR3_GM.sf2", 9, 32),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 9, 0),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 9, 8),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 9, 16),
    ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", 9, 32),
    (f"{SF2}/TimGM6mb.sf2", 9, 0),
    (f"{SF2}/TimGM6mb.sf2", 9, 8),
    (f"{SF2}/TimGM6mb.sf2", 9, 16),
    (f"{SF2}/sf_GMbank.sf2", 9, 0),
    (f"{SF2}/sf_GMbank.sf2", 9, 16),
    (f"{SF2}/Black_Pearl_4_LV2.sf2", 0, None),
    (f"{SF2}/Red_Zeppelin_4_LV2.sf2", 0, None),
    (f"{SF2}/Black_Pearl_4_LV2.sf2", 0, None),
]
ACCOMP_FONTS = [f"{SF2}/FluidR3_GM.sf2", "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"]
WINDOW_S = 10.0
# Recipe versions used by the shipped ensemble (README.md); each restores that version's exact random stream.
RECIPES = {
    "v1": dict(
        hats=(42, 42, 42, 46, 51, 51, 53, 44),
        bleed=False,
        ghost_vel=(10, 50),
        accomp_copies=1,
        progs=((33, 34, 32), (0, 4, 29, 30, 27, 16), (48, 0, 25, 61, 81), (30, 5, 19)),
        accomp_p=0.35,
        accomp_db=(-14, 2),
        lowpass=False,
        crash_alone=False,
        hydrogen_kits=(),
    ),
    "v2": dict(
        hats=(42, 42, 42, 42, 42, 46, 44, 51, 51, 53),
        bleed=True,
        ghost_vel=(20, 55),
        accomp_copies=2,
        progs=((33, 34, 32), (0, 4, 29, 30, 27, 16, 24), (48, 0, 25, 61, 81, 52, 56), (30, 5, 19, 29, 65)),
        accomp_p=0.5,
        accomp_db=(-14, 6),
        lowpass=False,
        crash_alone=False,
        hydrogen_kits=(),
    ),
}
RECIPES["v3"] = dict(RECIPES["v2"], lowpass=True)
# v4: real sampled Hydrogen kits instead of soundfonts (those whose licence is CC0 or CC-BY, README.md), and a
# downbeat crash replaces that step's hi-hat or ride; v5: the acoustic one alone.
RECIPES["v4"] = dict(RECIPES["v3"], crash_alone=True, hydrogen_kits=("rumpf_kit_z01_h2", "Audiophob"))
RECIPES["v5"] = dict(RECIPES["v4"], hydrogen_kits=("rumpf_kit_z01_h2",))
R = RECIPES["v3"]
LOWPASS_P = 0.1  # share of windows band-limited like low-rate audio
# Each Hydrogen kit plays several takes, a take with its own mic balance (per class group, within +-CLASS_GAIN_DB).
HYDROGEN_TAKES = 4
CLASS_GAIN_DB = 6.0
TAIL_S = 2.0


def resample(samples: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """(S,) at sample_rate_hz -> (S',) float32 at SAMPLE_RATE_HZ, streamed in chunks as the shipped model's data was."""
    resampler = StreamResampler(float(sample_rate_hz), float(SAMPLE_RATE_HZ), 1)
    pieces = [
        resampler.process(np.ascontiguousarray(samples[None, i : i + RESAMPLE_CHUNK_SAMPLES], np.float32))[0]
        for i in range(0, len(samples), RESAMPLE_CHUNK_SAMPLES)
    ]
    return np.concatenate(pieces + [resampler.process()[0]])


def groove(rng: np.random.Generator, seconds: float) -> list[tuple[float, int, int]]:
    """Random drum patterns: list of (time_s, gm_note, velocity)."""
    events, t = [], 0.5
    while t < seconds - 4:
        bpm = rng.uniform(60, 190)
        step = 60 / bpm / 4
        bars = int(rng.integers(2, 5))
        if rng.random() < 0.2:  # loose hits: random instruments at random times, some isolated
            n = int(rng.integers(8, 30))
            times = np.sort(rng.uniform(t, t + bars * 16 * step, n))
            notes = rng.choice([36, 38, 37, 42, 44, 46, 41, 43, 45, 47, 48, 50, 49, 57, 51, 53, 55, 52], n)
            for tt, nn in zip(times, notes):
                events.append((tt, int(nn), int(rng.integers(15, 128))))
                if rng.random() < 0.3:  # simultaneous second instrument
                    events.append((tt, int(rng.choice([36, 38, 42, 49, 51, 46])), int(rng.integers(15, 128))))
            t = times[-1] + rng.uniform(0.2, 1.5)
            continue
        hh = int(rng.choice(list(R["hats"])))
        hh_div = int(rng.choice([1, 2, 2, 4]))
        snare = 37 if rng.random() < 0.1 else int(rng.choice([38, 38, 40]))
        kick_p = rng.uniform(0.05, 0.35)
        bleed_p = rng.choice([0.0, 0.5]) if R["bleed"] else 0.0
        ghost_p = rng.uniform(0, 0.2)
        open_p = rng.uniform(0, 0.15)
        base = {k: rng.uniform(50, 120) for k in ("hh", "k", "s")}
        for bar in range(bars):
            fill = rng.random() < 0.3
            for s in range(16):
                tt = t + (bar * 16 + s) * step
                step_start = len(events)
                j = lambda: float(rng.normal(0, 0.006))  # noqa: E731
                v = lambda b: int(np.clip(rng.normal(b, 12), 10, 127))  # noqa: E731
                if fill and s >= 8:
                    if rng.random() < 0.7:
                        events.append((tt + j(), int(rng.choice([50, 48, 47, 45, 43, 41, 38])), v(100)))
                    continue
                if s % hh_div == 0 and rng.random() < 0.95:
                    n = 46 if (hh == 42 and rng.random() < open_p) else hh
                    events.append((tt + j(), n, v(base["hh"] + (15 if s % 4 == 0 else 0))))
                if (s == 0 and rng.random() < 0.9) or (s == 8 and rng.random() < 0.6) or rng.random() < kick_p:
                    tk = tt + j()
                    events.append((tk, 36 if rng.random() < 0.9 else 35, v(base["k"])))
                    if R["bleed"] and rng.random() < bleed_p:  # snare wires buzzing with the kick: sound, but no hit
                        events.append((tk + 0.002, -snare, int(rng.integers(3, 12))))
                if s in (4, 12) and rng.random() < 0.95:
                    events.append((tt + j(), snare, v(base["s"])))
                elif rng.random() < ghost_p:
                    events.append((tt + j(), snare, int(rng.integers(*R["ghost_vel"]))))
                if s == 0 and (bar == 0 or rng.random() < 0.15) and rng.random() < 0.5:
                    events.append((tt + j(), int(rng.choice([49, 57, 55, 52, 49])), v(105)))
                    if R["crash_alone"]:  # so that a lone crash is learnt as no hi-hat
                        events[step_start:] = [e for e in events[step_start:] if e[1] not in (42, 44, 46, 51, 53)]
        t += bars * 16 * step + rng.uniform(0, 0.8)
    return [(max(0.0, a), b, c) for a, b, c in events]


def accompaniment(rng: np.random.Generator, seconds: float) -> list[tuple[float, int, int, int, float]]:
    """Random pitched parts: (time_s, channel, note, velocity, duration_s); channel = program slot."""
    out, t = [], 0.0
    while t < seconds:
        dur = rng.choice([0.125, 0.25, 0.5, 1.0]) * rng.uniform(0.8, 1.6)
        root = int(rng.integers(40, 60))
        out.append((t, 0, root - 12, int(rng.integers(60, 120)), dur))  # bass
        for iv in rng.choice([0, 3, 4, 7, 10, 12], int(rng.integers(1, 4)), replace=False):
            out.append((t, int(rng.integers(1, 4)), root + 12 + int(iv), int(rng.integers(40, 110)), dur * 2))
        t += dur
    return out


def write_midi(path: Path, events, channel: int, program: int | None, accomp=None, programs=None) -> None:
    mid = mido.MidiFile(ticks_per_beat=1000)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))  # 1 tick = 0.5 ms
    msgs = []
    if accomp is None:
        if program is not None:
            msgs.append((0.0, mido.Message("program_change", channel=channel, program=program)))
        for t, n, v in sorted(events):
            msgs.append((t, mido.Message("note_on", channel=channel, note=abs(n), velocity=v)))
            msgs.append((t + 0.08, mido.Message("note_off", channel=channel, note=abs(n), velocity=0)))
    else:
        for ch, prog in enumerate(programs):
            msgs.append((0.0, mido.Message("program_change", channel=ch, program=prog)))
        for t, ch, n, v, d in accomp:
            msgs.append((t, mido.Message("note_on", channel=ch, note=n, velocity=v)))
            msgs.append((t + d, mido.Message("note_off", channel=ch, note=n, velocity=0)))
    msgs.sort(key=lambda m: (m[0], m[1].type == "note_on"))
    now = 0
    for t, m in msgs:
        tick = int(round(t * 2000))
        tr.append(m.copy(time=tick - now))
        now = tick
    mid.save(path)


def render(sf: str, mid: Path, wav: Path) -> np.ndarray:
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-q",
            "-R",
            "0",
            "-C",
            "0",
            "-g",
            "0.6",
            "-r",
            str(RENDER_RATE_HZ),
            "-F",
            str(wav),
            sf,
            str(mid),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with AudioFile(str(wav)) as f:
        return f.read(f.frames).mean(axis=0).astype(np.float32)


def hydrogen_take(
    rng: np.random.Generator, kit: dict, events: list[tuple[float, int, int]], seconds: float
) -> tuple[np.ndarray, list[tuple[float, int, int]]]:
    """A Hydrogen kit playing a groove: (audio (S,) at SAMPLE_RATE_HZ, the events it could play, notes folded)."""
    folded = [(t, int(np.sign(n)) * NOTE_FOLD.get(abs(n), abs(n)), v) for t, n, v in events]
    played = [e for e in folded if abs(e[1]) in kit]
    gain_db = {g: rng.uniform(-CLASS_GAIN_DB, CLASS_GAIN_DB) for g in GROUPS}
    class_gain = {n: float(10 ** (gain_db[GROUP_OF_NOTE[n]] / 20)) for n in kit}
    audio = hydrogen.mix(kit, [(t, abs(n), v) for t, n, v in played], seconds + TAIL_S, class_gain, rng)
    return audio, played


def augment(rng: np.random.Generator, x: np.ndarray, accomp: np.ndarray | None) -> np.ndarray:
    fx = []
    if rng.random() < 0.5:
        fx.append(pb.HighpassFilter(float(rng.uniform(20, 120))))
    if rng.random() < 0.6:
        fx.append(pb.LowShelfFilter(float(rng.uniform(60, 250)), float(rng.uniform(-8, 8))))
    if rng.random() < 0.6:
        fx.append(pb.HighShelfFilter(float(rng.uniform(3000, 9000)), float(rng.uniform(-10, 6))))
    if rng.random() < 0.6:
        fx.append(pb.PeakFilter(float(rng.uniform(200, 6000)), float(rng.uniform(-8, 8)), float(rng.uniform(0.5, 2))))
    if rng.random() < 0.5:
        fx.append(
            pb.Compressor(
                float(rng.uniform(-35, -10)),
                float(rng.uniform(2, 8)),
                float(rng.uniform(1, 20)),
                float(rng.uniform(50, 300)),
            )
        )
    if rng.random() < 0.1:
        fx.append(pb.Distortion(float(rng.uniform(3, 12))))
    if R["lowpass"] and rng.random() < LOWPASS_P:
        fx.append(pb.LowpassFilter(float(rng.uniform(6000, 9000))))
    if rng.random() < 0.55:
        fx.append(
            pb.Reverb(
                room_size=float(rng.uniform(0.05, 0.7)),
                damping=float(rng.uniform(0.2, 0.8)),
                wet_level=float(rng.uniform(0.03, 0.3)),
                dry_level=1.0,
                width=0.0,
            )
        )
    y = pb.Pedalboard(fx)(x[None, :], SAMPLE_RATE_HZ)[0] if fx else x.copy()
    y /= max(1e-6, float(np.abs(y).max()))
    if accomp is not None:
        a = accomp / max(1e-6, float(np.abs(accomp).max()))
        y = y + a * float(10 ** (rng.uniform(*R["accomp_db"]) / 20))
        y /= max(1e-6, float(np.abs(y).max()))
    if rng.random() < 0.4:
        y = y + rng.normal(0, 10 ** (rng.uniform(-75, -40) / 20), len(y)).astype(np.float32)
    return (y * 10 ** (rng.uniform(-30, -1) / 20)).astype(np.float32)


def targets(events, n_frames: int, offset_s: float) -> np.ndarray:
    """(n_frames, N_OUTPUTS) uint8: 1 on the frame nearest each hit (and 2 on the next one)."""
    y = np.zeros((n_frames, len(OUTPUT_NOTES)), np.uint8)
    for t, n, _ in events:
        if n < 0:
            continue
        f = int(round((t - offset_s) * FRAME_RATE_HZ))
        k = OUTPUT_NOTES.index(NOTE_FOLD.get(n, n))
        if 0 <= f < n_frames:
            y[f, k] = 1
        if 0 <= f + 1 < n_frames and y[f + 1, k] == 0:
            y[f + 1, k] = 2
    return y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--seconds-per-kit", type=float, default=240.0)
    ap.add_argument("--recipe", default="v3", choices=RECIPES)
    a = ap.parse_args()
    global R
    R = RECIPES[a.recipe]
    # fluidsynth renders silence from a missing font, which would train "no hit" on every labelled hit of that kit
    missing = sorted(sf for sf in {sf for sf, _, _ in KITS} if not Path(sf).is_file())
    missing += [str(hydrogen.KITS_DIR / k) for k in R["hydrogen_kits"] if not (hydrogen.KITS_DIR / k).is_dir()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: install the Debian packages of README.md")
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    mels, ys, clips, clip_id = [], [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        acc_audio = []
        for i, sf in enumerate(ACCOMP_FONTS * R["accomp_copies"]):
            progs = [int(rng.choice(list(choices))) for choices in R["progs"]]
            write_midi(tmp / f"acc{i}.mid", None, 0, None, accompaniment(rng, 300), progs)
            acc_audio.append(resample(render(sf, tmp / f"acc{i}.mid", tmp / f"acc{i}.wav"), RENDER_RATE_HZ))
        kits = {name: hydrogen.load_kit(name) for name in R["hydrogen_kits"]}
        sources = [(name, take) for take in range(HYDROGEN_TAKES) for name in kits] if kits else KITS
        for k, source in enumerate(sources):
            ev = groove(rng, a.seconds_per_kit)
            if kits:
                audio, ev = hydrogen_take(rng, kits[str(source[0])], ev, a.seconds_per_kit)
            else:
                sf, ch, prog = source
                if sf.endswith("LV2.sf2"):  # AVL kits: GM note layout, cymbal/hat variants only where present
                    ev = [
                        (t, int(np.sign(n)) * {57: 49, 55: 49, 52: 49, 40: 38, 35: 36, 53: 51}.get(abs(n), abs(n)), v)
                        for t, n, v in ev
                    ]
                write_midi(tmp / "k.mid", ev, ch, prog)
                audio = resample(render(sf, tmp / "k.mid", tmp / "k.wav"), RENDER_RATE_HZ)
            win = int(WINDOW_S * SAMPLE_RATE_HZ)
            for start in range(0, len(audio) - win // 2, win):
                seg = audio[start : start + win]
                acc = None
                if rng.random() < R["accomp_p"]:
                    src = acc_audio[int(rng.integers(len(acc_audio)))]
                    o = int(rng.integers(0, len(src) - len(seg)))
                    acc = src[o : o + len(seg)]
                x = augment(rng, seg, acc)
                m = log_mel(x)
                t0 = start / SAMPLE_RATE_HZ
                ys.append(targets([e for e in ev if t0 - 0.05 <= e[0] < t0 + WINDOW_S], len(m), t0))
                mels.append(m.astype(np.float16))
                clips.append(np.full(len(m), clip_id, np.int16))
                clip_id += 1
            print(f"kit {k} {source}: {len(ev)} hits", flush=True)
    np.savez_compressed(
        out / "data.npz", logmel=np.concatenate(mels), targets=np.concatenate(ys), clip=np.concatenate(clips)
    )
    (out / "recipe.json").write_text(
        json.dumps(
            {
                "recipe": a.recipe,
                "seed": a.seed,
                "seconds_per_kit": a.seconds_per_kit,
                "kits": sources,
                "window_s": WINDOW_S,
                "clips": clip_id,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
