"""``AutoencoderOutlierDetector``: an aekit autoencoder as a scikit-learn outlier detector, with PyOD's attributes."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import OutlierMixin

from aekit.analyses.anomaly import DEFAULT_CONTAMINATION
from aekit.errors import ConfigError
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES, check_contamination, contamination_threshold
from aekit.sklearn.base import ATTRIBUTES_DOC, PARAMETERS_DOC, AutoencoderEstimator


class AutoencoderOutlierDetector(OutlierMixin, AutoencoderEstimator):
    __doc__ = f"""An aekit autoencoder as a scikit-learn outlier detector (with PyOD's attributes too).

    The anomaly score is ``aekit score --score auto``'s for the model (``score_kind``): the
    reconstruction error of an AE, the importance-weighted bound on -log p(x) of a VAE, the free
    energy of the latent EBM. ``threshold_`` is the ``1 - contamination`` quantile of the scores of
    the data passed to ``fit``, so that ``contamination`` of it is flagged.

    Sign conventions, side by side (docs/sklearn.md has the table):

    - ``score_samples(X)``: minus the anomaly score; higher = more normal (scikit-learn).
    - ``decision_function(X)``: ``score_samples(X) - offset_``; negative = outlier (scikit-learn).
    - ``predict(X)``: +1 inlier, -1 outlier (scikit-learn); ``offset_ = -threshold_``.
    - ``decision_scores_``: the anomaly scores of the data passed to fit; higher = more abnormal (PyOD,
      and ``aekit score``).
    - ``labels_``: 0 inlier, 1 outlier on the data passed to fit (PyOD).
    - ``threshold_``: in anomaly-score units; a score above it is an outlier (PyOD, ``aekit score``).

    Parameters
    ----------
    contamination : float, default=0.05
        The expected fraction of outliers, in (0, 0.5], as ``aekit score --contamination``; here the
        quantile is taken over the data passed to ``fit`` (``aekit score`` takes it over a run's
        validation split).{PARAMETERS_DOC}

    Attributes
    ----------
    threshold_ : float
        Samples whose anomaly score exceeds it are outliers.
    offset_ : float
        ``-threshold_``: ``decision_function = score_samples - offset_``.
    decision_scores_ : ndarray of shape (n_samples,)
        The anomaly scores of the data passed to fit (higher = more abnormal).
    labels_ : ndarray of shape (n_samples,)
        1 for the outliers among the data passed to fit, 0 for the inliers.{ATTRIBUTES_DOC}

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from aekit.sklearn import AutoencoderOutlierDetector
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> detector = AutoencoderOutlierDetector(n_components=4, hidden=(32,), epochs=5, random_state=0).fit(X)
    >>> float(detector.labels_.mean())
    0.05...
    """

    def __init__(
        self,
        model: str = "ae",
        *,
        contamination: float = DEFAULT_CONTAMINATION,
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
        self.contamination = contamination
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

    def fit(self, X: Any, y: Any = None) -> AutoencoderOutlierDetector:
        """Train the model on ``X`` (n_samples, n_features) and set the threshold from its scores; ``y`` is ignored."""
        c = self.contamination
        if not isinstance(c, numbers.Real) or isinstance(c, bool):
            raise ConfigError(f"contamination is the expected fraction of outliers, a number in (0, 0.5], got {c!r}.")
        check_contamination(c)  # before training: a value outside (0, 0.5] is refused at once
        x = self._fit_model(X)
        self.decision_scores_ = self._anomaly_scores(x)
        self.threshold_ = contamination_threshold(self.decision_scores_, c)
        self.offset_ = -self.threshold_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers (scikit-learn's sign)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for inliers, -1 for outliers (anomaly score above ``threshold_``)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its +1 / -1 labels (from the scores computed while fitting)."""
        return 1 - 2 * self.fit(X).labels_
