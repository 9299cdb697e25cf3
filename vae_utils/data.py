"""Datasets as in-memory tensors: MNIST (and Fashion-MNIST) through torchvision, procedural faces.

Whole datasets fit in memory (MNIST's 60,000 images are 188 MB as float32), so chapters slice
batches straight from tensors with :func:`batches` instead of a per-item ``DataLoader``:
several times faster on a CPU.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator, NamedTuple

import torch

from . import checks, faces, settings

DATA_ENV_VAR = "VAE_UTILS_DATA"   # read by settings.data_dir()
DATASETS = ("mnist", "fashion-mnist", "faces")
IMAGE_SIDE = 28  # MNIST and Fashion-MNIST images are 28x28
# An IDX file: a header of big-endian 32-bit ints (magic number, item count, then rows and
# columns for images), then one unsigned byte per pixel or label.
IDX_FORMATS = {  # kind: (magic number, header bytes, bytes per item)
    "images": (0x00000803, 16, IMAGE_SIDE * IMAGE_SIDE),
    "labels": (0x00000801, 8, 1),
}


class DamagedDataError(ValueError):
    """A dataset file on disk is truncated or is not the file its name promises."""


class ImageData(NamedTuple):
    """images: (N, C, H, W) float32 in [0, 1]; labels: (N,) int64 class, or (N, 6) float32 factors."""

    images: torch.Tensor
    labels: torch.Tensor


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: the explicit ``root`` > ``$VAE_UTILS_DATA`` > ``./data``."""
    return Path(root) if root is not None else settings.data_dir()


def _idx_count(path: Path, kind: str) -> int:
    """Check the header and size of an IDX ``kind`` ("images" or "labels") file, reading only
    its header; return its item count. Raises DamagedDataError naming the file and the problem.
    """
    magic_expected, header_size, item_size = IDX_FORMATS[kind]
    fix = (f"delete it and load the dataset again to download a fresh copy, or point "
           f"{DATA_ENV_VAR} at a folder with intact files")
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        header = file.read(header_size)
    if len(header) < header_size:
        raise DamagedDataError(f"{path} is truncated: {size:,} bytes, less than the "
                               f"{header_size}-byte header of an IDX {kind} file; {fix}")
    magic, n, *shape = struct.unpack(f">{header_size // 4}I", header)
    if magic != magic_expected:
        raise DamagedDataError(f"{path} is not an IDX {kind} file: it starts with 0x{magic:08x}, "
                               f"expected 0x{magic_expected:08x}; {fix}")
    if shape and shape != [IMAGE_SIDE, IMAGE_SIDE]:
        raise DamagedDataError(f"{path} holds images of {shape[0]}x{shape[1]} pixels, expected "
                               f"{IMAGE_SIDE}x{IMAGE_SIDE}; {fix}")
    expected = header_size + n * item_size
    if size != expected:
        what = f"{n} images of {IMAGE_SIDE}x{IMAGE_SIDE}" if shape else f"{n} labels"
        problem = "truncated" if size < expected else "longer than its header says"
        raise DamagedDataError(f"{path} is {problem}: the header promises {what} ({expected:,} "
                               f"bytes) but the file has {size:,} bytes; {fix}")
    return n


def check_idx_files(raw: Path, train: bool) -> None:
    """Check the images and labels files of one split in ``raw`` (those that exist) before
    torchvision reads them; raise DamagedDataError naming the file and the problem."""
    prefix = "train" if train else "t10k"
    images, labels = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    n_images = _idx_count(images, "images") if images.exists() else None
    n_labels = _idx_count(labels, "labels") if labels.exists() else None
    if None not in (n_images, n_labels) and n_images != n_labels:
        raise DamagedDataError(f"{images} holds {n_images} images but {labels} holds {n_labels} "
                               f"labels, one per image expected; delete both files and load the "
                               f"dataset again, or point {DATA_ENV_VAR} at a folder with intact "
                               f"files")


def _torchvision_dataset(name: str, train: bool, root: Path, download: bool) -> ImageData:
    from torchvision import datasets  # imported here: nothing heavy at vae_utils import time

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    check_idx_files(root / cls.__name__ / "raw", train)
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
    checks.choice(name, "dataset", DATASETS)
    if name == "faces":
        n_faces = checks.integer(n_faces, "n_faces (how many faces to draw)", minimum=1)
        seed = checks.integer(seed, "seed", minimum=0)
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
    """Yield aligned mini-batches of equally long tensors (the last batch may be smaller;
    empty tensors give no batch). ``generator``: a CPU generator for the shuffled order."""
    if not tensors:
        raise ValueError("batches() needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    # The order is drawn on the CPU (a CPU generator gives the same order on any device) and
    # moved to the tensors' device once.
    order = (torch.randperm(n, generator=generator, device="cpu").to(tensors[0].device)
             if shuffle else None)
    for start in range(0, n, batch_size):
        if order is None:
            yield tuple(t[start:start + batch_size] for t in tensors)
        else:
            idx = order[start:start + batch_size]
            yield tuple(t[idx] for t in tensors)


def binarize_fixed(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One fixed binarisation of grey-level images, for a test set: pixel ~ Bernoulli(grey
    level), drawn with a CPU generator seeded by ``seed`` (the same seed gives the same binary
    test set everywhere).

    images: (N, C, H, W) in [0, 1] on the CPU -> (N, C, H, W) float32 of 0s and 1s.
    """
    images = checks.images(images)
    if images.device.type != "cpu":
        raise ValueError(f"binarize_fixed() draws on the CPU; pass CPU images, got {images.device}")
    seed = checks.integer(seed, "seed", minimum=0)
    return torch.bernoulli(images, generator=torch.Generator(device="cpu").manual_seed(seed))


def binarize_dynamic(x: torch.Tensor) -> torch.Tensor:
    """A fresh binary image per call, pixel ~ Bernoulli(x): *dynamic binarisation* for training
    (every epoch sees another draw of every image). x: (B, C, H, W) in [0, 1], same shape out,
    on x's device, drawn with that device's default generator like the reparameterisation noise."""
    return torch.bernoulli(x)
