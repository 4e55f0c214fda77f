"""The parts every model is built from (DESIGN.md: a model is an energy composed of parts).

==================  ======================================================================
part                what it is
==================  ======================================================================
networks            :mod:`~aekit.parts.nets` (MLP, strided conv), :mod:`~aekit.parts.vqnets`
                    (the VQ-VAE's residual conv stacks)
latent kinds        :class:`Latent`: :class:`DeterministicLatent` (``deterministic``),
                    :class:`GaussianLatent` (``gaussian``), :class:`VectorQuantizer` (``vq``),
                    :class:`OptimizedLatent` (``optimized``); each owns its regulariser,
                    prior and posterior
likelihoods         :class:`Likelihood`: :class:`Bernoulli`, :class:`Gaussian`
penalties           :class:`Penalty`: :class:`Sparsity`, :class:`Contractive`
corruption          :class:`Corruption` (denoising)
priors over codes   :class:`GatedPixelCNN`
==================  ======================================================================

Latent kinds, likelihoods and penalties are registered by name in :mod:`aekit.registry`; a new one
is one subclass with ``@aekit.register_latent(name)`` (or ``register_likelihood``,
``register_penalty``). See docs/extending.md.
"""

from aekit.parts.corruption import Corruption, corrupt
from aekit.parts.latents import Code, DeterministicLatent, GaussianLatent, Latent, TensorSpec
from aekit.parts.likelihoods import Bernoulli, Gaussian, Likelihood
from aekit.parts.optimized import OptimizedLatent
from aekit.parts.penalties import Contractive, Penalty, Sparsity
from aekit.parts.pixelcnn import GatedPixelCNN
from aekit.parts.quantizer import VectorQuantizer

__all__ = [
    "Bernoulli",
    "Code",
    "Contractive",
    "Corruption",
    "DeterministicLatent",
    "GatedPixelCNN",
    "Gaussian",
    "GaussianLatent",
    "Latent",
    "Likelihood",
    "OptimizedLatent",
    "Penalty",
    "Sparsity",
    "TensorSpec",
    "VectorQuantizer",
    "corrupt",
]
