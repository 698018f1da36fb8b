"""Train one frame-level onset network on rendered sets (render.py) and export its weights (pack.py joins them).

    python train.py DATA_DIR [DATA_DIR ...] --out NET.npz [--seed 12] [--epochs 20]

scikit-learn MLPClassifier (multi-label, logistic outputs), CPU, deterministic for a seed.
Frames within +-4 of a hit are all used; other frames are subsampled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPClassifier

from midibridge.model.engines.drums.features import context_stack

HIDDEN = (256, 128)  # default; --hidden overrides


def build_set(data_dir: Path, rng: np.random.Generator, negative_fraction: float):
    z = np.load(data_dir / "data.npz")
    logmel, targets, clip = z["logmel"].astype(np.float32), z["targets"], z["clip"]
    xs, ys = [], []
    for c in np.unique(clip):
        sel = clip == c
        m, y = logmel[sel], (targets[sel] > 0).astype(np.uint8)
        near = np.convolve(y.any(axis=1).astype(float), np.ones(9), mode="same") > 0
        keep = near | (rng.random(len(m)) < negative_fraction)
        xs.append(context_stack(m)[keep])
        ys.append(y[keep])
    return np.concatenate(xs), np.concatenate(ys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", default=",".join(map(str, HIDDEN)))
    ap.add_argument("--negatives", type=float, default=0.3)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    parts = [build_set(Path(d), rng, a.negatives) for d in a.data]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    x = (x - mean) / std
    print(
        f"{len(x)} frames, {x.shape[1]} inputs, positives per output {y.sum(axis=0).tolist()} "
        f"({time.time() - t0:.0f} s)",
        flush=True,
    )
    hidden = tuple(int(h) for h in a.hidden.split(","))
    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        alpha=1e-4,
        batch_size=256,
        learning_rate_init=1e-3,
        max_iter=a.epochs,
        random_state=a.seed,
        verbose=True,
        early_stopping=False,
        tol=1e-5,
        n_iter_no_change=a.epochs,
    )
    clf.fit(x, y)
    weights = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        weights[f"W{i}"], weights[f"b{i}"] = w.astype(np.float32), b.astype(np.float32)
    np.savez(a.out, **weights)
    digest = hashlib.sha256(Path(a.out).read_bytes()).hexdigest()
    Path(a.out).with_suffix(".json").write_text(
        json.dumps(
            {
                "sha256": digest,
                "seed": a.seed,
                "data": a.data,
                "hidden": hidden,
                "epochs": a.epochs,
                "negatives": a.negatives,
                "train_frames": int(len(x)),
                "train_seconds": round(time.time() - t0, 1),
            },
            indent=1,
        )
    )
    print(f"wrote {a.out} sha256 {digest} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
