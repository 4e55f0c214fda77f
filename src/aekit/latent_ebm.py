"""A regularised latent-variable energy model trained by target propagation (seed 000).

The energy of an observation y and a latent z is ``E(y, z) = C(y, Dec(z)) + R(z)``: C is the
likelihood's negative log-likelihood (squared error / (2 sigma^2) + const for a Gaussian with fixed
std sigma), R an L1 or squared-L2 penalty on z. There is no encoder in the energy: the code of y is
found by *inference*, gradient steps on z with the networks frozen. An optional encoder gives the
initial guess ``z~ = Enc(y)``, and ``D(z, z~) = d_weight ||z - z~||^2`` keeps the search near it::

    z^ = argmin_z  C(y, Dec(z)) + R(z) + D(z, z~),  starting at z~

Training follows the seed's two steps: the decoder minimises ``C(y, Dec(z^))`` and the encoder
``D(z^, z~)``, with z^ held fixed (a target). The free energy ``F_beta(y) = softmin_beta_z E(y, z)``
scores how well y fits the model, and its zero-temperature limit is ``F_inf(y) = min_z E(y, z)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from aekit.errors import ConfigError, NotGenerativeError, check_choice
from aekit.likelihoods import Gaussian
from aekit.nets import build_decoder, build_encoder

REGS = ("l1", "l2")
INITS = ("encoder", "zero", "random")
_PAIR_BUDGET = 1 << 22  # elements of one (rows x latent samples x data dims) block in free_energy


def _non_negative(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}. Pass e.g. {name}=0.")
    return float(value)


class LatentEBM(nn.Module):
    """Latent-variable energy model: a decoder, an optional encoder, and inference by gradient descent.

    Parameters
    ----------
    sample_shape : shape of one sample, e.g. ``(2,)``.
    latent_dim : dimension K of z.
    decoder, encoder : modules ``(N, K) -> (N, *sample_shape)`` and ``(N, *sample_shape) -> (N, K)``;
        when left out they are MLPs (:mod:`aekit.nets`) with widths ``hidden`` and ``activation``
        (no encoder unless ``use_encoder``).
    likelihood : gives C; default a Gaussian with fixed std ``obs_std``.
    infer_steps, step_size, momentum : gradient descent on z, ``z <- z - step_size * grad``
        (heavy-ball ``momentum`` in [0, 1) when > 0); a step that would raise a sample's objective
        is refused and that sample's step halved, so descent is monotone. With ``reg="l1"`` the
        step is proximal (ISTA): gradient on C + D, then soft-thresholding, which gives exact zeros.
        The curvature of C in z scales as ``1 / obs_std^2`` times the decoder's squared slope: keep
        ``step_size`` near ``obs_std^2 / slope^2`` (0.1 for unit-scale 2-D data with ``obs_std=1``).
    reg, reg_weight : ``R(z) = reg_weight * ||z||_1`` (``"l1"``) or ``reg_weight * ||z||^2`` (``"l2"``).
    d_weight : ``D(z, z~) = d_weight * ||z - z~||^2`` (only with an encoder).
    init : where inference starts: ``"encoder"`` (z~, needs an encoder), ``"zero"`` or ``"random"`` (N(0, I)).
    restarts : extra N(0, I) starts that :meth:`free_energy_inf` tries besides z~ and 0.

    The defaults fit the ellipse of seed 000 with a 1-D latent (Adam, lr 3e-3, ~1,000 steps). More
    inference steps or a larger ``d_weight`` / ``reg_weight`` made that fit less reliable: with many
    steps z^ snaps to the nearest point of the current curve and training stalls in folded curves; a
    strong anchor leaves the encoder little to learn; an L2 R keeps shrinking the codes it targets.
    """

    num_classes = 0  # unconditional: the trainer and run directory pass no labels

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
        config: object | None = None,
    ):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ConfigError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
        if not (isinstance(infer_steps, int) and infer_steps >= 1):
            raise ConfigError(
                f"infer_steps must be an integer >= 1 (gradient steps on z per inference), got {infer_steps!r}. "
                "Pass e.g. infer_steps=10."
            )
        if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
            raise ConfigError(f"step_size must be a finite number > 0, got {step_size!r}. Pass e.g. step_size=0.1.")
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ConfigError(f"momentum must lie in [0, 1), got {momentum!r}. Pass 0 for plain gradient descent.")
        if not (isinstance(restarts, int) and restarts >= 0):
            raise ConfigError(f"restarts must be an integer >= 0, got {restarts!r}.")
        if not (isinstance(obs_std, (int, float)) and math.isfinite(obs_std) and obs_std > 0):
            raise ConfigError(f"obs_std must be a finite number > 0, got {obs_std!r}. Pass e.g. obs_std=1.0.")
        check_choice("reg", reg, REGS)
        self.reg_weight = _non_negative("reg_weight", reg_weight)
        self.d_weight = _non_negative("d_weight", d_weight)
        has_encoder = encoder is not None or use_encoder
        init = init or ("encoder" if has_encoder else "zero")
        check_choice("init", init, INITS)
        if init == "encoder" and not has_encoder:
            raise ConfigError("init 'encoder' needs an encoder: pass use_encoder=True, or init='zero' / 'random'.")
        shape, hidden = self.sample_shape, tuple(hidden)
        self.decoder = decoder if decoder is not None else build_decoder(arch, latent_dim, shape, hidden, activation)
        if encoder is None and use_encoder:
            features = build_encoder(arch, shape, hidden, activation)
            encoder = nn.Sequential(features, nn.Linear(features.out_features, latent_dim))
        self.encoder = encoder
        self.likelihood = likelihood if likelihood is not None else Gaussian(shape, obs_std)
        self._latent_dim = latent_dim
        self.infer_steps, self.step_size, self.momentum = infer_steps, float(step_size), float(momentum)
        self.reg, self.init, self.restarts = reg, init, restarts
        self.config = config

    # --- the interface shared with Autoencoder -------------------------------------------------

    @property
    def is_generative(self) -> bool:
        """False: the energy puts no distribution over z to sample codes from."""
        return False

    @property
    def latent_dim(self) -> int:
        return self._latent_dim

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
        z_tilde = self.encoder(x) if self.encoder is not None else None
        z_hat = self.infer(x, z_tilde=None if z_tilde is None else z_tilde.detach()).detach()
        terms = {"recon": self.likelihood.nll(x, self.decoder(z_hat))}
        if z_tilde is not None:
            terms["latent_match"] = (z_hat - z_tilde).square().sum(1)
        terms["reg"] = self.regularizer(z_hat)
        return terms

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{"mean": z^}``: the zero-temperature code, after inference."""
        return {"mean": self.infer(x)}

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code z^ of each sample after inference ``(N, K)`` (not just the encoder's guess)."""
        return self.infer(x)

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters (means or logits) for codes ``z``."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for codes ``z`` ``(N, K)``."""
        return self.likelihood.mean(self.decoder(z))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``Dec(z^)``: decode the code found by inference."""
        return self.decode(self.infer(x))

    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """Always raises :class:`NotGenerativeError`: there is no prior over z to draw from."""
        raise NotGenerativeError(
            "A latent-variable energy model cannot generate samples: it scores observations by their "
            "energy min_z C(y, Dec(z)) + R(z) and learns no distribution over z to draw codes from. "
            "Train a generative model instead, e.g. --model vae."
        )

    # --- energies --------------------------------------------------------------------------------

    def regularizer(self, z: torch.Tensor) -> torch.Tensor:
        """``R(z)`` per sample ``(N,)``."""
        norm = z.abs().sum(1) if self.reg == "l1" else z.square().sum(1)
        return self.reg_weight * norm

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
        ``infer_steps``; ``d_weight`` overrides the model's (0 minimises E alone). Only z gets a
        gradient (``torch.autograd.grad``): parameters' ``.grad`` stay untouched, and it works under
        ``torch.no_grad()``. ``return_trace`` also returns the objective E + D at the start and after
        each step ``(steps + 1, N)``, non-increasing along steps (one gradient evaluation per step).
        """
        steps = self.infer_steps if steps is None else steps
        if not (isinstance(steps, int) and steps >= 0):
            raise ConfigError(f"steps must be an integer >= 0, got {steps!r}.")
        d_weight = self.d_weight if d_weight is None else _non_negative("d_weight", d_weight)
        with torch.enable_grad():
            if z_tilde is None and self.encoder is not None:
                with torch.no_grad():
                    z_tilde = self.encoder(y)
            anchor = z_tilde.detach() if z_tilde is not None and d_weight > 0 else None
            y = y.detach()
            z = (self._start(y, z_tilde) if z0 is None else z0).detach()
            obj, grad = self._objective(y, z, anchor, d_weight)
            eta = torch.full_like(obj, self.step_size).unsqueeze(1)  # (N, 1): one step size per sample
            velocity = torch.zeros_like(z)
            trace = [obj]
            for _ in range(steps):
                with torch.no_grad():
                    velocity = self.momentum * velocity + grad
                    trial = z - eta * velocity
                    if self.reg == "l1":  # proximal step of eta * reg_weight * ||z||_1 (ISTA)
                        trial = torch.sign(trial) * (trial.abs() - eta * self.reg_weight).clamp(min=0)
                trial_obj, trial_grad = self._objective(y, trial, anchor, d_weight)
                # A step that raises a sample's objective overshot (step_size above 2 / curvature where
                # the decoder is steep): keep that sample's z and halve its step. Descent is monotone.
                ok = (trial_obj <= obj).unsqueeze(1)
                z, grad = torch.where(ok, trial, z), torch.where(ok, trial_grad, grad)
                obj = torch.where(ok[:, 0], trial_obj, obj)
                eta, velocity = torch.where(ok, eta, eta / 2), torch.where(ok, velocity, 0.0)
                trace.append(obj)
        return (z, torch.stack(trace)) if return_trace else z

    def _objective(
        self, y: torch.Tensor, z: torch.Tensor, anchor: torch.Tensor | None, d_weight: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``E(y, z) + D(z, z~)`` per sample and the gradient wrt z of its smooth part (all but an L1 R)."""
        z = z.detach().requires_grad_(True)
        smooth = self.likelihood.nll(y, self.decoder(z))
        if self.reg == "l2":
            smooth = smooth + self.regularizer(z)
        if anchor is not None:
            smooth = smooth + d_weight * (z - anchor).square().sum(1)
        # Each sample's objective depends only on its own z, so the gradient of the sum is the
        # per-sample gradient; only z is an input, so parameters' .grad stay untouched.
        (grad,) = torch.autograd.grad(smooth.sum(), z)
        with torch.no_grad():
            total = smooth + self.regularizer(z) if self.reg == "l1" else smooth
        return total.detach(), grad

    def _start(self, y: torch.Tensor, z_tilde: torch.Tensor | None) -> torch.Tensor:
        if self.init == "encoder" and z_tilde is not None:
            return z_tilde
        shape = (len(y), self.latent_dim)
        if self.init == "random":
            return torch.randn(shape, device=y.device, dtype=y.dtype)
        return torch.zeros(shape, device=y.device, dtype=y.dtype)

    @torch.no_grad()
    def free_energy_inf(
        self, y: torch.Tensor, steps: int | None = None, *, candidates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``F_inf(y) = min_z E(y, z)`` per sample ``(N,)``, by inference from several starts.

        Inference without D (``d_weight=0``) runs ``steps`` (default ``5 * infer_steps``) from z~ (with
        an encoder), from 0, from ``restarts`` N(0, I) draws and, given ``candidates`` ``(M, K)`` (e.g. a
        grid over a 1-D or 2-D latent), from the candidate of lowest energy for each y; the lowest
        energy wins, since E may have several local minima in z (e.g. both sides of a curve's seam)."""
        steps = 5 * self.infer_steps if steps is None else steps
        starts = [torch.zeros(len(y), self.latent_dim, device=y.device, dtype=y.dtype)]
        if self.encoder is not None:
            starts.append(self.encoder(y))
        starts += [torch.randn_like(starts[0]) for _ in range(self.restarts)]
        if candidates is not None:
            z = self._z_points(y, candidates, 0, None, None)
            starts.append(z[torch.cat([e.argmin(1) for e in self._pair_energies(y, z)])])
        best = torch.full((len(y),), math.inf, device=y.device, dtype=y.dtype)
        for z0 in starts:
            z = self.infer(y, z0, steps, d_weight=0.0)
            best = torch.minimum(best, self.energy(y, z))
        return best

    @torch.no_grad()
    def free_energy(
        self,
        y: torch.Tensor,
        beta: float,
        *,
        z_samples: torch.Tensor | None = None,
        n: int = 4096,
        grid: tuple[float, float, int] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``F_beta(y) = -(1/beta) log mean_z exp(-beta E(y, z))`` per sample ``(N,)``, by log-sum-exp.

        The z are ``z_samples`` ``(M, K)``, else a regular ``grid=(lo, hi, points)`` per axis over
        ``[lo, hi]^K`` (K = 1 or 2), else ``n`` draws from N(0, I). Over a grid the mean approximates
        ``(1/V) * integral exp(-beta E) dz`` with V the grid's volume ``(hi - lo)^K``, so this is the
        integral's free energy plus ``(1/beta) log V``: F_beta is defined up to that additive constant.
        Over N(0, I) draws it is the expectation under that prior. As beta grows the estimate falls
        monotonically towards ``min_z E`` over the z used, hence towards :meth:`free_energy_inf`.
        """
        if not (math.isfinite(beta) and beta > 0):
            raise ConfigError(f"beta must be a finite number > 0, got {beta!r}. Pass e.g. beta=10.")
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
