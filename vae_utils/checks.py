"""The validation layer: every public entry of the package checks what it is given here, once,
where the data enter, and every refusal says what was expected and what was found.

Each check returns the value it accepted, in the form the package computes with (images as
float32, integers as ``int``), so a caller writes ``x = checks.images(x, (1, 28, 28))``.

Reading a tensor's values (NaN, range) copies a number to the host, which on a GPU waits for all
queued work. The fit loops validate the whole dataset once on entry and then train inside
:func:`values_checked`, where the models check shapes and types only.
"""

from __future__ import annotations

import math
import numbers
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Sequence

import torch

_VALUES_CHECKED: ContextVar[bool] = ContextVar("vae_utils_values_checked", default=False)


@contextmanager
def values_checked() -> Iterator[None]:
    """Inside this block the checks below skip reading tensor values (NaN, range, labels); shapes
    and types are still checked. For code that has validated its data already (the fit loops)."""
    token = _VALUES_CHECKED.set(True)
    try:
        yield
    finally:
        _VALUES_CHECKED.reset(token)


def _reading_values() -> bool:
    return not _VALUES_CHECKED.get()


def _shape(x: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, x.shape)) + ")"


# --- Python numbers ---------------------------------------------------------------------------

def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (or a NumPy/0-d tensor integer) within [minimum, maximum]. Refuses bool, and floats
    even when whole (``2.0``): a count is written as an int."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    _within(value, name, minimum, maximum)
    return value


def number(value, name: str, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, below: float | None = None) -> float:
    """A finite real number (int or float, not bool) with minimum <= value <= maximum and
    above < value < below, as given."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    _within(value, name, minimum, maximum)
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above:g}, got {value:g}")
    if below is not None and not value < below:
        raise ValueError(f"{name} must be < {below:g}, got {value:g}")
    return value


def _within(value, name: str, minimum, maximum) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")


def choice(value, name: str, options: Sequence[str]) -> str:
    """One of ``options``."""
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {tuple(options)}")
    return value


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def file_stem(value, what: str) -> str:
    """A plain file-name stem: letters, digits, '_', '-' and '.', starting with a letter or digit,
    without '..'. It can name no other folder and needs no escaping in HTML or a URL."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ValueError(f"{what} {value!r} is not allowed: use letters, digits, '_', '-' and '.', "
                         f"starting with a letter or digit and without '..', e.g. 'mnist-vae'")
    return value


# --- Tensors ----------------------------------------------------------------------------------

def tensor(x, name: str) -> torch.Tensor:
    """A torch.Tensor (a NumPy array is refused too: the package never guesses a device)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def non_finite_count(x: torch.Tensor) -> int:
    """How many entries of x are NaN or infinite."""
    return int((~torch.isfinite(x)).sum())


def finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """x, unless it holds NaN or infinite values (outside :func:`values_checked`)."""
    if x.is_floating_point() and x.numel() and _reading_values() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has {non_finite_count(x)} NaN or infinite values of {x.numel()}; "
                         "expected finite numbers (did a model diverge, or an image hold NaN?)")
    return x


def floats(x, name: str, ndim: int | None = None) -> torch.Tensor:
    """A floating-point tensor as float32 (float64 and float16 are converted; integers and bools
    are refused), of ``ndim`` dimensions if given, with finite values."""
    x = tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {_shape(x)}")
    return finite(x.float(), name)


def images(x, image_shape: Sequence[int] | None = None, name: str = "images",
           min_count: int = 0) -> torch.Tensor:
    """Images (N, C, H, W) as float32 with finite values in [0, 1], of ``image_shape`` (C, H, W)
    if given, and at least ``min_count`` of them. uint8 pixels are refused with the fix (divide
    by 255); float64 images are converted."""
    x = tensor(x, name)
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if x.ndim != 1 + len(image_shape) or tuple(x.shape[1:]) != image_shape:
            raise ValueError(f"expected {name} of shape (N, {', '.join(map(str, image_shape))}), "
                             f"got {_shape(x)}")
    elif x.ndim != 4:
        raise ValueError(f"expected {name} of shape (N, C, H, W), got {_shape(x)}")
    if not x.is_floating_point():
        hint = " (divide uint8 pixels by 255)" if x.dtype == torch.uint8 else ""
        raise TypeError(f"expected float {name} in [0, 1], got dtype {x.dtype}{hint}")
    if len(x) < min_count:
        raise ValueError(f"expected at least {min_count} {name}, got {len(x)}")
    x = x.float()
    if x.numel() and _reading_values():
        low, high, all_finite = torch.stack([x.min(), x.max(), x.isfinite().all().float()]).tolist()
        if not all_finite:
            raise ValueError(f"{non_finite_count(x)} pixel values of the {name} are NaN or "
                             "infinite; expected finite values in [0, 1]")
        if low < 0 or high > 1:
            raise ValueError(f"expected pixel values of the {name} in [0, 1], got range "
                             f"[{low:.3g}, {high:.3g}]")
    return x


def latents(z, latent_dim: int, name: str = "latent codes") -> torch.Tensor:
    """Codes (B, latent_dim) as float32 with finite values."""
    z = tensor(z, name)
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"expected {name} of shape (B, {latent_dim}), got {_shape(z)}")
    if not z.is_floating_point():
        raise TypeError(f"expected float {name}, got dtype {z.dtype}")
    z = z.float()
    if z.numel() and _reading_values() and not bool(torch.isfinite(z).all()):
        raise ValueError(f"{non_finite_count(z)} values of the {name} are NaN or infinite; "
                         "expected finite codes")
    return z


def labels(y, n_classes: int, count: int | None = None, name: str = "labels") -> torch.Tensor:
    """Class labels (N,) as int64 in [0, n_classes - 1], N = ``count`` if given."""
    y = tensor(y, name)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must be integer class indices, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"expected {name} of shape (N,), got {_shape(y)}")
    if count is not None and len(y) != count:
        raise ValueError(f"expected one label per image: {count} images but {len(y)} {name}")
    y = y.long()
    if y.numel() and _reading_values() and not bool(((y >= 0) & (y < n_classes)).all()):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}], got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    return y


def same_length(**tensors: torch.Tensor) -> int:
    """The common length of the named tensors; a ValueError naming each length otherwise."""
    lengths = {name: len(t) for name, t in tensors.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"expected the same number of items in each: {listed}")
    return next(iter(lengths.values()))


MAX_FEATURE = 1e12
"""Larger feature values overflow the squared distances that the neighbour metrics compute."""


def matrix(x, name: str, min_rows: int = 1, columns: int | None = None,
           bound: float | None = None) -> torch.Tensor:
    """A finite float matrix (N, F) with N >= min_rows (and F = ``columns``), as float32; values
    at most ``bound`` in magnitude if given. Integer matrices are converted."""
    x = tensor(x, name)
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must be a real-valued matrix, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"expected {name} as a matrix (N, F), got shape {_shape(x)}")
    if columns is not None and x.shape[1] != columns:
        raise ValueError(f"expected {name} with {columns} columns, got {_shape(x)}")
    if len(x) < min_rows:
        raise ValueError(f"{name} has {len(x)} rows; this needs at least {min_rows}")
    x = finite(x.float(), name)
    if bound is not None and x.numel():
        largest = float(x.abs().max())
        if largest > bound:
            raise ValueError(f"{name} holds values up to {largest:.3g}; expected magnitudes of "
                             f"at most {bound:.0e} (standardise them first)")
    return x


def probabilities(p, name: str = "probabilities", rows: int | None = None) -> torch.Tensor:
    """Class probabilities (N, C): finite, in [0, 1], each row summing to 1 (within 1e-3)."""
    p = matrix(p, name, min_rows=1)
    if rows is not None and len(p) != rows:
        raise ValueError(f"expected {rows} rows of {name} (one per feature row), got {len(p)}")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(f"{name} must lie in [0, 1], got range [{float(p.min()):.3g}, "
                         f"{float(p.max()):.3g}]")
    sums = p.sum(1)
    if ((sums - 1).abs() > 1e-3).any():
        worst = float(sums[(sums - 1).abs().argmax()])
        raise ValueError(f"each row of {name} must sum to 1, found a row summing to {worst:.4g}")
    return p


def result(value: float, what: str, because: str) -> float:
    """A metric's result: finite, or a ValueError naming the input that made it NaN or infinite."""
    if not math.isfinite(value):
        raise ValueError(f"{what} came out {value}: {because}")
    return value
