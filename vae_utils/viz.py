"""Figures. Every function returns a matplotlib ``Figure`` and never calls ``plt.show()``;
a notebook displays the figure it gets back.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from . import checks
from .models import decode_images

Decode = Callable[[torch.Tensor], torch.Tensor]
"""decode(z: (B, D)) -> images (B, C, H, W) in [0, 1]."""


def decoder_images(model: torch.nn.Module) -> Decode:
    """``models.decode_images`` bound to a model: z -> images in [0, 1] on the CPU, for the
    figure helpers and sliders that take a ``Decode``."""
    return partial(decode_images, model)


def _grid_array(images: torch.Tensor, nrow: int, padding: int = 1) -> np.ndarray:
    images = torch.as_tensor(images, device="cpu").detach().float()
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    checks.finite(images, "images")
    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def _imshow(ax, images: torch.Tensor, nrow: int, title: str | None = None) -> None:
    ax.imshow(_grid_array(images, nrow), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def image_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None,
               scale: float = 1.0) -> Figure:
    """images: (N, C, H, W) in [0, 1], shown ``nrow`` per row."""
    rows = -(-len(images) // nrow)
    fig, ax = plt.subplots(figsize=(scale * nrow * 0.8, scale * rows * 0.8 + (0.4 if title else 0)))
    _imshow(ax, images, nrow, title)
    fig.tight_layout()
    return fig


def compare_rows(rows: Sequence[torch.Tensor], labels: Sequence[str], scale: float = 0.8) -> Figure:
    """Rows of equally many images (N, C, H, W), one label each: inputs vs reconstructions..."""
    if len(rows) != len(labels):
        raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
    n = len(rows[0])
    label_width = 0.08 * max(len(label) for label in labels) + 0.2  # inches
    width, height = scale * n + label_width, scale * len(rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=label_width / width, right=0.99, top=0.98, bottom=0.02, hspace=0.08)
    for ax, images, label in zip(axes[:, 0], rows, labels):
        _imshow(ax, images, nrow=n)
        ax.text(-0.02, 0.5, label, transform=ax.transAxes, ha="right", va="center")
    return fig


def image_row(images: torch.Tensor, captions: Sequence[str], scale: float = 1.3) -> Figure:
    """One row of images (N, C, H, W), each with its own caption underneath."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    fig, axes = plt.subplots(1, len(images), figsize=(scale * len(images), scale + 0.45),
                             squeeze=False)
    for ax, image, caption in zip(axes[0], images, captions):
        _imshow(ax, image[None], nrow=1)
        ax.set_title(caption, fontsize=8, y=-0.2, va="top")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.98, bottom=0.3 / (scale + 0.45) + 0.05,
                        wspace=0.08)
    return fig


def latent_scatter(z: torch.Tensor, labels: torch.Tensor, title: str | None = None,
                   ax: plt.Axes | None = None) -> Figure:
    """z: (N, 2) latent codes, coloured by integer labels (N,) such as MNIST digits."""
    z, labels = torch.as_tensor(z, device="cpu"), torch.as_tensor(labels, device="cpu")
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs 2-D codes of shape (N, 2), got {tuple(z.shape)}")
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 4.5))
    ax = ax if ax is not None else fig.add_subplot()
    points = ax.scatter(z[:, 0].numpy(), z[:, 1].numpy(), c=labels.numpy(), cmap="tab10", s=2, alpha=0.6,
                        vmin=-0.5, vmax=9.5, rasterized=True)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig


def manifold_grid(decode: Decode, values: Sequence[float], title: str | None = None) -> Figure:
    """Decode the 2-D latent grid values x values (first latent across, second down)."""
    values = torch.as_tensor(values, dtype=torch.float32, device="cpu")
    z2, z1 = torch.meshgrid(values, values, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=1)
    n = len(values)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(_grid_array(decode(z), nrow=n, padding=0), interpolation="nearest")
    ticks = (np.arange(n) + 0.5) * decode(z[:1]).shape[-1]
    ax.set_xticks(ticks, [f"{v:.1f}" for v in values.tolist()], fontsize=7)
    ax.set_yticks(ticks, [f"{v:.1f}" for v in values.tolist()], fontsize=7)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Straight line between two codes (D,) -> (steps, D)."""
    t = torch.linspace(0, 1, steps, device=z_start.device).unsqueeze(1)
    return (1 - t) * z_start.unsqueeze(0) + t * z_end.unsqueeze(0)


def traversal(decode: Decode, z_base: torch.Tensor, values: Sequence[float],
              dims: Sequence[int] | None = None, names: Sequence[str] | None = None) -> Figure:
    """One row per latent dimension: z_base (D,) with that dimension set to each of ``values``."""
    z_base = torch.as_tensor(z_base, dtype=torch.float32, device="cpu").flatten()
    dims = list(range(len(z_base))) if dims is None else list(dims)
    values = torch.as_tensor(values, dtype=torch.float32, device="cpu")
    rows = []
    for d in dims:
        z = z_base.repeat(len(values), 1)
        z[:, d] = values
        rows.append(decode(z))
    labels = [names[i] if names else f"$z_{{{d + 1}}}$" for i, d in enumerate(dims)]
    fig = compare_rows(rows, labels)
    height = fig.get_figheight()
    fig.set_figheight(height + 0.3)
    fig.subplots_adjust(top=1 - 0.35 / (height + 0.3), bottom=0.02)
    fig.suptitle(f"each row moves one latent dimension from {values[0]:+.1f} to {values[-1]:+.1f}; "
                 "the others stay fixed", fontsize=9, y=0.995)
    return fig


def loss_curves(history: dict[str, list[float]], keys: Sequence[str],
                title: str | None = None, ylabel: str = "nats per image") -> Figure:
    """Per-epoch curves of ``history[key]`` for each key, one panel per key. A "train_<term>"
    panel also shows "test_<term>" if the history has it: a curve if the test set was evaluated
    every epoch, a single point at the last epoch if only then."""
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label=key)
        test_key = key.replace("train_", "test_")
        if key.startswith("train_") and test_key in history:
            test_values = history[test_key]
            ax.plot(epochs[-len(test_values):], test_values, marker="o", ms=3, label=test_key)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("train_", ""))
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def heatmap(matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str],
            title: str | None = None, vmax: float = 1.0) -> Figure:
    """An annotated (R, C) matrix, e.g. normalised mutual information between latents and factors."""
    matrix = torch.as_tensor(matrix, device="cpu").detach().float()
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix {tuple(matrix.shape)} does not match {len(row_labels)} row and "
                         f"{len(col_labels)} column labels")
    fig, ax = plt.subplots(figsize=(0.9 * len(col_labels) + 1.8, 0.4 * len(row_labels) + 1.2))
    image = ax.imshow(matrix.numpy(), cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    for (r, c), value in np.ndenumerate(matrix.numpy()):
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="black" if value > 0.6 * vmax else "white")
    fig.colorbar(image, ax=ax)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def posterior_bars(mu: torch.Tensor, sigma: torch.Tensor, labels: Sequence[str] | None = None,
                   title: str | None = None) -> Figure:
    """One encoder distribution q(z|x): mean ± 2 standard deviations for each latent dimension.

    mu, sigma: (D,). The prior N(0, 1) is drawn in grey for comparison.
    """
    mu = torch.as_tensor(mu, device="cpu").detach().flatten().numpy()
    sigma = torch.as_tensor(sigma, device="cpu").detach().flatten().numpy()
    if mu.shape != sigma.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} differ in shape")
    d = len(mu)
    labels = list(labels) if labels is not None else [f"z{j + 1}" for j in range(d)]
    fig, ax = plt.subplots(figsize=(0.6 * d + 1.5, 3))
    ax.errorbar(range(d), np.zeros(d), yerr=2 * np.ones(d), fmt="none", ecolor="0.8",
                elinewidth=8, label="prior N(0, 1): ±2")
    ax.errorbar(range(d), mu, yerr=2 * sigma, fmt="o", capsize=4, label="q(z|x): mean ± 2 sd")
    ax.set_xticks(range(d), labels, rotation=30, ha="right")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.legend(fontsize=8, loc="best")   # where it hides the fewest points
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
