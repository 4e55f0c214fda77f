"""What the scikit-learn estimators share: the parameters and their meaning, training, inference, scoring.

:class:`AutoencoderEstimator` maps the estimator's parameters onto an aekit :class:`~aekit.config.RunConfig`
(checked as ``aekit train`` checks it), standardises the features, trains with
:class:`~aekit.training.Trainer` on all but a seeded held-out share, keeps the best epoch's weights, and
scores with :mod:`aekit.evaluation.scores`.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from aekit.config import DataConfig, RunConfig, from_dict
from aekit.data import compute_normalization
from aekit.errors import ConfigError
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES, resolve_kind, score_samples
from aekit.models import Model, build_model
from aekit.models.base import device_of
from aekit.parts.likelihoods import resolve_likelihood
from aekit.training import Trainer
from aekit.training.trainer import resolve_device

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6: the same check was a private method of the estimator

    def validate_data(estimator: BaseEstimator, X: Any, **kwargs: Any) -> np.ndarray:
        return estimator._validate_data(X, **kwargs)


FLOAT_DTYPES = (np.float64, np.float32)  # kept as given; anything else becomes float64
BATCH = 1024  # samples per inference pass

# Estimator parameters that stand for an aekit option: options={...} may not set these again.
PARAMETER_OF = {
    "model": "model",
    "latent_dim": "n_components",
    "hidden": "hidden",
    "activation": "activation",
    "likelihood": "likelihood",
    "beta": "beta",
    "noise": "noise",
    "noise_level": "noise_level",
    "sparsity_weight": "sparsity_weight",
    "contractive_weight": "contractive_weight",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "patience": "patience",
    "seed": "random_state",
    "device": "device",
    "progress": "verbose",
    "normalize": "normalize",
    "valid_fraction": "valid_fraction",
}
DATA_KEYS = {f.name for f in fields(DataConfig)}  # the data comes from fit(X)
RUN_DIRECTORY_KEYS = {"tensorboard", "mlflow"}  # loggers of a run directory (aekit.train)

PARAMETERS_DOC = """
    model : str, default="ae"
        The aekit preset (``aekit train --model``): ae, linear-ae, sparse-ae, dae, cae, vae, beta-vae,
        latent-ebm, or a preset registered by a plugin. vq-vae needs images and is refused.
    n_components : int or None, default=None
        Size of the code (aekit's ``latent_dim``); None: the preset's (20).
    hidden : tuple of int or None, default=None
        Widths of the MLP's hidden layers; None: the preset's ((400,); linear-ae: none).
    activation : str or None, default=None
        Of the hidden layers: relu, sigmoid, tanh, elu, gelu, leaky_relu, none; None: the preset's.
    likelihood : str or None, default=None
        gaussian, bernoulli (data in [0, 1]) or auto (bernoulli for training data in [0, 1], else
        gaussian; standardised data is gaussian); None: the preset's.
    beta : float or None, default=None
        Weight of the KL term (vae, beta-vae only); None: the preset's (1; beta-vae 4).
    noise, noise_level : str, float or None, default=None
        Input corruption while training (gaussian, salt_pepper, mask) and its level; None: the
        preset's (dae: mask, 0.5; others none).
    sparsity_weight : float or None, default=None
        Weight of the sparsity penalty (ae family); None: the preset's (sparse-ae: 1e-3).
    contractive_weight : float or None, default=None
        Weight of the contractive penalty (ae family); None: the preset's (cae: 0.1).
    options : dict or None, default=None
        Any other option of the model or of training by its aekit name, e.g.
        ``{"sparsity": "kl", "code_activation": "sigmoid", "weight_decay": 1e-5}``.
    normalize : {"auto", "standard", "none"}, default="auto"
        Standardise each feature with the mean and standard deviation of the data passed to ``fit``
        (auto and standard; a constant feature is only centred), or leave the data as it is.
    epochs, batch_size, lr : int, int, float, default=50, 128, 1e-3
        Passes over the training data, samples per Adam step, Adam's learning rate.
    valid_fraction : float, default=0.1
        Fraction of the data passed to ``fit`` held out (seeded) to pick the best epoch and for early
        stopping; 0 trains on everything and keeps the weights with the lowest training loss.
    patience : int, default=0
        Early stopping: epochs without improvement on the held-out data; 0 disables it.
    score_kind : str, default="auto"
        The anomaly score (``aekit score --score``): auto (the model's best-founded one: the
        importance-weighted bound for a VAE, the free energy for the latent EBM, else the
        reconstruction error), recon, neg_elbo, nll_iw, free_energy.
    iw_samples : int, default=100
        Posterior draws of the nll_iw score.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial weights, the held-out split and the batch order; an int gives the same
        output for the same data (and the weights ``aekit train --seed`` gives).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train; auto: CUDA when present. A fitted estimator computes on the device of ``model_``.
    verbose : bool or int, default=False
        Show a progress bar while training."""

ATTRIBUTES_DOC = """
    model_ : aekit.Model
        The trained model (the weights of the best epoch), in evaluation mode.
    config_ : aekit.RunConfig
        The resolved configuration it was built and trained with.
    n_components_ : int
        Size of the code.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        The standardisation: the model sees ``(X - mean_) / scale_`` (zeros and ones for normalize="none").
    score_kind_ : str
        The anomaly score ``score_samples`` negates, resolved from ``score_kind``.
    history_ : list of dict
        One record per epoch (as in a run's metrics.jsonl): train/ and valid/ loss terms, lr, timing.
    loss_curve_ : list of float
        The training loss per epoch.
    n_iter_, best_epoch_ : int
        Epochs trained, and the epoch whose weights were kept.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X has string column names."""


class AutoencoderEstimator(BaseEstimator):
    """What both estimators share: the parameters' meaning, training, inference and scoring.

    Not an estimator on its own: :class:`aekit.sklearn.AutoencoderTransformer` and
    :class:`aekit.sklearn.AutoencoderOutlierDetector` declare the parameters (scikit-learn reads them
    from ``__init__``)."""

    # The subclasses declare their parameters in __init__ (scikit-learn reads the signature).
    model: str
    n_components: int | None
    hidden: tuple[int, ...] | None
    activation: str | None
    likelihood: str | None
    beta: float | None
    noise: str | None
    noise_level: float | None
    sparsity_weight: float | None
    contractive_weight: float | None
    options: Mapping[str, Any] | None
    normalize: str
    epochs: int
    batch_size: int
    lr: float
    valid_fraction: float
    patience: int
    score_kind: str
    iw_samples: int
    random_state: Any
    device: str
    verbose: bool | int

    # --- fitting ---------------------------------------------------------------------------------

    def _fit_model(self, X: Any) -> torch.Tensor:
        """Validate ``X``, standardise it, train the model; return ``X`` as the model sees it."""
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        seed = self._seed()
        config = from_dict(self._config_keys(seed))  # every value checked (and coerced) as aekit train does
        data = config.data
        if "condition_on" in config.model.field_names() and config.model.condition_on != "none":
            raise ConfigError(
                "The scikit-learn estimators are unsupervised: a conditional model needs labels at every call. "
                "Leave condition_on out of options."
            )
        if data.normalize == "none":
            mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        else:  # a constant feature gets scale 1 (aekit's rule for tabular data): centred, never NaN
            stats = compute_normalization(torch.tensor(X, dtype=torch.float64))
            mean, scale = np.asarray(stats["mean"]), np.asarray(stats["std"])
        x = standardise(X, mean, scale)
        x_train, x_valid = held_out_split(x, data.valid_fraction, seed)
        if "likelihood" in config.model.field_names():
            config = config.replace(likelihood=resolve_likelihood(config.model.likelihood, x_train))
        device = resolve_device(config.train.device)
        # Training seeds torch's global generators; the caller gets its own streams back afterwards.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # the initial weights depend on the seed alone, as in aekit.train
            model = build_model(config.model, (X.shape[1],))
            model.check_data(x_train, "the data passed to fit")
            kind = resolve_kind(model, self.score_kind)
            if kind == "nll_iw" and not (isinstance(self.iw_samples, numbers.Integral) and self.iw_samples >= 1):
                raise ConfigError(f"iw_samples must be an integer >= 1 for the nll_iw score, got {self.iw_samples!r}.")
            best: dict[str, torch.Tensor] = {}
            history: list[dict[str, Any]] = []

            def keep_best(trainer: Trainer, record: dict[str, Any], improved: bool) -> None:
                history.append(record)
                if improved:
                    best.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

            trainer = Trainer(model, config.train, callbacks=[keep_best])
            state = trainer.fit(x_train, x_valid)
        model.load_state_dict(best)
        self.mean_, self.scale_ = mean, scale
        self.model_: Model = model.eval()
        self.config_: RunConfig = config
        self.n_components_: int = model.latent_dim
        self.score_kind_: str = kind
        self.history_ = history
        self.loss_curve_ = [r["train/loss"] for r in history]
        self.n_iter_, self.best_epoch_ = state.epoch, state.best_epoch
        self._iw_samples = int(self.iw_samples) if kind == "nll_iw" else DEFAULT_IW_SAMPLES
        return x

    def _config_keys(self, seed: int) -> dict[str, Any]:
        """The aekit keys the parameters stand for (None: the preset's default), with ``options``."""
        options = {} if self.options is None else self.options
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"options must be a dict of aekit option names to values, e.g. {{'sparsity': 'kl'}}, got {options!r}."
            )
        given = {
            "latent_dim": self.n_components, "hidden": self.hidden, "activation": self.activation,
            "likelihood": self.likelihood, "beta": self.beta, "noise": self.noise, "noise_level": self.noise_level,
            "sparsity_weight": self.sparsity_weight, "contractive_weight": self.contractive_weight,
        }  # fmt: skip
        keys: dict[str, Any] = {"model": self.model, **{k: v for k, v in given.items() if v is not None}}
        for key, value in options.items():
            name = str(key).replace("-", "_")
            if name in PARAMETER_OF:
                raise ConfigError(
                    f"Option '{key}' is the estimator's parameter {PARAMETER_OF[name]}: pass "
                    f"{PARAMETER_OF[name]}={value!r}, not options={{'{key}': ...}}."
                )
            if name in DATA_KEYS:
                raise ConfigError(
                    f"Option '{key}' describes a data source; the estimator trains on the X passed to fit. "
                    "Select or transform the data before fit (the held-out part is valid_fraction)."
                )
            if name in RUN_DIRECTORY_KEYS:
                raise ConfigError(
                    f"Option '{key}' logs a run directory, and an estimator writes none. Train with "
                    f"aekit.train(..., {name}=...) to log one, or watch history_ after fit."
                )
            keys[name] = value
        train = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "patience": self.patience,
                 "seed": seed, "device": self.device, "progress": bool(self.verbose)}  # fmt: skip
        data = {"normalize": self.normalize, "valid_fraction": self.valid_fraction, "test_fraction": 0.0}
        return keys | train | data

    def _seed(self) -> int:
        """aekit's integer seed: ``random_state`` itself when it is an int, else a draw from it."""
        rng = check_random_state(self.random_state)  # refuses what is neither None, an int nor a RandomState
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    # --- inference -------------------------------------------------------------------------------

    def _checked(self, X: Any) -> tuple[np.ndarray, torch.Tensor]:
        """``X`` validated against the fitted estimator, and standardised as the model sees it."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        return X, standardise(X, self.mean_, self.scale_)

    @torch.no_grad()
    def _batched(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> np.ndarray:
        self.model_.eval()
        device = device_of(self.model_)
        padded = pad_rows(x)
        out = [fn(padded[i : i + BATCH].to(device)).cpu() for i in range(0, len(padded), BATCH)]
        return torch.cat(out)[: len(x)].numpy()

    def _anomaly_scores(self, x: torch.Tensor) -> np.ndarray:
        """The anomaly score ``score_kind_`` (higher = more anomalous) of standardised samples, float64."""
        self.model_.check_data(x, "the data scored")
        if self.score_kind_ == "nll_iw":  # Monte Carlo draws per batch: padding would not make it batch-invariant
            return score_samples(self.model_, x, kind="nll_iw", iw_samples=self._iw_samples, seed=0)
        return score_samples(self.model_, pad_rows(x), kind=self.score_kind_, seed=0, batch_size=BATCH)[: len(x)]

    def score_samples(self, X: Any) -> np.ndarray:
        """How normal each sample is, scikit-learn's sign convention: **higher = more normal**.

        The negated anomaly score ``score_kind_`` of ``aekit score`` (e.g. minus the reconstruction
        error per element, or for a VAE the importance-weighted lower bound on log p(x) in nats), in
        the standardised units the model sees.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        _, x = self._checked(X)
        return -self._anomaly_scores(x)

    # --- pickling: a model trained on a GPU unpickles on any machine -------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        model = state.get("model_")
        if model is not None and device_of(model).type != "cpu":
            state = {**state, "model_": copy.deepcopy(model).cpu()}
        return state


def standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    """``(X - mean) / scale`` as the float32 tensor the model sees."""
    return torch.from_numpy(((X - mean) / scale).astype(np.float32))


def pad_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` with rows of zeros appended up to a multiple of ``BATCH``. Every inference pass then has the
    same shape, so BLAS picks the same kernel and a sample's outputs do not depend on the samples it is
    passed with (a handful of rows takes another code path, which rounds differently)."""
    pad = -len(x) % BATCH
    return torch.cat([x, x.new_zeros(pad, *x.shape[1:])]) if pad else x


def held_out_split(x: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A seeded split of ``x`` into training rows and ``fraction`` held out (rounded, at least one when
    ``fraction`` > 0, none when that would leave nothing to train on)."""
    n = len(x)
    n_valid = max(1, int(np.floor(n * fraction + 0.5))) if fraction > 0 else 0
    if n_valid >= n:
        return x, None
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    return x[perm[n_valid:]], x[perm[:n_valid]]
