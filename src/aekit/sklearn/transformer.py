"""``AutoencoderTransformer``: an aekit autoencoder as a scikit-learn transformer, data to codes and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from aekit.evaluation.scores import DEFAULT_IW_SAMPLES
from aekit.sklearn.base import ATTRIBUTES_DOC, FLOAT_DTYPES, PARAMETERS_DOC, AutoencoderEstimator


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoencoderEstimator):
    __doc__ = f"""An aekit autoencoder as a scikit-learn transformer: data to codes and back.

    ``transform`` gives each sample's point code (the posterior mean for a VAE), ``inverse_transform``
    decodes codes to data in the original units, ``score_samples`` says how normal each sample is
    (higher = more normal; the negated ``aekit score``), and ``score`` is its mean (so model selection
    such as ``GridSearchCV`` works without a scoring function: held-out reconstruction error, or for a
    VAE held-out log-likelihood bound).

    Parameters
    ----------{PARAMETERS_DOC}

    Attributes
    ----------{ATTRIBUTES_DOC}

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from aekit.sklearn import AutoencoderTransformer
    >>> X = load_digits().data
    >>> ae = AutoencoderTransformer(n_components=8, hidden=(64,), epochs=3, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 8)
    """

    def __init__(
        self,
        model: str = "ae",
        *,
        n_components: int | None = None,
        hidden: tuple[int, ...] | None = None,
        activation: str | None = None,
        likelihood: str | None = None,
        beta: float | None = None,
        noise: str | None = None,
        noise_level: float | None = None,
        sparsity_weight: float | None = None,
        contractive_weight: float | None = None,
        options: Mapping[str, Any] | None = None,
        normalize: str = "auto",
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        valid_fraction: float = 0.1,
        patience: int = 0,
        score_kind: str = "auto",
        iw_samples: int = DEFAULT_IW_SAMPLES,
        random_state: Any = None,
        device: str = "auto",
        verbose: bool | int = False,
    ):
        self.model = model
        self.n_components = n_components
        self.hidden = hidden
        self.activation = activation
        self.likelihood = likelihood
        self.beta = beta
        self.noise = noise
        self.noise_level = noise_level
        self.sparsity_weight = sparsity_weight
        self.contractive_weight = contractive_weight
        self.options = options
        self.normalize = normalize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.score_kind = score_kind
        self.iw_samples = iw_samples
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> AutoencoderTransformer:
        """Train the model on ``X`` (n_samples, n_features); ``y`` is ignored."""
        self._fit_model(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The code of each sample, ``(n_samples, n_components_)``, in X's float dtype (float32 or float64)."""
        X, x = self._checked(X)
        return self._batched(self.model_.encode, x).astype(X.dtype, copy=False)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode codes ``(n_samples, n_components_)`` to data in the original units: the likelihood's mean,
        un-standardised. ``inverse_transform(transform(X))`` is the reconstruction of X."""
        check_is_fitted(self)
        Z = check_array(X, dtype=FLOAT_DTYPES)
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__} decodes codes of {self.n_components_}: "
                "pass the output of transform."
            )
        z = torch.from_numpy(Z.astype(np.float32))
        return (self._batched(self.model_.decode, z) * self.scale_ + self.mean_).astype(Z.dtype, copy=False)

    def score(self, X: Any, y: Any = None) -> float:
        """The mean of :meth:`score_samples` (higher is better): what ``GridSearchCV`` maximises by default."""
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self) -> int:  # scikit-learn's name: get_feature_names_out gives one per code unit
        return self.n_components_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
