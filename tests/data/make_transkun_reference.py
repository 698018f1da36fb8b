"""Regenerate transkun_reference.json: Transkun 2.0's own PyTorch transcription of short piano clips, the reference
the numpy + onnxruntime engine (model/engines/transkun) is held to by tests/test_transkun.py.

PyTorch is no dependency of midibridge: this runs once, by a developer, in a venv outside the project.

    python3 -m venv ../tk-venv
    ../tk-venv/bin/pip install torch==2.13.0                  # the CPU build
    ../tk-venv/bin/pip install --no-deps transkun==2.0.1      # its own requirements pull in much more
    ../tk-venv/bin/pip install numpy scipy soundfile moduleconf pretty-midi mir-eval ncls
    ../tk-venv/bin/python tests/data/make_transkun_reference.py examples/ode_to_joy_piano.flac ...

Each clip must be 16-bit mono 44.1 kHz, Transkun's own rate, so that the engine gets the same samples (read as
n / 32768, as transkun's own reader does; midibridge reads n / 32767, a scale that Transkun's gain normalisation
of each window takes away). The script runs transkun's `TransKun.transcribe` as its command line does (16 s
windows, 8 s hop, one thread) and records, per clip, every window's decoded intervals (key, first frame, last
frame) and the final notes (pitch, start, end, velocity; the sustain and soft pedal, pitches -64 and -67, are left
out: midibridge's clips hold notes only).
"""

import argparse
import hashlib
import json
import sys
import types
from pathlib import Path

import numpy as np
import soundfile
import torch

OUTPUT = Path(__file__).resolve().parent / "transkun_reference.json"
CHECKPOINT_SHA256 = "50a80010effc2a59ffcd068a95cd2b29bd7f23a27a3515bc3ccd209c89a3d44c"


def stub_torchaudio() -> None:
    """transkun imports torchaudio for one call, the mel filter bank made when the model is built; the checkpoint's
    own `freq2mels` buffer then replaces it. PyPI's torchaudio is a CUDA build that will not load beside the CPU
    torch, so a stand-in of the right shape is enough."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        functional = types.SimpleNamespace(melscale_fbanks=lambda *, n_freqs, n_mels, **_: torch.zeros(n_freqs, n_mels))
        sys.modules["torchaudio"] = types.SimpleNamespace(functional=functional)


def load_model():
    stub_torchaudio()
    import transkun
    from transkun.ModelTransformer import TransKun

    pretrained = Path(transkun.__file__).parent / "pretrained"
    weights = pretrained / "2.0.pt"
    if hashlib.sha256(weights.read_bytes()).hexdigest() != CHECKPOINT_SHA256:
        sys.exit(f"{weights} is not transkun 2.0.1's checkpoint")
    conf = TransKun.Config()
    conf.__dict__.update(json.loads((pretrained / "2.0.conf").read_text())["Model"]["config"])
    model = TransKun(conf=conf)
    model.load_state_dict(torch.load(weights, map_location="cpu")["state_dict"], strict=False)
    return model.eval()


def transcribe(model, audio: np.ndarray) -> dict:
    """Transkun's notes for `audio` and, window by window, the intervals its semi-CRF decoded."""
    from transkun import CRF

    windows = []
    decode = CRF.NeuralSemiCRFInterval.decode

    def recording_decode(crf, forcedStartPos=None, forward=False):
        path = decode(crf, forcedStartPos=forcedStartPos, forward=forward)
        windows.append([[key, begin, end] for key, intervals in enumerate(path[2:]) for begin, end in intervals])
        return path

    CRF.NeuralSemiCRFInterval.decode = recording_decode
    try:
        with torch.no_grad():
            notes = model.transcribe(torch.from_numpy(audio[:, np.newaxis]))
    finally:
        CRF.NeuralSemiCRFInterval.decode = decode
    return {"windows": windows, "notes": [[n.pitch, n.start, n.end, n.velocity] for n in notes if n.pitch > 0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model()
    cases = {}
    for clip in args.clips:
        if soundfile.info(clip).subtype != "PCM_16":
            sys.exit(f"{clip} is {soundfile.info(clip).subtype}: the reference needs 16-bit samples")
        pcm, rate = soundfile.read(clip, dtype="int16")
        if rate != 44100 or pcm.ndim != 1:
            sys.exit(f"{clip}: {rate} Hz, shape {pcm.shape}: the reference needs mono 44.1 kHz")
        cases[clip.name] = {
            "samples": int(pcm.shape[0]),
            "pcm16_sha256": hashlib.sha256(pcm.tobytes()).hexdigest(),
            **transcribe(model, pcm.astype(np.float32) / 32768),
        }
        print(f"{clip}: {len(cases[clip.name]['notes'])} notes in {len(cases[clip.name]['windows'])} windows")
    made = {"transkun": "2.0.1", "checkpoint_sha256": CHECKPOINT_SHA256, "torch": torch.__version__, "cases": cases}
    args.output.write_text(json.dumps(made, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
