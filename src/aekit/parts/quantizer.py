"""Vector quantisation: the discrete bottleneck of a VQ-VAE (van den Oord et al. 2017, seed 003).

Each D-vector of the encoder's output ``z_e`` is replaced by its nearest codebook vector ``e_k``.
The nearest-neighbour step has no gradient, so the decoder's gradient is copied straight through
to the encoder: ``z_q = z_e + sg[e_k - z_e]`` is ``e_k`` in the forward pass and the identity in
the backward pass. Two per-sample terms train the rest (summed over positions and dimensions):

- ``codebook``   ``||sg[z_e] - e||^2`` moves the codes towards the encoder outputs assigned to them;
- ``commitment`` ``||z_e - sg[e]||^2`` (weighted by beta) keeps the encoder close to its codes.

With ``use_ema=True`` the codebook loss is replaced by exponential moving averages of the
assignment counts and sums (van den Oord 2017, appendix A.1; Razavi et al. 2019), and the codebook
is a buffer the optimiser never sees. Codes nobody picks for ``restart_after`` training steps are
re-seeded from encoder outputs of the current batch, against codebook collapse.

The codebook starts where the data are: it is fitted to the encoder outputs of the first training
batch, by k-means (``init="kmeans"``) or as a random sample of them (``init="sample"``). A fresh
encoder maps every input to nearly the same vector, and in its first optimiser steps its outputs
move (and grow and shrink) faster than a code can follow. So for ``warmup_steps`` steps the
codebook follows them: it is fitted again at steps 1, 2, 4, 8, ... (the k-means re-initialisation
of Łańcucki et al. 2020, "Robust training of vector quantized deep neural networks"), and codes left
unused by a step are restarted at once, while the codes in use keep what the decoder learnt of
them. A codebook drawn independently of the encoder (``init="uniform"``, van den Oord et al.'s, with
no warm-up) collapses instead: one code takes every position until a dead-code restart.

As a latent kind (``vq``) the quantiser owns the codes' distribution too: uniform over the K^(h w)
code maps until a prior is fitted to them (:mod:`aekit.parts.pixelcnn`, ``aekit train-prior``) and
attached; only then can the model sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aekit.errors import ConfigError, NotGenerativeError, check_choice
from aekit.parts.latents import Code, Latent, TensorSpec
from aekit.registry import register_latent

# --- helpers -------------------------------------------------------------------------------------


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place (a no-op in a single process)."""
    if _distributed():
        torch.distributed.all_reduce(tensor)
    return tensor


def _broadcast_(tensor: torch.Tensor) -> torch.Tensor:
    """Overwrite ``tensor`` with rank 0's copy, in place (a no-op in a single process)."""
    if _distributed():
        torch.distributed.broadcast(tensor, src=0)
    return tensor


def _all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Every process's ``rows`` ``(M_r, D)`` concatenated in rank order (``rows`` itself in a single process).

    Under torchrun each rank holds a contiguous slice of the global batch, so this is the global
    batch's rows in the order one process would see them. The slices may differ in length by one."""
    if not _distributed() or torch.distributed.get_world_size() == 1:
        return rows
    world = torch.distributed.get_world_size()
    size = torch.tensor([len(rows)], device=rows.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    torch.distributed.all_gather(sizes, size)
    counts = [int(n) for n in torch.cat(sizes).tolist()]  # a host sync, only at the few fits of a warm-up
    padded = rows.new_zeros(max(counts), rows.shape[1])
    padded[: len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, counts, strict=True)])


def nearest(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``codes`` ``(K, D)`` for every row of ``x`` ``(M, D)``: ``(M,)`` long.

    Squared distances ||x||^2 - 2 x.e + ||e||^2 are computed in float32 even under autocast: in
    half precision the cross term loses the digits that separate close codes. ||x||^2 is the same
    for every code, so it is left out of the argmin."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, e = x.detach().float(), codes.detach().float()
        dist = torch.addmm(e.square().sum(1)[None], x, e.t(), alpha=-2)  # (M, K) = ||e||^2 - 2 x.e
    return dist.argmin(1)


def sample_rows(x: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` random rows of ``x`` ``(M, D)``: distinct rows when ``M >= k``, else drawn with replacement."""
    pick = torch.randperm(len(x), device=x.device)[:k] if len(x) >= k else torch.randint(len(x), (k,), device=x.device)
    return x[pick]


def kmeans(x: torch.Tensor, k: int, iters: int = 10) -> torch.Tensor:
    """``k`` centroids ``(k, D)`` of the rows of ``x`` ``(M, D)`` by Lloyd's algorithm from ``k`` random rows.

    A fixed number of iterations and no convergence test, so the device never waits for the host.
    A centroid that loses all its rows stays where it was."""
    x = x.float()
    centroids = sample_rows(x, k)
    for _ in range(iters):
        assign = nearest(x, centroids)  # (M,)
        counts = torch.bincount(assign, minlength=k).float()  # (k,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)  # (k, D)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
    return centroids


CODEBOOK_INITS = ("kmeans", "sample", "uniform")


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each code occurs in ``indices`` (any shape): ``(K,)`` float32."""
    return torch.bincount(indices.reshape(-1), minlength=num_codes).float()


def usage_stats(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """``perplexity`` and ``usage`` of a codebook from its assignment counts ``(K,)``.

    perplexity = exp(entropy of the average one-hot assignment): K when every code is used equally
    often, 1 when a single code takes everything. usage = fraction of codes used at least once.
    """
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"perplexity": entropy.exp(), "usage": (counts > 0).float().mean()}


@dataclass
class Quantized:
    """What :class:`VectorQuantizer` returns.

    z_q : quantised map, shaped like the input, with the straight-through gradient to ``z_e``.
    indices : ``(N, *spatial)`` long, the chosen codes.
    codebook, commitment : ``(N,)`` per-sample squared distances (``codebook`` is None with EMA).
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    codebook: torch.Tensor | None
    commitment: torch.Tensor


# --- the quantiser -------------------------------------------------------------------------------


# A codebook whose codes' perplexity (exp of their entropy) is below this uses about one code.
COLLAPSED_PERPLEXITY = 2.0


@register_latent("vq")
class VectorQuantizer(Latent):
    """Nearest-neighbour quantiser with a codebook of ``num_codes`` vectors of ``code_dim`` values.

    Parameters
    ----------
    num_codes : K, the number of codebook vectors (>= 2).
    code_dim : D, the size of each vector; the input's dimension 1 (channels).
    commitment_weight : beta, the weight of the commitment term (used by the model's objective).
    use_ema : update the codebook by exponential moving averages instead of the codebook loss.
    decay : EMA decay in (0, 1).
    eps : Laplace smoothing of the EMA cluster sizes, so empty clusters never divide by zero.
    restart_after : every this many training steps, codes unused during them are re-seeded from
        random encoder outputs of the current batch; 0 disables restarts.
    init : how the codebook starts. ``kmeans``: k-means centroids of the encoder outputs of the first
        training batch; ``sample``: a random sample of those outputs; ``uniform``: Kaiming-uniform
        values, independent of the data. Under torchrun the global batch is used, so every process
        starts from the same codebook as a single process would.
    warmup_steps : with ``kmeans`` or ``sample``, for this many training steps the codebook follows
        the encoder's fast-moving outputs: fitted again at steps 1, 2, 4, ... up to this one, and
        codes unused in a step restarted every step (if ``restart_after`` > 0); 0: one fit, no
        warm-up. A codebook loaded from a state dict (a resumed or saved run) is kept: it is never
        fitted again.
    code_shape : the spatial shape ``(h, w)`` of the code maps it quantises (set by the model that
        uses it; needed for ``latent_dim`` and for sampling code maps).
    """

    discrete = True

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        *,
        commitment_weight: float = 0.25,
        use_ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_after: int = 20,
        init: str = "kmeans",
        warmup_steps: int = 32,
        code_shape: tuple[int, ...] | None = None,
    ):
        super().__init__()
        if num_codes < 2:
            raise ConfigError(f"num_codes (K) must be >= 2 for a codebook to choose from, got {num_codes}.")
        if code_dim < 1:
            raise ConfigError(f"code_dim (D) must be a positive integer, got {code_dim}.")
        if not (commitment_weight >= 0 and math.isfinite(commitment_weight)):
            raise ConfigError(f"beta (commitment weight) must be a finite number >= 0, got {commitment_weight}.")
        if not 0 < decay < 1:
            raise ConfigError(f"ema decay must lie in (0, 1), e.g. 0.99; got {decay}.")
        if eps <= 0 or restart_after < 0 or warmup_steps < 0:
            raise ConfigError(
                f"eps must be > 0, restart_after and warmup_steps >= 0; got eps={eps}, "
                f"restart_after={restart_after}, warmup_steps={warmup_steps}."
            )
        check_choice("codebook init", init, CODEBOOK_INITS)
        self.num_codes, self.code_dim = num_codes, code_dim
        self.commitment_weight, self.use_ema = commitment_weight, use_ema
        self.decay, self.eps, self.restart_after = decay, eps, restart_after
        self.init, self.warmup_steps = init, warmup_steps
        self.code_shape = None if code_shape is None else tuple(code_shape)
        self.prior: nn.Module | None = None  # a model of the code maps (GatedPixelCNN), fitted after training

        codebook = torch.empty(num_codes, code_dim)
        nn.init.kaiming_uniform_(codebook)  # bound sqrt(6 / D): the scale of a fresh encoder's outputs
        if use_ema:
            # The codebook is embed_sum / cluster_size; starting the sizes at 1 and the sums at the
            # codebook makes that ratio the initial codebook, so unused codes stay where they are.
            self.register_buffer("codebook", codebook)
            self.register_buffer("cluster_size", torch.ones(num_codes))
            self.register_buffer("embed_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("usage_window", torch.zeros(num_codes))  # assignments since the last check
        self._steps = 0  # training steps since construction; a Python int, so counting costs no sync
        # Python values, so checking them costs no sync. Loading a state dict marks the codebook as
        # initialised and ends the warm-up (_load_from_state_dict): a resumed run keeps its codebook.
        self.initialized = init == "uniform"  # fitted to data (or needs no data)
        self._warming = not self.initialized  # within the warm-up that follows the first fit

    @classmethod
    def from_config(cls, config: Any, features: tuple[int, ...]) -> Latent:
        if len(features) < 2 or features[0] != config.code_dim:
            raise ConfigError(
                f"The vq latent quantises code maps (N, code_dim, h, w) with code_dim = {config.code_dim}; this "
                f"encoder emits samples of shape {tuple(features)}. Make the encoder end with {config.code_dim} "
                "channels, or set code_dim to its channel count."
            )
        return cls(config.num_codes, config.code_dim, commitment_weight=config.commitment_weight,
                   use_ema=config.use_ema, decay=config.ema_decay, restart_after=config.restart_after,
                   init=config.codebook_init, warmup_steps=config.codebook_warmup,
                   code_shape=features[1:])  # fmt: skip

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, use_ema={self.use_ema}, init={self.init}"

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        # Loaded weights are kept: a resumed run, a saved run or a model trained further (from checkpoints of
        # any release, none of which says whether it was fitted) must not have its codebook refitted.
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.initialized, self._warming = True, False

    @property
    def latent_dim(self) -> int:  # type: ignore[override]
        """Width of the flat point code: ``code_dim * h * w``."""
        if self.code_shape is None:
            raise ConfigError("This quantiser does not know the shape of its code maps; pass code_shape=(h, w).")
        return self.code_dim * math.prod(self.code_shape)

    # --- lookups ---------------------------------------------------------------------------------

    def _flatten(self, z_e: torch.Tensor) -> torch.Tensor:
        if z_e.dim() < 2 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"expected an input (N, {self.code_dim}, ...), got shape {tuple(z_e.shape)}")
        return z_e.movedim(1, -1).reshape(-1, self.code_dim)  # (N * h * w, D)

    @torch.no_grad()
    def encode_indices(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for every position: ``(N, D, *spatial)`` -> ``(N, *spatial)`` long.

        Distances are computed in float32 even under autocast (:func:`nearest`).
        """
        return nearest(self._flatten(z_e), self.codebook).view(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``indices`` ``(N, *spatial)``: ``(N, D, *spatial)``."""
        return F.embedding(indices, self.codebook).movedim(-1, 1)

    # --- the latent contract ---------------------------------------------------------------------

    def forward(self, features: torch.Tensor) -> Code:
        """Quantise the encoder's map: ``z`` the straight-through map, ``mean`` the flat ``z_e``."""
        q = self.quantize(features)
        params = {"indices": q.indices, "commitment": q.commitment}
        if q.codebook is not None:
            params["codebook"] = q.codebook
        return Code(q.z_q, features.flatten(1), params)

    def regularizer(self, code: Code) -> dict[str, torch.Tensor]:
        """``codebook`` (absent with EMA) and ``commitment``: squared distances per sample ``(N,)``."""
        return {k: code.params[k] for k in ("codebook", "commitment") if k in code.params}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        weights = {} if self.use_ema else {"codebook": 1.0}
        weights["commitment"] = self.commitment_weight
        return weights

    def decoder_input(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (flat ``(N, D*h*w)`` or maps ``(N, D, h, w)``) snapped to their nearest codebook vectors."""
        if z.dim() == 2 and self.code_shape is not None:
            z = z.view(-1, self.code_dim, *self.code_shape)  # (N, D*h*w) -> (N, D, h, w)
        return self.lookup(self.encode_indices(z))

    def point_input(self, code: Code) -> torch.Tensor:
        return code.z  # the quantised code: decoding z_e snaps it to the same codebook vectors

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        return self.encode_indices(features)

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        return self.lookup(indices)

    def export_outputs(self) -> tuple[TensorSpec, ...]:
        if self.code_shape is None:
            raise ConfigError("This quantiser does not know the shape of its code maps; pass code_shape=(h, w).")
        return (TensorSpec("indices", self.code_shape, torch.int64, "indices", (0, self.num_codes - 1),
                           "the nearest codebook entry at each position of the code map"),)  # fmt: skip

    def exported_code(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.encode_indices(features),)

    @property
    def has_prior(self) -> bool:
        return self.prior is not None

    def attach_prior(self, prior: nn.Module | None) -> None:
        """Attach a prior over code maps (e.g. :class:`~aekit.parts.pixelcnn.GatedPixelCNN`), or detach with None."""
        if prior is not None and prior.num_codes != self.num_codes:
            raise ConfigError(
                f"The prior models {prior.num_codes} codes but this VQ-VAE has {self.num_codes}; "
                "fit the prior on this model's code maps (aekit train-prior RUN_DIR)."
            )
        self.prior = prior

    def sample_prior(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None, prior: str = "learned"
    ) -> torch.Tensor:
        """Code maps drawn from the fitted prior, or (``prior="uniform"``) independently and uniformly:
        the decoder's input ``(n, D, h, w)``. Uniform codes show why a prior is needed: they decode to noise."""
        if prior == "uniform":
            shape = (n, *self.code_shape)
            indices = torch.randint(self.num_codes, shape, generator=generator, device=self.codebook.device)
        elif prior != "learned":
            raise ConfigError(f"Unknown prior '{prior}'. Choose one of: learned, uniform.")
        elif self.prior is None:
            raise NotGenerativeError(
                "A VQ-VAE cannot sample on its own: its codes are a grid of discrete indices and it learns no "
                "distribution over them, so independent codes decode to noise. Fit an autoregressive prior on "
                "its code maps first: run aekit train-prior RUN_DIR, then sample again."
            )
        else:
            indices = self.prior.sample(n, shape=self.code_shape, generator=generator)
        return self.lookup(indices)

    def evaluation_stats(self, code: Code) -> dict[str, torch.Tensor]:
        return {"indices": code.params["indices"]}

    @torch.no_grad()
    def test_metrics(self, collected: dict[str, torch.Tensor], *, model: nn.Module, x: Any) -> dict[str, Any]:
        """Codebook use on the code maps, and the prior's likelihood of them when there is one.

        ``perplexity`` is exp(entropy) of the codes' frequencies (K when all are used equally);
        ``usage`` the fraction of codes used; ``prior_nll`` nats per code map, ``prior_bits_per_code``
        its value per position in bits, against ``uniform_bits_per_code`` = log2 K for independent
        uniform codes."""
        maps = collected["indices"]
        metrics: dict[str, Any] = {k: float(v) for k, v in usage_stats(code_counts(maps, self.num_codes)).items()}
        metrics["uniform_bits_per_code"] = math.log2(self.num_codes)
        if self.prior is not None:
            device = self.codebook.device
            nll = torch.cat([self.prior.nll(maps[i : i + 512].to(device)).cpu() for i in range(0, len(maps), 512)])
            metrics["prior_nll"] = float(nll.mean())
            metrics["prior_bits_per_code"] = metrics["prior_nll"] / (maps[0].numel() * math.log(2))
        return metrics

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        if metrics.get("perplexity", COLLAPSED_PERPLEXITY) >= COLLAPSED_PERPLEXITY:
            return []
        return [
            f"The codebook collapsed: its perplexity on the test codes is {metrics['perplexity']:.3g} of "
            f"{self.num_codes} codes, so nearly every position takes the same code and reconstructions look "
            "alike. Start the codebook from the encoder's outputs (--codebook-init kmeans), keep dead-code "
            "restarts on (--restart-after), or lower --lr."
        ]

    @property
    def score_names(self) -> tuple[str, ...]:
        return ("neg_log_joint",) if self.prior is not None else ()

    @torch.no_grad()
    def sample_scores(self, terms: dict[str, torch.Tensor], stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``neg_log_joint`` = -log p(x | codes) - log p_prior(codes) in nats: the code length of x under
        the model and its fitted prior (van den Oord et al. 2017 score data by the prior's likelihood)."""
        if self.prior is None:
            return {}
        return {"neg_log_joint": terms["recon"] + self.prior.nll(stats["indices"]).to(terms["recon"].dtype)}

    def diagnostics(self, model: nn.Module, x: Any) -> dict[str, float]:
        """Codebook ``perplexity`` and ``usage`` over the samples ``x`` (the validation split)."""
        stats = usage_stats(code_counts(model.code_maps(x), self.num_codes))
        return {k: float(v) for k, v in stats.items()}

    # --- quantisation ------------------------------------------------------------------------------

    def quantize(self, z_e: torch.Tensor, update: bool | None = None) -> Quantized:
        """Quantise ``z_e`` ``(N, D, *spatial)``; in training mode also update EMA statistics and restart codes.

        ``update`` overrides whether the codebook statistics change (default: ``self.training``). The
        first update, and those of steps 1, 2, 4, ... up to ``warmup_steps``, fit the codebook to
        ``z_e`` (``init``) before quantising it.
        """
        update = self.training if update is None else update
        if update and not self.initialized:
            self.init_codebook(z_e)
        elif update and self._warming:
            step = self._steps
            if step > self.warmup_steps:
                self._warming = False
            elif step & (step - 1) == 0:  # a power of two: fits grow sparse as the encoder settles
                self.init_codebook(z_e)
        indices = self.encode_indices(z_e)
        q = self.lookup(indices)  # (N, D, *spatial), float32 like the codebook
        z32 = z_e.float()
        # The losses are per sample, summed over positions and dimensions (seed 003's L).
        commitment = (z32 - q.detach()).square().flatten(1).sum(1)
        codebook = None if self.use_ema else (z32.detach() - q).square().flatten(1).sum(1)
        # Straight-through estimator: the forward value is q, the gradient w.r.t. z_e the identity.
        z_q = z_e + (q.to(z_e.dtype) - z_e).detach()
        if update:
            self._update(z_e, indices)
        return Quantized(z_q, indices, codebook, commitment)

    @torch.no_grad()
    def _update(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        flat = self._flatten(z_e).float()  # (M, D)
        idx = indices.reshape(-1)  # (M,)
        counts = code_counts(idx, self.num_codes)  # (K,)
        if self.use_ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, flat)  # (K, D)
            self.ema_update(_all_reduce_(counts), _all_reduce_(sums))
        self.usage_window += counts  # local counts; summed across processes only at the check
        self._steps += 1
        # In the warm-up the encoder's outputs leave codes behind within a step: restart them at once.
        warming = self._warming and self._steps < self.warmup_steps
        if self.restart_after and (warming or self._steps % self.restart_after == 0):
            self.restart_dead_codes(flat)

    @torch.compiler.disable  # a few times per run; its collectives and data-dependent sizes stay out of a graph
    @torch.no_grad()
    def init_codebook(self, z_e: torch.Tensor) -> None:
        """Set the codebook from the encoder outputs ``z_e`` ``(N, D, *spatial)`` as ``init`` says.

        Under torchrun every process gathers the whole global batch and computes the same codebook;
        rank 0's copy is then given to all, so they agree to the bit. Draws come from the global
        random stream, which the trainer seeds with the run's seed. With EMA the statistics restart
        from the new codebook (size 1, sum = the code), as for a fresh code.
        """
        flat = _all_gather_rows(self._flatten(z_e).detach().float().contiguous())  # (M, D), the global batch
        codes = kmeans(flat, self.num_codes) if self.init == "kmeans" else sample_rows(flat, self.num_codes)
        codes = _broadcast_(codes.contiguous())  # (K, D)
        self.codebook.copy_(codes.to(self.codebook.dtype))
        if self.use_ema:
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(self.codebook)
        self.usage_window.zero_()  # usage of the codes replaced says nothing about the new ones
        self.initialized = True

    @torch.no_grad()
    def ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """One EMA step from a batch's assignment counts ``(K,)`` and sums of assigned vectors ``(K, D)``.

        N_k <- decay N_k + (1 - decay) n_k,  m_k <- decay m_k + (1 - decay) sum_k,  e_k = m_k / N~_k,
        with Laplace-smoothed sizes N~_k = (N_k + eps) / (N + K eps) * N, N = sum_k N_k.
        """
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_sum.lerp_(sums, 1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead_codes(self, flat: torch.Tensor) -> None:
        """Re-seed the codes unused since the last check with random rows of ``flat`` ``(M, D)``.

        Without a host sync: every code gets a candidate, and ``where`` keeps the used ones. All
        processes agree on which codes died (summed counts) and take rank 0's candidates.
        """
        dead = _all_reduce_(self.usage_window.clone()) == 0  # (K,)
        pick = torch.randint(len(flat), (self.num_codes,), device=flat.device)
        candidates = _broadcast_(flat[pick].contiguous())  # (K, D)
        self.codebook.copy_(torch.where(dead[:, None], candidates.to(self.codebook.dtype), self.codebook))
        if self.use_ema:
            # The same state as a fresh code: size 1, sum = the vector itself.
            self.cluster_size.copy_(torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size))
            self.embed_sum.copy_(torch.where(dead[:, None], self.codebook, self.embed_sum))
        self.usage_window.zero_()
