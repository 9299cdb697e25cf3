"""Autoencoders and VAEs: MLP and small convolutional versions, for (C, H, W) images in [0, 1].

Decoders return **logits**; ``torch.sigmoid(logits)`` is the image. Losses take the logits
(``binary_cross_entropy_with_logits`` is exact where ``log(sigmoid)`` would underflow).

Each model keeps a plain-dict ``config`` that rebuilds it (``build_model(**config)``); the
checkpoint cache keys saved weights by it.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import nn

ARCHS = ("mlp", "conv")


_VALUES_CHECKED: ContextVar[bool] = ContextVar("vae_utils_values_checked", default=False)


@contextmanager
def values_checked() -> Iterator[None]:
    """Inside this block the models check their inputs' shapes and types but do not read their
    values (NaN, range, labels): reading values waits for a GPU to finish its queued work, once
    per call. The fit loops validate the whole dataset once and train inside this block."""
    token = _VALUES_CHECKED.set(True)
    try:
        yield
    finally:
        _VALUES_CHECKED.reset(token)


def check_images(x: torch.Tensor, image_shape: tuple[int, ...]) -> None:
    """Raise a clear error unless ``x`` is a (B, *image_shape) float tensor of finite values in
    [0, 1] (the values are not read inside :func:`values_checked`)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(x).__name__}")
    if x.ndim != 1 + len(image_shape) or tuple(x.shape[1:]) != tuple(image_shape):
        raise ValueError(f"expected images of shape (B, {', '.join(map(str, image_shape))}), "
                         f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got dtype {x.dtype} "
                        "(divide uint8 pixels by 255)")
    if x.numel() and not _VALUES_CHECKED.get():
        low, high, finite = torch.stack([x.min(), x.max(), x.isfinite().all()]).tolist()
        if not finite:
            raise ValueError(f"{non_finite_count(x)} pixel values are NaN or infinite; "
                             "expected finite values in [0, 1]")
        if low < 0 or high > 1:
            raise ValueError(f"expected pixel values in [0, 1], got range [{low:.3g}, {high:.3g}]")


def non_finite_count(x: torch.Tensor) -> int:
    """How many entries of x are NaN or infinite."""
    return int((~torch.isfinite(x)).sum())


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise a clear ValueError if the tensor ``name`` holds NaN or infinite values."""
    bad = non_finite_count(x)
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite values of {x.numel()}; expected "
                         "finite numbers (did a model diverge, or an image hold NaN?)")


def check_latent(z: torch.Tensor, latent_dim: int) -> None:
    """Raise a clear error unless ``z`` is a (B, latent_dim) float tensor of finite values
    (the values are not read inside :func:`values_checked`)."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of latent codes, got {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"expected latent codes of shape (B, {latent_dim}), got {tuple(z.shape)}")
    if not z.is_floating_point():
        raise TypeError(f"expected float latent codes, got dtype {z.dtype}")
    if z.numel() and not _VALUES_CHECKED.get() and not bool(torch.isfinite(z).all()):
        raise ValueError(f"{non_finite_count(z)} latent values are NaN or infinite; "
                         "expected finite codes")


def check_labels(y: torch.Tensor, n_classes: int) -> None:
    """Raise a clear error unless every class label in y (N,) lies in [0, n_classes - 1]."""
    if y.numel() and not bool(((y >= 0) & (y < n_classes)).all()):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got values in "
                         f"[{int(y.min())}, {int(y.max())}]")


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


def _check_config(image_shape, latent_dim, arch, hidden) -> tuple[int, int, int]:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    if len(image_shape) != 3 or any(int(s) < 1 for s in image_shape):
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape}")
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    if arch == "conv" and len(hidden) < 2:
        raise ValueError(f"the conv architecture needs two channel counts in hidden, got {hidden}")
    return tuple(int(s) for s in image_shape)  # type: ignore[return-value]


class Autoencoder(nn.Module):
    """Deterministic autoencoder: x -> z = encode(x) -> logits = decode(z)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, arch: str = "mlp",
                 hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        image_shape = _check_config(image_shape, latent_dim, arch, hidden)
        self.config = dict(kind="autoencoder", image_shape=list(image_shape),
                           latent_dim=latent_dim, arch=arch, hidden=list(hidden))
        self.image_shape, self.latent_dim = image_shape, latent_dim
        self.encoder = make_encoder(image_shape, latent_dim, arch, tuple(hidden))
        self.decoder = make_decoder(image_shape, latent_dim, arch, tuple(hidden))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> z: (B, latent_dim)."""
        check_images(x, self.image_shape)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> logits (B, C, H, W)."""
        check_latent(z, self.latent_dim)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> reconstruction logits (B, C, H, W)."""
        return self.decode(self.encode(x))


class VAEOutput(NamedTuple):
    """logits: (B, C, H, W); mu, logvar, z: (B, latent_dim)."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of N(mu, sigma^2) that gradients flow
    through (Kingma & Welling 2013, sec. 2.4; written out in the VAE chapter).

    mu, logvar: (B, D) -> z: (B, D).
    """
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def prior_codes(n: int, latent_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n codes z ~ N(0, I) drawn on the CPU: (n, latent_dim). ``generator`` must be a CPU
    generator (the same seed then gives the same codes on any device); None uses the global one."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"pass a CPU generator (torch.Generator()), got one on {generator.device}")
    return torch.randn(n, latent_dim, generator=generator, device="cpu")


LIKELIHOODS = ("bernoulli", "gaussian")
"""The decoders' pixel distributions p(x|z); ``losses.reconstruction_nll`` computes each."""


def check_likelihood(likelihood: str, sigma: float | None, binarize: bool) -> None:
    """Raise a clear error unless (likelihood, sigma, binarize) describe a decoder p(x|z) the
    losses know: "bernoulli" (sigma None; ``binarize`` draws binary images from grey levels) or
    "gaussian" with a pixel standard deviation sigma > 0 (continuous images, no binarising)."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
    if likelihood == "gaussian" and not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ValueError(f"the gaussian likelihood needs sigma > 0 (pixel standard deviation), got {sigma!r}")
    if likelihood == "bernoulli" and sigma is not None:
        raise ValueError(f"the bernoulli likelihood has no sigma, got sigma={sigma!r}")
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
        image_shape = _check_config(image_shape, latent_dim, arch, hidden)
        check_likelihood(likelihood, sigma, binarize)
        self.config = dict(kind="vae", image_shape=list(image_shape), latent_dim=latent_dim,
                           arch=arch, hidden=list(hidden), likelihood=likelihood, sigma=sigma,
                           binarize=binarize)
        self.image_shape, self.latent_dim = image_shape, latent_dim
        self.likelihood, self.sigma, self.binarize = likelihood, sigma, binarize
        self.encoder = make_encoder(image_shape, 2 * latent_dim, arch, tuple(hidden))
        self.decoder = make_decoder(image_shape, latent_dim, arch, tuple(hidden))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, latent_dim)."""
        check_images(x, self.image_shape)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> logits (B, C, H, W)."""
        check_latent(z, self.latent_dim)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        """x: (B, C, H, W) in [0, 1] -> VAEOutput with one sample z ~ q(z|x) per image."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z), mu, logvar, z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images decoded from the prior: (n, C, H, W) in [0, 1]."""
        z = prior_codes(n, self.latent_dim, generator).to(next(self.parameters()).device)
        return torch.sigmoid(self.decode(z))


class ConditionalVAE(nn.Module):
    """VAE whose encoder and decoder both see an observed class label y: q(z|x, y), p(x|z, y),
    prior p(z) = N(0, I) independent of y (the labelled-data model M2 of Kingma et al. 2014). Decoding one z with different labels draws the same "style" as different classes.
    MLP only; introduced in the latent attributes chapter."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, n_classes: int,
                 arch: str = "mlp", hidden: tuple[int, ...] = (512, 256),
                 likelihood: str = "bernoulli", sigma: float | None = None, binarize: bool = False):
        super().__init__()
        image_shape = _check_config(image_shape, latent_dim, arch, hidden)
        check_likelihood(likelihood, sigma, binarize)
        if arch != "mlp":
            raise ValueError("ConditionalVAE supports arch='mlp' only")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
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
        if y.dtype != torch.long or y.shape != (batch,):
            raise ValueError(f"expected integer labels of shape ({batch},), got {tuple(y.shape)} {y.dtype}")
        if not _VALUES_CHECKED.get():
            check_labels(y, self.n_classes)
        return nn.functional.one_hot(y, self.n_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1], y: (B,) int64 -> (mu, logvar), each (B, latent_dim)."""
        check_images(x, self.image_shape)
        h = torch.cat([x.flatten(1), self._one_hot(y, len(x))], dim=1)
        mu, logvar = self.encoder(h).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim), y: (B,) int64 -> logits (B, C, H, W)."""
        check_latent(z, self.latent_dim)
        return self.decoder(torch.cat([z, self._one_hot(y, len(z))], dim=1))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x, y)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decode(z, y), mu, logvar, z)


class GAN(nn.Module):
    """A generator G: z (B, latent_dim) -> logits (B, C, H, W) and a discriminator
    D: x (B, C, H, W) in [0, 1] -> logit (B,) that x is real (Goodfellow et al. 2014), kept
    together so that one checkpoint holds both. MLPs, because on a CPU a convolutional DCGAN
    costs several times more per epoch (the GAN chapter measures it), with the usual
    stabilisers (``stabilised=True``): BatchNorm and LeakyReLU in G (Radford et al. 2015), inputs
    centred to [-1, 1] in D; D always has LeakyReLU and dropout.

    ``average_decay`` (e.g. 0.999) keeps a second copy of G, ``generator_average``, whose weights
    follow the trained G's as an exponential moving average, w_avg <- d w_avg + (1 - d) w, updated
    by :meth:`update_average` after every training step (Yazıcı et al. 2019; Karras et al. 2018):
    the average smooths out the game's oscillations. In training mode ``decode`` runs the trained
    G; in eval mode (sampling, figures) it runs the average.

    ``decode(z)`` is the generator, so the VAE's figure helpers work for GANs too.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 hidden: tuple[int, ...] = (256, 512), stabilised: bool = True,
                 average_decay: float | None = None):
        super().__init__()
        image_shape = _check_config(image_shape, latent_dim, "mlp", hidden)
        if average_decay is not None and not (isinstance(average_decay, float)
                                              and 0.0 < average_decay < 1.0):
            raise ValueError(f"average_decay must be a float in (0, 1) or None, got {average_decay!r}")
        self.config = dict(kind="gan", image_shape=list(image_shape), latent_dim=latent_dim,
                           hidden=list(hidden), stabilised=stabilised, average_decay=average_decay)
        self.image_shape, self.latent_dim, self.stabilised = image_shape, latent_dim, stabilised
        self.average_decay = average_decay
        pixels = image_numel(image_shape)
        g_layers: list[nn.Module] = []
        for a, b in zip([latent_dim, *hidden[:-1]], hidden):
            norm = [nn.BatchNorm1d(b)] if stabilised else []
            g_layers += [nn.Linear(a, b), *norm, nn.LeakyReLU(0.2)]
        self.generator = nn.Sequential(*g_layers, nn.Linear(hidden[-1], pixels),
                                       nn.Unflatten(1, image_shape))
        self.discriminator = nn.Sequential(nn.Flatten(),
                                           *_leaky(mlp_layers([pixels, *reversed(hidden), 1]),
                                                   dropout=0.3),
                                           nn.Flatten(0))
        self.generator_average = (copy.deepcopy(self.generator).requires_grad_(False)
                                  if average_decay is not None else None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> generated logits (B, C, H, W); sigmoid gives the image.
        The trained G in training mode, its weight average (if kept) in eval mode."""
        check_latent(z, self.latent_dim)
        if self.generator_average is not None and not self.training:
            return self.generator_average(z)
        return self.generator(z)

    @torch.no_grad()
    def update_average(self) -> None:
        """Move ``generator_average`` towards the trained G: every weight by a fraction
        1 - average_decay of the gap, BatchNorm's running statistics copied. A no-op without
        an average. Written out rather than ``torch.optim.swa_utils.AveragedModel``, which
        reads its step counter on the host at every update (a GPU synchronisation per step)."""
        if self.generator_average is None:
            return
        for averaged, live in zip(self.generator_average.parameters(), self.generator.parameters()):
            averaged.lerp_(live, 1.0 - self.average_decay)
        for averaged, live in zip(self.generator_average.buffers(), self.generator.buffers()):
            averaged.copy_(live)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> (B,) logits of "x is real"."""
        check_images(x, self.image_shape)
        # Centred inputs train an MLP discriminator faster; stabilised=False (the GAN chapter's
        # failure on purpose) feeds raw [0, 1] pixels and drops the generator's BatchNorm.
        return self.discriminator(2 * x - 1 if self.stabilised else x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated images: (n, C, H, W) in [0, 1] (G in eval mode: BatchNorm's running stats)."""
        was_training = self.training
        self.eval()
        z = prior_codes(n, self.latent_dim, generator).to(next(self.parameters()).device)
        images = torch.sigmoid(self.decode(z))
        self.train(was_training)
        return images


def _leaky(layers: list[nn.Module], dropout: float = 0.0) -> list[nn.Module]:
    """Swap ReLUs for LeakyReLU(0.2), the usual choice in GANs (Radford et al. 2015), each
    followed by dropout if asked (it keeps an MLP discriminator from winning too fast)."""
    out: list[nn.Module] = []
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            out.append(nn.LeakyReLU(0.2))
            if dropout:
                out.append(nn.Dropout(dropout))
        else:
            out.append(layer)
    return out


class Classifier(nn.Module):
    """A small CNN for 1×28×28 digits: two conv-pool blocks, a 64-d feature layer, 10 logits.
    ``features(x)`` is the space in which the comparison chapter measures distances."""

    num_features = 64

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.config = dict(kind="classifier", n_classes=n_classes)
        self.image_shape, self.n_classes = (1, 28, 28), n_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 12, 12)
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 4, 4)
            nn.Flatten(), nn.Linear(32 * 4 * 4, self.num_features), nn.ReLU(),
        )
        self.head = nn.Linear(self.num_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [0, 1] -> (B, 64)."""
        check_images(x, self.image_shape)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [0, 1] -> class logits (B, n_classes)."""
        return self.head(self.features(x))


MODEL_KINDS = {"autoencoder": Autoencoder, "vae": VAE, "cvae": ConditionalVAE, "gan": GAN,
               "classifier": Classifier}


def build_model(kind: str, **config) -> nn.Module:
    """Rebuild a model from its ``config`` dict (as stored in a checkpoint)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {tuple(MODEL_KINDS)}")
    if "image_shape" in config:
        config["image_shape"] = tuple(config["image_shape"])
    if "hidden" in config:
        config["hidden"] = tuple(config["hidden"])
    with torch.device("cpu"):  # the package names the device of everything it creates
        return MODEL_KINDS[kind](**config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def image_numel(image_shape: tuple[int, ...]) -> int:
    """Numbers in one image, e.g. 784 for (1, 28, 28)."""
    return math.prod(image_shape)
