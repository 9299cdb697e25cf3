"""Training: device choice, seeding, and one small fit loop that records every loss term.

The loop is the one the autoencoder chapter writes out by hand, plus a progress bar
(``tqdm.auto``: a widget in Jupyter and Colab, text in a terminal; ``TQDM_DISABLE=1`` hides it),
a per-epoch history and a clear stop on a non-finite loss.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import batches

BatchLoss = Callable[..., NamedTuple]
"""``batch_loss(model, *batch) -> NamedTuple`` of batch-mean terms whose first field is ``loss``."""


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss."""


def _bars_disabled_by_env() -> bool:
    """True if TQDM_DISABLE is set (tqdm's notebook bar ignores that variable by itself)."""
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


def pick_device() -> torch.device:
    """The fastest available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _as_tuple(data: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


@torch.no_grad()
def evaluate(model: nn.Module, batch_loss: BatchLoss, data: torch.Tensor | Sequence[torch.Tensor],
             batch_size: int = 1000, device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean of each loss term over a whole dataset, model in eval mode.

    data: images (N, C, H, W) in [0, 1], or a tuple such as (images, labels) passed to batch_loss.
    """
    model.eval()
    totals: dict[str, float] = {}
    n = 0
    for batch in batches(*_as_tuple(data), batch_size=batch_size):
        batch = tuple(t.to(device) for t in batch)
        terms = batch_loss(model, *batch)._asdict()
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value) * len(batch[0])
        n += len(batch[0])
    return {name: total / n for name, total in totals.items()}


def fit(
    model: nn.Module,
    batch_loss: BatchLoss,
    train_data: torch.Tensor | Sequence[torch.Tensor],
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    test_data: torch.Tensor | Sequence[torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> dict[str, list[float]]:
    """Train ``model`` with Adam and return its per-epoch history.

    train_data / test_data: images (N, C, H, W) in [0, 1], or tuples of aligned tensors.
    Returns {"train_<term>": [...], "test_<term>": [...], "epoch_seconds": [...]}, one value
    per epoch for every field of ``batch_loss``'s result (nats per image for the VAE terms).
    Raises NonFiniteLossError naming the epoch and step if the loss becomes NaN or infinite.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    train = tuple(t.to(device) for t in _as_tuple(train_data))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator(device=train[0].device).manual_seed(seed)
    history: dict[str, list[float]] = {"epoch_seconds": []}

    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch",
               disable=not progress or _bars_disabled_by_env())
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        totals: dict[str, float] = {}
        n = 0
        for step, batch in enumerate(batches(*train, batch_size=batch_size, shuffle=True,
                                             generator=shuffle), start=1):
            terms = batch_loss(model, *batch)
            loss = terms[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"the loss became {value} at epoch {epoch}, step {step} (batch size "
                    f"{batch_size}, lr {lr}); lower the learning rate or check the inputs")
            for name, term in terms._asdict().items():
                totals[name] = totals.get(name, 0.0) + (value if term is loss else term.item()) * len(batch[0])
            n += len(batch[0])
        history["epoch_seconds"].append(time.perf_counter() - start)
        for name, total in totals.items():
            history.setdefault(f"train_{name}", []).append(total / n)
        if test_data is not None:
            for name, value in evaluate(model, batch_loss, test_data, device=device).items():
                history.setdefault(f"test_{name}", []).append(value)
        shown = {k: f"{v[-1]:.2f}" for k, v in history.items() if k.endswith("_loss")}
        bar.set_postfix(shown)
    model.eval()
    return history


def gan_step(gan, d_optimizer: torch.optim.Optimizer, g_optimizer: torch.optim.Optimizer,
             real: torch.Tensor, z: torch.Tensor):
    """One adversarial step (written out in the GAN chapter): update D on real and generated
    images, then update G with the non-saturating loss. real: (B, C, H, W) in [0, 1];
    z: (B, latent_dim). Returns the step's ``losses.GANTerms`` (detached)."""
    from .losses import GANTerms, discriminator_loss, generator_loss

    fake = torch.sigmoid(gan.decode(z))
    real_logits = gan.discriminate(real)
    fake_logits = gan.discriminate(fake.detach())      # no gradient into G on D's step
    d_loss = discriminator_loss(real_logits, fake_logits)
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()

    g_loss = generator_loss(gan.discriminate(fake))   # D just changed: ask it again
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    return GANTerms(d_loss.detach(), g_loss.detach(), torch.sigmoid(real_logits).mean().detach(),
                    torch.sigmoid(fake_logits).mean().detach())


def fit_gan(
    gan: nn.Module,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    d_lr: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
    device: torch.device | str = "cpu",
    seed: int = 0,
    n_snapshots: int = 8,
    progress: bool = True,
    desc: str = "GAN",
) -> dict[str, list[float] | torch.Tensor]:
    """Train a ``models.GAN`` with Adam (Radford et al. 2015's settings by default; ``d_lr``
    gives the discriminator its own learning rate).

    images: (N, C, H, W) in [0, 1]. Returns per-epoch means of d_loss, g_loss, d_real, d_fake,
    epoch_seconds, and "snapshots": (epochs, n_snapshots, C, H, W) generated from fixed codes
    at the end of every epoch. Raises NonFiniteLossError if a loss becomes NaN or infinite.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    gan.to(device).train()
    images = images.to(device)
    g_optimizer = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    d_optimizer = torch.optim.Adam(gan.discriminator.parameters(), lr=d_lr or lr, betas=betas)
    generator = torch.Generator().manual_seed(seed)
    fixed_z = torch.randn(n_snapshots, gan.latent_dim, generator=generator).to(device)
    history: dict[str, list[float] | torch.Tensor] = {"epoch_seconds": []}
    snapshots = []
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch",
               disable=not progress or _bars_disabled_by_env())
    for epoch in bar:
        start = time.perf_counter()
        totals = torch.zeros(4)
        steps = 0
        for step, (real,) in enumerate(batches(images, batch_size=batch_size, shuffle=True,
                                               generator=generator), start=1):
            z = torch.randn(len(real), gan.latent_dim, generator=generator).to(device)
            terms = gan_step(gan, d_optimizer, g_optimizer, real, z)
            values = torch.stack(list(terms)).cpu()
            if not torch.isfinite(values[:2]).all():
                raise NonFiniteLossError(f"a GAN loss became non-finite at epoch {epoch}, step "
                                         f"{step} (lr {lr}); lower the learning rate")
            totals += values
            steps += 1
        history["epoch_seconds"].append(time.perf_counter() - start)
        for name, total in zip(("d_loss", "g_loss", "d_real", "d_fake"), (totals / steps).tolist()):
            history.setdefault(name, []).append(total)
        with torch.no_grad():
            gan.eval()
            snapshots.append(torch.sigmoid(gan.decode(fixed_z)).cpu())
            gan.train()
        bar.set_postfix(d_loss=f"{history['d_loss'][-1]:.2f}", g_loss=f"{history['g_loss'][-1]:.2f}")
    history["snapshots"] = torch.stack(snapshots)
    gan.eval()
    return history
