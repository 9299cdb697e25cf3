"""Datasets as in-memory tensors: MNIST (and Fashion-MNIST) through torchvision, procedural faces.

Whole datasets fit in memory (MNIST's 60,000 images are 188 MB as float32), so chapters slice
batches straight from tensors with :func:`batches` instead of a per-item ``DataLoader``:
several times faster on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, NamedTuple

import torch

from . import faces

DATA_ENV_VAR = "VAE_UTILS_DATA"
DATASETS = ("mnist", "fashion-mnist", "faces")


class ImageData(NamedTuple):
    """images: (N, C, H, W) float32 in [0, 1]; labels: (N,) int64 class, or (N, 6) float32 factors."""

    images: torch.Tensor
    labels: torch.Tensor


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: the explicit ``root`` > ``$VAE_UTILS_DATA`` > ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ENV_VAR) or "data")


def _torchvision_dataset(name: str, train: bool, root: Path, download: bool) -> ImageData:
    from torchvision import datasets  # imported here: nothing heavy at vae_utils import time

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        ds = cls(root=str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:  # torchvision raises RuntimeError after failed mirrors
        folder = root.resolve() / cls.__name__ / "raw"
        raise FileNotFoundError(
            f"{name} is not in {folder} and could not be downloaded ({err.__class__.__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Either connect to the internet, or "
            f"point {DATA_ENV_VAR} at a folder that holds {cls.__name__}/raw, for example "
            f"`export {DATA_ENV_VAR}=/path/to/data` (this project's CI uses ../shared/data)."
        ) from err
    images = ds.data.unsqueeze(1).float().div_(255.0)  # (N, 28, 28) uint8 -> (N, 1, 28, 28)
    return ImageData(images, ds.targets.long())


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
    n_faces: int = 10_000,
    seed: int = 0,
) -> ImageData:
    """Load a whole dataset into memory.

    name: "mnist" or "fashion-mnist" (torchvision; downloaded into the data root if missing) or
    "faces" (procedural, offline; ``n_faces`` images, test split uses another seed).
    Returns images (N, C, H, W) float32 in [0, 1] and labels: digits (N,) for MNIST,
    true factors (N, 6) for faces.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    if name == "faces":
        images, factors = faces.make_faces(n_faces, seed=seed if train else seed + 1_000_003)
        return ImageData(images, factors)
    return _torchvision_dataset(name, train, data_root(root), download)


def load_mnist(train: bool = True, root: str | os.PathLike | None = None) -> ImageData:
    """MNIST as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64."""
    return load_dataset("mnist", train=train, root=root)


def batches(
    *tensors: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield aligned mini-batches of equally long tensors (the last batch may be smaller)."""
    if not tensors:
        raise ValueError("batches() needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            yield tuple(t[start:start + batch_size] for t in tensors)
        else:
            idx = order[start:start + batch_size]
            yield tuple(t[idx] for t in tensors)
