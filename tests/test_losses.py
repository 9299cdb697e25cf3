import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from vae_utils import losses, models, data


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


def test_gaussian_nll_is_the_normal_log_density_of_the_pixels():
    torch.manual_seed(0)
    logits, x = torch.randn(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    expected = -Normal(torch.sigmoid(logits), 0.1).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(losses.gaussian_nll(logits, x, sigma=0.1), expected, atol=1e-4)
    assert torch.equal(losses.reconstruction_nll(logits, x, "gaussian", 0.1),
                       losses.gaussian_nll(logits, x, 0.1))
    with pytest.raises(ValueError, match="needs sigma"):
        losses.reconstruction_nll(logits, x, "gaussian")
    with pytest.raises(ValueError, match="unknown likelihood 'laplace'"):
        losses.reconstruction_nll(logits, x, "laplace")


def test_the_cross_entropy_of_grey_images_has_the_entropy_floor():
    x = torch.tensor([[[[0.5, 0.0], [1.0, 0.2]]]])
    floor = losses.bernoulli_floor(x)
    entropy = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert floor.item() == pytest.approx(entropy(0.5) + entropy(0.2), rel=1e-5)
    best = losses.bernoulli_nll(torch.logit(x.clamp(1e-6, 1 - 1e-6)), x)  # perfect prediction
    assert best.item() == pytest.approx(floor.item(), abs=1e-3)
    assert losses.bernoulli_floor(torch.tensor([[[[0.0, 1.0]]]])).item() == 0.0  # binary: no floor


def test_dynamic_binarisation_draws_fresh_binary_images_with_the_grey_levels_as_means():
    torch.manual_seed(0)
    x = torch.full((20_000, 1, 1, 1), 0.3)
    first, second = data.binarize_dynamic(x), data.binarize_dynamic(x)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert first.mean().item() == pytest.approx(0.3, abs=0.01)
    assert not torch.equal(first, second)


def test_the_vae_loss_follows_the_models_likelihood():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    gaussian = models.VAE((3, 8, 8), 2, hidden=(8,), likelihood="gaussian", sigma=0.2)
    torch.manual_seed(1)
    terms = losses.vae_batch_loss(gaussian, x)
    torch.manual_seed(1)
    out = gaussian(x)
    assert torch.allclose(terms.recon, losses.gaussian_nll(out.logits, x, 0.2).mean())
    with pytest.raises(ValueError, match="sigma > 0"):
        models.VAE((3, 8, 8), 2, likelihood="gaussian")
    with pytest.raises(ValueError, match="needs the bernoulli likelihood"):
        models.VAE((3, 8, 8), 2, likelihood="gaussian", sigma=0.1, binarize=True)


def test_free_bits_charge_a_floor_per_dimension_and_report_the_true_kl():
    """Dimension 1 is at the prior (KL 0) and pays the floor; dimension 0 pays its own KL."""
    mu = torch.tensor([[2.0, 0.0], [2.0, 0.0]], requires_grad=True)
    logvar = torch.zeros(2, 2, requires_grad=True)
    x = torch.full((2, 1, 2, 2), 0.5)
    out = models.VAEOutput(torch.zeros(2, 1, 2, 2), mu, logvar, mu)
    plain = losses.elbo_loss(out, x)
    floored = losses.elbo_loss(out, x, free_bits=0.5)
    assert plain.kl.item() == pytest.approx(2.0)               # 0.5 * mu^2 for dimension 0 only
    assert floored.kl.item() == pytest.approx(2.0)             # the reported KL is the true one
    assert floored.loss.item() == pytest.approx(plain.loss.item() + 0.5)  # dimension 1 pays 0.5
    floored.loss.backward()
    assert mu.grad[:, 1].abs().max() == 0 and mu.grad[:, 0].abs().min() > 0  # no pull below the floor
    with pytest.raises(ValueError, match=r"free_bits \(nats per latent dimension\) must be >= 0, got -1.0"):
        losses.elbo_loss(out, x, free_bits=-1.0)
