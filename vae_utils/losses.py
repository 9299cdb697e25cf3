"""Loss functions, with one reduction rule everywhere: **sum** over pixels and latent
dimensions, **mean** over the batch. Values are therefore nats per image.

The VAE chapter writes the ELBO out inline and checks it against :func:`elbo_loss`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import checks
from .data import binarize_dynamic
from .models import LIKELIHOODS, VAEOutput


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) under independent Bernoulli pixels with the given logits.

    logits, x: (B, C, H, W), x in [0, 1] -> (B,) nats per image. For binary x (dynamically
    binarised MNIST) this is a log-likelihood. Grey levels in (0, 1) are used as soft targets
    (as pytorch/examples' VAE does): the value is then a *cross-entropy*, not the log-density of
    a continuous image, and it cannot fall below the images' entropy (:func:`bernoulli_floor`).
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} differ in shape")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def bernoulli_floor(x: torch.Tensor) -> torch.Tensor:
    """The lowest value :func:`bernoulli_nll` can reach on x: the entropy of Bernoulli(x) pixels,
    summed over pixels. x: (B, C, H, W) in [0, 1] -> (B,) nats; 0 for binary images."""
    return F.binary_cross_entropy(x, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(logits: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log p(x|z) under independent Gaussian pixels N(sigmoid(logits), sigma^2): a density, for
    continuous images such as the colour faces (it can be negative).

    logits, x: (B, C, H, W) -> (B,) nats per image. The decoder's output is the same for every
    likelihood (logits; the image is ``sigmoid(logits)``), so pictures are drawn the same way.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} differ in shape")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    squared = (x - torch.sigmoid(logits)).pow(2) / (2 * sigma**2)
    return (squared + math.log(sigma) + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli",
                       sigma: float | None = None) -> torch.Tensor:
    """-log p(x|z) for a decoder's logits under ``likelihood`` ("bernoulli", or "gaussian" with
    standard deviation ``sigma``). logits, x: (B, C, H, W) -> (B,) nats per image."""
    if likelihood == "bernoulli":
        return bernoulli_nll(logits, x)
    if likelihood == "gaussian":
        if sigma is None:
            raise ValueError("the gaussian likelihood needs sigma, its pixel standard deviation")
        return gaussian_nll(logits, x, sigma)
    raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}")


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu_j, exp(logvar_j)) || N(0, 1) ) for every latent dimension, in closed form
    (Kingma & Welling 2013, app. B; written out in the VAE chapter).

    mu, logvar: (B, D) -> (B, D) nats, always >= 0.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ): :func:`kl_per_dimension` summed over the D
    dimensions. mu, logvar: (B, D) -> (B,) nats, always >= 0."""
    return kl_per_dimension(mu, logvar).sum(1)


class ELBOTerms(NamedTuple):
    """Batch means, in nats per image: loss = recon + beta * kl."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def elbo_loss(out: VAEOutput, x: torch.Tensor, beta: float = 1.0, likelihood: str = "bernoulli",
              sigma: float | None = None, free_bits: float = 0.0) -> ELBOTerms:
    """Negative ELBO (beta = 1) or the beta-VAE objective (Higgins et al. 2017).

    out: the VAE's forward pass on x; x: (B, C, H, W) in [0, 1]; likelihood, sigma: as in
    :func:`reconstruction_nll`. ``free_bits`` > 0 (nats per latent dimension, Kingma et al.
    2016): a dimension whose batch-mean KL is below it pays free_bits instead, so the optimiser
    gains nothing by switching it off (a treatment for posterior collapse). ``kl`` is always the
    true KL; only ``loss`` sees the floor. Returns batch means.
    """
    beta = checks.number(beta, "beta", minimum=0)
    free_bits = checks.number(free_bits, "free_bits (nats per latent dimension)", minimum=0)
    recon = reconstruction_nll(out.logits, x, likelihood, sigma).mean()
    per_dimension = kl_per_dimension(out.mu, out.logvar).mean(0)   # (D,) batch means
    kl = per_dimension.sum()
    if free_bits > 0:
        return ELBOTerms(recon + beta * per_dimension.clamp(min=free_bits).sum(), recon, kl)
    return ELBOTerms(recon + beta * kl, recon, kl)


class ReconTerms(NamedTuple):
    """Batch mean of the reconstruction loss, nats per image (``loss`` is the same number)."""

    loss: torch.Tensor


def autoencoder_loss(logits: torch.Tensor, x: torch.Tensor) -> ReconTerms:
    """Plain autoencoder loss: the Bernoulli cross-entropy of the reconstruction, batch mean."""
    return ReconTerms(bernoulli_nll(logits, x).mean())


def vae_batch_loss(model, x: torch.Tensor, y: torch.Tensor | None = None, beta: float = 1.0,
                   free_bits: float = 0.0) -> ELBOTerms:
    """One forward pass of a VAE (or, with labels y (B,), a conditional VAE) and its loss under
    the model's likelihood (``model.likelihood``; binary images drawn from x first if
    ``model.binarize``: dynamic binarisation). x: (B, C, H, W) in [0, 1]; beta and free_bits as
    in :func:`elbo_loss`. For ``training.fit``."""
    if model.binarize:
        x = binarize_dynamic(x)
    out = model(x) if y is None else model(x, y)
    return elbo_loss(out, x, beta=beta, likelihood=model.likelihood, sigma=model.sigma,
                     free_bits=free_bits)


def autoencoder_batch_loss(model, x: torch.Tensor) -> ReconTerms:
    """One autoencoder forward pass and its loss; x: (B, C, H, W) in [0, 1]. For ``training.fit``."""
    return autoencoder_loss(model(x), x)


class GANTerms(NamedTuple):
    """Batch means, as Python numbers: the discriminator's and the generator's loss, and the
    discriminator's mean probability of "real" for real and for generated images."""

    d_loss: float
    g_loss: float
    d_real: float
    d_fake: float


REAL_LABEL = 0.9
"""One-sided label smoothing (Salimans et al. 2016): D is asked for 0.9, not 1, on real images."""


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_label: float = REAL_LABEL) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], batch mean, with real images labelled ``real_label``
    and generated ones 0. Logits: (B,)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z)), batch mean (Goodfellow et al. 2014,
    sec. 3): strong gradients even while D easily rejects the samples. Logits: (B,)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class ClassifierTerms(NamedTuple):
    """Batch means: cross-entropy loss and accuracy."""

    loss: torch.Tensor
    accuracy: torch.Tensor


def classifier_batch_loss(model, x: torch.Tensor, y: torch.Tensor) -> ClassifierTerms:
    """Cross-entropy of a classifier on images x (B, C, H, W) with labels y (B,). For ``fit``."""
    logits = model(x)
    return ClassifierTerms(F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean())
