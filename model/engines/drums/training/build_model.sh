#!/bin/sh
# Rebuild model/engines/drums/model.npz from scratch: render 5 data sets, train 4 MLPs and the convolutional network,
# pack them with the PFNMF templates. Needs fluidsynth, the Debian soundfonts and hydrogen-drumkits of README.md,
# midibridge's venv with the dev extra (scikit-learn) and a second venv with PyTorch (train_conv.py says how).
# About 20-30 min for the MLPs and 45 min for the convolutional network on 2 cores.
# Usage: sh build_model.sh WORK_DIR PYTHON TORCH_PYTHON
set -eu
W=${1:?work dir}; PY=${2:?midibridge venv python}; TORCH_PY=${3:?python with torch}; cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  # one BLAS thread: the MLPs' weights are then bit-reproducible
$PY render.py "$W/data_v1" --recipe v1 --seed 12 --seconds-per-kit 300
$PY render.py "$W/data_v2" --recipe v2 --seed 12 --seconds-per-kit 500
$PY render.py "$W/data_v3" --recipe v3 --seed 13 --seconds-per-kit 500
$PY render.py "$W/data_v4" --recipe v4 --seed 17 --seconds-per-kit 600
$PY render.py "$W/data_v5" --recipe v5 --seed 15 --seconds-per-kit 900
$PY train.py "$W/data_v1" --seed 12 --epochs 12 --out "$W/m1.npz"
$PY train.py "$W/data_v2" --seed 12 --epochs 20 --out "$W/m2.npz"
$PY train.py "$W/data_v3" --seed 14 --epochs 20 --out "$W/m4.npz"
$PY train.py "$W/data_v2" --seed 13 --epochs 20 --out "$W/m5.npz"
# PyTorch on 2 threads (its default here), as the shipped network was trained
OMP_NUM_THREADS=2 $TORCH_PY train_conv.py "$W/data_v2" "$W/data_v3" "$W/data_v4" "$W/data_v5" --seed 21 --epochs 12 \
    --out "$W/conv.onnx"
$PY pack.py ../model.npz "$W/m1.npz" "$W/m2.npz" "$W/m4.npz" "$W/m5.npz" --conv "$W/conv.onnx" \
    --templates-from "$W/data_v1"
sha256sum ../model.npz  # compare with weights.WEIGHTS_SHA256
