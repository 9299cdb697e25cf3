"""The GAN: a generator and a discriminator kept together, so that one checkpoint holds both
(the GAN chapter; its training step is ``training.gan_step``, its losses are in ``losses``)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import checks
from .models import check_config, decode_images, image_numel, mlp_layers, prior_codes


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


class GAN(nn.Module):
    """A generator G: z (B, latent_dim) -> logits (B, C, H, W) and a discriminator
    D: x (B, C, H, W) in [0, 1] -> logit (B,) that x is real (Goodfellow et al. 2014). MLPs,
    because on a CPU a convolutional DCGAN costs several times more per epoch (the GAN chapter
    measures it), with the usual stabilisers (``stabilised=True``): BatchNorm and LeakyReLU in G
    (Radford et al. 2015), inputs centred to [-1, 1] in D; D always has LeakyReLU and dropout.

    ``average_decay`` (e.g. 0.999) keeps a second copy of G, ``generator_average``, whose weights
    follow the trained G's as an exponential moving average, w_avg <- d w_avg + (1 - d) w, updated
    by :meth:`update_average` after every training step (Yazıcı et al. 2019; Karras et al. 2018):
    the average smooths out the game's oscillations. Its BatchNorm statistics are its own,
    measured on its own activations (:meth:`refresh_average_statistics`), not the trained G's.

    ``decode(z)`` is the generator the GAN samples from (the average, if kept), so the VAE's
    figure helpers work for GANs too; ``decode(z, trained=True)`` is the trained G.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 hidden: tuple[int, ...] = (256, 512), stabilised: bool = True,
                 average_decay: float | None = None):
        super().__init__()
        image_shape, latent_dim, hidden = check_config(image_shape, latent_dim, "mlp", hidden)
        if not isinstance(stabilised, bool):
            raise TypeError(f"stabilised must be True or False, got {stabilised!r}")
        if average_decay is not None:
            average_decay = checks.number(average_decay, "average_decay", above=0.0, below=1.0)
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

    def decode(self, z: torch.Tensor, trained: bool = False) -> torch.Tensor:
        """z: (B, latent_dim) -> generated logits (B, C, H, W); sigmoid gives the image.
        The generator the GAN samples from (its weight average, if kept), or with
        ``trained=True`` the trained G that the training step updates."""
        z = checks.latents(z, self.latent_dim)
        if self.generator_average is not None and not trained:
            return self.generator_average(z)
        return self.generator(z)

    @torch.no_grad()
    def update_average(self) -> None:
        """Move ``generator_average``'s weights towards the trained G's by a fraction
        1 - average_decay of the gap. A no-op without an average. Written out rather than
        ``torch.optim.swa_utils.AveragedModel``, which reads its step counter on the host at
        every update (a GPU synchronisation per step)."""
        if self.generator_average is None:
            return
        for averaged, live in zip(self.generator_average.parameters(), self.generator.parameters()):
            averaged.lerp_(live, 1.0 - self.average_decay)

    @torch.no_grad()
    def refresh_average_statistics(self, codes: torch.Tensor, batch_size: int = 256) -> None:
        """Measure the averaged generator's BatchNorm statistics on its own activations for
        ``codes`` (N, latent_dim), as ``torch.optim.swa_utils.update_bn`` does for averaged
        weights: the trained G's running statistics belong to the trained G's weights, not to
        their average. A no-op without an average or without BatchNorm."""
        if self.generator_average is None:
            return
        codes = checks.latents(codes, self.latent_dim, "codes for the BatchNorm statistics")
        torch.optim.swa_utils.update_bn(list(codes.split(batch_size)), self.generator_average)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> (B,) logits of "x is real"."""
        x = checks.images(x, self.image_shape)
        # Centred inputs train an MLP discriminator faster; stabilised=False (the GAN chapter's
        # failure on purpose) feeds raw [0, 1] pixels and drops the generator's BatchNorm.
        return self.discriminator(2 * x - 1 if self.stabilised else x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated images: (n, C, H, W) in [0, 1], from the generator it samples from in eval
        mode (BatchNorm's running statistics)."""
        return decode_images(self, prior_codes(n, self.latent_dim, generator), to_cpu=False)
