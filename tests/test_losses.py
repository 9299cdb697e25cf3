import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from vae_utils import losses, models


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.2, -1.5, 0.7]])
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((400_000,))
    monte_carlo = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert losses.gaussian_kl(mu, logvar).item() == pytest.approx(monte_carlo.item(), abs=0.01)


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(2, 4)
    assert torch.equal(losses.gaussian_kl(zeros, zeros), torch.zeros(2))
    torch.manual_seed(1)
    assert (losses.gaussian_kl(torch.randn(100, 4), torch.randn(100, 4)) > 0).all()


def test_bernoulli_nll_sums_pixels_per_image():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]]])
    expected = -math.log(0.5) - math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert losses.bernoulli_nll(logits, x).item() == pytest.approx(expected, rel=1e-6)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        losses.bernoulli_nll(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 2, 8))
    with pytest.raises(ValueError, match="differ in shape"):
        losses.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def test_elbo_is_recon_plus_beta_kl_summed_per_image_and_averaged_over_the_batch():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 4, 4)
    out = models.VAEOutput(torch.randn(6, 1, 4, 4), torch.randn(6, 3), torch.randn(6, 3),
                           torch.randn(6, 3))
    terms = losses.elbo_loss(out, x, beta=4.0)
    recon = F.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / 6
    kl = -0.5 * (1 + out.logvar - out.mu ** 2 - out.logvar.exp()).sum() / 6
    assert torch.allclose(terms.recon, recon) and torch.allclose(terms.kl, kl)
    assert torch.allclose(terms.loss, recon + 4.0 * kl)
    assert terms.kl >= 0


def test_batch_size_does_not_change_the_per_image_loss():
    torch.manual_seed(0)
    model = models.VAE((1, 4, 4), latent_dim=2, hidden=(8,))
    x = torch.rand(3, 1, 4, 4)
    out = model(x)
    doubled = models.VAEOutput(*(torch.cat([t, t]) for t in out))
    assert torch.allclose(losses.elbo_loss(out, x).loss,
                          losses.elbo_loss(doubled, torch.cat([x, x])).loss)
