"""Autoencoders and VAEs: MLP and small convolutional versions, for (C, H, W) images in [0, 1].

Decoders return **logits**; ``torch.sigmoid(logits)`` is the image (:func:`decode_images`).
Losses take the logits (``binary_cross_entropy_with_logits`` is exact where ``log(sigmoid)``
would underflow). The GAN is in ``gan.py``, the digit classifier in ``classifier.py``.

Each model keeps a plain-dict ``config`` that rebuilds it (``zoo.build_model(config)``); the
checkpoint cache keys saved weights by it.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn

from . import checks
from .data import batches

ARCHS = ("mlp", "conv")


def _conv_ok(image_shape: tuple[int, int, int]) -> None:
    _, h, w = image_shape
    if h != w or h % 4:
        raise ValueError(f"the conv architecture needs square images with a side divisible by 4, "
                         f"got {image_shape}; use arch='mlp'")


def mlp_layers(widths: Sequence[int]) -> list[nn.Module]:
    """Linear layers between consecutive widths, with a ReLU after all but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return layers


def make_encoder(image_shape: tuple[int, int, int], out_dim: int, arch: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256)) -> nn.Module:
    """(B, C, H, W) -> (B, out_dim). ``hidden``: MLP widths, or conv channels (two stride-2 convs)."""
    c, h, w = image_shape
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), *mlp_layers([c * h * w, *hidden, out_dim]))
    _conv_ok(image_shape)
    c1, c2 = hidden[:2]
    return nn.Sequential(
        nn.Conv2d(c, c1, 4, stride=2, padding=1), nn.ReLU(),   # (B, c1, H/2, W/2)
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (B, c2, H/4, W/4)
        nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), out_dim),
    )


def make_decoder(image_shape: tuple[int, int, int], latent_dim: int, arch: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256)) -> nn.Module:
    """(B, latent_dim) -> (B, C, H, W) logits; mirrors :func:`make_encoder`."""
    c, h, w = image_shape
    if arch == "mlp":
        return nn.Sequential(*mlp_layers([latent_dim, *reversed(hidden), c * h * w]),
                             nn.Unflatten(1, image_shape))
    _conv_ok(image_shape)
    c1, c2 = hidden[:2]
    return nn.Sequential(
        nn.Linear(latent_dim, c2 * (h // 4) * (w // 4)), nn.ReLU(),
        nn.Unflatten(1, (c2, h // 4, w // 4)),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
        nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1),              # (B, C, H, W) logits
    )


def check_config(image_shape, latent_dim, arch="mlp", hidden=(512, 256)) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
    """Validate a model's shape settings; returns (image_shape, latent_dim, hidden) as tuples/ints."""
    checks.choice(arch, "arch", ARCHS)
    if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    image_shape = tuple(checks.integer(s, "each side of image_shape", minimum=1) for s in image_shape)
    latent_dim = checks.integer(latent_dim, "latent_dim", minimum=1)
    if not isinstance(hidden, (tuple, list)) or not hidden:
        raise ValueError(f"hidden must be a non-empty sequence of layer widths, got {hidden!r}")
    hidden = tuple(checks.integer(h, "each width in hidden", minimum=1) for h in hidden)
    if arch == "conv" and len(hidden) < 2:
        raise ValueError(f"the conv architecture needs two channel counts in hidden, got {hidden}")
    return image_shape, latent_dim, hidden


class Autoencoder(nn.Module):
    """Deterministic autoencoder: x -> z = encode(x) -> logits = decode(z)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, arch: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        image_shape, latent_dim, hidden = check_config(image_shape, latent_dim, arch, hidden)
        self.config = dict(kind="autoencoder", image_shape=list(image_shape),
                           latent_dim=latent_dim, arch=arch, hidden=list(hidden))
        self.image_shape, self.latent_dim = image_shape, latent_dim
        self.encoder = make_encoder(image_shape, latent_dim, arch, hidden)
        self.decoder = make_decoder(image_shape, latent_dim, arch, hidden)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> z: (B, latent_dim)."""
        return self.encoder(checks.images(x, self.image_shape))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> logits (B, C, H, W)."""
        return self.decoder(checks.latents(z, self.latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> reconstruction logits (B, C, H, W)."""
        return self.decode(self.encode(x))


class VAEOutput(NamedTuple):
    """logits: (B, C, H, W); mu, logvar, z: (B, latent_dim)."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of N(mu, sigma^2) that gradients flow
    through (Kingma & Welling 2013, sec. 2.4; written out in the VAE chapter).

    mu, logvar: (B, D). eps: noise that broadcasts against them, e.g. (K, B, D) for K samples
    per image, drawn by the caller (from a CPU generator, say); None draws (B, D) with
    ``randn_like`` on mu's device. Returns z with eps's shape.
    """
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def prior_codes(n: int, latent_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n codes z ~ N(0, I) drawn on the CPU: (n, latent_dim). ``generator`` must be a CPU
    generator (the same seed then gives the same codes on any device); None uses the global one."""
    n = checks.integer(n, "n", minimum=1)
    latent_dim = checks.integer(latent_dim, "latent_dim", minimum=1)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"pass a CPU generator (torch.Generator()), got one on {generator.device}")
    return torch.randn(n, latent_dim, generator=generator, device="cpu")


LIKELIHOODS = ("bernoulli", "gaussian")
"""The decoders' pixel distributions p(x|z); ``losses.reconstruction_nll`` computes each."""


def check_likelihood(likelihood: str, sigma: float | None, binarize: bool) -> None:
    """Raise a clear error unless (likelihood, sigma, binarize) describe a decoder p(x|z) the
    losses know: "bernoulli" (sigma None; ``binarize`` draws binary images from grey levels) or
    "gaussian" with a pixel standard deviation sigma > 0 (continuous images, no binarising)."""
    checks.choice(likelihood, "likelihood", LIKELIHOODS)
    if likelihood == "gaussian":
        if sigma is None:
            raise ValueError("the gaussian likelihood needs sigma > 0 (pixel standard deviation), "
                             "got None")
        checks.number(sigma, "sigma (the gaussian likelihood's pixel standard deviation)", above=0)
    if likelihood == "bernoulli" and sigma is not None:
        raise ValueError(f"the bernoulli likelihood has no sigma, got sigma={sigma!r}")
    if not isinstance(binarize, bool):
        raise TypeError(f"binarize must be True or False, got {binarize!r}")
    if binarize and likelihood != "bernoulli":
        raise ValueError("binarize=True draws binary images: it needs the bernoulli likelihood")


class VAE(nn.Module):
    """Variational autoencoder with a diagonal Gaussian encoder q(z|x) = N(mu, diag(exp(logvar))),
    a decoder p(x|z) with logits ``decode(z)`` and prior p(z) = N(0, I).

    ``likelihood``: "bernoulli" pixels with those logits, or "gaussian" pixels
    N(sigmoid(logits), sigma^2); ``binarize``: train on binary draws of the grey-level images
    (dynamic binarisation). Either way ``sigmoid(decode(z))`` is the decoded image's mean.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, arch: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256), likelihood: str = "bernoulli",
                 sigma: float | None = None, binarize: bool = False):
        super().__init__()
        image_shape, latent_dim, hidden = check_config(image_shape, latent_dim, arch, hidden)
        check_likelihood(likelihood, sigma, binarize)
        self.config = dict(kind="vae", image_shape=list(image_shape), latent_dim=latent_dim,
                           arch=arch, hidden=list(hidden), likelihood=likelihood, sigma=sigma,
                           binarize=binarize)
        self.image_shape, self.latent_dim = image_shape, latent_dim
        self.likelihood, self.sigma, self.binarize = likelihood, sigma, binarize
        self.encoder = make_encoder(image_shape, 2 * latent_dim, arch, hidden)
        self.decoder = make_decoder(image_shape, latent_dim, arch, hidden)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, latent_dim)."""
        mu, logvar = self.encoder(checks.images(x, self.image_shape)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> logits (B, C, H, W)."""
        return self.decoder(checks.latents(z, self.latent_dim))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """x: (B, C, H, W) in [0, 1] -> VAEOutput with one sample z ~ q(z|x) per image."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z), mu, logvar, z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images decoded from the prior: (n, C, H, W) in [0, 1]."""
        return decode_images(self, prior_codes(n, self.latent_dim, generator), to_cpu=False)


class ConditionalVAE(nn.Module):
    """VAE whose encoder and decoder both see an observed class label y: q(z|x, y), p(x|z, y),
    prior p(z) = N(0, I) independent of y (the labelled-data model M2 of Kingma et al. 2014).
    Decoding one z with different labels draws the same "style" as different classes.
    MLP only; introduced in the latent attributes chapter."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, n_classes: int,
                 arch: str = "mlp", hidden: tuple[int, ...] = (512, 256),
                 likelihood: str = "bernoulli", sigma: float | None = None, binarize: bool = False):
        super().__init__()
        image_shape, latent_dim, hidden = check_config(image_shape, latent_dim, arch, hidden)
        check_likelihood(likelihood, sigma, binarize)
        if arch != "mlp":
            raise ValueError("ConditionalVAE supports arch='mlp' only")
        n_classes = checks.integer(n_classes, "n_classes", minimum=2)
        self.config = dict(kind="cvae", image_shape=list(image_shape), latent_dim=latent_dim,
                           n_classes=n_classes, arch=arch, hidden=list(hidden),
                           likelihood=likelihood, sigma=sigma, binarize=binarize)
        self.image_shape, self.latent_dim, self.n_classes = image_shape, latent_dim, n_classes
        self.likelihood, self.sigma, self.binarize = likelihood, sigma, binarize
        pixels = image_numel(image_shape)
        self.encoder = nn.Sequential(*mlp_layers([pixels + n_classes, *hidden, 2 * latent_dim]))
        self.decoder = nn.Sequential(*mlp_layers([latent_dim + n_classes, *reversed(hidden), pixels]),
                                     nn.Unflatten(1, image_shape))

    def _one_hot(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        return nn.functional.one_hot(checks.labels(y, self.n_classes, count=batch),
                                     self.n_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1], y: (B,) int64 -> (mu, logvar), each (B, latent_dim)."""
        x = checks.images(x, self.image_shape)
        h = torch.cat([x.flatten(1), self._one_hot(y, len(x))], dim=1)
        mu, logvar = self.encoder(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim), y: (B,) int64 -> logits (B, C, H, W)."""
        z = checks.latents(z, self.latent_dim)
        return self.decoder(torch.cat([z, self._one_hot(y, len(z))], dim=1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, y), mu, logvar, z)


class Posterior(NamedTuple):
    """A model's codes for a set of images, on the CPU: mu (N, D), the posterior mean for a VAE
    and the code itself for an autoencoder; logvar (N, D) for a VAE, None for an autoencoder."""

    mu: torch.Tensor
    logvar: torch.Tensor | None


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_all(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
               batch_size: int = 2000) -> Posterior:
    """The codes of every image, in batches, on the CPU (the model may live on any device):
    images (N, C, H, W) in [0, 1] (and labels (N,) for a conditional VAE) -> Posterior."""
    images = checks.images(images, getattr(model, "image_shape", None), min_count=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    extra = () if labels is None else (checks.labels(labels, model.n_classes, count=len(images)),)
    device = _device(model)
    model.eval()
    mus, logvars = [], []
    with checks.values_checked():   # validated above, once
        for batch in batches(images, *extra, batch_size=batch_size):
            out = model.encode(*(t.to(device) for t in batch))
            mu, logvar = out if isinstance(out, tuple) else (out, None)
            mus.append(mu.cpu())
            if logvar is not None:
                logvars.append(logvar.cpu())
    return Posterior(torch.cat(mus), torch.cat(logvars) if logvars else None)


@torch.no_grad()
def decode_images(model: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None,
                  to_cpu: bool = True) -> torch.Tensor:
    """Images decoded from codes: ``sigmoid(model.decode(z))`` in eval mode, without gradients,
    on the CPU (``to_cpu=False``: on the model's device). z: (B, latent_dim) on any device;
    labels (B,) for a conditional VAE. Returns (B, C, H, W) in [0, 1]. For a GAN, the generator
    it samples from (its weight average, if it keeps one)."""
    device = _device(model)
    was_training = model.training
    model.eval()
    extra = () if labels is None else (labels.to(device),)
    images = torch.sigmoid(model.decode(z.to(device), *extra))
    model.train(was_training)
    return images.cpu() if to_cpu else images


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def image_numel(image_shape: tuple[int, ...]) -> int:
    """Numbers in one image, e.g. 784 for (1, 28, 28)."""
    return math.prod(image_shape)
