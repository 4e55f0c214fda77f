"""Properties of bad input: whatever array or option value a user gives, aekit returns a result or
raises one of its documented errors (:class:`aekit.errors.AekitError`), never a traceback or a stray
warning from torch or numpy.

The quick variants run a few dozen examples each; the ``slow`` ones (``pytest -m slow``) many more.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import aekit
from aekit.cli import main
from aekit.data import in_memory
from aekit.errors import AekitError, DataError
from aekit.parts.likelihoods import resolve_likelihood

QUICK = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
THOROUGH = settings(QUICK, max_examples=2000)
TINY = {"hidden": (8,), "latent_dim": 2, "epochs": 1, "progress": False, "report": False}

# --- arrays ----------------------------------------------------------------------------------------

# Text a user could type or save: no lone surrogates, no NUL (numpy drops trailing NULs from strings).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
NUMERIC = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool", "complex64")

shapes = st.one_of(
    st.just(()),
    st.tuples(st.integers(0, 40)),
    st.tuples(st.integers(0, 40), st.integers(0, 20)),
    st.tuples(st.integers(0, 10), st.integers(0, 6), st.integers(0, 6)),  # (N, H, W)
    st.tuples(st.integers(0, 8), st.sampled_from([0, 1, 2, 3, 4]), st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.integers(0, 8), st.integers(0, 5), st.integers(0, 5), st.sampled_from([1, 3, 4])),  # channels last
    st.tuples(*[st.integers(1, 3)] * 5),  # more dimensions than images have
)
# Shapes aekit trains on (at least 3 samples, one each for train, valid and test), so that half of
# the examples get past the data checks and exercise training too.
trainable_shapes = st.one_of(
    st.tuples(st.integers(3, 40), st.integers(1, 20)),
    st.tuples(st.integers(3, 10), st.integers(1, 6), st.integers(1, 6)),
    st.tuples(st.integers(3, 8), st.sampled_from([1, 3]), st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.integers(3, 8), st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 3, 4])),
)


def _extremes(dtype: np.dtype) -> list:
    """Values at the edges of what ``dtype`` holds: its limits, NaN, infinities, the tiniest floats."""
    if dtype.kind == "f":
        info = np.finfo(dtype)
        edges = [float(info.max), float(info.min), float(info.tiny), float(info.smallest_subnormal), -0.0]
        return [math.nan, math.inf, -math.inf, *edges]
    if dtype.kind == "c":
        return [complex(math.nan, 0), complex(0, math.inf), 1e30 + 1e30j]
    if dtype.kind == "b":
        return [True, False]
    info = np.iinfo(dtype)
    return [int(info.min), int(info.max), 0]


def _tame(dtype: np.dtype) -> st.SearchStrategy:
    """Modest values, so that many examples get as far as training."""
    if dtype.kind == "f":
        return st.floats(-3, 3, width=8 * dtype.itemsize)
    if dtype.kind == "c":
        return st.complex_numbers(max_magnitude=3, width=8 * dtype.itemsize)
    if dtype.kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    return st.integers(max(int(info.min), -5), min(int(info.max), 5))


@st.composite
def arrays(draw) -> np.ndarray:
    trainable = draw(st.booleans())
    shape = draw(trainable_shapes if trainable else shapes)
    kind = draw(st.sampled_from(NUMERIC[:-1] if trainable else [*NUMERIC, "object", "str"]))
    if kind == "object":  # what a list of mixed rows becomes: only readable with pickle
        cells = st.one_of(st.none(), st.integers(-3, 3), text)
        arr = np.empty(shape, dtype=object)
        for index in np.ndindex(*shape):
            arr[index] = draw(cells)
        return arr
    if kind == "str":
        return draw(hnp.arrays("<U4", shape, elements=text.filter(lambda t: len(t) <= 4)))
    dtype = np.dtype(kind)
    elements = _tame(dtype)
    if not trainable and draw(st.booleans()):  # some examples also hold the dtype's extremes
        elements = st.one_of(elements, st.sampled_from(_extremes(dtype)))
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    return np.asfortranarray(arr) if arr.ndim > 1 and draw(st.booleans()) else arr


def _save(arr: np.ndarray, folder: Path, as_csv: bool) -> Path:
    """``arr`` as a .npy file, or as a CSV table (one row per sample) when it is 2-D and ``as_csv``."""
    if as_csv and arr.ndim == 2:
        path = folder / "data.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(arr.tolist())
        return path
    path = folder / "data.npy"
    np.save(path, arr, allow_pickle=arr.dtype.hasobject)
    return path


def _strict_json(text: str) -> None:
    """Parse ``text`` as JSON that other languages can read: NaN and Infinity are refused."""

    def refuse(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)


def _no_warnings(caught: list[warnings.WarningMessage]) -> None:
    leaked = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    assert not leaked, "warnings reached the user:\n" + "\n".join(leaked)


def check_loading(arr: np.ndarray, as_csv: bool, storage: str, normalize: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = _save(arr, Path(tmp), as_csv)
        try:
            data = aekit.load_dataset(str(path), storage=storage, normalize=normalize)
        except AekitError as err:
            event(type(err).__name__)
            _no_warnings(caught)
            return
        event("loaded")
        _no_warnings(caught)
        assert len(data.train) >= 1 and math.prod(data.sample_shape) >= 1
        for split in ("train", "valid", "test"):
            x = in_memory(getattr(data, split))
            assert x.dtype == torch.float32 and x.shape[1:] == data.train.shape[1:]
            assert torch.isfinite(x).all(), f"the {split} split holds non-finite values"
        if data.normalization:
            assert all(map(math.isfinite, data.normalization["mean"]))
            assert all(math.isfinite(s) and s > 0 for s in data.normalization["std"])


MODELS = ({"model": "ae"}, {"model": "vae"}, {"model": "vae", "likelihood": "bernoulli"})


def check_training(arr: np.ndarray, as_csv: bool, model: dict, batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = _save(arr, Path(tmp), as_csv)
        try:
            run = aekit.train(**model, **TINY, data=str(path), batch_size=batch_size, out=Path(tmp) / "run")
        except AekitError as err:
            event(type(err).__name__)  # --hypothesis-show-statistics: how many examples got how far
            _no_warnings(caught)
            return
        event("trained")
        _no_warnings(caught)
        # strict JSON: summary.json and metrics.jsonl hold null, never NaN / Infinity, for an undefined
        # metric (e.g. the PSNR of constant data).
        for text in [(run.path / "summary.json").read_text(), *(run.path / "metrics.jsonl").read_text().splitlines()]:
            _strict_json(text)


loading = given(
    arr=arrays(),
    as_csv=st.booleans(),
    storage=st.sampled_from(["memory", "stream", "auto"]),
    normalize=st.sampled_from(["auto", "standard", "none"]),
)
training = given(arr=arrays(), as_csv=st.booleans(), model=st.sampled_from(MODELS), batch_size=st.integers(1, 64))


@settings(QUICK, max_examples=200)  # loading is cheap: most arrays are refused before any copy
@loading
def test_loading_any_array_gives_a_data_set_or_a_documented_error(arr, as_csv, storage, normalize):
    check_loading(arr, as_csv, storage, normalize)


@settings(QUICK, max_examples=250)
@training
def test_training_on_any_array_gives_a_run_or_a_documented_error(arr, as_csv, model, batch_size):
    check_training(arr, as_csv, model, batch_size)


@pytest.mark.slow
@THOROUGH
@loading
def test_loading_any_array_thoroughly(arr, as_csv, storage, normalize):
    check_loading(arr, as_csv, storage, normalize)


@pytest.mark.slow
@THOROUGH
@training
def test_training_on_any_array_thoroughly(arr, as_csv, model, batch_size):
    check_training(arr, as_csv, model, batch_size)


# --- options of `aekit train` -------------------------------------------------------------------------

ABSURD_INTS = [2**31, 2**63, -(2**63), 10**20, -(10**20)]
SPECIAL_FLOATS = ["nan", "inf", "-inf", "-0.0", "0", "-1", "1e300", "-1e300", "1e-300", "5e-324", "1e400", "1.5"]
floats = st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats(-10, 10).map(repr), text)
# Sizes stay small or absurd: a merely large --latent-dim or --hidden would allocate gigabytes.
sizes = st.one_of(st.integers(-3, 16).map(str), st.sampled_from(ABSURD_INTS).map(str), floats)
counts = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(ABSURD_INTS).map(str), floats)
# --epochs may not be large and valid: training would not end; nor --batch-size small and valid: an epoch of
# digits in batches of 1 or 2 takes seconds.
batch_sizes = st.one_of(
    st.integers(-3, 0).map(str), st.integers(16, 2000).map(str), st.sampled_from(ABSURD_INTS).map(str), floats
)
epochs = st.one_of(st.integers(-3, 2).map(str), st.sampled_from(["-1e400", str(-(2**63)), "0.5", "1e-3"]), floats)
widths = st.lists(sizes, max_size=3).map(",".join)
choices = {
    "--normalize": ["auto", "standard", "none"],
    "--likelihood": ["auto", "gaussian", "bernoulli"],
    "--noise": ["none", "gaussian", "salt_pepper", "mask"],
    "--storage": ["auto", "memory", "stream"],
    "--binarize": ["none", "static", "dynamic"],
    "--lr-schedule": ["constant", "iwae"],
    "--condition-on": ["none", "labels"],
}
OPTIONS = {
    "--epochs": epochs,
    "--batch-size": batch_sizes,
    "--latent-dim": sizes,
    "--hidden": widths,
    "--lr": floats,
    "--beta": floats,
    "--obs-std": floats,
    "--free-bits": floats,
    "--kl-warmup": counts,
    "--noise-level": floats,
    "--valid-fraction": floats,
    "--test-fraction": floats,
    "--split-seed": counts,
    "--seed": counts,
    "--binarize-seed": counts,
    "--adam-beta2": floats,
    "--exclude-classes": widths,
    "--weight-decay": floats,
    "--adam-beta1": floats,
    "--adam-eps": floats,
    "--clip-grad-norm": floats,
    "--patience": counts,
    "--log-every": counts,
    "--classes": widths,
    **{name: st.one_of(st.sampled_from(values), text) for name, values in choices.items()},
}
BASE = ["train", "--data", "digits", "--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--no-report",
        "--no-progress"]  # fmt: skip
DOCUMENTED = {0, 2, 3}  # success, a mistake in the input, training diverged


@st.composite
def option_lists(draw) -> list[str]:
    names = draw(st.lists(st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=3))  # a repeat: the last wins
    argv = []
    for name in names:
        value = draw(OPTIONS[name])
        # "--x=value" lets values that start with '-' through to aekit; "--x value" is how most type it.
        argv += [f"{name}={value}"] if draw(st.booleans()) else [name, value]
    return argv


def check_options(argv: list[str], capsys) -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capsys.readouterr()
        try:
            status = main([*BASE, "--out", str(Path(tmp) / "run"), *argv])
        except SystemExit as stop:  # argparse refusing the command line
            status = stop.code
        event(f"status {status}")
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert status in DOCUMENTED, f"status {status}: {err}"
        if status:
            assert err.startswith(("aekit: error:", "usage:")), err
        _no_warnings(caught)


@settings(QUICK, max_examples=150)
@given(argv=option_lists())
def test_train_options_give_a_run_or_a_documented_status(argv, capsys):
    check_options(argv, capsys)


@pytest.mark.slow
@THOROUGH
@given(argv=option_lists())
def test_train_options_thoroughly(argv, capsys):
    check_options(argv, capsys)


# --- regressions found by the properties ----------------------------------------------------------------


def _train_quietly(path: Path, **options) -> aekit.Run:
    """Train on the file at ``path`` with every warning an error: none may reach the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return aekit.train(**{**TINY, **options}, data=str(path), out=path.parent / "run")


@pytest.mark.parametrize("rows", [3, 4])
def test_a_tiny_data_set_trains_without_warnings(tmp_path, rows):
    # One test sample: the active units' variance over the codes has no degrees of freedom.
    np.save(tmp_path / "tiny.npy", np.random.default_rng(0).normal(size=(rows, 3)).astype(np.float32))
    run = _train_quietly(tmp_path / "tiny.npy", model="vae", likelihood="gaussian")
    assert json.loads((run.path / "summary.json").read_text())["test"]["active_units"] == 0


def test_a_standardised_single_training_sample_does_not_choose_bernoulli():
    # One standardised training sample is all zeros, inside [0, 1]; the other splits are not.
    train, valid = torch.zeros(1, 3), torch.tensor([[-0.5, 2.0, 0.1]])
    assert resolve_likelihood("auto", train) == "bernoulli"
    assert resolve_likelihood("auto", train, valid, torch.zeros(0, 3)) == "gaussian"
    assert resolve_likelihood("auto", train, torch.full((2, 3), 0.5)) == "bernoulli"


def test_constant_data_trains_and_has_no_psnr(tmp_path):
    # Every value the same: the PSNR's peak (the data's range) is 0, and the PSNR undefined.
    np.save(tmp_path / "flat.npy", np.full((5, 1, 2, 2), -1, np.int8))
    run = _train_quietly(tmp_path / "flat.npy", model="ae")
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["test"]["psnr"] is None or math.isnan(summary["test"]["psnr"])


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.zeros((5, 0), np.float32), "at least one value per sample"),
        (np.zeros((5, 2, 0, 3), np.uint8), "at least one value per sample"),
        (np.array([[1e300, 0.0]] + [[1.0, 2.0]] * 4), "the range of float32"),
        (np.array([[np.iinfo(np.int64).min, 1]] + [[2, 3]] * 4), "missing value"),
        (np.array([[3e38], [-3e38], [3e38], [-3e38], [3e38]], np.float32), "overflows float32"),
    ],
    ids=["no features", "no pixels", "beyond float32", "smallest int64", "standardising overflows"],
)
@pytest.mark.parametrize("storage", ["memory", "stream"])
def test_data_that_float32_cannot_train_on_is_refused(tmp_path, arr, message, storage):
    np.save(tmp_path / "data.npy", arr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=message):
            aekit.load_dataset(tmp_path / "data.npy", storage=storage)


def test_a_csv_number_beyond_float32_is_refused_without_warnings(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1e300,1\n" + "2,3\n" * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=r"line 2, column 'a'.*the range of float32"):
            aekit.load_dataset(tmp_path / "data.csv")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--epochs=1e400", "expects an integer"),
        ("--epochs=1.5e0", "expects an integer"),
        ("--latent-dim=99999999999999999999", "latent_dim must be at most"),
        ("--hidden=8,2147483648", "hidden width must be at most"),
        ("--lr=inf", "lr must be > 0 and finite"),
        ("--obs-std=inf", "obs_std must be > 0 and finite"),
        ("--weight-decay=nan", "weight_decay must be a finite number >= 0"),
        ("--split-seed=-1", "split_seed must be an integer in"),
        ("--seed=99999999999999999999", "seed must be an integer in"),
    ],
)
def test_option_values_out_of_range_are_refused(tmp_path, capsys, option, message):
    assert main([*BASE, "--out", str(tmp_path / "run"), option]) == 2
    assert message in capsys.readouterr().err
