"""Train the drum model's convolutional network on rendered sets (render.py) and export it to ONNX (pack.py adds it).

    python train_conv.py DATA_DIR [DATA_DIR ...] --out CONV.onnx [--seed 21] [--epochs 12]

A developer step in its own venv (PyTorch is never part of midibridge's set-up): `python3 -m venv T &&
T/bin/pip install torch==2.13.0 numpy onnx`. Trained on whole 10 s clips with convolutions that are valid in time,
so a frame's output sees exactly its context (CONTEXT_BEFORE frames before it, CONTEXT_AFTER after), the same
frames the MLPs see; the exported graph maps context rows (n + C - 1, B) to onset probabilities (n, outputs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

# The engine's framing (model/engines/drums/constants.py), repeated so this script runs without midibridge installed.
CONTEXT_BEFORE, CONTEXT_AFTER, N_MEL_BANDS, N_OUTPUTS = 3, 8, 64, 11
LOG_FLOOR_LOG10 = -7.0  # log10(LOG_FLOOR): the silence outside a clip
CHANNELS = (8, 16, 24, 32)
HIDDEN = 128


class ConvNet(nn.Module):
    """Log-mel rows (N, T, B) -> onset logits (N, outputs, T - C + 1): 3x3 convolutions (valid in time, same in
    frequency) with batch norm, three frequency poolings to 8 bands, then a dense layer over 2 frames."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        c1, c2, c3, c4 = CHANNELS

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, (3, 3), padding=(0, 1)), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.convs = nn.Sequential(
            *conv(1, c1), *conv(c1, c2), nn.MaxPool2d((1, 2)),
            *conv(c2, c3), *conv(c3, c3), nn.MaxPool2d((1, 2)),
            *conv(c3, c4), nn.MaxPool2d((1, 2)),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Conv1d(c4 * N_MEL_BANDS // 8, HIDDEN, 2), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv1d(HIDDEN, N_OUTPUTS, 1),
        )  # fmt: skip

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        h = self.convs(((rows - self.mean) / self.std).unsqueeze(1))  # (N, C, T - 10, 8)
        n, c, t, b = h.shape
        return self.head(h.permute(0, 1, 3, 2).reshape(n, c * b, t))


class Onsets(nn.Module):
    """The exported graph: rows (T, B) -> probabilities (T - C + 1, outputs)."""

    def __init__(self, net: ConvNet):
        super().__init__()
        self.net = net

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(rows.unsqueeze(0))[0].transpose(0, 1))


def clips(data_dirs: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per rendered clip: its rows with the silence floor as outside context (F + C - 1, B) and targets (outputs, F)."""
    out = []
    for data_dir in data_dirs:
        z = np.load(Path(data_dir) / "data.npz")
        logmel, targets, clip = z["logmel"].astype(np.float32), (z["targets"] > 0).astype(np.float32), z["clip"]
        bounds = np.flatnonzero(np.diff(clip)) + 1
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(clip)]):
            before = np.full((CONTEXT_BEFORE, N_MEL_BANDS), LOG_FLOOR_LOG10, np.float32)
            after = np.full((CONTEXT_AFTER, N_MEL_BANDS), LOG_FLOOR_LOG10, np.float32)
            out.append((np.concatenate([before, logmel[start:end], after]), targets[start:end].T.copy()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--crop-frames", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pos-weight", type=float, default=2.0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    data = clips(a.data)
    every_row = np.concatenate([rows for rows, _ in data])
    net = ConvNet(every_row.mean(axis=0), every_row.std(axis=0) + 1e-3)
    del every_row
    frames = sum(y.shape[1] for _, y in data)
    steps = frames // (a.crop_frames * a.batch)
    print(f"{len(data)} clips, {frames} frames, {sum(p.numel() for p in net.parameters())} weights", flush=True)
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=a.epochs * steps)
    loss_of = nn.BCEWithLogitsLoss(pos_weight=torch.full((N_OUTPUTS, 1), a.pos_weight))
    span = a.crop_frames + CONTEXT_BEFORE + CONTEXT_AFTER
    for epoch in range(a.epochs):
        net.train()
        total = 0.0
        for _ in range(steps):
            xs, ys = [], []
            for i in rng.integers(len(data), size=a.batch):
                rows, y = data[i]
                o = int(rng.integers(0, y.shape[1] - a.crop_frames + 1))
                xs.append(rows[o : o + span])
                ys.append(y[:, o : o + a.crop_frames])
            loss = loss_of(net(torch.from_numpy(np.stack(xs))), torch.from_numpy(np.stack(ys)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        print(f"epoch {epoch}: loss {total / steps:.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    torch.onnx.export(
        Onsets(net),
        (torch.zeros(40, N_MEL_BANDS),),
        a.out,
        input_names=["rows"],
        output_names=["onsets"],
        dynamic_axes={"rows": {0: "rows"}, "onsets": {0: "frames"}},
        dynamo=False,
        opset_version=17,
    )
    digest = hashlib.sha256(Path(a.out).read_bytes()).hexdigest()
    record = vars(a) | {"sha256": digest, "train_seconds": round(time.time() - t0, 1), "torch": torch.__version__}
    Path(a.out).with_suffix(".json").write_text(json.dumps(record, indent=1))
    print(f"wrote {a.out} sha256 {digest} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
