"""The PixelCNN prior's defaults: what they record, that they stop before overfitting, that the faster
layers stay causal and cover the code map, and that the default prior on a VQ-VAE beats uniform codes."""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

import aekit
from aekit.cli import build_parser, main
from aekit.parts.pixelcnn import GatedPixelCNN, default_layers, layers_to_cover, mean_nll, train_prior
from aekit.runs import priors

# The defaults that docs/commands.md documents for `aekit train-prior`.
DOCUMENTED = {"epochs": 50, "batch_size": 256, "lr": 2e-3, "patience": 3, "channels": 64, "kernel": 3, "seed": 0}


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    """A VQ-VAE trained briefly on digits (2x2 maps of 32 codes) with a prior fitted by the default command."""
    out = tmp_path_factory.mktemp("runs") / "vq"
    aekit.train(model="vq-vae", num_codes=32, code_dim=8, channels=16, res_blocks=1, epochs=10, progress=False,
                report=False, out=out)  # fmt: skip
    assert main(["train-prior", str(out), "--no-progress"]) == 0
    return out


def test_the_default_prior_beats_uniform_codes_by_a_clear_margin(vq_run, tmp_path):
    info = json.loads((vq_run / "prior.json").read_text())
    assert info["uniform_bits_per_code"] == 5.0
    # Measured: 1.6 bits per code (codebook perplexity 23); an untrained prior costs 5, one epoch's 4.4.
    assert info["test_bits_per_code"] < 0.6 * info["uniform_bits_per_code"]
    out = tmp_path / "s.png"
    assert main(["sample", str(vq_run), "-n", "16", "--out", str(out)]) == 0
    assert out.stat().st_size > 500


def test_prior_json_records_the_documented_defaults(vq_run):
    info = json.loads((vq_run / "prior.json").read_text())
    keys = ("epochs", "batch_size", "lr", "patience", "seed")
    assert info["settings"] == {k: DOCUMENTED[k] for k in keys}
    h, w = info["code_shape"]
    assert info["prior"] == {"num_codes": 32, "channels": DOCUMENTED["channels"], "kernel": DOCUMENTED["kernel"],
                             "layers": default_layers((h, w))}  # fmt: skip
    assert info["prior"]["layers"] == 8  # 2x2 maps need 1 layer to be covered; the default keeps 8
    assert info["valid_maps"] == "the valid split"
    records = info["records"]
    assert info["best_epoch"] == min(records, key=lambda r: r["valid/nll"])["epoch"]
    assert info["stopped_early"] == (len(records) < DOCUMENTED["epochs"])
    if info["stopped_early"]:
        assert len(records) == info["best_epoch"] + DOCUMENTED["patience"]


def test_without_a_valid_split_a_tenth_of_the_training_maps_chooses_the_best_epoch(tmp_path):
    run = aekit.train(model="vq-vae", num_codes=8, code_dim=4, channels=8, res_blocks=1, epochs=1, valid_fraction=0.0,
                      progress=False, report=False, out=tmp_path / "vq")  # fmt: skip
    assert not len(run.load_data().valid)
    summary = priors.train_prior(run, epochs=3, channels=8, progress=False)
    assert summary["valid_maps"] == "a tenth of the training maps"
    assert all("valid/nll" in r for r in summary["records"])
    without = priors.train_prior(run, epochs=2, channels=8, patience=0, overwrite=True, progress=False)
    assert without["valid_maps"] is None and len(without["records"]) == 2  # patience 0: no early stopping


def test_the_three_places_that_set_the_defaults_agree():
    args = build_parser().parse_args(["train-prior", "RUN"])
    api = inspect.signature(priors.train_prior).parameters
    fit = inspect.signature(train_prior).parameters
    for key, value in DOCUMENTED.items():
        assert getattr(args, key) == value, key
        assert api[key].default == value, key
        if key in fit:
            assert fit[key].default == value, key
    assert args.layers is None and api["layers"].default is None  # None: default_layers(code shape)


def test_default_fit_keeps_its_best_epoch_and_stops_before_it_overfits():
    # Many codes, few maps, as with a VQ-VAE of 512 codes on digits: 2x2 maps of independent codes
    # from a long-tailed marginal over 512. The best model is the marginal; fitting the maps of the
    # training set for 20 epochs without early stopping costs about 11.3 bits per test code, more
    # than uniform codes (9 bits).
    k, g = 512, torch.Generator().manual_seed(0)
    marginal = 1 / torch.arange(1, k + 1, dtype=torch.float64) ** 0.8
    marginal /= marginal.sum()
    entropy = float(-(marginal * marginal.log2()).sum())  # 7.83 bits
    train, valid, test = (torch.multinomial(marginal, 4 * n, True, generator=g).view(n, 2, 2) for n in (500, 200, 400))
    torch.manual_seed(0)
    prior = GatedPixelCNN(k, layers=default_layers((2, 2)))
    records = train_prior(prior, train, valid=valid, progress=False)
    best = min(range(len(records)), key=lambda i: records[i]["valid/nll"])
    assert mean_nll(prior, valid) == pytest.approx(records[best]["valid/nll"], rel=1e-5)  # the best epoch's weights
    assert len(records) - 1 - best == DOCUMENTED["patience"] and len(records) < DOCUMENTED["epochs"]
    test_bits = mean_nll(prior, test) / (4 * math.log(2))
    assert test_bits < entropy + 0.6 and test_bits < math.log2(k) - 0.5  # measured: 8.24


def _dependence(prior: GatedPixelCNN, shape: tuple[int, int], k: int) -> torch.Tensor:
    """``D[t, s]``: whether changing the code at raster position ``t`` changes the logits at ``s``."""
    h, w = shape
    codes = torch.randint(k, (1, h, w), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = prior(codes).flatten(2)  # (1, K, h*w)
        rows = []
        for t in range(h * w):
            changed = codes.clone().view(1, -1)
            changed[0, t] = (changed[0, t] + 1) % k
            diff = (prior(changed.view(1, h, w)).flatten(2) - base).abs().amax(1)[0]  # (h*w,)
            rows.append(diff > 1e-9)
    return torch.stack(rows)


@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (3, 6), (7, 7)])
def test_each_position_sees_exactly_the_codes_before_it_after_training(shape):
    k = 7
    torch.manual_seed(0)
    prior = GatedPixelCNN(k, channels=8, layers=layers_to_cover(shape))
    maps = torch.randint(k, (64, 1, 1)).expand(-1, *shape)  # constant maps: every earlier code tells the next
    train_prior(prior, maps, epochs=2, batch_size=16, progress=False)
    with torch.no_grad():  # weights where a mask is 0 (as in any checkpoint) must stay hidden
        for layer in prior.layers:
            for conv in (layer.vertical, layer.horizontal):
                conv.weight.add_(10 * (1 - conv.mask))
    prior = prior.double().eval()
    n = shape[0] * shape[1]
    later = torch.ones(n, n, dtype=torch.bool).triu(1)  # later[t, s]: s comes after t in raster order
    assert torch.equal(_dependence(prior, shape, k), later)  # causal, and every earlier code is seen


def test_one_layer_fewer_than_layers_to_cover_leaves_a_code_unseen():
    shape, k = (5, 5), 7
    assert layers_to_cover(shape) == 4 and layers_to_cover((2, 2)) == 1 and layers_to_cover((7, 7), kernel=5) == 3
    torch.manual_seed(0)
    short = GatedPixelCNN(k, channels=8, layers=3).double().eval()
    seen = _dependence(short, shape, k)
    assert not seen[0, -1]  # the last position does not see the first (4 rows up)
    assert not (seen & ~torch.ones(25, 25, dtype=torch.bool).triu(1)).any()  # still causal


def test_fit_uses_one_thread_on_small_maps_and_restores_the_setting():
    torch.set_num_threads(2)
    prior = GatedPixelCNN(5, channels=4, layers=2)
    seen = []
    prior.embedding.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    train_prior(prior, torch.randint(5, (32, 2, 2)), epochs=1, batch_size=8, progress=False)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
