"""dSprites generated from its definition, and the beta-VAE, FactorVAE, MIG and DCI disentanglement metrics."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import aekit
from aekit.data import DATASET_NAMES, load_dataset
from aekit.data import dsprites as ds
from aekit.errors import ConfigError, DataError
from aekit.evaluation.disentanglement import (
    betavae_score,
    dci,
    dci_from_codes,
    dci_from_importance,
    disentanglement_report,
    factorvae_score,
    mig,
    mig_from_codes,
)

SIZES = np.array(ds.FACTOR_SIZES)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small():
    return ds.load_dsprites(subsample="small")


def _grid(**fixed) -> np.ndarray:
    """Factors (n, 5) varying the one factor given as a range, the others fixed (default: middle)."""
    base = {"shape": 0, "scale": 5, "orientation": 0, "posX": 16, "posY": 16}
    base.update(fixed)
    n = max(len(v) if hasattr(v, "__len__") else 1 for v in base.values())
    return np.stack([np.broadcast_to(base[k], n) for k in ds.FACTOR_NAMES], axis=1).astype(np.int64)


def _centre_of_mass(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = images[:, 0].astype(float)
    rows, cols = np.indices(w.shape[1:])
    return (w * cols).sum((1, 2)) / w.sum((1, 2)), (w * rows).sum((1, 2)) / w.sum((1, 2))


# --- the rasteriser ----------------------------------------------------------------------------


def test_render_is_deterministic_binary_uint8():
    f = ds.sample_factors(300, 0)
    a, b = ds.render(f), ds.render(f.copy())
    assert a.shape == (300, 1, 64, 64) and a.dtype == np.uint8
    assert np.array_equal(a, b) and set(np.unique(a)) == {0, 1}
    assert (a.sum((1, 2, 3)) > 0).all()


def test_shapes_differ_and_scale_grows_the_shape():
    shapes = ds.render(_grid(shape=np.arange(3)))
    assert not np.array_equal(shapes[0], shapes[1]) and not np.array_equal(shapes[1], shapes[2])
    assert not np.array_equal(shapes[0], shapes[2])
    for shape in range(3):
        for orientation in (0, 7):
            counts = ds.render(_grid(shape=shape, orientation=orientation, scale=np.arange(6))).sum((1, 2, 3))
            assert (np.diff(counts) > 0).all(), (shape, orientation, counts)
            # the area grows as scale^2: 0.5 -> 1 multiplies it by about 4
            assert 3.3 < counts[-1] / counts[0] < 4.8


def test_positions_move_the_centre_of_mass():
    for shape in range(3):
        cx, cy = _centre_of_mass(ds.render(_grid(shape=shape, posX=np.arange(32))))
        assert (np.diff(cx) > 0).all() and np.ptp(cy) < 0.5
        # pixel (r, c) has its centre at (c + 0.5, r + 0.5): the shape centre spans 10..54 px
        assert abs(cx[0] + 0.5 - 10) < 0.6 and abs(cx[-1] + 0.5 - 54) < 0.6
        cx, cy = _centre_of_mass(ds.render(_grid(shape=shape, posY=np.arange(32))))
        assert (np.diff(cy) > 0).all() and np.ptp(cx) < 0.5  # posY runs top to bottom


def test_rotation_by_the_full_period_and_orientation_matters():
    f = ds.sample_factors(500, 1)
    last = f.copy()
    f[:, 2], last[:, 2] = 0, 39  # 0 and 2*pi: the original's grid includes both ends
    assert np.array_equal(ds.render(f), ds.render(last))
    turned = f.copy()
    turned[:, 2] = 5  # ~46 degrees: no shape is symmetric under it
    assert (ds.render(turned) != ds.render(f)).any(axis=(1, 2, 3)).mean() > 0.95


def test_largest_shapes_stay_inside_the_frame():
    # Render on a padded canvas by brute force; nothing may fall outside the 64x64 frame, and the
    # windowed rasteriser must agree with the brute force inside it.
    f = ds.all_factors()
    edge = (f[:, 1] == 5) & ((f[:, 3] % 31 == 0) | (f[:, 4] % 31 == 0)) & (f[:, 2] % 8 == 0)
    f = f[edge]
    pad, size = 12, ds.IMAGE_SIZE + 24
    centres = np.arange(size) - pad + 0.5
    span = ds.IMAGE_SIZE - 2 * ds.MARGIN
    dx = centres[None, None, :] - (ds.MARGIN + ds.FACTOR_VALUES[3][f[:, 3]] * span)[:, None, None]
    dy = (ds.MARGIN + ds.FACTOR_VALUES[4][f[:, 4]] * span)[:, None, None] - centres[None, :, None]
    theta, s = ds.FACTOR_VALUES[2][f[:, 2]][:, None, None], (ds.FACTOR_VALUES[1][f[:, 1]] * ds.RADIUS)[:, None, None]
    u, v = (dx * np.cos(theta) + dy * np.sin(theta)) / s, (dy * np.cos(theta) - dx * np.sin(theta)) / s
    inside = np.zeros(u.shape, bool)
    for shape, test in enumerate((ds._in_square, ds._in_ellipse, ds._in_heart)):
        inside[f[:, 0] == shape] = test(u[f[:, 0] == shape], v[f[:, 0] == shape])
    frame = inside[:, pad:-pad, pad:-pad]
    assert inside.sum() == frame.sum()
    assert (frame != ds.render(f)[:, 0].astype(bool)).mean() < 1e-6


def test_bad_factors_are_refused():
    for bad in (np.zeros((3, 4), int), np.zeros((3, 5)), np.array([[3, 0, 0, 0, 0]]), np.array([[0, 0, 0, 0, -1]])):
        with pytest.raises(DataError, match="factor"):
            ds.render(bad)


# --- factors and the data set ------------------------------------------------------------------


def test_all_factors_canonical_order():
    f = ds.all_factors()
    assert f.shape == (737_280, 5) == (math.prod(ds.FACTOR_SIZES), len(ds.FACTOR_NAMES)) and f.dtype == np.int64
    assert f[0].tolist() == [0, 0, 0, 0, 0] and f[-1].tolist() == [2, 5, 39, 31, 31]
    assert f[1].tolist() == [0, 0, 0, 0, 1] and f[32].tolist() == [0, 0, 0, 1, 0]  # posY fastest
    assert f[32 * 32 * 40 * 6].tolist() == [1, 0, 0, 0, 0]  # shape slowest
    assert np.array_equal(ds.factor_index(f[::997]), np.arange(0, 737_280, 997))
    assert len(np.unique(ds.factor_index(f))) == 737_280
    assert np.allclose(ds.FACTOR_VALUES[2][[0, -1]], [0, 2 * np.pi]) and ds.FACTOR_VALUES[1][0] == 0.5


def test_sample_factors_in_range_and_seeded():
    a, b = ds.sample_factors(5000, 3), ds.sample_factors(5000, 3)
    assert a.shape == (5000, 5) and np.array_equal(a, b)
    assert (a.min(0) == 0).all() and (a.max(0) == SIZES - 1).all()


def test_small_subset_is_aligned_with_its_factors(small):
    assert small.name == "dsprites-small" and small.kind == "image"
    assert (len(small.train), len(small.valid), len(small.test)) == (16_000, 2_000, 2_000)
    assert small.sample_shape == (1, 64, 64) and small.train.dtype == torch.float32
    assert small.value_range == (0.0, 1.0)
    assert small.factor_sizes == ds.FACTOR_SIZES and small.factor_names == ds.FACTOR_NAMES
    for split in ("train", "valid", "test"):
        x, labels = small.split(split)
        factors = getattr(small, f"{split}_factors")
        assert factors.dtype == torch.int64 and factors.shape == (len(x), 5)
        assert torch.equal(labels, factors[:, 0])
        rerendered = ds.render(factors[:300].numpy())
        assert np.array_equal(rerendered, x[:300].numpy().astype(np.uint8))
    every = torch.cat([small.train_factors, small.valid_factors, small.test_factors]).numpy()
    assert len(np.unique(ds.factor_index(every))) == 20_000  # disjoint splits, no duplicates
    assert all(len(np.unique(every[:, k])) == size for k, size in enumerate(ds.FACTOR_SIZES))
    assert np.array_equal(np.sort(ds.factor_index(every)), ds.factor_index(ds.small_factors()))


def test_names_route_to_dsprites(small):
    assert {"dsprites", "dsprites-small"} <= set(DATASET_NAMES)
    d = load_dataset("dsprites-small", seed=1)
    assert d.name == "dsprites-small" and len(d.train) == len(small.train)
    assert not torch.equal(d.train_factors, small.train_factors)  # the seed moves the split, not the subset
    every = torch.cat([d.train_factors, d.valid_factors, d.test_factors]).numpy()
    assert np.array_equal(np.sort(ds.factor_index(every)), ds.factor_index(ds.small_factors()))


def test_broken_full_cache_is_a_clear_error(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / f"dsprites-v{ds.RENDER_VERSION}.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"unreadable.*Delete it"):
        ds.load_dsprites(subsample="full")
    np.savez_compressed(path, packed=np.zeros((10, 512), np.uint8))
    with pytest.raises(DataError, match="Delete it"):
        ds.load_dsprites(subsample="full")
    with pytest.raises(ConfigError, match="subsample"):
        ds.load_dsprites(subsample="tiny")


# --- metrics on synthetic encoders ---------------------------------------------------------------


def _factors_as_images(f: np.ndarray) -> np.ndarray:
    return f.astype(np.float32)  # a "renderer" that hands the encoder the true factors


def _oracle(x: np.ndarray) -> np.ndarray:
    return x / (SIZES - 1)


def _rotated(x: np.ndarray) -> np.ndarray:
    # Each pair (scale, orientation) and (posX, posY) mixed by a 45-degree rotation: the same
    # information, spread over two dimensions each.
    z = _oracle(x).copy()
    for a, b in ((1, 2), (3, 4)):
        z[:, a], z[:, b] = (z[:, a] + z[:, b]) / math.sqrt(2), (z[:, a] - z[:, b]) / math.sqrt(2)
    return z


def _noise(x: np.ndarray) -> np.ndarray:
    return np.random.default_rng(len(x)).normal(size=(len(x), 5))


def test_oracle_scores_near_the_top():
    assert betavae_score(_oracle, _factors_as_images, n_train=300, n_test=300) > 0.95
    f = ds.sample_factors(10_000, 0)
    score, gaps = mig_from_codes(_oracle(f), f)
    # Shape (3 values) and scale (6) land in separate bins: gap ~1. Orientation (40 values) and
    # positions (32) share the 20 bins, which costs ~log 2 nats of their ~log 40: gaps ~0.8.
    assert score > 0.85 and gaps[0] > 0.99 and gaps[1] > 0.99 and (gaps[2:] > 0.75).all()
    assert mig(_oracle, _factors_as_images, n=5000) > 0.85


def test_noise_scores_at_chance():
    assert betavae_score(_noise, _factors_as_images, n_train=300, n_test=300) < 0.32  # chance is 1/5
    assert mig(_noise, _factors_as_images, n=5000) < 0.02


def test_entangled_code_scores_lower_mig():
    f = ds.sample_factors(10_000, 0)
    oracle, _ = mig_from_codes(_oracle(f), f)
    rotated, gaps = mig_from_codes(_rotated(f), f)
    assert rotated < oracle - 0.4 and (gaps[1:] < 0.1).all() and gaps[0] > 0.99


def test_random_projection_of_images_has_low_mig():
    w = np.random.default_rng(0).normal(size=(64 * 64, 8))
    assert mig(lambda x: x.reshape(len(x), -1) @ w, n=2000) < 0.1


def test_mig_input_errors():
    f = ds.sample_factors(100, 0)
    with pytest.raises(DataError, match="same N"):
        mig_from_codes(np.zeros((99, 2)), f)
    with pytest.raises(DataError, match="NaN"):
        mig_from_codes(np.full((100, 2), np.nan), f)
    with pytest.raises(DataError, match="single value"):
        mig_from_codes(np.zeros((100, 2)), np.zeros((100, 5), int))
    assert mig_from_codes(_oracle(f)[:, :1], f)[1][0] > 0.99  # one dimension: the gap is its MI
    with pytest.raises(ConfigError, match="n_train"):
        betavae_score(_oracle, _factors_as_images, n_train=0)


# --- FactorVAE and DCI on synthetic encoders ---------------------------------------------------------

CHANCE = 1 / len(ds.FACTOR_SIZES)


def _random_rotation(x: np.ndarray) -> np.ndarray:
    # The standardised factors under a fixed random rotation: all the information, every factor
    # spread over every dimension.
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))[0]
    u = _oracle(x)
    return (u - 0.5) / np.sqrt((SIZES + 1) / (12 * (SIZES - 1))) @ q  # std of a uniform grid on [0, 1]


def _fresh_noise(seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda x: rng.normal(size=(len(x), 5))


def _mixed(x: np.ndarray) -> np.ndarray:
    # A deterministic, entangled, non-linear code: its scores sit away from 0 and 1, so seeds move them.
    return np.tanh(_oracle(x) @ np.random.default_rng(1).normal(size=(5, 6)))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [3, 0, 4, 2, 1]])
def test_an_axis_aligned_code_scores_one(order):
    code = lambda x: _oracle(x)[:, order]  # noqa: E731
    assert factorvae_score(code, _factors_as_images, n_train=300, n_eval=300) == 1.0
    scores = dci(code, _factors_as_images, n_train=1000, n_test=500)
    assert scores.disentanglement > 0.99 and scores.completeness > 0.99 and scores.informativeness == 1.0
    assert (scores.importance.argmax(axis=0) == np.argsort(order)).all()  # factor k lives in the dim holding it
    assert scores.importance.shape == (5, 5) and np.allclose(scores.importance.sum(axis=0), 1)


def test_rotated_codes_score_lower():
    # Pairwise 45-degree rotation: fixing scale (or orientation) lowers dimensions 1 and 2 alike, so its
    # votes split evenly between them and the majority vote gets half of them right; shape keeps its
    # own dimension: 1/5 + 4/5 * 1/2 = 0.6.
    assert abs(factorvae_score(_rotated, _factors_as_images) - 0.6) < 0.06
    pairs = dci(_rotated, _factors_as_images)
    assert pairs.disentanglement < 0.7 and pairs.completeness < 0.7
    assert pairs.importance[0, 0] > 0.99  # shape is not rotated
    # A random rotation: factors 0 and 2 load most on the same dimension, so at most 4 of 5 factors
    # can own a dimension.
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))[0]
    assert len(set(np.abs(q).argmax(axis=0))) == 4
    assert factorvae_score(_random_rotation, _factors_as_images) < 0.8 + 0.02
    rotated = dci(_random_rotation, _factors_as_images)
    assert rotated.disentanglement < 0.4 and rotated.completeness < 0.4
    assert rotated.informativeness > 0.5  # still informative: a rotation loses nothing


def test_noise_scores_at_chance_on_factorvae_and_dci():
    assert abs(factorvae_score(_fresh_noise(), _factors_as_images) - CHANCE) < 0.07
    scores = dci(_fresh_noise(), _factors_as_images)
    assert scores.disentanglement < 0.03 and scores.completeness < 0.03
    chance = np.mean(1 / SIZES)  # guessing each factor: 0.117
    assert abs(scores.informativeness - chance) < 0.04


def test_factorvae_normalises_and_prunes_dimensions_by_their_std():
    tiny = lambda x: 1e-3 * _oracle(x)  # noqa: E731
    assert factorvae_score(tiny, _factors_as_images, n_train=200, n_eval=200) == 0.0  # all below 0.05: collapsed
    assert factorvae_score(tiny, _factors_as_images, n_train=200, n_eval=200, prune_threshold=0.0) == 1.0

    def scale_only_in_a_collapsed_dimension(x):
        z = _oracle(x)
        z[:, 1] *= 0.1  # std ~0.034 < 0.05
        return z

    kept = factorvae_score(scale_only_in_a_collapsed_dimension, _factors_as_images, prune_threshold=0.0)
    pruned = factorvae_score(scale_only_in_a_collapsed_dimension, _factors_as_images)
    # Pruned, scale's votes land on the other factors' dimensions and are all wrong: 4/5 right.
    assert kept == 1.0 and abs(pruned - 0.8) < 0.05
    # Each dimension's variance is relative to its own over the data: units do not change a vote.
    units = np.array([1.0, 100.0, 1.0, 0.5, 10.0])
    scaled = factorvae_score(lambda x: _rotated(x) * units, _factors_as_images, n_train=300, n_eval=300)
    assert scaled == factorvae_score(_rotated, _factors_as_images, n_train=300, n_eval=300)


def test_dci_from_importance_closed_forms():
    assert dci_from_importance(np.eye(5)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.eye(5)[[2, 0, 4, 1, 3]]) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((5, 5))) == pytest.approx((0.0, 0.0))
    assert dci_from_importance(np.zeros((4, 5))) == (0.0, 0.0)
    # Two dimensions sharing two factors equally (H_5 = log 2 / log 5 for each), three axis-aligned.
    r = np.eye(5)
    r[1:3, 1:3] = 0.5
    both = 0.6 * 1 + 0.4 * (1 - math.log(2) / math.log(5))
    assert dci_from_importance(r) == pytest.approx((both, both))
    # Unused code dimensions do not count; one dimension serving every factor is complete, not disentangled.
    assert dci_from_importance(np.vstack([np.eye(5), np.zeros((3, 5))])) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((1, 5))) == pytest.approx((0.0, 1.0))
    assert dci_from_importance(-np.eye(3)) == pytest.approx((1.0, 1.0))  # magnitudes, as |W| of a linear model


def test_factorvae_and_dci_are_seeded():
    a = factorvae_score(_mixed, _factors_as_images, n_train=200, n_eval=200, seed=3)
    assert a == factorvae_score(_mixed, _factors_as_images, n_train=200, n_eval=200, seed=3)
    assert a != factorvae_score(_mixed, _factors_as_images, n_train=200, n_eval=200, seed=4)
    first, again = (dci(_mixed, _factors_as_images, n_train=500, n_test=200, seed=3) for _ in range(2))
    assert np.array_equal(first.importance, again.importance) and first.informativeness == again.informativeness
    other = dci(_mixed, _factors_as_images, n_train=500, n_test=200, seed=4)
    assert not np.array_equal(first.importance, other.importance)


def test_dci_with_gradient_boosting():
    sizes = (3, 4, 5)  # few classes: disentanglement_lib's classifier fits one tree per class and stage
    oracle = lambda x: x / (np.array(sizes) - 1)  # noqa: E731
    scores = dci(oracle, _factors_as_images, sizes, n_train=300, n_test=100, predictor="gradient-boosting")
    assert scores.disentanglement > 0.95 and scores.informativeness == 1.0
    noise = dci(_fresh_noise(), _factors_as_images, sizes, n_train=300, n_test=100, predictor="gradient-boosting")
    assert noise.disentanglement < 0.1


def test_factorvae_and_dci_input_errors():
    for bad in ({"n_train": 0}, {"n_eval": -1}, {"batch": 1}, {"n_variance": 1}, {"n_train": 2.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            factorvae_score(_oracle, _factors_as_images, **bad)
    for threshold in (-0.1, float("nan"), float("inf"), "0.05"):
        with pytest.raises(ConfigError, match="prune_threshold"):
            factorvae_score(_oracle, _factors_as_images, prune_threshold=threshold)
    with pytest.raises(ConfigError, match="n_test"):
        dci(_oracle, _factors_as_images, n_test=0)
    with pytest.raises(ConfigError, match=r"Unknown predictor 'random_forest'. Did you mean 'random-forest'"):
        dci(_oracle, _factors_as_images, predictor="random_forest")
    f = ds.sample_factors(100, 0)
    z = _oracle(f)
    with pytest.raises(DataError, match="same N"):
        dci_from_codes(z[:99], f, z, f)
    with pytest.raises(DataError, match="width"):
        dci_from_codes(z, f, z[:, :3], f)
    with pytest.raises(DataError, match="NaN"):
        dci_from_codes(np.full_like(z, np.nan), f, z, f)
    with pytest.raises(DataError, match="single value"):
        dci_from_codes(z, np.zeros_like(f), z, f)
    with pytest.raises(DataError, match="importance matrix"):
        dci_from_importance(np.ones(5))


# --- the report on runs ----------------------------------------------------------------------------


def test_report_refuses_a_run_not_trained_on_dsprites(tmp_path):
    run = aekit.train(
        model="vae",
        data="digits",
        latent_dim=2,
        hidden=(8,),
        epochs=1,
        progress=False,
        report=False,
        out=tmp_path / "r",
    )
    with pytest.raises(ConfigError, match=r"trained on 'digits'.*--data dsprites-small"):
        disentanglement_report(run)
    odd = SimpleNamespace(
        path="r",
        config=SimpleNamespace(data=SimpleNamespace(data="dsprites")),
        model=SimpleNamespace(capabilities=aekit.Capabilities(discrete_codes=True), name="vq-vae"),
    )
    with pytest.raises(ConfigError, match="codes are quantised maps"):
        disentanglement_report(odd)


def test_report_on_a_dsprites_run(tmp_path):
    run = aekit.train(
        model="vae", data="dsprites-small", latent_dim=3, hidden=(8,), epochs=1, progress=False, report=False,
        out=tmp_path / "r",
    )  # fmt: skip
    sizes = {"n_train": 100, "n_test": 60, "batch": 8, "n_mig": 1000, "n_factorvae_train": 100,
             "n_factorvae_eval": 60, "n_dci_train": 300, "n_dci_test": 100}  # fmt: skip
    report = disentanglement_report(run, **sizes)
    scores = ("betavae_score", "factorvae_score", "mig", "dci_disentanglement", "dci_completeness",
              "dci_informativeness")  # fmt: skip
    assert set(report) >= {*scores, "mig_per_factor", "latent_dim", "settings"}
    assert all(0 <= report[name] <= 1 for name in scores)
    assert list(report["mig_per_factor"]) == list(ds.FACTOR_NAMES) and report["latent_dim"] == 3
    again = disentanglement_report(run, **sizes)
    assert {**again, "seconds": 0} == {**report, "seconds": 0}  # seeded: the same numbers again
    # The report's numbers are those of the functions, with the MIG sample normalising the FactorVAE score.
    assert report["factorvae_score"] == factorvae_score(run.encode, n_train=100, n_eval=60, batch=8, n_variance=1000)
    assert report["dci_disentanglement"] == dci(run.encode, n_train=300, n_test=100).disentanglement
    with pytest.raises(ConfigError, match="n_dci_test"):
        disentanglement_report(run, n_dci_test=0)
    with pytest.raises(ConfigError, match="batch"):
        disentanglement_report(run, batch=1)
