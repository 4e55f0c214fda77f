#!/usr/bin/env bash
# The autoencoder family on MNIST at one training budget, compared by `aekit compare` against PCA at
# the same code size, and the embedding maps of seed 002 (codes, PCA of the data, t-SNE of the codes).
# Every model keeps its preset's defaults; only the epochs are set, the same for all.
# The VQ-VAE (a 128-channel ResNet) trains at ~130 images/s on one CPU core: VQ_EPOCHS lowers its budget.
# Usage: bash experiments/compare_mnist.sh [EPOCHS] [ROOT] [VQ_EPOCHS] [PRIOR_EPOCHS]   (docs/compare.md)
set -euo pipefail
EPOCHS=${1:-10}
ROOT=${2:-runs/compare-mnist}
VQ_EPOCHS=${3:-$EPOCHS}
PRIOR_EPOCHS=${4:-$VQ_EPOCHS}
AEKIT=${AEKIT:-.venv/bin/aekit}
MODELS="ae dae sparse-ae cae vae beta-vae vq-vae"
for m in $MODELS; do
  epochs=$EPOCHS; [ "$m" = vq-vae ] && epochs=$VQ_EPOCHS
  [ -f "$ROOT/$m/summary.json" ] || $AEKIT train --model "$m" --data mnist --epochs "$epochs" --out "$ROOT/$m" \
    --overwrite --no-progress
done
[ -f "$ROOT/vq-vae/prior.json" ] || $AEKIT train-prior "$ROOT/vq-vae" --epochs "$PRIOR_EPOCHS" --overwrite --no-progress
$AEKIT compare $(for m in $MODELS; do echo "$ROOT/$m"; done) --out "$ROOT/compare"
# Seed 002's maps: a 2-D autoencoder's codes beside PCA of the data and t-SNE of a 20-D VAE's codes.
[ -f "$ROOT/ae-2d/summary.json" ] || $AEKIT train --model ae --latent-dim 2 --data mnist --epochs "$EPOCHS" \
  --out "$ROOT/ae-2d" --overwrite --no-progress
$AEKIT embed "$ROOT/ae-2d" --method latent,pca --max-points 5000 --out "$ROOT/maps-ae2d.png"
$AEKIT embed "$ROOT/vae" --method latent,tsne --max-points 5000 --out "$ROOT/maps-vae.png"
