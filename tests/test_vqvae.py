"""VQ-VAE, its vector quantiser and the gated PixelCNN prior: the facts of the papers, on tiny models."""

from __future__ import annotations

import math

import pytest
import torch

from aekit.config import TrainConfig
from aekit.errors import ConfigError, NotGenerativeError
from aekit.evaluation.metrics import evaluate
from aekit.models import VQVAE
from aekit.parts.pixelcnn import GatedPixelCNN, bits_per_code, train_prior
from aekit.parts.quantizer import VectorQuantizer, code_counts, usage_stats
from aekit.training import Trainer

TINY = {"num_codes": 8, "code_dim": 4, "channels": 16, "res_blocks": 1}


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.movedim(1, -1).reshape(-1, z.shape[1])  # (N, D, h, w) -> (N*h*w, D)


# --- the quantiser -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_nearest_code_matches_brute_force(dtype):
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 8)
    z = (torch.randn(20, 8, 5, 5) * 0.5).to(dtype)
    expected = torch.cdist(_flat(z).double(), vq.codebook.detach().double()).argmin(1).view(20, 5, 5)
    assert torch.equal(vq.encode_indices(z), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # distances stay in float32 under mixed precision
        assert torch.equal(vq.encode_indices(z), expected)
    assert torch.equal(vq.lookup(expected), vq.codebook[expected].movedim(-1, 1))


def test_vector_inputs():
    vq = VectorQuantizer(4, 3)
    z = torch.randn(6, 3)
    out = vq.quantize(z)
    assert out.indices.shape == (6,) and out.z_q.shape == (6, 3) and out.commitment.shape == (6,)


def test_straight_through_gradient_is_the_identity():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4).eval()
    z_e = torch.randn(3, 4, 2, 2, requires_grad=True)
    out = vq.quantize(z_e)
    assert torch.allclose(out.z_q, vq.lookup(out.indices))  # forward: the code vectors
    v = torch.randn_like(z_e)
    (out.z_q * v).sum().backward()
    assert torch.equal(z_e.grad, v)  # backward: d z_q / d z_e = I
    assert vq.codebook.grad is None  # the reconstruction path does not train the codebook


def test_reconstruction_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    model = VQVAE((1, 8, 8), downsample=1, **TINY)
    model.loss_terms(torch.rand(4, 1, 8, 8).round())["recon"].mean().backward()
    for p in model.encoder.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_codebook_and_commitment_losses_equal_their_formulas():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4).eval()
    z_e = torch.randn(3, 4, 2, 2, requires_grad=True)
    out = vq.quantize(z_e)
    expected = (z_e - vq.lookup(out.indices)).square().sum((1, 2, 3))  # (N,)
    assert torch.allclose(out.codebook, expected) and torch.allclose(out.commitment, expected)
    out.codebook.sum().backward(retain_graph=True)  # sg[z_e]: only the codebook learns from it
    assert z_e.grad is None and vq.codebook.grad.abs().sum() > 0
    vq.codebook.grad = None
    out.commitment.sum().backward()  # sg[e]: only the encoder learns from it
    assert vq.codebook.grad is None and z_e.grad.abs().sum() > 0


def test_ema_update_matches_its_formula():
    vq = VectorQuantizer(3, 2, use_ema=True, decay=0.9, eps=1e-5, restart_after=0, init="uniform").train()
    start = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    vq.codebook.copy_(start)
    vq.embed_sum.copy_(start)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [9.0, 10.0]])  # codes 0, 0, 0, 1; code 2 unused
    out = vq.quantize(z)
    assert out.indices.tolist() == [0, 0, 0, 1] and out.codebook is None
    size = torch.tensor([0.9 * 1 + 0.1 * 3, 0.9 * 1 + 0.1 * 1, 0.9 * 1 + 0.1 * 0])
    sums = 0.9 * start + 0.1 * torch.tensor([[0.0, 1.0], [9.0, 10.0], [0.0, 0.0]])
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 3 * 1e-5) * n  # Laplace smoothing
    assert torch.allclose(vq.cluster_size, size)
    assert torch.allclose(vq.embed_sum, sums)
    assert torch.allclose(vq.codebook, sums / smoothed[:, None])
    assert "codebook" not in dict(vq.named_parameters())  # the optimiser never sees an EMA codebook
    vq.eval()
    before = vq.codebook.clone()
    vq(z)
    assert torch.equal(vq.codebook, before)  # no updates outside training


@pytest.mark.parametrize("use_ema", [False, True])
def test_dead_codes_are_reseeded_from_the_batch(use_ema):
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, use_ema=use_ema, restart_after=3, init="uniform").train()  # the codebook set below
    live = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with torch.no_grad():
        vq.codebook.copy_(torch.cat([live, torch.full((4, 2), 1000.0)]))  # codes 4..7 are never nearest
        if use_ema:
            vq.embed_sum.copy_(vq.codebook)
    z = (live.repeat(4, 1) + 0.01 * torch.randn(16, 2)).view(4, 4, 2).movedim(-1, 1)  # (4, 2, 4): a 1-D map
    for _ in range(2):
        vq(z)
    # Not yet restarted: restart_after steps have not passed (EMA smoothing only nudges them).
    assert torch.allclose(vq.codebook[4:], torch.full((4, 2), 1000.0), rtol=1e-3)
    vq(z)
    flat = _flat(z)
    for k in range(4, 8):
        assert (vq.codebook[k] == flat).all(1).any(), "a restarted code is a recent encoder output"
    if use_ema:
        assert torch.equal(vq.cluster_size[4:], torch.ones(4))
        assert torch.equal(vq.embed_sum[4:], vq.codebook[4:])
    else:
        assert torch.equal(vq.codebook[:4], live)
    assert vq.usage_window.sum() == 0


def test_distributed_statistics_are_reduced(monkeypatch):
    """Two processes that saw the same batch must update like one process that saw it twice."""
    torch.manual_seed(0)
    z = torch.randn(5, 4, 3, 3)
    single = VectorQuantizer(6, 4, use_ema=True, restart_after=0, init="uniform").train()
    dist = VectorQuantizer(6, 4, use_ema=True, restart_after=0, init="uniform").train()
    dist.load_state_dict(single.state_dict())
    single(torch.cat([z, z]))

    broadcasts = []
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda t, *a, **k: t.add_(t.clone()))  # + the twin
    monkeypatch.setattr(torch.distributed, "broadcast", lambda t, src=0, *a, **k: broadcasts.append(src))
    dist(z)
    for name in ("cluster_size", "embed_sum", "codebook"):
        assert torch.allclose(getattr(dist, name), getattr(single, name)), name
    dist.restart_after = 1
    dist(z)
    assert broadcasts == [0]  # restarted codes come from rank 0


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_real_process_group_of_one(tmp_path):
    """The collective calls run in a real (gloo, world size 1) group and change nothing there."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        z = torch.randn(5, 4, 3, 3)
        alone = VectorQuantizer(6, 4, use_ema=True, restart_after=0, init="uniform").train()
        grouped = VectorQuantizer(6, 4, use_ema=True, restart_after=2, init="uniform").train()
        grouped.load_state_dict(alone.state_dict())
        alone(z)
        grouped(z)
        assert torch.equal(grouped.codebook, alone.codebook)
        grouped(z)  # a restart step: all_reduce of the usage and broadcast of the candidates
    finally:
        torch.distributed.destroy_process_group()


def test_perplexity_and_usage():
    k = 16
    uniform = usage_stats(code_counts(torch.arange(k).repeat(5), k))
    assert math.isclose(float(uniform["perplexity"]), k, rel_tol=1e-5) and float(uniform["usage"]) == 1
    single = usage_stats(code_counts(torch.full((4, 3, 3), 7), k))
    assert math.isclose(float(single["perplexity"]), 1.0) and float(single["usage"]) == 1 / k


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_codes": 1, "code_dim": 4},
        {"num_codes": 8, "code_dim": 0},
        {"num_codes": 8, "code_dim": 4, "commitment_weight": -0.1},
        {"num_codes": 8, "code_dim": 4, "decay": 0.0},
        {"num_codes": 8, "code_dim": 4, "decay": 1.0},
    ],
)
def test_bad_quantizer_options_raise(kwargs):
    with pytest.raises(ConfigError):
        VectorQuantizer(**kwargs)


# --- the VQ-VAE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "code_shape", "likelihood"),
    [((1, 28, 28), (7, 7), "bernoulli"), ((3, 13, 17), (3, 4), "gaussian")],
)
def test_vqvae_round_trip_shapes(shape, code_shape, likelihood):
    torch.manual_seed(0)
    model = VQVAE(shape, likelihood=likelihood, **TINY).eval()
    x = torch.rand(2, *shape)
    assert model.code_shape == code_shape and model.latent_dim == 4 * code_shape[0] * code_shape[1]
    z = model.encode(x)
    assert z.shape == (2, model.latent_dim)
    indices = model.encode_indices(x)
    assert indices.shape == (2, *code_shape) and indices.dtype == torch.long
    assert model.reconstruct(x).shape == x.shape
    assert torch.equal(model.decode(z), model.reconstruct(x))  # decode quantises its input
    assert model.decode(z.view(2, 4, *code_shape)).shape == x.shape
    assert model.decode_indices(indices).shape == x.shape
    assert model.sample(3, generator=torch.Generator().manual_seed(0), prior="uniform").shape == (3, *shape)
    terms = model.loss_terms(x)
    assert list(terms) == list(model.term_weights) == ["recon", "codebook", "commitment"]
    assert all(t.shape == (2,) for t in terms.values())


def test_ema_model_has_no_codebook_term():
    model = VQVAE((1, 8, 8), downsample=1, use_ema=True, commitment_weight=0.5, **TINY)
    assert model.term_weights == {"recon": 1.0, "commitment": 0.5}
    assert set(model.loss_terms(torch.rand(2, 1, 8, 8))) == {"recon", "commitment"}


def test_bad_vqvae_options_raise():
    with pytest.raises(ConfigError, match="image data"):
        VQVAE((64,))
    with pytest.raises(ConfigError, match="downsample"):
        VQVAE((1, 8, 8), downsample=4)
    with pytest.raises(ConfigError, match="likelihood"):
        VQVAE((1, 8, 8), likelihood="poisson")


def test_training_lowers_the_reconstruction_loss():
    torch.manual_seed(0)
    prototypes = torch.rand(4, 1, 8, 8).round()  # random binary 8x8 images
    data = prototypes.repeat(16, 1, 1, 1)
    model = VQVAE((1, 8, 8), num_codes=16, code_dim=8, channels=32, res_blocks=1, downsample=1, restart_after=10)
    records = []
    config = TrainConfig(epochs=10, batch_size=16, lr=2e-3, device="cpu", progress=False)
    trainer = Trainer(model, config, callbacks=[lambda tr, rec, imp: records.append(rec)])
    trainer.fit(data, data[:8])
    assert records[-1]["train/recon"] < 0.7 * records[0]["train/recon"]
    assert {"valid/codebook", "valid/commitment"} <= set(records[-1])
    assert model.epoch_diagnostics(data)["usage"] > 0
    metrics = evaluate(model, data[:8])  # the evaluation of deterministic models works unchanged
    assert metrics["recon_nats"] > 0 and "kl" not in metrics


def test_sampling_needs_a_prior():
    model = VQVAE((1, 8, 8), downsample=1, **TINY)
    assert not model.capabilities.generative and model.capabilities.needs_prior
    with pytest.raises(NotGenerativeError, match="train-prior"):
        model.sample(2)
    with pytest.raises(ConfigError):
        model.attach_prior(GatedPixelCNN(5, channels=4, layers=1))
    model.attach_prior(GatedPixelCNN(8, channels=4, layers=1))
    assert model.capabilities.generative
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 8, 8)


# --- the gated PixelCNN prior --------------------------------------------------------------------


def test_pixelcnn_is_causal_in_raster_order():
    torch.manual_seed(0)
    prior = GatedPixelCNN(5, channels=8, layers=3, kernel=3).eval()
    first = prior.layers[0]
    assert first.horizontal.mask[0, 0, 0, -1] == 0 and first.vertical.mask[0, 0, -1].sum() == 0  # type A
    assert prior.layers[1].horizontal.mask.all() and prior.layers[1].vertical.mask.all()  # type B
    h, w = 5, 6
    codes = torch.randint(5, (2, h, w))
    with torch.no_grad():
        base = prior(codes)
        for t in range(h * w):
            changed = codes.clone().view(2, -1)
            changed[:, t:] = torch.randint(5, (2, h * w - t))  # every position >= t in raster order
            logits = prior(changed.view(2, h, w)).flatten(2)  # (N, K, h*w)
            # ... leaves the logits at positions <= t alone: (i, j) sees only what comes before it.
            assert torch.allclose(logits[:, :, : t + 1], base.flatten(2)[:, :, : t + 1], atol=1e-6), t
        # No blind spot: (2, 2) sees (1, 3), up and to the right, through the vertical stack.
        changed = codes.clone()
        changed[:, 1, 3] = (changed[:, 1, 3] + 1) % 5
        assert not torch.allclose(prior(changed)[:, :, 2, 2], base[:, :, 2, 2])


def test_pixelcnn_learns_structured_code_maps():
    torch.manual_seed(0)
    k, shape = 8, (4, 4)
    maps = torch.randint(k, (256, 1, 1)).expand(-1, *shape).contiguous()  # each map one constant code
    prior = GatedPixelCNN(k, channels=16, layers=2)
    records = train_prior(prior, maps[:224], epochs=12, batch_size=32, lr=5e-3, valid=maps[224:], progress=False)
    assert len(records) == 12 and {"train/nll", "valid/nll", "valid/bits_per_code"} <= set(records[-1])
    per_code = records[-1]["valid/nll"] / (shape[0] * shape[1])
    assert per_code < 0.3 * math.log(k)  # uniform codes would cost log K nats each
    assert math.isclose(records[-1]["valid/bits_per_code"], per_code / math.log(2))
    with torch.no_grad():
        nll = prior.nll(maps[:4])
    assert nll.shape == (4,)


def test_pixelcnn_sample_shape_and_range():
    prior = GatedPixelCNN(6, channels=4, layers=2)
    a = prior.sample(3, shape=(3, 4), generator=torch.Generator().manual_seed(1))
    b = prior.sample(3, shape=(3, 4), generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 3, 4) and a.dtype == torch.long and a.min() >= 0 and a.max() < 6
    assert torch.equal(a, b)


def test_bits_per_code():
    assert math.isclose(bits_per_code(49 * math.log(2), 7, 7), 1.0)


@pytest.mark.parametrize("kwargs", [{"num_codes": 1}, {"num_codes": 8, "kernel": 4}, {"num_codes": 8, "layers": 0}])
def test_bad_pixelcnn_options_raise(kwargs):
    with pytest.raises(ConfigError):
        GatedPixelCNN(**kwargs)
