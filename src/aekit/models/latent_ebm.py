"""The latent-variable energy model trained by target propagation (seed 000).

The energy of an observation y and a latent z is ``E(y, z) = C(y, Dec(z)) + R(z)``: C is the
likelihood's negative log-likelihood (squared error / (2 sigma^2) + const for a Gaussian with fixed
std sigma), R an L1 or squared-L2 penalty on z. There is no encoder in the energy: the code of y is
found by *inference*, gradient steps on z with the networks frozen (the optimised latent,
:class:`~aekit.parts.OptimizedLatent`). An optional encoder gives the initial guess ``z~ = Enc(y)``,
and ``D(z, z~) = d_weight ||z - z~||^2`` keeps the search near it::

    z^ = argmin_z  C(y, Dec(z)) + R(z) + D(z, z~),  starting at z~

Training follows the seed's two steps: the decoder minimises ``C(y, Dec(z^))`` and the encoder
``D(z^, z~)``, with z^ held fixed (a target). The free energy ``F_beta(y) = softmin_beta_z E(y, z)``
scores how well y fits the model, and its zero-temperature limit is ``F_inf(y) = min_z E(y, z)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from aekit.config import CUSTOM, LikelihoodOptions, ModelConfig, NetworkOptions, non_negative, positive
from aekit.errors import ConfigError, check_choice
from aekit.models.base import (
    Capabilities,
    Evaluation,
    ExportSpec,
    GraphSpec,
    MethodGraph,
    Model,
    device_of,
    dry_run,
    mean_spec,
)
from aekit.parts import noise
from aekit.parts.latents import TensorSpec
from aekit.parts.likelihoods import Gaussian, build_likelihood
from aekit.parts.nets import build_decoder, build_encoder
from aekit.parts.optimized import INITS, REGS, OptimizedLatent
from aekit.registry import register_family

NO_ENCODER_NOTE = (
    "The latent EBM has no feed-forward encoder at test time: the code of x is found by minimising the energy "
    "E(x, z) = C(x, Dec(z)) + R(z) over z by gradient steps through the decoder (aekit encode runs that "
    "inference), so only the decoder is exported. Its encoder, where it has one, gives only the search's "
    "starting guess."
)
_PAIR_BUDGET = 1 << 22  # elements of one (rows x latent samples x data dims) block in free_energy


class LatentEBM(Model):
    """Latent-variable energy model: a decoder, an optional encoder, and inference by gradient descent.

    Parameters
    ----------
    sample_shape : shape of one sample, e.g. ``(2,)``.
    latent_dim : dimension K of z.
    decoder, encoder : modules ``(N, K) -> (N, *sample_shape)`` and ``(N, *sample_shape) -> (N, K)``;
        when left out they are MLPs (:mod:`aekit.parts.nets`) with widths ``hidden`` and ``activation``
        (no encoder unless ``use_encoder``).
    likelihood : gives C; default a Gaussian with fixed std ``obs_std``.
    infer_steps, step_size, momentum, reg, reg_weight, d_weight, restarts : the optimised latent's
        (see :class:`~aekit.parts.OptimizedLatent`). The curvature of C in z scales as ``1 / obs_std^2``
        times the decoder's squared slope: keep ``step_size`` near ``obs_std^2 / slope^2`` (0.1 for
        unit-scale 2-D data with ``obs_std=1``).
    init : where inference starts: ``"encoder"`` (z~, needs an encoder), ``"zero"`` or ``"random"``
        (N(0, I)); default the encoder's guess when there is an encoder, else zero.

    The defaults fit the ellipse of seed 000 with a 1-D latent (Adam, lr 3e-3, ~1,000 steps). More
    inference steps or a larger ``d_weight`` / ``reg_weight`` made that fit less reliable: with many
    steps z^ snaps to the nearest point of the current curve and training stalls in folded curves; a
    strong anchor leaves the encoder little to learn; an L2 R keeps shrinking the codes it targets.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int,
        *,
        decoder: nn.Module | None = None,
        encoder: nn.Module | None = None,
        use_encoder: bool = True,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        arch: str = "mlp",
        likelihood: nn.Module | None = None,
        obs_std: float = 1.0,
        infer_steps: int = 10,
        step_size: float = 0.1,
        momentum: float = 0.0,
        reg: str = "l2",
        reg_weight: float = 1e-3,
        d_weight: float = 0.3,
        init: str | None = None,
        restarts: int = 4,
        config: Any = None,
    ):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        if not (isinstance(obs_std, (int, float)) and math.isfinite(obs_std) and obs_std > 0):
            raise ConfigError(f"obs_std must be a finite number > 0, got {obs_std!r}. Pass e.g. obs_std=1.0.")
        has_encoder = encoder is not None or use_encoder
        init = init or ("encoder" if has_encoder else "zero")
        check_choice("init", init, INITS)
        if init == "encoder" and not has_encoder:
            raise ConfigError("init 'encoder' needs an encoder: pass use_encoder=True, or init='zero' / 'random'.")
        self.latent = OptimizedLatent(latent_dim, infer_steps=infer_steps, step_size=step_size, momentum=momentum,
                                      reg=reg, reg_weight=reg_weight, d_weight=d_weight, init=init,
                                      restarts=restarts)  # fmt: skip
        shape, hidden = self.sample_shape, tuple(hidden)
        self.decoder = decoder if decoder is not None else build_decoder(arch, latent_dim, shape, hidden, activation)
        if encoder is None and use_encoder:
            features = build_encoder(arch, shape, hidden, activation)
            encoder = nn.Sequential(features, nn.Linear(features.out_features, latent_dim))
        self.encoder = encoder
        self.likelihood = likelihood if likelihood is not None else Gaussian(shape, obs_std)
        self.config = config
        self._check_shapes()

    def _check_shapes(self) -> None:
        k, shape = self.latent_dim, self.sample_shape
        out = dry_run(self.decoder, torch.zeros(2, k, device=device_of(self.decoder)), "decoder", "codes")
        if tuple(out.shape) != (2, *shape):
            raise ConfigError(
                f"The decoder maps codes to {tuple(out.shape[1:])} per sample, but the data's samples are "
                f"{shape}: make it return a tensor shaped (N, {', '.join(map(str, shape))})."
            )
        if self.encoder is not None:
            guess = dry_run(self.encoder, torch.zeros(2, *shape, device=out.device), "encoder", "samples")
            if tuple(guess.shape) != (2, k):
                raise ConfigError(
                    f"The encoder's guess must be a code (N, {k}); it returns {tuple(guess.shape[1:])} per sample."
                )

    # --- the contract ----------------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(energy_based=True)

    @property
    def latent_dim(self) -> int:
        return self.latent.latent_dim

    @property
    def init(self) -> str:
        """Where inference starts: encoder, zero or random."""
        return self.latent.init

    @property
    def term_weights(self) -> dict[str, float]:
        """``recon`` trains the decoder and ``latent_match`` the encoder; ``reg`` is logged only.

        R has no parameters (it only shapes inference), so its weight is 0. ``latent_match`` reaches
        only the encoder, whose Adam steps hardly depend on the scale of its one loss: weight 1."""
        weights = {"recon": 1.0}
        if self.encoder is not None:
            weights["latent_match"] = 1.0
        weights["reg"] = 0.0
        return weights

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Target propagation (seed 000), each term ``(N,)`` per sample.

        ``recon = C(x, Dec(z^))`` with z^ detached (gradient to the decoder only); with an encoder,
        ``latent_match = ||z^ - Enc(x)||^2`` with z^ detached (to the encoder only); ``reg = R(z^)``."""
        return self._terms(x)[0]

    def _terms(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        z_tilde = self.encoder(x) if self.encoder is not None else None
        z_hat = self.infer(x, z_tilde=None if z_tilde is None else z_tilde.detach()).detach()
        params = self.decoder(z_hat)
        terms = {"recon": self.likelihood.nll(x, params)}
        if z_tilde is not None:
            terms["latent_match"] = (z_hat - z_tilde).square().sum(1)
        terms["reg"] = self.regularizer(z_hat)
        return terms, z_hat, params

    def evaluation(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Evaluation:
        """One inference gives the terms, the code z^ and Dec(z^); the free energy F_inf is another."""
        terms, z_hat, params = self._terms(x)
        return Evaluation(terms, z_hat, self.likelihood.mean(params), {"free_energy": self.free_energy_inf(x)})

    def test_metrics(self, collected: dict[str, torch.Tensor], x: Any, y: torch.Tensor | None = None) -> dict[str, Any]:
        """``free_energy``: the mean zero-temperature free energy min_z E(y, z)."""
        return {"free_energy": float(collected["free_energy"].mean())}

    @property
    def score_names(self) -> tuple[str, ...]:
        return ("free_energy",)

    def scores_of(self, out: Evaluation) -> dict[str, torch.Tensor]:
        """``free_energy``: min_z E(x, z), low on the data manifold and high off it (seed 000)."""
        return {"free_energy": out.stats["free_energy"]}

    def sample_scores(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"free_energy": self.free_energy_inf(x)}  # one inference; the terms are not needed

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code z^ of each sample after inference ``(N, K)`` (not just the encoder's guess)."""
        return self.infer(x)

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)

    def export_spec(self) -> ExportSpec:
        """The decoder alone: codes come from inference, which has no feed-forward graph (:data:`NO_ENCODER_NOTE`)."""
        code = TensorSpec("code", (self.latent_dim,), description="codes z: found by your own inference, or drawn")
        decoder = GraphSpec(MethodGraph(self, self.decode), (code,), (mean_spec(self.sample_shape),),
                            "codes -> the likelihood's mean")  # fmt: skip
        return ExportSpec({"decoder": decoder}, notes=(NO_ENCODER_NOTE,))

    def free_energy(self, x: torch.Tensor, inverse_temperature: float | None = None, **options: Any) -> torch.Tensor:
        """``F_inf`` (:meth:`free_energy_inf`) without an inverse temperature, else ``F_beta``
        (:meth:`free_energy_beta`); ``options`` go to the one called."""
        if inverse_temperature is None:
            return self.free_energy_inf(x, **options)
        return self.free_energy_beta(x, inverse_temperature, **options)

    # --- energies --------------------------------------------------------------------------------

    def initial_guess(self, y: torch.Tensor) -> torch.Tensor | None:
        """The encoder's guess z~ ``(N, K)``, or None without an encoder."""
        if self.encoder is None:
            return None
        with torch.no_grad():
            return self.encoder(y)

    def regularizer(self, z: torch.Tensor) -> torch.Tensor:
        """``R(z)`` per sample ``(N,)``."""
        return self.latent.regularizer_value(z)

    def energy(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``E(y, z) = C(y, Dec(z)) + R(z)`` per sample ``(N,)``, in nats (C) plus R's units."""
        return self.likelihood.nll(y, self.decoder(z)) + self.regularizer(z)

    def infer(
        self,
        y: torch.Tensor,
        z0: torch.Tensor | None = None,
        steps: int | None = None,
        return_trace: bool = False,
        *,
        z_tilde: torch.Tensor | None = None,
        d_weight: float | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Minimise ``E(y, z) + D(z, z~)`` over z by gradient steps, networks frozen: z^ ``(N, K)``.

        ``z~`` is ``z_tilde`` or, with an encoder, ``Enc(y)``; without either there is no D term.
        ``z0`` is the start (default by ``init``: z~, zero or N(0, I)); ``steps`` defaults to
        ``infer_steps``; ``d_weight`` overrides the model's (0 minimises E alone). See
        :meth:`aekit.parts.OptimizedLatent.infer` for the descent and ``return_trace``.
        """
        if z_tilde is None:
            z_tilde = self.initial_guess(y)
        y = y.detach()
        start = self.latent.start(len(y), z_tilde, y) if z0 is None else z0
        return self.latent.infer(lambda z: self.likelihood.nll(y, self.decoder(z)), start, steps=steps,
                                 anchor=z_tilde, d_weight=d_weight, return_trace=return_trace)  # fmt: skip

    @torch.no_grad()
    def free_energy_inf(
        self, y: torch.Tensor, steps: int | None = None, *, candidates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``F_inf(y) = min_z E(y, z)`` per sample ``(N,)``, by inference from several starts.

        Inference without D (``d_weight=0``) runs ``steps`` (default ``5 * infer_steps``) from z~ (with
        an encoder), from 0, from ``restarts`` N(0, I) draws and, given ``candidates`` ``(M, K)`` (e.g. a
        grid over a 1-D or 2-D latent), from the candidate of lowest energy for each y; the lowest
        energy wins, since E may have several local minima in z (e.g. both sides of a curve's seam)."""
        steps = 5 * self.latent.infer_steps if steps is None else steps
        starts = [torch.zeros(len(y), self.latent_dim, device=y.device, dtype=y.dtype)]
        if self.encoder is not None:
            starts.append(self.encoder(y))
        starts += [noise.randn_like(starts[0]) for _ in range(self.latent.restarts)]
        if candidates is not None:
            z = self._z_points(y, candidates, 0, None, None)
            starts.append(z[torch.cat([e.argmin(1) for e in self._pair_energies(y, z)])])
        best = torch.full((len(y),), math.inf, device=y.device, dtype=y.dtype)
        for z0 in starts:
            z = self.infer(y, z0, steps, d_weight=0.0)
            best = torch.minimum(best, self.energy(y, z))
        return best

    @torch.no_grad()
    def free_energy_beta(
        self,
        y: torch.Tensor,
        inverse_temperature: float,
        *,
        z_samples: torch.Tensor | None = None,
        n: int = 4096,
        grid: tuple[float, float, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``F_beta(y) = -(1/beta) log mean_z exp(-beta E(y, z))`` per sample ``(N,)``, by log-sum-exp,
        with beta = ``inverse_temperature``.

        The z are ``z_samples`` ``(M, K)``, else a regular ``grid=(lo, hi, points)`` per axis over
        ``[lo, hi]^K`` (K = 1 or 2), else ``n`` draws from N(0, I). Over a grid the mean approximates
        ``(1/V) * integral exp(-beta E) dz`` with V the grid's volume ``(hi - lo)^K``, so this is the
        integral's free energy plus ``(1/beta) log V``: F_beta is defined up to that additive constant.
        Over N(0, I) draws it is the expectation under that prior. As beta grows the estimate falls
        monotonically towards ``min_z E`` over the z used, hence towards :meth:`free_energy_inf`.
        """
        beta = inverse_temperature
        if not (math.isfinite(beta) and beta > 0):
            raise ConfigError(f"The inverse temperature beta must be a finite number > 0, got {beta!r}. Pass e.g. 10.")
        z = self._z_points(y, z_samples, n, grid, generator)
        return torch.cat(
            [-(torch.logsumexp(-beta * e, 1) - math.log(len(z))) / beta for e in self._pair_energies(y, z)]
        )

    def _pair_energies(self, y: torch.Tensor, z: torch.Tensor) -> Iterator[torch.Tensor]:
        """``E(y_i, z_j)`` for every y against every z, in blocks of rows ``(B, M)``."""
        params = self.decoder(z)  # (M, *sample_shape), shared by every y
        reg = self.regularizer(z)  # (M,)
        m, dims = len(z), math.prod(self.sample_shape)
        rows = max(1, _PAIR_BUDGET // max(1, m * dims))
        for i in range(0, len(y), rows):
            yb = y[i : i + rows]  # (B, *shape) against all M codes: (B * M, *shape)
            pairs_y = yb.unsqueeze(1).expand(len(yb), m, *self.sample_shape).reshape(-1, *self.sample_shape)
            pairs_p = params.unsqueeze(0).expand(len(yb), *params.shape).reshape(-1, *self.sample_shape)
            yield self.likelihood.nll(pairs_y, pairs_p).view(len(yb), m) + reg  # (B, M)

    def _z_points(self, y, z_samples, n, grid, generator) -> torch.Tensor:
        k = self.latent_dim
        if z_samples is not None:
            if z_samples.dim() != 2 or z_samples.shape[1] != k:
                raise ConfigError(f"latent points must have shape (M, {k}), got {tuple(z_samples.shape)}.")
            return z_samples.to(y.device, y.dtype)
        if grid is not None:
            lo, hi, points = grid
            if k > 2 or not (hi > lo and int(points) >= 2):
                raise ConfigError(
                    f"grid=(lo, hi, points) needs hi > lo, points >= 2 and a 1-D or 2-D latent; got {grid} "
                    f"for latent_dim {k}. Pass z_samples for larger latents."
                )
            axis = torch.linspace(lo, hi, int(points), device=y.device, dtype=y.dtype)
            return torch.cartesian_prod(*[axis] * k).reshape(-1, k)
        if not (isinstance(n, int) and n >= 1):
            raise ConfigError(f"n (latent samples) must be a positive integer, got {n!r}.")
        return torch.randn(n, k, generator=generator, device="cpu").to(y.device, y.dtype)


@dataclass(frozen=True)
class LatentEBMConfig(LikelihoodOptions, NetworkOptions, ModelConfig):
    """Options of the latent-variable energy model (latent-ebm)."""

    use_encoder: bool = True  # an encoder gives inference its initial guess z~; without one it starts at `init`
    init: str = "auto"  # encoder | zero | random (auto: encoder when there is one, else zero)
    infer_steps: int = 10  # gradient steps of the inference z^ = argmin_z E(y, z) + D(z, z~)
    step_size: float = 0.1  # step size of those gradient steps
    reg: str = "l2"  # R(z) = reg_weight * ||z||_1 (l1) or ||z||^2 (l2)
    reg_weight: float = 1e-3  # weight of R(z)
    d_weight: float = 0.3  # D(z, z~) = d_weight * ||z - z~||^2, the pull towards the encoder's guess

    family: ClassVar[str] = "latent-ebm"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"latent-ebm": {"hidden": (64, 64), "likelihood": "gaussian"}}

    def _check(self) -> None:
        check_choice("reg", self.reg, REGS)
        check_choice("init", self.init, ("auto", *INITS))
        positive("infer_steps", self.infer_steps)
        positive("step_size", self.step_size)
        non_negative("reg_weight", self.reg_weight)
        non_negative("d_weight", self.d_weight)
        if self.init == "encoder" and not self.use_encoder:
            raise ConfigError("init 'encoder' needs an encoder; drop --no-use-encoder or use --init zero.")

    def differentiates_gradients(self) -> bool:
        return True  # inference takes gradients in z inside the loss

    def needs_float32(self) -> bool:
        return True  # inference by gradient descent on z needs float32


def build(
    config: LatentEBMConfig,
    sample_shape: tuple[int, ...],
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> LatentEBM:
    if config.arch == CUSTOM and (decoder is None or (config.use_encoder and encoder is None)):
        raise ConfigError(
            "Pass your decoder (decoder=...) and, unless use_encoder is false, your encoder (encoder=...)."
        )
    return LatentEBM(
        sample_shape,
        config.latent_dim,
        decoder=decoder,
        encoder=encoder,
        use_encoder=config.use_encoder,
        hidden=config.hidden,
        activation=config.activation,
        arch=config.arch,
        likelihood=build_likelihood(config, sample_shape),
        infer_steps=config.infer_steps,
        step_size=config.step_size,
        reg=config.reg,
        reg_weight=config.reg_weight,
        d_weight=config.d_weight,
        init=None if config.init == "auto" else config.init,
        config=config,
    )


register_family(LatentEBMConfig, build)
