"""Plots write real, non-blank PNGs; the report is escaped, self-contained and lists only existing plots."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aekit.errors import DataError
from aekit.figures import plots
from aekit.figures.report import format_value, write_report

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(20, 1, 8, 8)).astype(np.float32)
TABLE = RNG.normal(size=(300, 5))


def assert_png(path, min_side: int = 150) -> np.ndarray:
    """The file is a valid PNG, reasonably large and not a single colour; return its pixels."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert min(img.size) >= min_side, img.size
        pixels = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 0
    return pixels


def assert_no_temp_files(directory) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


# ---- image grids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_tensor", [False, True])
def test_image_grid_grey_and_tensor(tmp_path, as_tensor):
    images = torch.from_numpy(IMAGES) if as_tensor else IMAGES
    out = plots.plot_image_grid(images, tmp_path / "grid.png", title="Samples <epoch 3>")
    assert out == tmp_path / "grid.png"
    pixels = assert_png(out)
    # 8x8 images are enlarged: a 5x4 grid of 8x8 tiles is drawn far larger than its 46x37 pixels.
    assert pixels.shape[1] >= 300


def test_image_grid_rgb_and_nrow(tmp_path):
    rgb = RNG.uniform(size=(6, 3, 28, 28))
    wide = assert_png(plots.plot_image_grid(rgb, tmp_path / "wide.png", nrow=6), min_side=40)
    tall = assert_png(plots.plot_image_grid(rgb, tmp_path / "tall.png", nrow=1), min_side=40)
    assert wide.shape[1] > wide.shape[0] and tall.shape[0] > tall.shape[1]


@pytest.mark.parametrize("shape", [(64, 64), (4, 2, 8, 8), (0, 1, 8, 8), (8, 8, 1)])
def test_image_grid_rejects_bad_shapes(tmp_path, shape):
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        plots.plot_image_grid(np.zeros(shape), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_reconstructions_wrap_into_pairs_of_rows(tmp_path):
    noisy = np.clip(IMAGES + 0.2, 0, 1)
    two_rows = assert_png(plots.plot_reconstructions(IMAGES, noisy, tmp_path / "r16.png"), min_side=60)
    four_rows = assert_png(plots.plot_reconstructions(IMAGES, noisy, tmp_path / "r20.png", n=20), min_side=60)
    assert four_rows.shape[0] > 1.5 * two_rows.shape[0]
    with pytest.raises(DataError, match="same shape"):
        plots.plot_reconstructions(IMAGES, noisy[:, :, :4], tmp_path / "bad.png")


def test_rows_are_labelled(tmp_path):
    rows = [("clean", IMAGES[:6]), ("corrupted", torch.from_numpy(IMAGES[6:12])), ("restored", IMAGES[:6])]
    pixels = assert_png(plots.plot_rows(rows, tmp_path / "rows.png"), min_side=100)
    label_margin = pixels[:, :40]  # the labels are drawn left of the images
    assert label_margin.min() < 128
    with pytest.raises(DataError):
        plots.plot_rows([], tmp_path / "none.png")


# ---- loss curves and latent codes ------------------------------------------------------------------------


def epoch_records(n: int, valid: bool = True) -> list[dict]:
    records = []
    for epoch in range(1, n + 1):
        record = {"epoch": epoch, "step": 10 * epoch, "train/loss": 90 / epoch, "train/kl": 5 + 1 / epoch}
        record |= {"valid/loss": 95 / epoch, "valid/kl": 6.0} if valid else {}
        records.append(record | {"time": "12:00", "train/note": "not a number", "lr": 1e-3})
    return records


@pytest.mark.parametrize("valid", [True, False])
def test_loss_curves(tmp_path, valid):
    assert_png(plots.plot_loss_curves(epoch_records(12, valid=valid), tmp_path / "loss.png"))


def test_loss_curves_single_epoch_and_no_numbers(tmp_path):
    assert_png(plots.plot_loss_curves([{"train/loss": 3.0}], tmp_path / "one.png"))
    with pytest.raises(DataError, match="train/"):
        plots.plot_loss_curves([{"epoch": 1, "lr": 0.1}], tmp_path / "none.png")


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("labelled", [False, True])
def test_latent_scatter(tmp_path, k, labelled):
    labels = RNG.integers(0, 10, size=400)
    codes = RNG.normal(size=(400, k)) + labels[:, None]
    given = torch.from_numpy(labels) if labelled else None
    assert_png(plots.plot_latent_scatter(torch.from_numpy(codes), given, tmp_path / "z.png"))


def test_latent_scatter_continuous_labels_and_many_points(tmp_path):
    codes = RNG.normal(size=(6000, 3))
    assert_png(plots.plot_latent_scatter(codes, RNG.uniform(size=6000), tmp_path / "z.png", title="factor"))
    with pytest.raises(DataError, match="one entry per code"):
        plots.plot_latent_scatter(codes, np.zeros(10), tmp_path / "bad.png")
    with pytest.raises(DataError, match="NaN"):
        plots.plot_latent_scatter(np.full((5, 2), np.nan), None, tmp_path / "bad.png")


# ---- tabular data ----------------------------------------------------------------------------------------


def test_feature_reconstruction(tmp_path):
    recon = TABLE + 0.1 * RNG.normal(size=TABLE.shape)
    recon[:, 4] = 0.0  # a constant feature must not break R²
    names = ["age", "income", "a rather long feature name", "d", "e"]
    assert_png(plots.plot_feature_reconstruction(TABLE, recon, tmp_path / "f.png", feature_names=names))
    with pytest.raises(DataError, match=r"\(N, D\)"):
        plots.plot_feature_reconstruction(TABLE[:, 0], recon[:, 0], tmp_path / "bad.png")


def test_feature_samples(tmp_path):
    samples = torch.from_numpy(np.vstack([RNG.normal(size=(200, 5)), np.full((1, 5), 1e6)]))  # one wild sample
    assert_png(plots.plot_feature_samples(TABLE, samples, tmp_path / "s.png", max_features=3))
    with pytest.raises(DataError, match="features"):
        plots.plot_feature_samples(TABLE, samples[:, :2], tmp_path / "bad.png")


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    target = tmp_path / "nested" / "grid.png"
    target.parent.mkdir()
    target.write_bytes(b"old")
    plots.plot_image_grid(IMAGES, target)
    assert_png(target)
    assert_no_temp_files(target.parent)


def test_no_pyplot_and_backend_untouched():
    # A fresh interpreter: the test session itself may have imported pyplot elsewhere.
    code = (
        "import sys, matplotlib; matplotlib.use('svg'); import numpy as np, tempfile, os; "
        "from aekit.figures import plots; "
        "plots.plot_image_grid(np.ones((1, 1, 4, 4)) * 0.5, os.path.join(tempfile.mkdtemp(), 'g.png')); "
        "assert 'matplotlib.pyplot' not in sys.modules; assert matplotlib.get_backend() == 'svg'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- report ----------------------------------------------------------------------------------------------


def test_report(tmp_path):
    (tmp_path / "plots").mkdir()
    plots.plot_loss_curves(epoch_records(3), tmp_path / "plots" / "loss.png")
    summary = {"model": "vae", "data": "digits", "epochs": 30, "train time (s)": 12.345678}
    summary["samples/s"] = 123456.7
    metrics = {"test/nll": 81.23456, "bits/dim": 0.1234567}
    config = {"model": {"name": "vae", "hidden": (64, 32)}, "note": "<b>bold</b>", "lr": 1e-3}
    heading_plots = [("Loss <curves>", "plots/loss.png"), ("Samples", "plots/missing.png")]
    title = "VAE <script>alert(1)</script>"
    out = write_report(tmp_path, title=title, summary=summary, metrics=metrics, plots=heading_plots, config=config)
    assert out == tmp_path / "report.html"
    page = out.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "81.23" in page and "0.1235" in page and "12.35" in page and "123,457" in page
    assert page.count("<img") == 1 and 'src="plots/loss.png"' in page and "missing.png" not in page
    assert "Loss &lt;curves&gt;" in page
    assert "<pre>model:\n  name: vae\n  hidden:\n  - 64\n  - 32\nnote: &lt;b&gt;bold&lt;/b&gt;" in page
    assert "http" not in page and "<link" not in page  # self-contained
    assert_no_temp_files(tmp_path)


def test_report_without_metrics_or_config(tmp_path):
    page = write_report(tmp_path, title="t", summary={"model": "ae"}, metrics=None, plots=[]).read_text()
    assert "Test metrics" not in page and "<pre>" not in page and "<img" not in page


FORMATS = [
    (0.123456, "0.1235"), (1234.5678, "1,235"), (98765.4, "98,765"), (3, "3"), (9160, "9,160"), (True, "yes"),
    (None, "—"), (np.float32(2.5), "2.5"), (float("nan"), "nan"), ((64, 32), "64, 32"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "text"), FORMATS)
def test_format_value(value, text):
    assert format_value(value) == text


def test_report_enlarges_tiny_images_with_sharp_pixels(tmp_path):
    Image.fromarray((RNG.uniform(size=(8, 8)) * 255).astype(np.uint8)).save(tmp_path / "tiny.png")
    page = write_report(tmp_path, title="t", summary={}, metrics=None, plots=[("Tiny", "tiny.png")]).read_text()
    assert 'class="pixelated"' in page and 'width="320"' in page and "image-rendering: pixelated" in page
