#!/usr/bin/env bash
# Burda et al. 2016 (IWAE paper), the VAE with one stochastic layer on MNIST: 784-200-200-50 tanh,
# Bernoulli decoder, batch 20, Adam (eps 1e-4), dynamic binarisation of the 60,000 training images,
# one fixed binarisation of the test set, and the test NLL as the importance-weighted bound with
# k = 5000. The paper trains 3,280 passes (--lr-schedule iwae) and reports 86.76 nats.
# Usage: bash experiments/iwae_mnist.sh [PASSES] [OUT]
set -euo pipefail
PASSES=${1:-3280}
OUT=${2:-runs/iwae-mnist}
AEKIT=${AEKIT:-.venv/bin/aekit}
$AEKIT train --model vae --arch iwae-paper --data mnist --mnist-train train+valid --binarize dynamic \
  --lr-schedule iwae --epochs "$PASSES" --out "$OUT" --overwrite
$AEKIT eval "$OUT" --json --iw-samples 5000 | tee "$OUT/eval_iw5000.json"
