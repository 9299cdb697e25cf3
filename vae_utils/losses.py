"""Loss functions, with one reduction rule everywhere: **sum** over pixels and latent
dimensions, **mean** over the batch. Values are therefore nats per image.

The VAE chapter writes the ELBO out inline and checks it against :func:`elbo_loss`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .models import VAEOutput


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) under independent Bernoulli pixels with the given logits.

    logits, x: (B, C, H, W), x in [0, 1] -> (B,) nats per image. Grey levels in (0, 1) are
    used as soft targets (as pytorch/examples' VAE does), so the value is a cross-entropy,
    not the log-density of a continuous image.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) in closed form (Kingma & Welling 2013, app. B).

    mu, logvar: (B, D) -> (B,) nats, always >= 0.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


class ELBOTerms(NamedTuple):
    """Batch means, in nats per image: loss = recon + beta * kl."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def elbo_loss(out: VAEOutput, x: torch.Tensor, beta: float = 1.0) -> ELBOTerms:
    """Negative ELBO (beta = 1) or the beta-VAE objective (Higgins et al. 2017).

    out: the VAE's forward pass on x; x: (B, C, H, W) in [0, 1]. Returns batch means.
    """
    recon = bernoulli_nll(out.logits, x).mean()
    kl = gaussian_kl(out.mu, out.logvar).mean()
    return ELBOTerms(recon + beta * kl, recon, kl)


class ReconTerms(NamedTuple):
    """Batch mean of the reconstruction loss, nats per image (``loss`` is the same number)."""

    loss: torch.Tensor


def autoencoder_loss(logits: torch.Tensor, x: torch.Tensor) -> ReconTerms:
    """Plain autoencoder loss: the Bernoulli cross-entropy of the reconstruction, batch mean."""
    return ReconTerms(bernoulli_nll(logits, x).mean())


def vae_batch_loss(model, x: torch.Tensor, beta: float = 1.0) -> ELBOTerms:
    """One VAE forward pass and its loss; x: (B, C, H, W) in [0, 1]. For ``training.fit``."""
    return elbo_loss(model(x), x, beta=beta)


def autoencoder_batch_loss(model, x: torch.Tensor) -> ReconTerms:
    """One autoencoder forward pass and its loss; x: (B, C, H, W) in [0, 1]. For ``training.fit``."""
    return autoencoder_loss(model(x), x)


def cvae_batch_loss(model, x: torch.Tensor, y: torch.Tensor, beta: float = 1.0) -> ELBOTerms:
    """Conditional VAE loss; x: (B, C, H, W) in [0, 1], y: (B,) class labels. For ``training.fit``."""
    return elbo_loss(model(x, y), x, beta=beta)
