"""The model contract: what every model family implements and every caller may ask.

Training, evaluation, the run directory and the command line use a model only through
:class:`Model`. What a model can do beyond encoding and decoding it *declares* in
:attr:`Model.capabilities`; callers read the declaration instead of probing for methods, and a
method outside the declared capabilities raises the documented error
(:class:`~aekit.errors.NotGenerativeError` for sampling, :class:`~aekit.errors.CapabilityError`
otherwise). The conformance suite (tests/test_contract.py) checks every family against it.

Conventions: batch first; ``x`` is ``(N, *sample_shape)`` float32; codes are ``(N, latent_dim)``;
loss terms are per sample ``(N,)`` in nats (penalties in their own units), summed over a sample's
dimensions; ``y`` holds integer labels ``(N,)`` and is needed only by a conditional model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aekit.errors import CapabilityError, ConfigError, NotGenerativeError
from aekit.parts.latents import TensorSpec


@dataclass(frozen=True)
class Capabilities:
    """What a model can do besides encode, decode and reconstruct.

    generative : :meth:`Model.sample` draws new data from a prior over codes.
    likelihood_bound : :meth:`Model.importance_weights` gives the importance weights of an upper bound
        on -log p(x) (the importance-weighted bound of Burda et al. 2016; the ELBO with one sample).
    posterior : codes are distributions q(z | x): :meth:`Model.posterior` gives their mean and spread.
    discrete_codes : codes are integer maps: :meth:`Model.encode_indices`, :meth:`Model.decode_indices`.
    needs_prior : sampling needs a prior over the codes fitted after training (:meth:`Model.attach_prior`).
    energy_based : :meth:`Model.free_energy` scores data by its free energy.
    conditional : every call needs the labels ``y``.
    """

    generative: bool = False
    likelihood_bound: bool = False
    posterior: bool = False
    discrete_codes: bool = False
    needs_prior: bool = False
    energy_based: bool = False
    conditional: bool = False


@dataclass
class Evaluation:
    """One evaluation pass over a batch: what the test metrics need, from one encoder pass.

    terms : the loss terms ``(N,)``, as :meth:`Model.loss_terms` gives them (in evaluation mode).
    code : the point codes ``(N, K)``, as :meth:`Model.encode` gives them.
    recon : the reconstruction, as :meth:`Model.reconstruct` gives it.
    stats : further per-sample statistics (first dimension N) that :meth:`Model.test_metrics` reads.
    """

    terms: dict[str, torch.Tensor]
    code: torch.Tensor
    recon: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Posterior:
    """The mean and per-dimension standard deviation of q(z | x), each ``(N, K)``."""

    mean: torch.Tensor
    stddev: torch.Tensor


@dataclass(frozen=True)
class GraphSpec:
    """One graph to export: a module without random ops and its inputs and outputs, per sample.

    module : ``forward(*inputs)`` returns the outputs as a tuple, in the order of ``outputs``; it works
        in the model's units (the exporter adds the run's normalisation around ``data`` tensors).
    inputs, outputs : :class:`~aekit.parts.latents.TensorSpec` of each, in order.
    description : one line on what the graph computes.
    """

    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    description: str


class MethodGraph(nn.Module):
    """A model's method as a module to export: ``forward(*inputs)`` is ``fn(*inputs)`` as a tuple. ``owner``
    (the model whose method ``fn`` is) is a submodule, so its weights are the graph's."""

    def __init__(self, owner: nn.Module, fn: Callable[..., Any]):
        super().__init__()
        self.owner, self.fn = owner, fn

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.fn(*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def mean_spec(sample_shape: tuple[int, ...]) -> TensorSpec:
    """The decoder graph's output: the likelihood's mean, shaped like the data."""
    what = "the likelihood's mean E[x | code] in the data's units (Bernoulli: probabilities)"
    return TensorSpec("x_mean", tuple(sample_shape), role="data", description=what)


@dataclass(frozen=True)
class ExportSpec:
    """What a model exports (``aekit export``): graphs by name (``encoder``, ``decoder``), and notes for
    the user, such as why a graph is missing."""

    graphs: dict[str, GraphSpec]
    notes: tuple[str, ...] = ()


class Model(nn.Module):
    """The base of every model family. Subclasses set ``sample_shape``, ``likelihood`` and
    ``config`` and implement the methods marked *required*; the others have defaults."""

    sample_shape: tuple[int, ...]  # shape of one sample
    likelihood: nn.Module  # the observation model: nll(x, params), mean(params), check_data(x)
    config: Any = None  # the ModelConfig the model was built from, when there is one
    num_classes: int = 0  # > 0: conditioned on labels in 0..num_classes-1

    # --- what the model is ------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """What this model can do (*required*)."""
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        """Width K of the point codes of :meth:`encode` (*required*)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The model's name in messages: its preset, else its class."""
        return self.config.model if self.config is not None else type(self).__name__

    # --- training --------------------------------------------------------------------------------

    @property
    def term_weights(self) -> dict[str, float]:
        """Weight of each loss term in the objective; its keys name the terms (*required*)."""
        raise NotImplementedError

    def objective_weights(self, step: int | None = None) -> dict[str, float]:
        """The weights at training step ``step`` (schedules such as KL warm-up); None: the full weights."""
        return self.term_weights

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named per-sample loss terms ``(N,)`` whose weighted batch means the trainer sums (*required*)."""
        raise NotImplementedError

    def epoch_diagnostics(self, x: Any) -> dict[str, float]:
        """Figures logged after every epoch on the validation split ``x`` (e.g. codebook perplexity)."""
        return {}

    @property
    def progress_metrics(self) -> tuple[str, ...]:
        """Names of :meth:`epoch_diagnostics` figures the training progress bar shows after each epoch,
        next to the losses: the few worth watching while a model trains (a VQ-VAE's ``perplexity``,
        whose collapse to 1 means one code is doing all the work). Default: none."""
        return ()

    # --- encoding and decoding ---------------------------------------------------------------------

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The point code of each sample ``(N, K)`` (*required*)."""
        raise NotImplementedError

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters (logits or means) for codes ``z`` (*required*)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for codes ``z`` ``(N, K)``: data in its own (normalised) units."""
        return self.likelihood.mean(self.decoder_output(z, y))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the point code of ``x``."""
        return self.decode(self.encode(x, y), y)

    def check_data(self, x: torch.Tensor, what: str = "data", bounds: tuple[float, float] | None = None) -> None:
        """Raise :class:`~aekit.errors.DataError` when the likelihood cannot model ``x`` (whose (min, max)
        are ``bounds`` when already known)."""
        self.likelihood.check_data(x, what, bounds)

    # --- evaluation --------------------------------------------------------------------------------

    def evaluation(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Evaluation:
        """Terms, codes and reconstruction of a batch in evaluation mode; override to share one pass."""
        code = self.encode(x, y)
        return Evaluation(self.loss_terms(x, y), code, self.decode(code, y))

    def test_metrics(self, collected: dict[str, torch.Tensor], x: Any, y: torch.Tensor | None = None) -> dict[str, Any]:
        """The model's own test metrics, from the whole split's ``collected`` per-sample tensors (the
        loss terms and the ``stats`` of :meth:`evaluation`, by name) and the split ``x``."""
        return {}

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """What a user must know about the trained model, read from its test ``metrics`` (a posterior
        that collapsed onto the prior, a codebook that uses one code): each a sentence that names the
        fix. Training logs them and summary.json keeps them. Default: none."""
        return []

    @property
    def score_names(self) -> tuple[str, ...]:
        """The per-sample anomaly scores :meth:`sample_scores` gives, best-founded first (e.g. ``neg_elbo``,
        ``free_energy``). Every model is also scored by its reconstruction error, and a model with a
        likelihood bound by that bound (:mod:`aekit.evaluation.scores`)."""
        return ()

    def scores_of(self, out: Evaluation) -> dict[str, torch.Tensor]:
        """The scores of :attr:`score_names` per sample ``(N,)``, read off one :meth:`evaluation` pass;
        higher means less likely under the model."""
        return {}

    def sample_scores(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The same scores for a batch, by the cheapest pass that gives them (by default an evaluation
        pass; a model overrides it to skip what the scores do not need, such as the reconstruction)."""
        return self.scores_of(self.evaluation(x, y))

    # --- capabilities --------------------------------------------------------------------------------

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, y: torch.Tensor | None = None,
        prior: str = "learned",
    ) -> torch.Tensor:  # fmt: skip
        """``n`` new samples: codes from the prior, decoded to the likelihood's mean (``generative``).

        A conditional model draws p(x | z, y) for labels ``y`` ``(n,)``. ``prior="uniform"`` decodes
        independent uniform codes (``discrete_codes``): what sampling looks like without a prior."""
        raise NotGenerativeError(
            f"A '{self.name}' model cannot generate samples: it learns no distribution to draw codes from. "
            "Train a generative model instead, e.g. --model vae."
        )

    def prior_icdf(self, p: torch.Tensor) -> torch.Tensor:
        """Quantiles of each code dimension's prior at probabilities ``p`` (``generative``, continuous codes)."""
        raise CapabilityError(f"A '{self.name}' model has no continuous prior over its codes.")

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """Mean and spread of q(z | x) (``posterior``)."""
        raise CapabilityError(
            f"A '{self.name}' model gives point codes, not a distribution q(z|x). Train a model with a "
            "probabilistic latent, e.g. --model vae."
        )

    def importance_weights(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> Callable[[int, torch.Generator | None], torch.Tensor]:
        """For the likelihood bound (``likelihood_bound``): encode ``x`` once and return ``draw(k,
        generator)``, which gives ``log p(x, z_i) - log q(z_i | x)`` ``(k, N)`` for ``k`` fresh draws."""
        raise CapabilityError(
            f"A '{self.name}' model has no likelihood bound: it defines no density p(x). The bound needs a "
            "model with a probabilistic latent, e.g. --model vae."
        )

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Integer code maps ``(N, h, w)`` (``discrete_codes``)."""
        raise CapabilityError(f"A '{self.name}' model has no discrete codes (a VQ-VAE has).")

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean for integer code maps (``discrete_codes``)."""
        raise CapabilityError(f"A '{self.name}' model has no discrete codes (a VQ-VAE has).")

    @torch.no_grad()
    def code_maps(self, x: Any, batch_size: int = 1024) -> torch.Tensor:
        """Code maps of a whole data set, in batches, on the CPU (``discrete_codes``): a prior's data."""
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        maps = [
            self.encode_indices(x[i : i + batch_size].to(device, torch.float32)).cpu()
            for i in range(0, len(x), batch_size)
        ]
        self.train(was_training)
        return torch.cat(maps)

    @property
    def num_codes(self) -> int:
        """Codebook size K (``discrete_codes``)."""
        raise CapabilityError(f"A '{self.name}' model has no discrete codes (a VQ-VAE has).")

    @property
    def code_shape(self) -> tuple[int, ...]:
        """Spatial shape of the code maps (``discrete_codes``)."""
        raise CapabilityError(f"A '{self.name}' model has no discrete codes (a VQ-VAE has).")

    def attach_prior(self, prior: nn.Module | None) -> None:
        """Attach (or with None detach) a prior fitted to the code maps (``needs_prior``)."""
        raise CapabilityError(
            f"A '{self.name}' model takes no fitted prior; train-prior fits one to a VQ-VAE's code maps. "
            "Train one with --model vq-vae."
        )

    def export_spec(self) -> ExportSpec:
        """The feed-forward graphs a deployment needs (``aekit export``): an encoder from data to codes and a
        decoder from codes to the likelihood's mean, with no random op in either."""
        raise CapabilityError(
            f"A '{self.name}' model does not declare graphs to export. Its family can implement "
            "Model.export_spec (docs/extending.md); the built-in families all do."
        )

    def free_energy(self, x: torch.Tensor, inverse_temperature: float | None = None, **options: Any) -> torch.Tensor:
        """Free energy per sample ``(N,)`` (``energy_based``): ``min_z E(x, z)`` without an inverse
        temperature, else ``-(1/b) log mean_z exp(-b E(x, z))`` for ``b = inverse_temperature``;
        ``options`` tune the model's estimator (e.g. a latent grid)."""
        raise CapabilityError(
            f"A '{self.name}' model is not energy-based: it has no free energy. Train one with --model latent-ebm."
        )


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Draw from the CPU's (and ``device``'s) random stream seeded with ``seed``, and give the caller its
    own stream back afterwards: evaluation draws repeat exactly and change nothing outside. The generators
    are seeded directly; ``torch.manual_seed`` would also queue a CUDA seeding, which records a stack trace
    (~10 ms per call) even on a machine without CUDA."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@torch.no_grad()
def dry_run(module: nn.Module, x: torch.Tensor, what: str, given: str) -> torch.Tensor:
    """Pass ``x`` through ``module`` once, in evaluation mode and without touching the random state,
    to learn or check its output's shape at build time; a failure names the module and its input."""
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            return module(x)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"The {what} cannot take {given} of shape {tuple(x.shape[1:])} per sample: {err}") from None
    finally:
        module.train(was_training)


def device_of(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for a module without any)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
