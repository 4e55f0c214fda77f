"""Model facts: shapes for any input, closed forms, the sampling contract."""

from __future__ import annotations

import math

import pytest
import torch

from aekit import NotGenerativeError, build_model, model_config
from aekit.parts.latents import gaussian_kl
from aekit.parts.likelihoods import Bernoulli, Gaussian

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 7, 13), (2, 5, 5)]


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("model", ["ae", "vae"])
def test_any_image_shape_round_trips(arch, shape, model):
    cfg = model_config(model=model, arch=arch, hidden=(8, 16), latent_dim=3, likelihood="bernoulli")
    net = build_model(cfg, shape)
    x = torch.rand(5, *shape)
    assert net.reconstruct(x).shape == x.shape
    assert net.encode(x).shape == (5, 3)
    terms = net.loss_terms(x)
    assert set(terms) == ({"recon", "kl"} if model == "vae" else {"recon"})
    assert all(t.shape == (5,) for t in terms.values())


def test_tabular_mlp_and_conv_refusal():
    net = build_model(model_config(model="vae", hidden=(16,), latent_dim=2, likelihood="gaussian"), (7,))
    assert net.reconstruct(torch.randn(4, 7)).shape == (4, 7)
    from aekit.errors import ConfigError

    with pytest.raises(ConfigError, match="image data"):
        build_model(model_config(arch="conv", hidden=(8,), likelihood="gaussian"), (7,))


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mean, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mean + std * torch.randn(200_000, 3, 4)  # (S, N, K) draws from q
    log_q = torch.distributions.Normal(mean, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean(0)
    torch.testing.assert_close(gaussian_kl(mean, logvar), mc, rtol=0.02, atol=0.02)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_likelihoods_match_torch_distributions():
    x = torch.rand(6, 1, 3, 3).round()
    logits = torch.randn(6, 1, 3, 3)
    expected = -torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(Bernoulli().nll(x, logits), expected)
    g = Gaussian((1, 3, 3), std=0.7)
    xr, mean = torch.randn(6, 1, 3, 3), torch.randn(6, 1, 3, 3)
    expected = -torch.distributions.Normal(mean, 0.7).log_prob(xr).flatten(1).sum(1)
    torch.testing.assert_close(g.nll(xr, mean), expected)


def test_learned_obs_std_is_a_parameter():
    net = build_model(model_config(likelihood="gaussian", learn_obs_std=True, obs_std=0.5), (4,))
    names = {n for n, _ in net.named_parameters()}
    assert "likelihood.log_std" in names
    assert math.isclose(float(net.likelihood.log_std.detach()[0]), math.log(0.5), rel_tol=1e-6)


def test_plain_ae_cannot_sample():
    net = build_model(model_config(model="ae", likelihood="bernoulli"), (1, 8, 8))
    with pytest.raises(NotGenerativeError, match="cannot generate"):
        net.sample(4)
    vae = build_model(model_config(model="vae", likelihood="bernoulli"), (1, 8, 8))
    s = vae.sample(4)
    assert s.shape == (4, 1, 8, 8) and float(s.detach().min()) >= 0 and float(s.detach().max()) <= 1


def test_beta_weights_the_kl_term():
    net = build_model(model_config(model="vae", beta=4.0, likelihood="bernoulli"), (1, 8, 8))
    assert net.term_weights == {"recon": 1.0, "kl": 4.0}


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_nll_of_draws_broadcasts_to_the_repeated_nll(name):
    from aekit.parts.likelihoods import Likelihood, likelihood_named

    likelihood = likelihood_named(name, (1, 4, 4))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 4, 4, generator=g).round() if name == "bernoulli" else torch.randn(5, 1, 4, 4, generator=g)
    params = torch.randn(3, 5, 1, 4, 4, generator=g)
    repeated = Likelihood.nll_of_draws(likelihood, x, params)  # the generic path: x copied k times
    torch.testing.assert_close(likelihood.nll_of_draws(x, params), repeated)
    torch.testing.assert_close(repeated[1], likelihood.nll(x, params[1]))
