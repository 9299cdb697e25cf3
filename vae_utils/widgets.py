"""Latent sliders: one slider per latent dimension, decoded live (the playground chapter).

Uses only ipywidgets APIs present in both 7 (Colab) and 8 (JupyterLab): FloatSlider, Button,
Image, HBox/VBox, ``observe`` and ``on_click`` (``make test`` runs tests/test_widgets.py against
both). On a static web page no kernel runs, so the decoder cannot answer there; the chapter shows
a precomputed traversal instead.

Only finite numbers get in: a non-finite latent code, slider value or image raises a ValueError
instead of being clipped into a number or drawn as garbage. Every tensor made here names its
device (CPU), so the sliders work whatever torch's default device is.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from . import checks
from .checks import non_finite_count
from .viz import Decode


def _check_finite_latent(z: torch.Tensor, names: Sequence[str]) -> None:
    """Raise a ValueError naming every dimension of the code z (D,) that is NaN or infinite."""
    bad = (~torch.isfinite(z)).nonzero().flatten().tolist()
    if bad:
        listed = ", ".join(f"{names[i]} (index {i}) = {z[i].item()}" for i in bad)
        raise ValueError(f"a latent code must be finite; not finite in dimension(s) {listed}")


def image_png(image: torch.Tensor, scale: int = 4) -> bytes:
    """image: (C, H, W) in [0, 1], C = 1 or 3 -> PNG bytes, enlarged ``scale`` times (nearest)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected one image of shape (1 or 3, H, W), got {tuple(image.shape)}")
    image = image.detach().to("cpu", torch.float32)
    bad = non_finite_count(image)
    if bad:
        raise ValueError(f"the image has {bad} non-finite pixel value(s) (NaN or inf) out of "
                         f"{image.numel()}; it would be drawn as garbage")
    array = (image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    array = array.repeat(scale, axis=1).repeat(scale, axis=2)
    mode = "L" if array.shape[0] == 1 else "RGB"
    pil = Image.fromarray(array[0] if mode == "L" else array.transpose(1, 2, 0), mode=mode)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


class LatentSliders:
    """Sliders for a latent code z (D,), an image of decode(z), and prior-sample/reset buttons.

    decode: z (B, D) -> images (B, C, H, W) in [0, 1]; names: one label per dimension.
    ``display(sliders.widget)`` shows it in Jupyter, JupyterLab or Colab.
    """

    def __init__(self, decode: Decode, latent_dim: int, names: Sequence[str] | None = None,
                 value_range: tuple[float, float] = (-3.0, 3.0), scale: int = 6, seed: int = 0):
        latent_dim = checks.integer(latent_dim, "latent_dim", minimum=1)
        scale = checks.integer(scale, "scale", minimum=1, maximum=32)
        if not callable(decode):
            raise TypeError(f"decode must be a function z (B, D) -> images, got {type(decode).__name__}")
        names = list(names) if names is not None else [f"z{i + 1}" for i in range(latent_dim)]
        if len(names) != latent_dim:
            raise ValueError(f"got {len(names)} slider names for a latent size of {latent_dim}")
        lo, hi = (checks.number(v, "each end of value_range") for v in value_range)
        if not lo < hi:
            raise ValueError(f"value_range must be finite numbers (low, high), low < high; "
                             f"got {value_range}")
        self.decode, self.latent_dim, self.scale = decode, latent_dim, scale
        self.names, self.value_range = names, (float(lo), float(hi))
        self._generator = torch.Generator(device="cpu").manual_seed(seed)
        self._updating = False
        self.sliders = [widgets.FloatSlider(value=0.0, min=lo, max=hi, step=0.05, description=n,
                                            continuous_update=True) for n in names]
        self.image = widgets.Image(format="png")
        sample_button = widgets.Button(description="Sample from prior")
        reset_button = widgets.Button(description="Reset to 0")
        sample_button.on_click(lambda _: self.sample_prior())
        reset_button.on_click(lambda _: self.reset())
        for slider in self.sliders:
            slider.observe(self._slider_moved, names="value")
        self.widget = widgets.HBox([
            widgets.VBox(self.sliders + [widgets.HBox([sample_button, reset_button])]),
            self.image,
        ])
        self.redraw()

    def _slider_moved(self, change) -> None:
        # A FloatSlider clips inf to its range but lets NaN through (NaN compares false with both
        # ends): put the slider back and refuse, rather than keep a code that cannot be drawn.
        if not math.isfinite(change["new"]):
            self._updating = True
            try:
                change["owner"].value = change["old"]
            finally:
                self._updating = False
            raise ValueError(f"slider {change['owner'].description!r} was set to {change['new']}; "
                             f"slider values must be finite, so it was put back to {change['old']}")
        self.redraw()

    def latent(self) -> torch.Tensor:
        """The sliders' current code, (1, D)."""
        z = torch.tensor([[s.value for s in self.sliders]], dtype=torch.float32, device="cpu")
        _check_finite_latent(z[0], self.names)
        return z

    def set_latent(self, z: torch.Tensor) -> None:
        """Move the sliders to z, (D,) or (1, D), clipped to the sliders' range; redraw once.

        Raises a ValueError naming the dimensions of z that are NaN or infinite (clipping would
        silently turn an infinity into the range's end).
        """
        z = torch.as_tensor(z, dtype=torch.float32, device="cpu").flatten()
        if z.numel() != self.latent_dim:
            raise ValueError(f"expected a latent code with {self.latent_dim} values, got {z.numel()}")
        _check_finite_latent(z, self.names)
        self._updating = True
        try:
            for slider, value in zip(self.sliders, z.clamp(*self.value_range).tolist()):
                slider.value = value
        finally:
            self._updating = False
        self.redraw()

    def sample_prior(self) -> None:
        """Draw z ~ N(0, I) and show its decode."""
        self.set_latent(torch.randn(self.latent_dim, generator=self._generator, device="cpu"))

    def reset(self) -> None:
        """All sliders back to 0, the prior's mean."""
        self.set_latent(torch.zeros(self.latent_dim, device="cpu"))

    def redraw(self) -> None:
        """Decode the sliders' code and show it; a decode with NaN or inf pixels raises instead."""
        if self._updating:
            return
        z = self.latent()
        images = self.decode(z)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) != 1:
            found = (f"shape {tuple(images.shape)}" if isinstance(images, torch.Tensor)
                     else type(images).__name__)
            raise ValueError(f"decode must return one image (1, C, H, W) for the code (1, "
                             f"{self.latent_dim}), got {found}; the image was left as it was")
        images = images.detach().to("cpu")
        bad = non_finite_count(images)
        if bad:
            raise ValueError(f"decode returned {bad} non-finite pixel value(s) (NaN or inf) for "
                             f"the latent code {z[0].tolist()}; the image was left as it was")
        self.image.value = image_png(images[0], self.scale)


def latent_sliders(model: torch.nn.Module, names: Sequence[str] | None = None,
                   **kwargs) -> LatentSliders:
    """Sliders for a trained model with ``decode`` (logits) and ``latent_dim``."""
    from .viz import decoder_images

    return LatentSliders(decoder_images(model), model.latent_dim, names=names, **kwargs)
