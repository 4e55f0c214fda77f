#!/usr/bin/env bash
# dSprites (generated from its definition): beta = 1 vs beta = 4, scored with the beta-VAE metric of
# Higgins et al. 2017 (they report 61.6% for a VAE and 99.2% for a beta-VAE with beta = 4) and MIG.
# Usage: bash experiments/dsprites_beta.sh [EPOCHS] [DATA] [OUT]
set -euo pipefail
EPOCHS=${1:-30}
DATA=${2:-dsprites-small}
OUT=${3:-runs/dsprites}
AEKIT=${AEKIT:-.venv/bin/aekit}
for BETA in 1 4; do
  $AEKIT train --model vae --beta "$BETA" --data "$DATA" --hidden 512,512 --latent-dim 10 \
    --epochs "$EPOCHS" --out "$OUT/beta-$BETA" --overwrite
  $AEKIT disentanglement "$OUT/beta-$BETA" --json | tee "$OUT/beta-$BETA/disentanglement.json"
done
