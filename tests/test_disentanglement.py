"""dSprites generated from its definition, and the beta-VAE and MIG disentanglement metrics."""

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
from aekit.evaluation.disentanglement import betavae_score, disentanglement_report, mig, mig_from_codes

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
    report = disentanglement_report(run, n_train=100, n_test=60, batch=8, n_mig=1000)
    assert set(report) >= {"betavae_score", "mig", "mig_per_factor", "latent_dim", "settings"}
    assert 0 <= report["betavae_score"] <= 1 and 0 <= report["mig"] <= 1
    assert list(report["mig_per_factor"]) == list(ds.FACTOR_NAMES) and report["latent_dim"] == 3
    again = disentanglement_report(run, n_train=100, n_test=60, batch=8, n_mig=1000)
    assert {**again, "seconds": 0} == {**report, "seconds": 0}  # seeded: the same numbers again
