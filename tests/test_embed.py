"""aekit embed: 2-D maps of the codes and their baselines."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.analyses.embedding import embed
from aekit.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    quick = {"data": "digits", "epochs": 15, "progress": False, "report": False}
    return {
        "vae2": aekit.train(model="vae", latent_dim=2, out=root / "vae2", **quick),
        "ae": aekit.train(model="ae", out=root / "ae", **quick),
    }


def test_latent_map_of_2d_codes_is_the_codes(runs):
    run = runs["vae2"]
    x, y = run.load_data().split("test")
    (latent,) = embed(run, x, y, ["latent"])
    np.testing.assert_allclose(latent.points, run.model.encode(x).detach().double().numpy(), rtol=1e-5, atol=1e-6)
    assert (latent.xlabel, latent.ylabel) == ("z1", "z2")


def test_pca_map_and_wide_codes_are_linear_projections(runs):
    run = runs["ae"]
    x, y = run.load_data().split("test")
    latent, pca = embed(run, x, y, ["latent", "pca"])
    assert latent.points.shape == pca.points.shape == (len(x), 2)
    assert "principal axes" in latent.title and "variance" in pca.xlabel
    # PCA of the data fitted on the training split: the projection is centred on the training mean.
    train = run.load_data().train.flatten(1).double().numpy()
    _, train_pca = embed(run, run.load_data().train, None, ["latent", "pca"])
    np.testing.assert_allclose(train_pca.points.mean(0), 0, atol=1e-8)
    assert train.shape[0] == len(train_pca.points)


def test_tsne_separates_the_digits_better_than_chance(runs):
    from sklearn.neighbors import KNeighborsClassifier

    run = runs["ae"]
    x, y = run.load_data().split("test")
    (tsne,) = embed(run, x, y, ["tsne"])
    knn = KNeighborsClassifier(5).fit(tsne.points[::2], y[::2].numpy())
    assert knn.score(tsne.points[1::2], y[1::2].numpy()) > 0.5  # chance is 0.1


def test_embed_command_writes_side_by_side_maps(runs, tmp_path, capsys):
    out = tmp_path / "maps.png"
    args = ["embed", str(runs["ae"].path), "--method", "latent,pca,tsne", "--max-points", "100", "--out", str(out)]
    assert main(args) == 0
    assert "100 points" in capsys.readouterr().out
    width, height = Image.open(out).size
    assert width > 2.5 * height  # three panels in a row


def test_embed_errors(runs, tmp_path, capsys, monkeypatch):
    run_dir = str(runs["ae"].path)
    assert main(["embed", run_dir, "--method", "spectral", "--out", str(tmp_path / "m.png")]) == 2
    assert "Unknown --method spectral" in capsys.readouterr().err
    assert main(["embed", run_dir, "--out", str(tmp_path / "m.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "umap", None)  # as if umap-learn were not installed
    assert main(["embed", run_dir, "--method", "umap", "--out", str(tmp_path / "m.png")]) == 2
    assert "pip install 'aekit[umap]'" in capsys.readouterr().err
    np.save(tmp_path / "new.npy", runs["ae"].load_data().test[:20].numpy())
    assert main(["embed", run_dir, "--data", str(tmp_path / "new.npy"), "--out", str(tmp_path / "m.png")]) == 2
    assert "--color-by none" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()
