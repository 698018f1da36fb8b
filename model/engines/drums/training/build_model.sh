#!/bin/sh
# Rebuild model/engines/drums/model.npz from scratch: render 3 data sets, train 4 networks, pack them with the
# PFNMF templates. Needs fluidsynth, the Debian soundfonts of README.md, and midibridge's venv with the dev extra
# (scikit-learn). About 20-30 min on 2 cores.   Usage: sh build_model.sh WORK_DIR [PYTHON]
set -eu
W=${1:?work dir}; PY=${2:-python3}; cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  # one BLAS thread: the weights are then bit-reproducible
$PY render.py "$W/data_v1" --recipe v1 --seed 12 --seconds-per-kit 300
$PY render.py "$W/data_v2" --recipe v2 --seed 12 --seconds-per-kit 500
$PY render.py "$W/data_v3" --recipe v3 --seed 13 --seconds-per-kit 500
$PY train.py "$W/data_v1" --seed 12 --epochs 12 --out "$W/m1.npz"
$PY train.py "$W/data_v2" --seed 12 --epochs 20 --out "$W/m2.npz"
$PY train.py "$W/data_v3" --seed 14 --epochs 20 --out "$W/m4.npz"
$PY train.py "$W/data_v2" --seed 13 --epochs 20 --out "$W/m5.npz"
$PY pack.py ../model.npz "$W/m1.npz" "$W/m2.npz" "$W/m4.npz" "$W/m5.npz" --templates-from "$W/data_v1"
sha256sum ../model.npz  # d7aeddc5a8ee8bb2aaec090e00dcac35be73ef9b13112505f11431988c01c18b (weights.WEIGHTS_SHA256)
