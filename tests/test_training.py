"""Training and run directories: the loss goes down, runs reload exactly, resume continues."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import aekit
from aekit.evaluation.metrics import mean_image_mse
from aekit.runs.layout import read_metrics


def test_loss_decreases(vae_run):
    history = read_metrics(vae_run.path)
    assert len(history) == 40
    assert history[-1]["train/loss"] < 0.8 * history[0]["train/loss"]
    assert history[-1]["valid/loss"] < history[0]["valid/loss"]
    assert [r["epoch"] for r in history] == list(range(1, 41))


def test_run_directory_is_complete(vae_run):
    names = {p.name for p in vae_run.path.iterdir()}
    for name in ["config.yaml", "data.json", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl",
                 "summary.json", "report.html", "plots"]:  # fmt: skip
        assert name in names
    pngs = {p.name for p in (vae_run.path / "plots").glob("*.png")}
    assert {"loss_curves.png", "reconstructions.png", "samples.png", "latent_scatter.png"} <= pngs
    assert not list(vae_run.path.rglob("*.tmp")), "no temporary files are left behind"
    report = (vae_run.path / "report.html").read_text()
    assert "plots/samples.png" in report and "neg_elbo" in report


def test_save_load_identical_outputs(vae_run):
    x = vae_run.load_data().test[:32]
    again = aekit.load_run(vae_run.path)
    torch.testing.assert_close(again.encode(x), vae_run.encode(x), rtol=0, atol=0)
    torch.testing.assert_close(again.reconstruct(x), vae_run.reconstruct(x), rtol=0, atol=0)
    torch.testing.assert_close(again.sample(8, seed=3), vae_run.sample(8, seed=3), rtol=0, atol=0)
    assert again.config == vae_run.config


def test_best_checkpoint_is_kept(vae_run):
    summary = json.loads((vae_run.path / "summary.json").read_text())
    history = read_metrics(vae_run.path)
    best = min(history, key=lambda r: r["valid/loss"])
    assert summary["best_epoch"] == best["epoch"]


def test_resume_continues_from_saved_step(tmp_path):
    kwargs = dict(model="vae", data="digits", latent_dim=3, hidden=(32,), progress=False, report=False)
    full = aekit.train(epochs=4, out=tmp_path / "full", **kwargs)
    aekit.train(epochs=2, out=tmp_path / "part", **kwargs)
    first = read_metrics(tmp_path / "part")
    resumed = aekit.resume(tmp_path / "part", epochs=4, report=False)
    history = read_metrics(tmp_path / "part")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[:2] == first
    steps_per_epoch = first[0]["step"]
    assert [r["step"] for r in history] == [steps_per_epoch * e for e in (1, 2, 3, 4)]
    # Optimiser, RNG and shuffling state all resume: the result equals the uninterrupted run.
    full_hist = read_metrics(tmp_path / "full")
    for a, b in zip(history, full_hist, strict=True):
        assert abs(a["train/loss"] - b["train/loss"]) < 1e-4
    for (k, a), b in zip(resumed.model.state_dict().items(), full.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_early_stopping(tmp_path):
    run = aekit.train(model="ae", data="digits", epochs=200, patience=2, lr=0.3, progress=False,
                      report=False, out=tmp_path / "r")  # fmt: skip
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["stopped_early"] and summary["epochs"] < 200
    assert summary["epochs"] - summary["best_epoch"] == 2


def test_vae_beats_mean_image_on_digits(vae_run):
    data = vae_run.load_data()
    metrics = vae_run.evaluate(data.test)
    assert metrics["mse"] < mean_image_mse(data.train, data.test)
    assert set(metrics) >= {"mse", "sse", "psnr", "recon_nats", "neg_elbo", "kl"}
    assert abs(metrics["neg_elbo"] - metrics["recon_nats"] - metrics["kl"]) < 1e-6


def test_tabular_run(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    x = np.concatenate([z, z @ rng.normal(size=(2, 4))], 1) * 10 + 5  # 6 columns, rank 2
    path = tmp_path / "table.npy"
    np.save(path, x.astype(np.float32))
    run = aekit.train(model="vae", data=str(path), latent_dim=2, hidden=(32,), epochs=30, progress=False,
                      out=tmp_path / "run")  # fmt: skip
    assert run.config.model.likelihood == "gaussian"
    pngs = {p.name for p in (run.path / "plots").glob("*.png")}
    assert "feature_reconstruction.png" in pngs and "reconstructions.png" not in pngs
    recon = run.reconstruct(x[:50])
    assert float(np.abs(recon.numpy() - x[:50]).mean()) < float(np.abs(x[:50] - x.mean(0)).mean())


def test_training_without_a_validation_split(tmp_path):
    run = aekit.train(model="ae", data="digits", valid_fraction=0, epochs=2, hidden=(16,), progress=False,
                      report=False, out=tmp_path / "r")  # fmt: skip
    history = read_metrics(run.path)
    assert len(history) == 2 and "valid/loss" not in history[0]
    assert json.loads((run.path / "summary.json").read_text())["best_epoch"] >= 1


def test_adam_implementations_agree():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 8, 8)
    finals = {}
    for impl in ("foreach", "fused", "loop"):
        torch.manual_seed(0)
        model = aekit.build_model(aekit.model_config(model="ae", hidden=(16,), latent_dim=3, likelihood="bernoulli"),
                                  (1, 8, 8))  # fmt: skip
        trainer = aekit.Trainer(model, aekit.TrainConfig(epochs=3, adam_impl=impl, progress=False))
        trainer.fit(x)
        finals[impl] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(finals["fused"], finals["foreach"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(finals["loop"], finals["foreach"], rtol=1e-4, atol=1e-5)


def test_bf16_mixed_precision_trains_like_float32():
    x = aekit.load_dataset("digits").train[:512]
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = aekit.build_model(aekit.model_config(model="vae", hidden=(32,), latent_dim=4, likelihood="bernoulli"),
                                  (1, 8, 8))  # fmt: skip
        trainer = aekit.Trainer(model, aekit.TrainConfig(epochs=30, precision=precision, progress=False))
        first = trainer.evaluate_terms(x)["loss"]
        trainer.fit(x)
        losses[precision] = (first, trainer.evaluate_terms(x)["loss"])
        assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert losses["bf16"][1] < losses["bf16"][0] - 5.0  # it learns
    assert abs(losses["bf16"][1] - losses["fp32"][1]) < 0.02 * losses["fp32"][1]


def test_precision_errors():
    model = aekit.build_model(aekit.model_config(model="ae", hidden=(8,), latent_dim=2, likelihood="gaussian"), (4,))
    with pytest.raises(aekit.ConfigError, match="fp16 needs a CUDA device"):
        aekit.Trainer(model, aekit.TrainConfig(precision="fp16", device="cpu"))
    with pytest.raises(aekit.ConfigError, match="precision"):
        aekit.TrainConfig(precision="fp8").validate()
    with pytest.raises(aekit.ConfigError, match="latent-ebm"):
        aekit.RunConfig().replace(model="latent-ebm", precision="bf16").validate()


def test_conv_models_train_channels_last_by_default():
    x = aekit.load_dataset("digits").train[:256]
    conv = aekit.build_model(aekit.model_config(model="ae", arch="conv", hidden=(4, 8), latent_dim=3,
                                               likelihood="bernoulli"), (1, 8, 8))  # fmt: skip
    trainer = aekit.Trainer(conv, aekit.TrainConfig(epochs=2, progress=False))
    weights = [p for p in conv.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    trainer.fit(x)
    # A contiguous copy of the trained network computes the same loss: the layout changes speed only.
    twin = aekit.build_model(conv.config, (1, 8, 8))
    twin.load_state_dict(conv.state_dict())
    mlp = aekit.build_model("ae", (1, 8, 8), hidden=(8,), latent_dim=2, likelihood="bernoulli")
    assert not aekit.Trainer(mlp, aekit.TrainConfig(progress=False)).channels_last
    plain = aekit.Trainer(twin, aekit.TrainConfig(progress=False, memory_format="contiguous"))
    assert all(p.is_contiguous() for p in twin.parameters())
    assert plain.evaluate_terms(x)["loss"] == pytest.approx(trainer.evaluate_terms(x)["loss"], rel=1e-4)


def test_a_loss_scaler_state_is_saved_and_restored():
    model = aekit.build_model(aekit.model_config(model="ae", hidden=(8,), latent_dim=2, likelihood="gaussian"), (4,))
    trainer = aekit.Trainer(model, aekit.TrainConfig(progress=False))
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # as --precision fp16 makes on CUDA
    trainer.scaler.scale(torch.ones(()))  # the scale is created lazily, by the first scaled loss
    trainer.scaler.update(512.0)
    tensors, meta = trainer.state_tensors()
    assert json.loads(json.dumps(meta))["scaler"]["scale"] == 512.0  # JSON-safe, as the checkpoint stores it
    again = aekit.Trainer(model, aekit.TrainConfig(progress=False))
    again.scaler = torch.amp.GradScaler("cpu")
    again.load_state_tensors(tensors, meta)
    assert again.scaler.get_scale() == 512.0


@pytest.mark.skipif(not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile needs a C++ compiler")
def test_compiled_training_matches_eager():
    x = aekit.load_dataset("digits").train[:512]
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = aekit.build_model(aekit.model_config(model="vae", hidden=(32,), latent_dim=4, likelihood="bernoulli"),
                                  (1, 8, 8))  # fmt: skip
        trainer = aekit.Trainer(model, aekit.TrainConfig(epochs=5, compile=compiled, progress=False))
        trainer.fit(x)
        losses[compiled] = trainer.evaluate_terms(x)["loss"]
    assert losses[True] == pytest.approx(losses[False], rel=0.01)
    with pytest.raises(aekit.ConfigError, match="--compile cannot train this model"):
        aekit.RunConfig().replace(model="cae", compile=True).validate()
