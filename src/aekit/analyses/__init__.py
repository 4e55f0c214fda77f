"""Analyses of trained runs: pictures of the latent space, the beta sweep, a latent EBM's free energies."""
