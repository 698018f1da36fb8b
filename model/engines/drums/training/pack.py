"""Pack the trained networks and the kick's PFNMF templates into one model file:

python pack.py OUT.npz NET.npz [NET.npz ...] --conv CONV.onnx --templates-from DATA_DIR
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

from midibridge.model.engines.drums.constants import GROUP_OF_NOTE, GROUPS, OUTPUT_NOTES


def templates(data_dir: Path) -> np.ndarray:
    """(B, G): per class group, the mean mel power spectrum (each summing to 1) of its isolated hits' onset frames."""
    z = np.load(data_dir / "data.npz")
    power = 10.0 ** z["logmel"].astype(np.float64)
    y = z["targets"] == 1
    grp = np.stack(
        [y[:, [i for i, n in enumerate(OUTPUT_NOTES) if GROUP_OF_NOTE[n] == g]].any(axis=1) for g in GROUPS], 1
    )
    busy = np.convolve(grp.sum(axis=1), np.ones(7), mode="same")
    w = []
    for g in range(len(GROUPS)):
        idx = np.flatnonzero(grp[:, g] & (busy == 1))
        spec = (power[idx] + power[np.minimum(idx + 1, len(power) - 1)]) / 2
        spec /= spec.sum(axis=1, keepdims=True)
        w.append(spec.mean(axis=0))
    return np.stack(w, 1)


out, nets = sys.argv[1], [a for a in sys.argv[2:] if a.endswith(".npz")]
arrays = {}
for k, path in enumerate(nets):
    with np.load(path, allow_pickle=False) as z:
        arrays.update({f"net{k}.{name}": z[name] for name in z.files})
conv = Path(sys.argv[sys.argv.index("--conv") + 1]).read_bytes()
arrays["conv.onnx"] = np.frombuffer(conv, np.uint8)  # the ONNX graph's bytes: one file, one checksum
arrays["nmf.templates"] = templates(Path(sys.argv[sys.argv.index("--templates-from") + 1])).astype(np.float32)
np.savez(out, **arrays)
print(out, hashlib.sha256(Path(out).read_bytes()).hexdigest(), f"{Path(out).stat().st_size / 1e6:.2f} MB")
