"""Streamed .npy data (--storage stream): same splits and values as in memory, bounded reads,
every row once per epoch, training and evaluation through the usual API, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import aekit
from aekit.data import NpyRows, stream
from aekit.runs.layout import read_metrics


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(0)
    digits = aekit.load_dataset("digits", valid_fraction=0, test_fraction=0).train.numpy()  # (N, 1, 8, 8)
    paths = {
        "float": root / "digits.npy",
        "uint8_hwc": root / "digits_u8.npy",
        "tabular": root / "tab.npy",
    }
    np.save(paths["float"], digits)
    np.save(paths["uint8_hwc"], (digits.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8))  # channels last
    np.save(paths["tabular"], rng.normal(5, 3, size=(3000, 7)).astype(np.float32))
    return paths


@pytest.mark.parametrize("kind", ["float", "uint8_hwc", "tabular"])
def test_streamed_splits_equal_the_in_memory_ones(files, kind):
    memory = aekit.load_dataset(files[kind], storage="memory")
    streamed = aekit.load_dataset(files[kind], storage="stream")
    assert isinstance(streamed.train, NpyRows) and streamed.kind == memory.kind
    assert streamed.sample_shape == memory.sample_shape
    for split in ("train", "valid", "test"):
        a, b = getattr(memory, split), getattr(streamed, split)
        assert b.shape == a.shape
        torch.testing.assert_close(b[:100], a[:100], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.as_tensor(np.asarray(b)), a, rtol=1e-5, atol=1e-5)
        assert float(b.min()) == pytest.approx(float(a.min()), abs=1e-5)
        assert float(b.max()) == pytest.approx(float(a.max()), abs=1e-5)
    if kind == "tabular":  # standardised with the training split's moments, found by the opening scan
        np.testing.assert_allclose(streamed.normalization["mean"], memory.normalization["mean"], rtol=1e-6)
        np.testing.assert_allclose(streamed.normalization["std"], memory.normalization["std"], rtol=1e-6)


def test_an_epoch_yields_every_row_once_in_bounded_reads(files, monkeypatch):
    monkeypatch.setattr(stream, "WINDOW_BYTES", 64 * 1024)  # 256 rows of 64 floats per window
    monkeypatch.setattr(stream, "BLOCK_ROWS", 32)
    train = aekit.load_dataset(files["float"], storage="stream").train
    expected = train[:].flatten(1)  # an explicit read of the whole split, before counting reads
    reads = []
    read_into = train.reader.read_into
    monkeypatch.setattr(train.reader, "read_into", lambda buf, a: reads.append(len(buf)) or read_into(buf, a))
    epochs = [list(train.batches(50, torch.Generator().manual_seed(s))) for s in (0, 0, 1)]
    for batches in epochs:
        assert [len(b) for b in batches[:-1]] == [50] * (len(batches) - 1) and 0 < len(batches[-1]) <= 50
        rows = torch.cat(batches).flatten(1)
        # The same multiset of rows: sort both by their bytes.
        order = lambda x: x[np.lexsort(x.numpy().T[::-1])]  # noqa: E731
        torch.testing.assert_close(order(rows), order(expected))
    assert torch.equal(torch.cat(epochs[0]), torch.cat(epochs[1]))  # seeded
    assert not torch.equal(torch.cat(epochs[0]), torch.cat(epochs[2]))  # shuffled
    # No read spans more than a window's blocks (the gap rule may join nearby rows into one read).
    assert max(reads) <= train.window_rows + stream.MAX_GAP * 8 and len(reads) > 3


def test_sliced_batches_are_the_slices_of_the_batches(files, monkeypatch):
    """What each torchrun rank reads: its slice of every batch of one process's epoch, and only that."""
    monkeypatch.setattr(stream, "WINDOW_BYTES", 64 * 1024)
    monkeypatch.setattr(stream, "BLOCK_ROWS", 32)
    train = aekit.load_dataset(files["float"], storage="stream").train
    whole = list(train.batches(50, torch.Generator().manual_seed(3)))
    for size in (2, 3):
        parts = [
            list(
                train.sliced_batches(
                    50, torch.Generator().manual_seed(3), lambda n, r=r, k=size: (n * r // k, n * (r + 1) // k)
                )
            )
            for r in range(size)
        ]
        assert all(len(p) == len(whole) for p in parts)
        for i, batch in enumerate(whole):
            assert all(p[i][2] == len(batch) for p in parts)
            torch.testing.assert_close(torch.cat([p[i][0] for p in parts]), batch)
            assert [p[i][1] for p in parts] == [len(batch) * r // size for r in range(size)]


def test_training_streamed_matches_training_in_memory(files, tmp_path):
    kwargs = dict(model="vae", latent_dim=3, hidden=(32,), epochs=3, batch_size=64, progress=False, report=False)
    memory = aekit.train(data=str(files["float"]), storage="memory", out=tmp_path / "m", **kwargs)
    streamed = aekit.train(data=str(files["float"]), storage="stream", out=tmp_path / "s", **kwargs)
    m_hist, s_hist = read_metrics(memory.path), read_metrics(streamed.path)
    assert s_hist[-1]["train/loss"] < s_hist[0]["train/loss"]
    # Different batch orders, same data and model: the losses agree to a few percent.
    assert s_hist[-1]["valid/loss"] == pytest.approx(m_hist[-1]["valid/loss"], rel=0.05)
    m_test = json.loads((memory.path / "summary.json").read_text())["test"]
    s_test = json.loads((streamed.path / "summary.json").read_text())["test"]
    assert s_test["neg_elbo"] == pytest.approx(m_test["neg_elbo"], rel=0.05)
    # Evaluating one model on the streamed and the in-memory test split gives the same numbers.
    data_m, data_s = memory.load_data(), aekit.load_dataset(files["float"], storage="stream")
    torch.testing.assert_close(
        torch.tensor(memory.evaluate(data_s.test)["sse"]), torch.tensor(memory.evaluate(data_m.test)["sse"])
    )


def test_resuming_a_streamed_run_continues_exactly(files, tmp_path):
    kwargs = dict(model="ae", latent_dim=3, hidden=(16,), data=str(files["tabular"]), storage="stream",
                  progress=False, report=False)  # fmt: skip
    full = aekit.train(epochs=3, out=tmp_path / "full", **kwargs)
    aekit.train(epochs=1, out=tmp_path / "part", **kwargs)
    resumed = aekit.resume(tmp_path / "part", epochs=3, report=False)
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_streamed_run_writes_its_report(files, tmp_path):
    run = aekit.train(model="vae", data=str(files["float"]), storage="stream", epochs=1, latent_dim=2, hidden=(16,),
                      progress=False, out=tmp_path / "r")  # fmt: skip
    assert (run.path / "report.html").is_file() and (run.path / "plots" / "latent_scatter.png").is_file()


def test_stream_errors(files, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14\n15,16\n17,18\n19,20\n")
    with pytest.raises(aekit.ConfigError, match=r"reads \.npy files only"):
        aekit.load_dataset(csv, storage="stream")
    with pytest.raises(aekit.ConfigError, match="built in"):
        aekit.load_dataset("digits", storage="stream")
    with pytest.raises(aekit.ConfigError, match="storage"):
        aekit.load_dataset(files["float"], storage="disk")
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.ones((20, 3), np.float32)))
    with pytest.raises(aekit.DataError, match="Fortran"):
        aekit.load_dataset(fortran, storage="stream")
    nan = tmp_path / "nan.npy"
    x = np.ones((50, 3), np.float32)
    x[37, 2] = np.nan
    np.save(nan, x)
    with pytest.raises(aekit.DataError, match="row 37, position 2"):
        aekit.load_dataset(nan, storage="stream")
    truncated = tmp_path / "t.npy"
    np.save(truncated, np.ones((100, 3), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(aekit.DataError, match=r"truncated|Could not read"):
        aekit.load_dataset(truncated, storage="stream")
    with pytest.raises(aekit.ConfigError, match="--binarize needs the data in memory"):
        aekit.train(model="vae", data=str(files["float"]), storage="stream", binarize="static", epochs=1,
                    progress=False, report=False, out=tmp_path / "b")  # fmt: skip
    assert not (tmp_path / "b").exists()


def test_auto_streams_only_when_the_data_would_not_fit(files, monkeypatch):
    assert not isinstance(aekit.load_dataset(files["float"]).train, NpyRows)
    monkeypatch.setattr(stream, "available_memory", lambda: 1000)
    assert isinstance(aekit.load_dataset(files["float"]).train, NpyRows)
    assert not isinstance(aekit.load_dataset(files["float"], storage="memory").train, NpyRows)


def test_cli_commands_on_a_streamed_run(files, tmp_path, capsys):
    from aekit.cli import main

    out = tmp_path / "r"
    args = ["--model", "ae", "--data", str(files["float"]), "--storage", "stream", "--epochs", "1", "--hidden", "16"]
    assert main(["train", *args, "--latent-dim", "2", "--no-progress", "--no-report", "--out", str(out)]) == 0
    assert "streamed from its file" in capsys.readouterr().out
    assert json.loads((out / "data.json").read_text())["storage"] == "stream"
    assert main(["eval", str(out), "--split", "all", "--pca-baseline", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 1797 and metrics["mse"] > 0 and "pca_mse" in metrics
