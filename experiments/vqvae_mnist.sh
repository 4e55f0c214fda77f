#!/usr/bin/env bash
# VQ-VAE on MNIST against the VAE at the same budget (epochs), then its PixelCNN prior, and samples
# from the learned prior next to samples of independent uniform codes (seed 003's last figure).
# Usage: bash experiments/vqvae_mnist.sh [EPOCHS] [PRIOR_EPOCHS] [OUT]
set -euo pipefail
EPOCHS=${1:-10}
PRIOR_EPOCHS=${2:-10}
OUT=${3:-runs/vq-mnist}
AEKIT=${AEKIT:-.venv/bin/aekit}
$AEKIT train --model vq-vae --data mnist --num-codes 64 --code-dim 32 --channels 64 --epochs "$EPOCHS" \
  --out "$OUT/vq-vae" --overwrite
$AEKIT train --model vae --data mnist --epochs "$EPOCHS" --out "$OUT/vae" --overwrite
$AEKIT train-prior "$OUT/vq-vae" --epochs "$PRIOR_EPOCHS" --overwrite
$AEKIT eval "$OUT/vq-vae" --json | tee "$OUT/vq-vae/eval.json"
$AEKIT eval "$OUT/vae" --json --iw-samples 0 | tee "$OUT/vae/eval.json"
$AEKIT sample "$OUT/vq-vae" -n 64 --out "$OUT/prior_samples.png"
$AEKIT sample "$OUT/vq-vae" -n 64 --prior uniform --out "$OUT/uniform_samples.png"
