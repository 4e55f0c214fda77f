"""Disentanglement metrics on data with known generative factors (dSprites).

Four scores of how well single latent dimensions capture single factors of variation:

- :func:`betavae_score` (Higgins et al. 2017, "beta-VAE", ICLR, section 3): the accuracy of a
  linear classifier that tells, from ``mean |z1 - z2|`` over pairs of images sharing one factor,
  which factor they share. Chance is ``1 / n_factors``; it saturates easily (a good encoder of
  only some factors can still reach ~1).
- :func:`factorvae_score` (Kim & Mnih 2018, "Disentangling by factorising", ICML, section 4): fix
  one factor over a batch of images; the code dimension whose variance (relative to its variance
  over the data) drops most votes for that factor; the score is the held-out accuracy of the
  majority vote from dimension to factor. Chance is ``1 / n_factors``; unlike the beta-VAE score it
  cannot reach 1 when one dimension serves two factors.
- :func:`mig` (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", section 4.1):
  for each factor, the gap between the two latent dimensions with the highest mutual information
  with it, normalised by the factor's entropy, averaged over factors. 0 for codes that ignore the
  factors or spread each one over several dimensions, 1 for one dimension per factor.
- :func:`dci` (Eastwood & Williams 2018, "A framework for the quantitative evaluation of
  disentangled representations", ICLR): a classifier per factor yields the importance of every
  code dimension for every factor; disentanglement (does each dimension serve one factor?) and
  completeness (is each factor served by one dimension?) are one minus normalised entropies of
  that matrix, informativeness is the classifiers' test accuracy.

All take an ``encode(x) -> (N, K)`` callable on images ``(N, 1, 64, 64)`` float32 in [0, 1]
(``aekit.Run.encode``: posterior means for a VAE) and a ``render(factors) -> images`` callable
(:func:`aekit.data.dsprites.render`), and draw factors uniformly from the full grid, so a model
trained on ``dsprites-small`` is scored on the whole generative distribution; all are seeded and
deterministic. :func:`disentanglement_report` runs the four on a trained run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aekit.data import dsprites
from aekit.errors import ConfigError, DataError, check_choice

Encoder = Callable[[np.ndarray], Any]  # images (N, C, H, W) float32 -> codes (N, K), tensor or array
Renderer = Callable[[np.ndarray], np.ndarray]  # factor indices (N, F) int64 -> images (N, C, H, W)

DSPRITES_NAMES = ("dsprites", "dsprites-small")
ENCODE_BATCH = 2048  # images per encode call: bounds memory (2048 x 64 x 64 float32 = 32 MB)
PRUNE_THRESHOLD = 0.05  # FactorVAE score: code dimensions with a smaller std are "collapsed" (disentanglement_lib)
DCI_PREDICTORS = ("random-forest", "gradient-boosting")


def betavae_score(
    encode: Encoder,
    render: Renderer = dsprites.render,
    factor_sizes: Sequence[int] = dsprites.FACTOR_SIZES,
    *,
    n_train: int = 1000,
    n_test: int = 500,
    batch: int = 64,
    seed: int = 0,
) -> float:
    """The beta-VAE metric (Higgins et al. 2017): held-out accuracy of a linear factor classifier.

    Each point picks a factor ``k`` uniformly, draws ``batch`` (L) pairs of factor vectors that
    share factor ``k`` (all others independent), and takes ``mean over pairs of |z1 - z2|``. A
    logistic regression trained on ``n_train`` such points predicts ``k`` on ``n_test`` others.

    The paper uses L = 64 and (in later reimplementations) 10,000 / 5,000 points; the defaults
    here (1,000 / 500) encode 192,000 images, which keeps an evaluation of a small MLP encoder
    within about a minute on a CPU at a standard error of about 2% on the accuracy. Features are
    standardised before the classifier so that the score does not depend on the latent's units.

    Returns
    -------
    Accuracy in [0, 1]; chance is ``1 / len(factor_sizes)``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for name, value in (("n_train", n_train), ("n_test", n_test), ("batch", batch)):
        _check_positive(name, value)
    rng = np.random.default_rng(seed)
    x_train, y_train = _betavae_points(encode, render, factor_sizes, n_train, batch, rng)
    x_test, y_test = _betavae_points(encode, render, factor_sizes, n_test, batch, rng)
    if len(np.unique(y_train)) < 2:
        raise ConfigError(f"n_train={n_train} drew points for a single factor; pass n_train >= 50.")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier.fit(x_train, y_train)
    return float(classifier.score(x_test, y_test))


def _betavae_points(
    encode: Encoder, render: Renderer, sizes: Sequence[int], n: int, batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    fixed = rng.integers(0, len(sizes), n)  # the factor each point's pairs share
    per_call = max(1, ENCODE_BATCH // (2 * batch))  # points whose 2 * L images go in one encode call
    features = []
    for start in range(0, n, per_call):
        k = np.repeat(fixed[start : start + per_call], batch)  # (P * L,)
        f1, f2 = _sample(sizes, len(k), rng), _sample(sizes, len(k), rng)
        rows = np.arange(len(k))
        f2[rows, k] = f1[rows, k]
        z = _encode(encode, render(np.concatenate([f1, f2])))
        diff = np.abs(z[: len(k)] - z[len(k) :])  # (P * L, K)
        features.append(diff.reshape(-1, batch, diff.shape[1]).mean(axis=1))  # (P, K)
    return np.concatenate(features), fixed


def factorvae_score(
    encode: Encoder,
    render: Renderer = dsprites.render,
    factor_sizes: Sequence[int] = dsprites.FACTOR_SIZES,
    *,
    n_train: int = 1000,
    n_eval: int = 500,
    batch: int = 64,
    n_variance: int = 10_000,
    prune_threshold: float = PRUNE_THRESHOLD,
    seed: int = 0,
) -> float:
    """The FactorVAE metric (Kim & Mnih 2018): held-out accuracy of a majority vote from dimension to factor.

    Each code dimension is scaled by its standard deviation over ``n_variance`` images with random
    factors. Each vote picks a factor ``k`` uniformly, fixes it at a random value over ``batch`` (L)
    images whose other factors are independent, and votes ``(k, argmin_j var_j / global_var_j)``.
    The classifier maps each dimension to the factor with most of its ``n_train`` votes; the score
    is its accuracy on ``n_eval`` other votes.

    Dimensions whose std is below ``prune_threshold`` (in the code's units) count as collapsed and
    are left out; 0.05 and L = 64 follow disentanglement_lib (Locatello et al. 2019), which uses
    10,000 / 5,000 votes. The defaults here (1,000 / 500) encode 106,000 images
    at a standard error of about 2% on the accuracy. When every dimension is collapsed the score
    is 0.

    Returns
    -------
    Accuracy in [0, 1]; chance is ``1 / len(factor_sizes)``. A code with one dimension per factor
    scores 1.
    """
    _check_factorvae(n_train, n_eval, batch, n_variance, prune_threshold)
    rng = np.random.default_rng(seed)
    codes = _encode_factors(encode, render, _sample(factor_sizes, n_variance, rng))
    return _factorvae(encode, render, factor_sizes, codes, n_train, n_eval, batch, prune_threshold, rng)


def _check_factorvae(n_train: int, n_eval: int, batch: int, n_variance: int, prune_threshold: float) -> None:
    for name, value in (("n_train", n_train), ("n_eval", n_eval)):
        _check_positive(name, value)
    for name, value in (("batch", batch), ("n_variance", n_variance)):
        _check_positive(name, value, minimum=2)  # a variance needs two samples
    if not isinstance(prune_threshold, (int, float)) or not 0 <= prune_threshold < float("inf"):
        raise ConfigError(
            f"Expected prune_threshold to be a finite number >= 0 (a std in code units), got {prune_threshold!r}."
        )


def _factorvae(
    encode: Encoder,
    render: Renderer,
    sizes: Sequence[int],
    codes: np.ndarray,
    n_train: int,
    n_eval: int,
    batch: int,
    prune_threshold: float,
    rng: np.random.Generator,
) -> float:
    scale = codes.std(axis=0, ddof=1)  # (K,): normalising by it makes the vote independent of units
    active = (scale >= prune_threshold) & (scale > 0)
    if not active.any():
        return 0.0  # as disentanglement_lib: a fully collapsed code carries no factor
    train = _factorvae_votes(encode, render, sizes, n_train, batch, scale, active, rng)
    held_out = _factorvae_votes(encode, render, sizes, n_eval, batch, scale, active, rng)
    classifier = train.argmax(axis=0)  # (K,): each dimension's majority factor
    return float(held_out[classifier, np.arange(len(classifier))].sum() / held_out.sum())


def _factorvae_votes(
    encode: Encoder,
    render: Renderer,
    sizes: Sequence[int],
    n: int,
    batch: int,
    scale: np.ndarray,
    active: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Vote counts ``(F, K)``: how often fixing factor ``k`` left dimension ``j`` with the least variance."""
    fixed = rng.integers(0, len(sizes), n)  # the factor each vote fixes
    per_call = max(1, ENCODE_BATCH // batch)  # votes whose L images go in one encode call
    votes = np.zeros((len(sizes), len(scale)), np.int64)
    for start in range(0, n, per_call):
        k = fixed[start : start + per_call]  # (P,)
        rows = np.arange(len(k))
        f = _sample(sizes, len(k) * batch, rng).reshape(len(k), batch, len(sizes))  # (P, L, F)
        f[rows, :, k] = f[rows, 0, k][:, None]  # one random value of factor k across each vote's L images
        z = _encode(encode, render(f.reshape(-1, len(sizes))))  # (P * L, K)
        variance = z.reshape(len(k), batch, -1).var(axis=1, ddof=1) / scale**2  # (P, K), normalised
        variance[:, ~active] = np.inf
        np.add.at(votes, (k, variance.argmin(axis=1)), 1)
    return votes


def mig(
    encode: Encoder,
    render: Renderer = dsprites.render,
    factor_sizes: Sequence[int] = dsprites.FACTOR_SIZES,
    *,
    n: int = 10_000,
    bins: int = 20,
    seed: int = 0,
) -> float:
    """Mutual information gap (Chen et al. 2018) of ``encode`` on ``n`` images with random factors.

    Defaults follow the common reimplementations: 10,000 samples, each latent dimension
    discretised into 20 equal-width bins. See :func:`mig_from_codes` for the computation.
    """
    _check_positive("n", n)
    factors = _sample(factor_sizes, n, np.random.default_rng(seed))
    return mig_from_codes(_encode_factors(encode, render, factors), factors, bins=bins)[0]


def mig_from_codes(codes: Any, factors: Any, *, bins: int = 20) -> tuple[float, np.ndarray]:
    """MIG of codes ``(N, K)`` against discrete factors ``(N, F)``; returns ``(mig, gap per factor)``.

    ``I(z_j; v_k)`` is estimated with ``sklearn.metrics.mutual_info_score`` (nats) after each
    latent dimension is cut into ``bins`` equal-width bins over its range; ``H(v_k)`` is the
    empirical entropy of factor ``k``. The gap of factor ``k`` is ``(I_(1) - I_(2)) / H(v_k)``,
    ``I_(1) >= I_(2)`` the two largest over latent dimensions (``I_(2) = 0`` for a single
    dimension); MIG is the mean gap.
    """
    from sklearn.metrics import mutual_info_score

    _check_positive("bins", bins)
    z, v = _as_numpy(codes).astype(np.float64), np.asarray(factors)
    if z.ndim != 2 or v.ndim != 2 or len(z) != len(v):
        raise DataError(f"Expected codes (N, K) and factors (N, F) with the same N, got {z.shape} and {v.shape}.")
    if not np.isfinite(z).all():
        raise DataError("The codes hold NaN or infinite values; the encoder diverged. Check the run's training.")
    constant = [k for k in range(v.shape[1]) if len(np.unique(v[:, k])) < 2]
    if constant:
        raise DataError(f"Factors {constant} take a single value in the sample; MIG needs every factor to vary.")
    # Equal-width bins over each dimension's range, as in Locatello et al. (2019)'s reimplementation.
    discrete = [np.digitize(col, np.histogram(col, bins)[1][:-1]) for col in z.T]
    mi = np.array([[mutual_info_score(v[:, k], d) for k in range(v.shape[1])] for d in discrete])  # (K, F)
    entropy = np.array([mutual_info_score(v[:, k], v[:, k]) for k in range(v.shape[1])])  # H(v_k), nats
    top = -np.sort(-mi, axis=0)
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = (top[0] - second) / entropy
    return float(gaps.mean()), gaps


@dataclass(frozen=True)
class DCIScores:
    """Eastwood & Williams (2018)'s three scores, each in [0, 1], higher is better, and what they come from."""

    disentanglement: float  # sum_i rho_i (1 - H_F(P_i.)): does each code dimension serve one factor?
    completeness: float  # sum_k rho~_k (1 - H_K(P~_.k)): is each factor served by one code dimension?
    informativeness: float  # mean test accuracy over factors (disentanglement_lib's; the paper reports an error)
    importance: np.ndarray  # (K, F): R_ik, the importance of code dimension i for factor k
    accuracy: np.ndarray  # (F,): test accuracy per factor


def dci(
    encode: Encoder,
    render: Renderer = dsprites.render,
    factor_sizes: Sequence[int] = dsprites.FACTOR_SIZES,
    *,
    n_train: int = 2000,
    n_test: int = 1000,
    predictor: str = "random-forest",
    seed: int = 0,
) -> DCIScores:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018) of ``encode``.

    Codes of ``n_train + n_test`` images with random factors; see :func:`dci_from_codes`. The
    defaults (2,000 / 1,000) keep the evaluation within a few seconds on a CPU; disentanglement_lib
    uses 10,000 / 5,000.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        _check_positive(name, value)
    check_choice("predictor", predictor, DCI_PREDICTORS)
    factors = _sample(factor_sizes, n_train + n_test, np.random.default_rng(seed))
    codes = _encode_factors(encode, render, factors)
    return dci_from_codes(
        codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:], predictor=predictor, seed=seed
    )


def dci_from_codes(
    train_codes: Any,
    train_factors: Any,
    test_codes: Any,
    test_factors: Any,
    *,
    predictor: str = "random-forest",
    seed: int = 0,
) -> DCIScores:
    """DCI of codes ``(N, K)`` against discrete factors ``(N, F)``, the classifiers fitted on the train pair.

    One classifier per factor predicts the factor's value from the code; ``R_ik`` is the impurity
    importance of dimension ``i`` in the classifier of factor ``k`` (each column sums to 1).

    ``predictor`` chooses the classifier:

    - ``"random-forest"`` (default): 50 trees of depth <= 10, every dimension considered at every
      split. Eastwood & Williams use random forests beside Lasso; a classifier rather than their
      regressor, as in disentanglement_lib, because dSprites' shape is categorical. A few seconds
      on 2,000 codes.
    - ``"gradient-boosting"``: ``GradientBoostingClassifier()`` with its defaults, as in
      disentanglement_lib (Locatello et al. 2019), for numbers comparable with theirs. It fits one
      tree per class per stage, so the 40 orientations and 32 positions of dSprites cost minutes.

    See :func:`dci_from_importance` for the two entropies.
    """
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    check_choice("predictor", predictor, DCI_PREDICTORS)
    z_train, v_train = _codes_and_factors(train_codes, train_factors, "train")
    z_test, v_test = _codes_and_factors(test_codes, test_factors, "test")
    if z_train.shape[1] != z_test.shape[1] or v_train.shape[1] != v_test.shape[1]:
        raise DataError(
            f"The train and test pairs differ in width: codes {z_train.shape[1]} and {z_test.shape[1]}, "
            f"factors {v_train.shape[1]} and {v_test.shape[1]}; encode both with the same model and factors."
        )
    constant = [k for k in range(v_train.shape[1]) if len(np.unique(v_train[:, k])) < 2]
    if constant:
        raise DataError(
            f"Factors {constant} take a single value in the training sample; DCI needs every factor to vary. "
            "Pass more training codes."
        )
    importance = np.zeros((z_train.shape[1], v_train.shape[1]))  # (K, F)
    accuracy = np.zeros(v_train.shape[1])
    for k in range(v_train.shape[1]):
        if predictor == "random-forest":
            # Every dimension at every split (max_features=None): with a random subset, a split on an
            # irrelevant dimension would be forced now and then and leak importance to it.
            model = RandomForestClassifier(n_estimators=50, max_depth=10, max_features=None, random_state=seed)
        else:
            model = GradientBoostingClassifier(random_state=seed)
        model.fit(z_train, v_train[:, k])
        importance[:, k] = model.feature_importances_
        accuracy[k] = model.score(z_test, v_test[:, k])
    disentanglement, completeness = dci_from_importance(importance)
    return DCIScores(disentanglement, completeness, float(accuracy.mean()), importance, accuracy)


def dci_from_importance(importance: Any) -> tuple[float, float]:
    """Disentanglement and completeness (Eastwood & Williams 2018, section 3) of an importance matrix ``(K, F)``.

    With ``P_ik = R_ik / sum_k R_ik`` the share of dimension ``i``'s importance going to factor ``k``,
    disentanglement is ``sum_i rho_i (1 - H_F(P_i.))``, ``H_F`` the entropy in base F (the number of
    factors) and ``rho_i = sum_k R_ik / sum R`` dimension ``i``'s share of all importance: 1 when
    every dimension serves a single factor, 0 when each serves all equally. Completeness is the
    same with the roles swapped (entropy base K over each factor's column, weighted by the column's
    share). Dimensions without importance do not count. An all-zero matrix scores 0 and 0.
    """
    r = np.abs(np.asarray(importance, dtype=np.float64))
    if r.ndim != 2 or 0 in r.shape or not np.isfinite(r).all():
        raise DataError(f"Expected a finite importance matrix (codes, factors), got shape {r.shape}.")
    if r.sum() == 0:
        return 0.0, 0.0  # as disentanglement_lib: no dimension predicts anything
    return _weighted_one_minus_entropy(r), _weighted_one_minus_entropy(r.T)


def _weighted_one_minus_entropy(r: np.ndarray) -> float:
    """``sum_i w_i (1 - H(P_i.))`` over rows, ``P`` the row-normalised ``r``, entropy in base ``r.shape[1]``."""
    totals = r.sum(axis=1)
    used = totals > 0
    if r.shape[1] == 1:
        return 1.0  # a single column: every row's share goes to it, zero entropy
    p = r[used] / totals[used, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(r.shape[1])
    return float((totals[used] / totals.sum() * (1 - entropy)).sum())


def disentanglement_report(
    run: Any,
    *,
    seed: int = 0,
    n_train: int = 1000,
    n_test: int = 500,
    batch: int = 64,
    n_mig: int = 10_000,
    bins: int = 20,
    n_factorvae_train: int = 1000,
    n_factorvae_eval: int = 500,
    n_dci_train: int = 2000,
    n_dci_test: int = 1000,
) -> dict[str, Any]:
    """The four metrics for a :class:`~aekit.Run` trained on ``dsprites`` or ``dsprites-small``.

    ``n_train``, ``n_test`` and ``batch`` (L) are the beta-VAE score's; ``batch`` is also the
    FactorVAE score's L, and its dimensions are normalised over the ``n_mig`` images MIG is
    estimated on, so the report's FactorVAE score equals ``factorvae_score(run.encode,
    n_variance=n_mig, ...)`` with the same seed.

    Returns
    -------
    dict with ``betavae_score``, ``factorvae_score``, ``mig``, ``mig_per_factor`` (factor name ->
    gap), ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``, ``latent_dim``,
    ``seconds`` and the ``settings`` used.
    """
    data = str(run.config.data.data)
    if data.lower() not in DSPRITES_NAMES:
        raise ConfigError(
            f"Disentanglement metrics need the ground-truth factors of dSprites, but the run '{run.path}' was "
            f"trained on '{data}'. Train on dSprites first, e.g. 'aekit train --data dsprites-small "
            "--model beta-vae', and evaluate that run."
        )
    caps = run.model.capabilities
    if caps.discrete_codes or caps.energy_based:
        codes = "quantised maps" if caps.discrete_codes else "found by inference"
        raise ConfigError(
            f"Disentanglement metrics score a vector code per image from an encoder; the run '{run.path}' is a "
            f"'{run.model.name}' model, whose codes are {codes}. "
            "Use a run with a gaussian (vae, beta-vae) or deterministic (ae, ...) latent."
        )
    shape = (1, dsprites.IMAGE_SIZE, dsprites.IMAGE_SIZE)
    if tuple(run.data_info.get("sample_shape", ())) != shape:
        raise DataError(
            f"The run '{run.path}' takes samples of shape {tuple(run.data_info.get('sample_shape', ()))}, "
            f"not dSprites images {shape}. Its run directory is inconsistent; retrain it."
        )
    counts = (("n_factorvae_train", n_factorvae_train), ("n_factorvae_eval", n_factorvae_eval))
    for name, value in (*counts, ("n_dci_train", n_dci_train), ("n_dci_test", n_dci_test)):
        _check_positive(name, value)
    for name, value in (("batch", batch), ("n_mig", n_mig)):
        _check_positive(name, value, minimum=2)  # the FactorVAE score takes variances over them
    settings = {"seed": seed, "n_train": n_train, "n_test": n_test, "batch": batch, "n_mig": n_mig, "bins": bins}
    settings.update(n_factorvae_train=n_factorvae_train, n_factorvae_eval=n_factorvae_eval)
    settings.update(n_dci_train=n_dci_train, n_dci_test=n_dci_test)
    start = time.perf_counter()
    score = betavae_score(run.encode, n_train=n_train, n_test=n_test, batch=batch, seed=seed)
    rng = np.random.default_rng(seed)
    factors = _sample(dsprites.FACTOR_SIZES, n_mig, rng)
    codes = _encode_factors(run.encode, dsprites.render, factors)
    gap, gaps = mig_from_codes(codes, factors, bins=bins)
    # The MIG sample doubles as the FactorVAE score's normalising sample (the same draws from the seed).
    factorvae = _factorvae(
        run.encode, dsprites.render, dsprites.FACTOR_SIZES, codes, n_factorvae_train, n_factorvae_eval, batch,
        PRUNE_THRESHOLD, rng,
    )  # fmt: skip
    scores = dci(run.encode, n_train=n_dci_train, n_test=n_dci_test, seed=seed)
    return {
        "betavae_score": score,
        "factorvae_score": factorvae,
        "mig": gap,
        "mig_per_factor": {name: float(g) for name, g in zip(dsprites.FACTOR_NAMES, gaps, strict=True)},
        "dci_disentanglement": scores.disentanglement,
        "dci_completeness": scores.completeness,
        "dci_informativeness": scores.informativeness,
        "latent_dim": int(codes.shape[1]),
        "seconds": round(time.perf_counter() - start, 2),
        "settings": settings,
    }


# --- helpers ---------------------------------------------------------------------------------


def _sample(sizes: Sequence[int], n: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1).astype(np.int64)


def _encode_factors(encode: Encoder, render: Renderer, factors: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [_encode(encode, render(factors[s : s + ENCODE_BATCH])) for s in range(0, len(factors), ENCODE_BATCH)]
    )


def _codes_and_factors(codes: Any, factors: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    z, v = _as_numpy(codes).astype(np.float64), np.asarray(_as_numpy(factors))
    if z.ndim != 2 or v.ndim != 2 or len(z) != len(v) or len(z) == 0:
        raise DataError(
            f"Expected {name} codes (N, K) and factors (N, F) with the same N > 0, got {z.shape} and {v.shape}."
        )
    if not np.isfinite(z).all():
        raise DataError("The codes hold NaN or infinite values; the encoder diverged. Check the run's training.")
    return z, v


def _encode(encode: Encoder, images: np.ndarray) -> np.ndarray:
    z = _as_numpy(encode(images.astype(np.float32))).astype(np.float64)
    if z.ndim != 2 or len(z) != len(images):
        raise DataError(f"Expected the encoder to return codes (N, K) for {len(images)} images, got shape {z.shape}.")
    return z


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on an accelerator
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"Expected {name} to be {wanted}, got {value!r}.")
