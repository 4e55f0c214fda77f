"""What every number aekit reports means: one table, name -> (unit, one-line meaning).

The report (:mod:`aekit.figures.report`), the comparison page and the loss plots read it, so a metric
is explained in one place. Per-sample quantities are averaged over the samples evaluated; "nats" are
natural-log units of a negative log-likelihood summed over a sample's dimensions. This module is a
leaf: it imports nothing from aekit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# name -> (unit, meaning). Units: "" for a pure number; "nats" and "bits/dim" per sample.
GLOSSARY: dict[str, tuple[str, str]] = {
    # --- test metrics of every model (evaluation/metrics.py) ---
    "mse": ("per element", "mean squared error between the data and its reconstruction"),
    "sse": ("per sample", "sum of squared errors over a sample's elements, averaged over samples"),
    "psnr": ("dB", "peak signal-to-noise ratio, 10 log10(range² / mse); higher is better"),
    "recon_nats": ("nats", "-log p(x | z): reconstruction term of one code (AE) or posterior draw (VAE)"),
    "n": ("samples", "number of samples evaluated"),
    # --- a likelihood bound (VAE) ---
    "kl": ("nats", "KL(q(z|x) || p(z)): the code's cost under the prior"),
    "neg_elbo": ("nats", "negative ELBO, recon_nats + kl, unweighted whatever beta was trained with"),
    "bits_per_dim_elbo": ("bits/dim", "the negative ELBO in bits per data dimension"),
    "nll_iw": ("nats", "importance-weighted upper bound on -log p(x) with iw_samples samples"),
    "bits_per_dim_iw": ("bits/dim", "the importance-weighted bound in bits per data dimension"),
    "iw_samples": ("samples", "posterior samples per data point in the importance-weighted bound"),
    "kl_per_dim": ("nats", "KL term of each latent dimension"),
    "active_units": ("dimensions", "latent dimensions whose posterior mean varies over the data (var > 0.01)"),
    # --- a deterministic code ---
    "jacobian_norm": ("", "mean Frobenius norm of the encoder's Jacobian ||dh/dx||_F"),
    "mean_activation": ("", "mean value of the code units over the data"),
    "mean_activation_per_unit": ("", "mean value of each code unit over the data"),
    "fraction_near_zero": ("fraction", "share of code values with magnitude below the sparsity threshold"),
    # --- discrete codes (VQ-VAE) and their prior ---
    "perplexity": ("codes", "exp(entropy) of the code frequencies: codebook entries effectively used"),
    "usage": ("fraction", "share of codebook entries used at least once"),
    "uniform_bits_per_code": ("bits/code", "log2 K: the cost of a code drawn uniformly from the codebook"),
    "prior_nll": ("nats", "-log p_prior(codes) of a code map under the fitted PixelCNN prior"),
    "prior_bits_per_code": ("bits/code", "prior_nll in bits per code-map position"),
    "neg_log_joint": ("nats", "-log p(x | codes) - log p_prior(codes) of a VQ-VAE with a prior"),
    "test_nll": ("nats", "the prior's -log p(code map) on the test codes"),
    "test_bits_per_code": ("bits/code", "the prior's test NLL in bits per code-map position"),
    # --- an energy-based model ---
    "free_energy": ("nats", "mean zero-temperature free energy min_z E(x, z)"),
    "f_inf": ("nats", "zero-temperature free energy min_z E(y, z) of one sample"),
    "f_beta": ("nats", "free energy -(1/beta) log mean_z exp(-beta E(y, z)) of one sample"),
    # --- the comparison table ---
    "probe_accuracy": ("fraction", "accuracy of a linear probe trained on the codes to predict the labels"),
    "knn_accuracy": ("fraction", "accuracy of 5-nearest-neighbour classification on the codes"),
    "fid": ("", "Fréchet distance of samples to data in the features of aekit's small classifier (not Inception)"),
    "kid": ("", "kernel distance of samples to data in the features of aekit's small classifier (not Inception)"),
    "auroc": ("fraction", "area under the ROC curve of the anomaly score"),
    "average_precision": ("fraction", "average precision (area under precision-recall) of the anomaly score"),
    # --- training (summary.json, metrics.jsonl) ---
    "model": ("", "the model preset trained"),
    "data": ("", "the data set trained on"),
    "epochs": ("epochs", "passes over the training split completed"),
    "best_epoch": ("epoch", "epoch with the lowest validation loss; its weights are kept"),
    "best_valid_loss": ("nats", "lowest validation objective per sample"),
    "stopped_early": ("", "whether training stopped because the validation loss stopped improving"),
    "time_limit_reached": ("", "whether training stopped at its --time-limit"),
    "steps": ("steps", "optimiser steps taken"),
    "train_seconds": ("s", "wall-clock time of the training epochs, all of them (validation and evaluation excluded)"),
    "samples_per_s": ("samples/s", "training throughput: samples trained / train_seconds, over all epochs"),
    "device": ("", "the device trained on"),
    "parameters": ("parameters", "numbers in the model's parameters (its weights and biases)"),
    "lr": ("", "learning rate of the epoch"),
    "epoch_seconds": ("s", "wall-clock time of one training epoch"),
    # --- loss terms (train/<term>, valid/<term>) ---
    "loss": ("nats", "the training objective per sample: the weighted sum of the loss terms"),
    "recon": ("nats", "reconstruction term -log p(x | z) per sample"),
    "codebook": ("per sample", "VQ codebook loss ||sg[z_e] - e||² summed over positions"),
    "commitment": ("per sample", "VQ commitment loss ||z_e - sg[e]||² summed over positions"),
    "sparsity": ("per sample", "sparsity penalty on the code (before its weight)"),
    "contractive": ("per sample", "squared Frobenius norm of the encoder's Jacobian (before its weight)"),
    "latent_match": ("per sample", "distance between the encoder's guess z~ and the inferred code z^"),
    "reg": ("per sample", "the regulariser R(z^) of the inferred code"),
    # --- other commands ---
    "mse_corrupted": ("per element", "mean squared error of the corrupted data against the clean data"),
    "mse_restored": ("per element", "mean squared error of the restored data against the clean data"),
    "improvement": ("×", "mse_corrupted / mse_restored"),
    "betavae_score": ("fraction", "beta-VAE disentanglement score (Higgins et al. 2017)"),
    "factorvae_score": ("fraction", "FactorVAE disentanglement score (Kim & Mnih 2018): majority-vote accuracy"),
    "mig": ("", "mutual information gap (Chen et al. 2018), normalised by the factor's entropy"),
    "dci_disentanglement": ("", "DCI disentanglement (Eastwood & Williams 2018): one factor per code dimension"),
    "dci_completeness": ("", "DCI completeness (Eastwood & Williams 2018): one code dimension per factor"),
    "dci_informativeness": ("fraction", "DCI informativeness: test accuracy of predicting each factor from the code"),
    "ae_mse": ("per element", "test mean squared error of the linear autoencoder"),
    "pca_mse": ("per element", "test mean squared error of PCA with as many components as the code"),
    "pca_sse": ("per sample", "sum of squared errors of PCA over a sample's elements"),
    "max_angle_deg": ("degrees", "largest principal angle between the autoencoder's and PCA's subspaces"),
}

# Names earlier releases wrote, and the name they mean today. summary.json's bits_per_dim was the ELBO form
# (training evaluates without importance sampling); with nll_iw beside it, it was the IW form.
LEGACY = {"bits_per_dim": "bits_per_dim_elbo"}


def describe(name: str) -> tuple[str, str] | None:
    """``(unit, meaning)`` of a reported metric, or None for a name aekit does not define.

    A ``train/`` or ``valid/`` prefix (metrics.jsonl) is ignored; a legacy name is read as today's."""
    _, _, bare = name.rpartition("/")
    return GLOSSARY.get(LEGACY.get(bare, bare))


def current_names(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics`` with legacy names renamed (``bits_per_dim`` -> ``bits_per_dim_elbo``, or ``_iw`` when
    ``nll_iw`` is present); a value under today's name wins over a legacy one."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        new = LEGACY.get(key, key)
        if key == "bits_per_dim" and "nll_iw" in metrics:
            new = "bits_per_dim_iw"
        if new != key and new in metrics:
            continue
        out[new] = value
    return out


__all__ = ["GLOSSARY", "LEGACY", "current_names", "describe"]
