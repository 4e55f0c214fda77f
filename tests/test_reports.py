"""What a run tells its reader: labelled figures, metrics with units and meanings, the command that made
it, the options that shaped it, and honest throughput and progress numbers."""

from __future__ import annotations

import ast
import json
import math
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.evaluation import glossary
from aekit.figures import canvas, energy_plots, latent_plots, plots
from aekit.figures.report import metric_table, page, write_report
from aekit.runs import artifacts, layout
from aekit.training import trainer as trainer_module
from fakes import FakeBar

FIXTURES = Path(__file__).parent / "fixtures" / "runs-0.1.0"
TINY = {"data": "digits", "epochs": 2, "progress": False}
MODELS = {  # a tiny network for each, so that the runs take seconds
    "ae": {"hidden": (16,)},
    "dae": {"hidden": (16,)},
    "vae": {"hidden": (16,), "latent_dim": 2},
    "cvae": {"model": "vae", "hidden": (16,), "condition_on": "labels"},
    "vq-vae": {"channels": 16, "num_codes": 16, "code_dim": 8},
}


@pytest.fixture
def drawn(monkeypatch):
    """Every figure the plotting modules save: path -> (what lacks a label, suptitle, the figure)."""
    seen: dict[str, tuple[list[str], str, object]] = {}
    original = canvas.save_figure

    def record(fig, path):
        seen[Path(path).name] = (canvas.unlabelled(fig), fig.get_suptitle(), fig)
        return original(fig, path)

    for module in (plots, latent_plots, energy_plots):
        monkeypatch.setattr(module, "save_figure", record)
    return seen


# ---- the glossary ---------------------------------------------------------------------------------------


NEW_NAMES = ["bits_per_dim_elbo", "bits_per_dim_iw", "neg_log_joint", "probe_accuracy", "knn_accuracy", "fid",
             "kid", "auroc", "average_precision", "train_seconds", "samples_per_s", "parameters"]  # fmt: skip


@pytest.mark.parametrize("name", NEW_NAMES)
def test_glossary_describes_the_names_of_the_comparison(name):
    unit, meaning = glossary.describe(name)
    assert meaning and len(meaning) < 120 and "\n" not in meaning
    assert glossary.GLOSSARY[name] == (unit, meaning)


def test_glossary_units_and_legacy_names():
    assert glossary.describe("bits_per_dim_elbo")[0] == "bits/dim" and glossary.describe("nll_iw")[0] == "nats"
    assert "Inception" in glossary.describe("fid")[1] and glossary.describe("neg_log_joint")[0] == "nats"
    assert glossary.describe("bits_per_dim") == glossary.describe("bits_per_dim_elbo")  # 0.1.0's name
    assert glossary.describe("valid/recon") == glossary.describe("recon")
    assert glossary.describe("no_such_metric") is None
    assert list(glossary.current_names({"kl": 1, "bits_per_dim": 2})) == ["kl", "bits_per_dim_elbo"]
    assert list(glossary.current_names({"nll_iw": 1, "bits_per_dim": 2})) == ["nll_iw", "bits_per_dim_iw"]


def test_glossary_is_a_leaf_module():
    tree = ast.parse(Path(glossary.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("aekit")]


# ---- figures ----------------------------------------------------------------------------------------------


def test_save_figure_refuses_unlabelled_axes(tmp_path):
    fig = canvas.figure(3, 3)
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    assert len(canvas.unlabelled(fig)) == 3  # title, x label, y label
    with pytest.raises(AssertionError, match="no title"):
        canvas.save_figure(fig, tmp_path / "bare.png")
    assert not (tmp_path / "bare.png").exists()
    ax.set(xlabel="x", ylabel="y")
    fig.suptitle("a figure title covers its panels")
    assert canvas.unlabelled(fig) == []
    image = canvas.figure(3, 3).add_subplot()
    image.imshow(np.zeros((4, 4)))
    image.set_axis_off()
    assert canvas.unlabelled(image.figure) == ["axes 0 has no title and the figure no suptitle"]
    image.figure.suptitle("an image grid needs only a title")
    assert canvas.unlabelled(image.figure) == []


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A few models trained for 2 epochs on digits, each figure recorded as it is saved."""
    root = tmp_path_factory.mktemp("runs")
    seen: dict[str, dict] = {}
    original = canvas.save_figure
    with pytest.MonkeyPatch.context() as mp:
        for name, options in MODELS.items():
            figures: dict = {}

            def record(fig, path, figures=figures):
                figures[Path(path).name] = (canvas.unlabelled(fig), fig.get_suptitle())
                return original(fig, path)

            for module in (plots, latent_plots, energy_plots):
                mp.setattr(module, "save_figure", record)
            aekit.train(**{"model": name, **TINY, **options}, out=root / name)
            seen[name] = figures
    return root, seen


def test_every_png_of_a_run_is_titled_and_labelled(tiny_runs):
    root, seen = tiny_runs
    for name in MODELS:
        pngs = sorted(p.name for p in (root / name / layout.PLOTS).glob("*.png"))
        assert pngs and pngs == sorted(seen[name]), name  # every PNG went through save_figure, into plots/
        assert {png: problems for png, (problems, _) in seen[name].items() if problems} == {}, name
        assert sorted(p.name for p in (root / name).rglob("*.png")) == pngs  # nothing drawn elsewhere
    assert "samples.png" in seen["vae"] and "samples" in seen["vae"]["samples.png"][1].lower()
    assert "per class" in seen["cvae"]["samples.png"][1]


def test_report_explains_each_metric_and_records_the_command(tiny_runs):
    root, _ = tiny_runs
    page_text = (root / "vae" / layout.REPORT).read_text()
    assert '<td class="unit">bits/dim</td>' in page_text and "the negative ELBO in bits per data dimension" in page_text
    assert "<th>samples_per_s</th>" in page_text and "samples/s" in page_text
    command = (root / "vae" / layout.COMMAND).read_text().strip()
    assert command.startswith("aekit.train(model='vae', data='digits', epochs=2") and f"out='{root / 'vae'}'" in command
    assert "aekit.train(model=&#x27;vae&#x27;" in page_text


@pytest.mark.parametrize(
    ("name", "absent", "present"),
    [
        ("ae", ["beta:", "commitment_weight", "noise_level", "sparsity_weight", "jacobian", "mnist_train", "progress",
                "obs_std", "\nformat:"], ["latent: deterministic", "hidden:", "epochs: 2"]),
        ("vae", ["sparsity", "noise_level", "commitment_weight", "num_classes", "label_column"], ["beta: 1.0"]),
        ("cvae", ["sparsity"], ["condition_on: labels", "num_classes: 10"]),
        ("vq-vae", ["beta:", "latent_dim", "hidden", "ema_decay", "sparsity"], ["commitment_weight", "num_codes: 16"]),
    ],
)  # fmt: skip
def test_report_shows_only_the_options_that_shaped_the_model(tiny_runs, name, absent, present):
    root, _ = tiny_runs
    page_text = (root / name / layout.REPORT).read_text()
    config = page_text.split("<h2>Configuration</h2>", 1)[1].split("<pre>", 1)[1]
    assert [a for a in absent if a in config] == []
    assert [p for p in present if p not in config] == []
    assert "noise_level" in (root / name / layout.CONFIG).read_text() or name == "vq-vae"  # config.yaml keeps all


def test_tabular_plots_name_features_and_say_when_they_show_a_subset(tmp_path, drawn):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12))
    plots.plot_feature_samples(x, x + 0.1, tmp_path / "s.png")
    plots.plot_feature_reconstruction(x[:, :3], x[:, :3], tmp_path / "r.png", feature_names=["age", "height", "w"])
    (problems, title, fig) = drawn["s.png"]
    assert problems == [] and "first 8 of 12 features" in title
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()][:2] == ["feature 0", "feature 1"]
    problems, title, fig = drawn["r.png"]
    assert problems == [] and "all 3 features" in title and fig.axes[0].get_title().startswith("age")
    latent_plots.plot_traversal(rng.normal(size=(2, 5, 10)), tmp_path / "t.png", np.linspace(-2, 2, 5))
    problems, title, fig = drawn["t.png"]
    assert problems == [] and "first 8 of 10 features" in title
    assert fig.axes[0].get_legend_handles_labels()[1][0] == "feature 0"


def test_image_grids_have_a_title_without_one_being_passed(tmp_path, drawn):
    images = np.random.default_rng(0).uniform(size=(6, 1, 8, 8))
    plots.plot_image_grid(images, tmp_path / "g.png")
    plots.plot_reconstructions(images, images, tmp_path / "r.png")
    latent_plots.plot_interpolation(images, tmp_path / "i.png")
    for name in ("g.png", "r.png", "i.png"):
        problems, title, fig = drawn[name]
        assert problems == [] and (title or fig.axes[0].get_title()), name


def test_energy_figures_are_labelled_and_their_legends_name_drawn_artists(tmp_path, drawn):
    from aekit.analyses.energy import write_energies

    run = aekit.train(model="latent-ebm", data="ellipse", latent_dim=1, epochs=2, progress=False, report=False,
                      out=tmp_path / "ebm")  # fmt: skip
    x = run.load_data().test[:50]
    _, written = write_energies(run, x, tmp_path / "out" / "energies.csv")
    assert sorted(p.name for p in written) == ["decoder_curve.png", "energy_landscape.png", "latent_energy.png"]
    assert all(p.parent == tmp_path / "out" for p in written)  # beside the --out file
    for name in ("decoder_curve.png", "energy_landscape.png", "latent_energy.png"):
        assert drawn[name][0] == [], name
    fig = drawn["decoder_curve.png"][2]
    ax = fig.axes[0]
    drawn_labels = {a.get_label() for a in [*ax.lines, *ax.collections] if a.get_visible()}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend and set(legend) <= drawn_labels
    assert any("Dec(z)" in t for t in legend) and "true ellipse w = (2.0, 1.0)" in legend


# ---- report pieces, old runs -----------------------------------------------------------------------------


def test_report_pieces_are_public_and_escape():
    table = metric_table({"fid": 1.5, "<x>": 2})
    assert "<th>fid</th>" in table and "aekit&#x27;s small classifier" in table and "&lt;x&gt;" in table
    html = page("t <b>", [table], subtitle="s")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "t &lt;b&gt;" in html


def test_old_run_reports_bits_per_dim_as_the_elbo_form_and_no_command(tmp_path):
    run_dir = tmp_path / "vae"
    shutil.copytree(FIXTURES / "vae", run_dir)
    run = aekit.load_run(run_dir)
    summary = json.loads((run_dir / layout.SUMMARY).read_text())
    report = artifacts.write_artifacts(run, run.load_data(), layout.read_metrics(run_dir), summary)
    text = report.read_text()
    assert "<h2>Command</h2>\n<p>not recorded</p>" in text
    assert "<th>bits_per_dim_elbo</th>" in text and "<th>bits_per_dim</th>" not in text
    page_text = write_report(tmp_path, title="t", summary={}, metrics=None, plots=[], command="aekit train --x 'a b'")
    assert "<pre>aekit train --x &#x27;a b&#x27;</pre>" in page_text.read_text()


# ---- the command line, throughput and progress ------------------------------------------------------------


def test_aekit_train_records_its_command_line_and_prints_the_overall_rate(tmp_path, capsys):
    out = tmp_path / "run dir"
    argv = ["train", "--model", "ae", "--hidden", "8", "--epochs", "2", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    command = (out / layout.COMMAND).read_text().strip()
    assert command == shlex.join(["aekit", *argv]) and "'" in command  # the space is quoted
    summary = json.loads((out / layout.SUMMARY).read_text())
    n_train = json.loads((out / layout.DATA_INFO).read_text())["sizes"]["train"]
    # train_seconds is rounded to the millisecond: allow for that rounding in the rate it implies.
    samples = summary["samples_per_s"] * summary["train_seconds"]
    assert samples == pytest.approx(n_train * 2, abs=summary["samples_per_s"] * 6e-4 + 0.1)
    assert f"({summary['samples_per_s']:.0f} samples/s)" in capsys.readouterr().out
    assert shlex.split(command)[1:] == argv


def test_samples_per_s_is_the_overall_rate_across_a_resume(tmp_path):
    kwargs = dict(model="ae", data="digits", hidden=(8,), progress=False, report=False)
    aekit.train(**kwargs, epochs=2, out=tmp_path / "r")
    command = (tmp_path / "r" / layout.COMMAND).read_text()
    run = aekit.resume(tmp_path / "r", epochs=4, report=False)
    assert (run.path / layout.COMMAND).read_text() == command  # the command that made the run stays
    summary = json.loads((run.path / layout.SUMMARY).read_text())
    history = layout.read_metrics(run.path)
    assert summary["epochs"] == 4 and len(history) == 4
    n_train = run.data_info["sizes"]["train"]
    seconds = sum(r["epoch_seconds"] for r in history)
    assert summary["train_seconds"] == pytest.approx(seconds, abs=2e-3)
    samples = summary["samples_per_s"] * summary["train_seconds"]  # train_seconds is rounded to the millisecond
    assert samples == pytest.approx(n_train * 4, abs=summary["samples_per_s"] * 6e-4 + 0.1)


def test_progress_bar_running_loss_weights_the_last_partial_batch(monkeypatch):
    monkeypatch.setattr(trainer_module, "tqdm", FakeBar)
    torch.manual_seed(0)
    x = torch.rand(100, 1, 8, 8)  # 100 = 3 * 32 + 4: the last batch holds 4 samples
    model = aekit.build_model("ae", (1, 8, 8), hidden=(8,), latent_dim=2, likelihood="bernoulli")
    config = aekit.TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu")
    records = []
    trainer = trainer_module.Trainer(model, config, log_every=1, callbacks=[lambda tr, r, i: records.append(r)])
    trainer.fit(x)
    running = [p for p in FakeBar.postfixes if "valid" not in p]  # the per-step postfixes
    assert len(running) == 2 * math.ceil(100 / 32)
    for epoch, record in enumerate(records, start=1):
        last = [p for p in running if p["epoch"] == epoch][-1]
        assert last["loss"] == f"{record['train/loss']:.4g}"
