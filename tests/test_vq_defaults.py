"""The VQ-VAE's defaults use the codebook from the first epoch: the codebook is fitted to the encoder's
outputs (k-means, Łańcucki et al. 2020), deterministically, once per run (a resume keeps it), alike on
every process, and the progress bar shows the codebook's perplexity."""

from __future__ import annotations

import json

import pytest
import torch
import torch.multiprocessing as mp

import aekit
from aekit.errors import ConfigError
from aekit.models import VQVAE
from aekit.parts.quantizer import VectorQuantizer
from aekit.training import Trainer
from aekit.training import trainer as trainer_module
from fakes import FakeBar

TINY = {"num_codes": 16, "code_dim": 4, "channels": 8, "res_blocks": 1, "downsample": 1}


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.movedim(1, -1).reshape(-1, z.shape[1])  # (N, D, h, w) -> (N*h*w, D)


# --- with the defaults, on digits ----------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One epoch of `aekit train --model vq-vae --data digits` with every default, its progress bar captured."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer_module, "tqdm", FakeBar)
        run = aekit.train(model="vq-vae", data="digits", epochs=1, progress=False, report=False,
                          out=tmp_path_factory.mktemp("runs") / "vq")  # fmt: skip
    return run, list(FakeBar.postfixes)


def test_the_codebook_is_in_use_after_one_epoch(digits_run):
    run, _ = digits_run
    (record,) = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    # A codebook drawn independently of the encoder gives 1.0 here (one code of 512 takes every position,
    # until the first dead-code restart); fitted to the encoder's outputs, 40-90 across seeds.
    assert record["valid/perplexity"] > 10, "the codebook collapsed in the first epoch"
    assert run.model.latent.initialized


def test_the_progress_bar_shows_the_perplexity(digits_run):
    run, postfixes = digits_run
    (record,) = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    last = postfixes[-1]
    assert last["perplexity"] == f"{record['valid/perplexity']:.4g}"
    assert set(last) == {"epoch", "loss", "valid", "perplexity", "samples_s"}


def test_the_postfix_shows_what_the_model_declares():
    record = {"epoch": 3, "train/loss": 1.23456, "valid/loss": 2.5, "valid/perplexity": 87.04, "valid/usage": 0.5,
              "samples_per_s": 1234.5}  # fmt: skip
    assert trainer_module.epoch_postfix(record, ("perplexity",)) == {
        "epoch": 3, "loss": "1.235", "valid": "2.5", "perplexity": "87.04", "samples_s": "1234",
    }  # fmt: skip
    assert "usage" not in trainer_module.epoch_postfix(record, ("perplexity",))  # logged, not shown
    assert list(trainer_module.epoch_postfix(record)) == ["epoch", "loss", "valid", "samples_s"]
    no_valid = {"epoch": 1, "train/loss": 1.0, "samples_per_s": 10.0}  # no validation split: no diagnostics
    assert "perplexity" not in trainer_module.epoch_postfix(no_valid, ("perplexity",))
    assert VQVAE((1, 8, 8), **TINY).progress_metrics == ("perplexity",)
    assert aekit.build_model("ae", (1, 8, 8), hidden=(8,), latent_dim=2, likelihood="bernoulli").progress_metrics == ()


# --- the fit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_ema", [False, True])
def test_the_first_training_batch_sets_the_codebook(use_ema):
    torch.manual_seed(0)
    z = torch.randn(6, 4, 3, 3) * 5 + 3  # far from the scale of a codebook drawn without data
    vq = VectorQuantizer(8, 4, use_ema=use_ema).eval()
    before = vq.codebook.detach().clone()
    vq(z)  # evaluation fits nothing
    assert torch.equal(vq.codebook, before) and not vq.initialized
    out = vq.train().quantize(z)
    assert vq.initialized and len(out.indices.unique()) > 4  # the codes are used from the first batch
    rows, fitted = _flat(z), {}
    for init in ("sample", "kmeans"):
        torch.manual_seed(1)  # the same draws: k-means starts from the sample
        vq = VectorQuantizer(8, 4, use_ema=use_ema, init=init)
        vq.init_codebook(z)
        fitted[init] = vq.codebook.detach().clone()
        if use_ema:  # the moving averages restart as for fresh codes: size 1, sum = the code
            assert torch.equal(vq.cluster_size, torch.ones(8)) and torch.equal(vq.embed_sum, vq.codebook)
    for code in fitted["sample"]:
        assert (code == rows).all(1).any(), "a sampled code is an encoder output"

    def distortion(codes: torch.Tensor) -> float:
        return float(torch.cdist(rows, codes).min(1).values.square().sum())

    # Lloyd's iterations from the same start only bring the codes closer to the data.
    assert distortion(fitted["kmeans"]) <= distortion(fitted["sample"]) + 1e-4
    assert distortion(fitted["kmeans"]) < 0.5 * distortion(before)  # against the codebook drawn without data


def test_the_warm_up_refits_at_doubling_steps_and_restarts_every_step(monkeypatch):
    fits, restarts = [], []
    fit, restart = VectorQuantizer.init_codebook, VectorQuantizer.restart_dead_codes

    def counted_fit(self: VectorQuantizer, z_e: torch.Tensor) -> None:
        fits.append(self._steps)
        fit(self, z_e)

    def counted_restart(self: VectorQuantizer, flat: torch.Tensor) -> None:
        restarts.append(self._steps)
        restart(self, flat)

    monkeypatch.setattr(VectorQuantizer, "init_codebook", counted_fit)
    monkeypatch.setattr(VectorQuantizer, "restart_dead_codes", counted_restart)
    vq = VectorQuantizer(8, 4, warmup_steps=8, restart_after=10).train()
    for _ in range(21):
        vq(torch.randn(2, 4, 2, 2))
    assert fits == [0, 1, 2, 4, 8]  # the steps whose batch the codebook is fitted to
    assert restarts == [1, 2, 3, 4, 5, 6, 7, 10, 20]  # after each warm-up step, then every restart_after
    fits.clear()
    vq = VectorQuantizer(8, 4, warmup_steps=0, restart_after=0).train()
    for _ in range(3):
        vq(torch.randn(2, 4, 2, 2))
    assert fits == [0] and restarts == [1, 2, 3, 4, 5, 6, 7, 10, 20]  # one fit; restarts off
    assert VectorQuantizer(8, 4, init="uniform").initialized  # nothing to fit
    with pytest.raises(ConfigError, match="warmup_steps"):
        VectorQuantizer(8, 4, warmup_steps=-1)
    with pytest.raises(ConfigError, match="codebook init"):
        VectorQuantizer(8, 4, init="zeros")
    with pytest.raises(ConfigError, match="codebook_init"):
        aekit.build_model("vq-vae", (1, 8, 8), codebook_init="zeros", likelihood="bernoulli")


def _train_tiny(seed: int, use_ema: bool, x: torch.Tensor) -> VQVAE:
    torch.manual_seed(123)  # the same initial weights: only the run's seed differs
    model = VQVAE((1, 8, 8), use_ema=use_ema, **TINY)
    Trainer(model, aekit.TrainConfig(epochs=1, batch_size=32, seed=seed, device="cpu", progress=False)).fit(x)
    return model


@pytest.mark.parametrize("use_ema", [False, True])
def test_the_fit_is_deterministic_given_the_seed(use_ema):
    x = aekit.load_dataset("digits").train[:64]
    a, b, other = (_train_tiny(seed, use_ema, x) for seed in (0, 0, 1))
    assert torch.equal(a.latent.codebook, b.latent.codebook)
    assert not torch.equal(a.latent.codebook, other.latent.codebook)


def test_a_resumed_run_keeps_its_codebook(tmp_path, monkeypatch):
    out = tmp_path / "vq"
    options = {"channels": 16, "num_codes": 32, "code_dim": 8, "downsample": 1, "batch_size": 512}
    aekit.train(model="vq-vae", epochs=1, out=out, progress=False, report=False, **options)  # 3 steps
    calls = []
    monkeypatch.setattr(VectorQuantizer, "init_codebook", lambda self, z: calls.append("fit"))
    monkeypatch.setattr(VectorQuantizer, "restart_dead_codes", lambda self, flat: calls.append("restart"))
    run = aekit.resume(out, epochs=2, report=False, progress=False)
    # It trained on, within the 32-step warm-up of an uninterrupted run, and kept its codebook.
    assert len((run.path / "metrics.jsonl").read_text().splitlines()) == 2
    assert calls == [] and run.model.latent.initialized
    # The same for a bare state dict, as from a release whose checkpoints say nothing about the fit.
    fresh = VectorQuantizer(8, 4)
    fresh.load_state_dict(VectorQuantizer(8, 4).state_dict())
    fresh.train()(torch.randn(2, 4, 2, 2))
    assert calls == [] and fresh.initialized


# --- under torchrun ------------------------------------------------------------------------------


def _fit_on_a_slice(rank: int, world: int, store: str, z: torch.Tensor, out: str) -> None:
    """One rank of a gloo group: two quantisers trained on its slices of the global batches ``z``, with no
    restarts and with the warm-up's restarts; rank 0 saves every rank's codebooks."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        start, stop = (0, 3) if rank == 0 else (3, 5)  # uneven slices of the global batch, in rank order
        gathered = []
        for options in ({"warmup_steps": 2, "restart_after": 0}, {}):
            vq = VectorQuantizer(8, 4, **options)
            for batch in z:
                vq.train()(batch[start:stop])
            codebooks = [torch.empty_like(vq.codebook) for _ in range(world)]
            torch.distributed.all_gather(codebooks, vq.codebook.detach().contiguous())
            gathered.append(torch.stack(codebooks))
        if rank == 0:
            torch.save(gathered, out)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_every_process_fits_the_codebook_one_process_fits(tmp_path):
    torch.manual_seed(0)
    z = torch.randn(3, 5, 4, 2, 2)  # three steps' global batches of 5 maps
    # Forked, not spawned: the ranks need no fresh interpreter to import torch into.
    mp.start_processes(_fit_on_a_slice, args=(2, str(tmp_path / "store"), z, str(tmp_path / "out.pt")), nprocs=2,
                       start_method="fork")  # fmt: skip
    fitted, restarted = torch.load(tmp_path / "out.pt")  # each (ranks, K, D)
    assert torch.equal(fitted[0], fitted[1]) and torch.equal(restarted[0], restarted[1]), "the ranks disagree"
    torch.manual_seed(0)
    alone = VectorQuantizer(8, 4, warmup_steps=2, restart_after=0).train()
    for batch in z:
        alone(batch)
    # Fitted to the gathered global batches with the same draws, at steps 0, 1 and 2.
    assert torch.equal(fitted[0], alone.codebook.detach())
