#!/usr/bin/env bash
# Hinton & Salakhutdinov (Science 2006), MNIST: a 784-1000-500-250-30 autoencoder against
# 30-component PCA, scored by the squared error per test image (the paper: 3.00 vs 13.87).
# The paper pre-trained with RBMs; here the same network is trained directly with Adam.
# Usage: bash experiments/hinton2006.sh [EPOCHS] [OUT]
set -euo pipefail
EPOCHS=${1:-50}
OUT=${2:-runs/hinton2006}
AEKIT=${AEKIT:-.venv/bin/aekit}
$AEKIT train --model ae --data mnist --hidden 1000,500,250 --latent-dim 30 --activation relu \
  --epochs "$EPOCHS" --out "$OUT" --overwrite
$AEKIT eval "$OUT" --json --pca-baseline | tee "$OUT/eval_pca.json"
