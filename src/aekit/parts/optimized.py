"""The optimised latent: a code found by minimising the energy, not computed by an encoder (seed 000).

For an observation y the code is ``z^ = argmin_z C(y, Dec(z)) + R(z) + D(z, z~)``, found by
gradient steps on z with the networks frozen. This latent kind owns what is its own: the
regulariser ``R(z) = reg_weight * ||z||_1`` (``l1``) or ``reg_weight * ||z||^2`` (``l2``), the pull
``D(z, z~) = d_weight * ||z - z~||^2`` towards an initial guess z~, where inference starts, and the
descent itself. It has no prior to sample from and no posterior: the model it belongs to (the
latent EBM, :mod:`aekit.models.latent_ebm`) scores data by free energies instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from aekit.errors import ConfigError, NotGenerativeError, check_choice
from aekit.parts import noise
from aekit.parts.latents import Latent
from aekit.registry import register_latent

REGS = ("l1", "l2")
INITS = ("encoder", "zero", "random")


def non_negative(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}. Pass e.g. {name}=0.")
    return float(value)


@register_latent("optimized")
class OptimizedLatent(Latent):
    """Inference by gradient descent on z, and the energy terms R and D that shape it.

    Parameters
    ----------
    latent_dim : dimension K of z.
    infer_steps, step_size, momentum : gradient descent on z, ``z <- z - step_size * grad``
        (heavy-ball ``momentum`` in [0, 1) when > 0); a step that would raise a sample's objective
        is refused and that sample's step halved, so descent is monotone. With ``reg="l1"`` the
        step is proximal (ISTA): gradient on C + D, then soft-thresholding, which gives exact zeros.
    reg, reg_weight : R(z).
    d_weight : D(z, z~); 0 minimises E alone.
    init : where inference starts: ``"encoder"`` (the guess z~), ``"zero"`` or ``"random"`` (N(0, I)).
    restarts : extra N(0, I) starts that the zero-temperature free energy tries besides z~ and 0.
    """

    feedforward = False

    def __init__(
        self,
        latent_dim: int,
        *,
        infer_steps: int = 10,
        step_size: float = 0.1,
        momentum: float = 0.0,
        reg: str = "l2",
        reg_weight: float = 1e-3,
        d_weight: float = 0.3,
        init: str = "encoder",
        restarts: int = 4,
    ):
        super().__init__()
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
        check_choice("reg", reg, REGS)
        check_choice("init", init, INITS)
        self.latent_dim = latent_dim
        self.infer_steps, self.step_size, self.momentum = infer_steps, float(step_size), float(momentum)
        self.reg, self.reg_weight = reg, non_negative("reg_weight", reg_weight)
        self.d_weight = non_negative("d_weight", d_weight)
        self.init, self.restarts = init, restarts

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, reg={self.reg}, infer_steps={self.infer_steps}, init={self.init}"

    # --- R, the prior that is not one ---------------------------------------------------------------

    def regularizer_value(self, z: torch.Tensor) -> torch.Tensor:
        """``R(z)`` per sample ``(N,)``."""
        norm = z.abs().sum(1) if self.reg == "l1" else z.square().sum(1)
        return self.reg_weight * norm

    def sample_prior(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None, prior: str = "learned"
    ) -> torch.Tensor:
        if prior != "learned":
            return super().sample_prior(n, prior=prior)
        raise NotGenerativeError(
            "A latent-variable energy model cannot generate samples: it scores observations by their "
            "energy min_z C(y, Dec(z)) + R(z) and learns no distribution over z to draw codes from. "
            "Train a generative model instead, e.g. --model vae."
        )

    # --- inference --------------------------------------------------------------------------------------

    def start(self, n: int, z_tilde: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """Where inference starts for ``n`` samples: z~, zero or N(0, I) by ``init``."""
        if self.init == "encoder" and z_tilde is not None:
            return z_tilde
        shape = (n, self.latent_dim)
        if self.init == "random":
            return noise.randn(shape, device=like.device, dtype=like.dtype)
        return torch.zeros(shape, device=like.device, dtype=like.dtype)

    def infer(
        self,
        cost: Callable[[torch.Tensor], torch.Tensor],
        z0: torch.Tensor,
        *,
        steps: int | None = None,
        anchor: torch.Tensor | None = None,
        d_weight: float | None = None,
        return_trace: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Minimise ``cost(z) + R(z) + D(z, anchor)`` over z from ``z0`` by gradient steps: z^ ``(N, K)``.

        ``cost(z) -> (N,)`` is the reconstruction cost C(y, Dec(z)) per sample (each sample's cost
        depends on its own z only). Only z gets a gradient (``torch.autograd.grad``), so parameters'
        ``.grad`` stay untouched, and it works under ``torch.no_grad()``. ``return_trace`` also returns
        the objective at the start and after each step ``(steps + 1, N)``, non-increasing along steps.
        """
        steps = self.infer_steps if steps is None else steps
        if not (isinstance(steps, int) and steps >= 0):
            raise ConfigError(f"steps must be an integer >= 0, got {steps!r}.")
        d_weight = self.d_weight if d_weight is None else non_negative("d_weight", d_weight)
        anchor = anchor.detach() if anchor is not None and d_weight > 0 else None
        with torch.enable_grad():
            z = z0.detach()
            obj, grad = self._objective(cost, z, anchor, d_weight)
            eta = torch.full_like(obj, self.step_size).unsqueeze(1)  # (N, 1): one step size per sample
            velocity = torch.zeros_like(z)
            trace = [obj]
            for _ in range(steps):
                with torch.no_grad():
                    velocity = self.momentum * velocity + grad
                    trial = z - eta * velocity
                    if self.reg == "l1":  # proximal step of eta * reg_weight * ||z||_1 (ISTA)
                        trial = torch.sign(trial) * (trial.abs() - eta * self.reg_weight).clamp(min=0)
                trial_obj, trial_grad = self._objective(cost, trial, anchor, d_weight)
                # A step that raises a sample's objective overshot (step_size above 2 / curvature where
                # the decoder is steep): keep that sample's z and halve its step. Descent is monotone.
                ok = (trial_obj <= obj).unsqueeze(1)
                z, grad = torch.where(ok, trial, z), torch.where(ok, trial_grad, grad)
                obj = torch.where(ok[:, 0], trial_obj, obj)
                eta, velocity = torch.where(ok, eta, eta / 2), torch.where(ok, velocity, 0.0)
                trace.append(obj)
        return (z, torch.stack(trace)) if return_trace else z

    def _objective(
        self, cost: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, anchor: torch.Tensor | None,
        d_weight: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """The objective per sample and the gradient wrt z of its smooth part (all but an L1 R)."""
        z = z.detach().requires_grad_(True)
        smooth = cost(z)
        if self.reg == "l2":
            smooth = smooth + self.regularizer_value(z)
        if anchor is not None:
            smooth = smooth + d_weight * (z - anchor).square().sum(1)
        # Each sample's objective depends only on its own z, so the gradient of the sum is the
        # per-sample gradient; only z is an input, so parameters' .grad stay untouched.
        (grad,) = torch.autograd.grad(smooth.sum(), z)
        with torch.no_grad():
            total = smooth + self.regularizer_value(z) if self.reg == "l1" else smooth
        return total.detach(), grad
