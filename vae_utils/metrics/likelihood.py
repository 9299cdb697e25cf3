"""How likely a VAE finds images: the importance-weighted estimate of log p(x) (the VAE chapter)."""

from __future__ import annotations

import math

import torch

from .. import checks
from ..data import batches
from ..losses import reconstruction_nll
from ..models import VAE, reparameterize


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def iwae_log_weights(model: VAE, x: torch.Tensor, k: int) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x).

    x: (B, C, H, W) in [0, 1] -> (k, B).
    """
    mu, logvar = model.encode(x)                                          # (B, D)
    eps = torch.randn(k, *mu.shape, device=mu.device)
    z = reparameterize(mu, logvar, eps)                                   # (k, B, D)
    logits = model.decode(z.flatten(0, 1)).unflatten(0, (k, len(x)))    # (k, B, C, H, W)
    log_px_z = -reconstruction_nll(logits.flatten(0, 1), x.expand(k, *x.shape).flatten(0, 1),
                                   model.likelihood, model.sigma).view(k, -1)
    log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    log_qz = _log_normal(z, mu, logvar)
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def iwae_log_likelihoods(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 200) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) for every image (Burda et al. 2015), on the CPU:
    log (1/k) sum_i w_i with z_i ~ q(z|x). x: (N, C, H, W) in [0, 1] -> (N,) nats.

    With k = 1 it is a one-sample ELBO; it rises towards log p(x) as k grows. Uses the model's
    likelihood (``losses.reconstruction_nll``). For a Bernoulli model it is a log-likelihood only
    on binary x (e.g. ``data.binarize_fixed(test_images)``); on grey levels it is a cross-entropy.
    """
    k = checks.integer(k, "k (importance samples per image)", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    x = checks.images(x, model.image_shape, min_count=1)
    model.eval()
    device = next(model.parameters()).device
    per_image = []
    with checks.values_checked():
        for (xb,) in batches(x, batch_size=batch_size):
            log_w = iwae_log_weights(model, xb.to(device), k)
            per_image.append((torch.logsumexp(log_w, dim=0) - math.log(k)).cpu())
    log_px = torch.cat(per_image)
    checks.finite(log_px, "the IWAE log-likelihoods (a model with damaged weights?)")
    return log_px


def iwae_nll(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 200) -> float:
    """Importance-weighted estimate of -log p(x), nats per image, averaged over x (N, C, H, W):
    the mean of -:func:`iwae_log_likelihoods`."""
    return -float(iwae_log_likelihoods(model, x, k, batch_size).double().mean())
