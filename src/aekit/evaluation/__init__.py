"""Evaluation of models: test metrics, the likelihood bound, PCA, denoising, disentanglement, free energies."""
