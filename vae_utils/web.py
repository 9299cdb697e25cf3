"""Decoders for the website's in-browser latent sliders.

At build time a chapter exports a trained decoder to ONNX (``export_decoder``); the page runs
it with onnxruntime-web (``book/_static/latent_sliders.mjs``). The ONNX file computes
``z (1, latent_dim) -> image (1, C, H, W) in [0, 1]``, the same as
``torch.sigmoid(model.decode(z))``, with its weight matrices stored as float16 and cast back to
float32 inside the graph (half the bytes; the arithmetic stays float32).

Needs the optional packages ``onnx`` and ``onnxscript`` (installed by the book's
requirements.txt, not by Colab): ``site_export_dir()`` is None unless the book build asks for
an export, and then the chapters call :func:`export_decoder`.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from . import settings
from .checks import values_checked
from .models import encode_all

SITE_EXPORT_ENV = "VAE_UTILS_WEB_EXPORT"
"""Set by the Makefile's book build to the folder the website serves as ``/models/``."""

MAX_MODEL_BYTES = 1_500_000


def site_export_dir() -> Path | None:
    """The folder to export decoders into for the website, or None (Jupyter, Colab, tests)."""
    return settings.web_export_dir()


class _ImageDecoder(nn.Module):
    """z (B, latent_dim) -> sigmoid(model.decode(z)): (B, C, H, W) in [0, 1]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decode(z))


def half_rounded(model: nn.Module) -> nn.Module:
    """A float32 copy of ``model`` whose weight matrices (2-D or more) are rounded through
    float16: what the exported file computes, for measuring its pixel error in PyTorch."""
    rounded = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.ndim >= 2:
                parameter.copy_(parameter.half().float())
    return rounded


@torch.no_grad()
def low_rank_output(model: nn.Module, rank: int, n_codes: int = 20_000, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose decoder's last linear layer W (out, in) acts on the top
    ``rank`` principal components of its input only: h -> (W P) P^T (h - m) + W m + b, with m
    and P (in, rank) the mean and principal directions of h over ``n_codes`` prior codes. Far
    fewer weights when the decoder's last layer is large (a 10-d code spans few directions of
    h); the pixel error is measured by :func:`export_decoder`."""
    model = copy.deepcopy(model).cpu().eval()
    linears = [(name, m) for name, m in model.decoder.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("low_rank_output needs a decoder whose last layer is nn.Linear")
    name, last = linears[-1]
    if not 0 < rank < last.in_features:
        raise ValueError(f"rank must be in [1, {last.in_features - 1}], got {rank}")
    seen = []
    hook = last.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    codes = torch.randn(n_codes, model.latent_dim, generator=torch.Generator().manual_seed(seed),
                        device="cpu")
    model.decode(codes)
    hook.remove()
    h = seen[0]
    mean = h.mean(0)
    directions = torch.linalg.svd(h - mean, full_matrices=False).Vh[:rank].T   # (in, rank)
    project = nn.Linear(last.in_features, rank, device="cpu")
    project.weight.copy_(directions.T)
    project.bias.copy_(-(directions.T @ mean))
    expand = nn.Linear(rank, last.out_features, device="cpu")
    expand.weight.copy_(last.weight @ directions)
    expand.bias.copy_(last.bias + last.weight @ mean)
    parent = model.decoder
    *path, leaf = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, leaf, nn.Sequential(project, expand))
    return model


def _weights_to_float16(onnx_model) -> None:
    """Store every float32 initializer of 2 or more dimensions as float16, with a Cast node
    back to float32 in front of its users (in place)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx_model.graph
    casts = []
    for initializer in list(graph.initializer):
        if initializer.data_type != onnx.TensorProto.FLOAT or len(initializer.dims) < 2:
            continue
        name = initializer.name
        half = numpy_helper.from_array(numpy_helper.to_array(initializer).astype(np.float16),
                                       name=f"{name}__float16")
        graph.initializer.remove(initializer)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT,
                                      name=f"{name}__cast"))
    for cast in reversed(casts):
        graph.node.insert(0, cast)


def export_decoder(model: nn.Module, path: str | Path, rank: int | None = None) -> dict:
    """Write ``model``'s decoder as an ONNX file for the browser: input "z" (1, latent_dim)
    float32, output "image" (1, C, H, W) in [0, 1], weight matrices stored as float16 (and,
    with ``rank``, the last layer reduced by :func:`low_rank_output`, for decoders too large
    for the page otherwise).

    Returns {"file", "bytes", "latent_dim", "image_shape", "rank", "max_pixel_error",
    "mean_pixel_error"}: the largest and mean difference from the float32 model's pixels over
    1,000 prior codes. Raises ValueError if
    the file exceeds MAX_MODEL_BYTES. Written atomically (a temporary file, then a rename).
    """
    import onnx

    if not hasattr(model, "decode") or not hasattr(model, "latent_dim"):
        raise TypeError(f"expected a model with decode(z) and latent_dim, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    original = copy.deepcopy(model).cpu().eval()
    model = low_rank_output(original, rank) if rank else original
    z = torch.zeros(1, model.latent_dim, device="cpu")
    with tempfile.TemporaryDirectory() as scratch, values_checked(), torch.no_grad():
        raw = Path(scratch) / "decoder.onnx"
        torch.onnx.export(_ImageDecoder(model).eval(), (z,), str(raw), input_names=["z"],
                          output_names=["image"], external_data=False, dynamo=True,
                          verbose=False)
        graph = onnx.load(str(raw))
    _weights_to_float16(graph)
    onnx.checker.check_model(graph)
    data = graph.SerializeToString()
    if len(data) > MAX_MODEL_BYTES:
        raise ValueError(f"{path.name}: {len(data):,} bytes, over the website's limit of "
                         f"{MAX_MODEL_BYTES:,} bytes per model")
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.replace(path)

    codes = torch.randn(1_000, model.latent_dim, generator=torch.Generator().manual_seed(0),
                        device="cpu")
    with torch.no_grad():
        exact = torch.sigmoid(original.decode(codes))
        exported = torch.sigmoid(half_rounded(model).decode(codes))
    error = (exact - exported).abs()
    return dict(file=path.name, bytes=len(data), latent_dim=model.latent_dim,
                image_shape=list(model.image_shape), rank=rank,
                max_pixel_error=float(error.max()), mean_pixel_error=float(error.mean()))


def write_page_config(path: str | Path, config: dict) -> None:
    """Write the JSON a slider page reads (model files, slider names, ranges), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(config, indent=1) + "\n")
    partial.replace(path)


SCRIPT = "../sliders/latent_sliders.mjs"   # relative to a chapter page (book/<chapter>.html)
MODELS = "../models"


def _page_widget(config_name: str, caption: str):
    import html

    from IPython.display import HTML

    return HTML(f'<p class="vae-web-caption">{html.escape(caption)}</p>\n'
                f'<div class="vae-web" data-config="{MODELS}/{config_name}.json"></div>\n'
                f'<script type="module" src="{SCRIPT}"></script>')


def _describe(info: dict) -> str:
    """What the page says about its decoder, in lines of at most 80 characters."""
    lines = [f"in-browser decoder {info['file']}: {info['bytes'] / 1e6:.2f} MB, float16 weights"]
    if info["rank"]:
        lines.append(f"  its last layer on {info['rank']} principal components of its input")
    lines.append(f"  pixel change from the float32 model: largest {info['max_pixel_error']:.4f}, "
                 f"mean {info['mean_pixel_error']:.4f}")
    return "\n".join(lines)


def site_sliders(model: nn.Module, name: str, names: list[str] | None = None, *,
                 value_range: float = 3.0, step: float = 0.05, scale: int = 6,
                 alt: str = "the decoded image", caption: str = "", rank: int | None = None):
    """On the website build: export ``model``'s decoder as ``<name>.onnx`` and return the HTML
    of one slider per latent dimension (``names``: their labels, default z1, z2, ...), with
    "sample from the prior" and "reset" buttons, under ``caption`` (``rank``: as in
    :func:`export_decoder`). Elsewhere (Jupyter, Colab): None."""
    folder = site_export_dir()
    if folder is None:
        return None
    names = names or [f"z{i + 1}" for i in range(model.latent_dim)]
    if len(names) != model.latent_dim:
        raise ValueError(f"expected {model.latent_dim} slider names, got {len(names)}")
    info = export_decoder(model, folder / f"{name}.onnx", rank=rank)
    write_page_config(folder / f"{name}.json", dict(
        kind="sliders", model=info["file"], latent_dim=model.latent_dim,
        image_shape=info["image_shape"], names=list(names), range=value_range, step=step,
        scale=scale, alt=alt))
    print(_describe(info))
    return _page_widget(name, caption)


def site_plane(panels: dict[str, nn.Module], name: str, images: torch.Tensor,
               labels: torch.Tensor, *, size: int = 260, scale: int = 4, caption: str = ""):
    """On the website build: export each 2-D model's decoder and return the HTML of their
    latent planes side by side: the codes of ``images`` (N, 1, 28, 28) coloured by ``labels``
    (N,), and the decoded image of whatever point the reader points at, under ``caption``.
    Elsewhere: None."""
    folder = site_export_dir()
    if folder is None:
        return None
    config = dict(kind="plane", size=size, scale=scale, panels=[])
    for index, (title, model) in enumerate(panels.items()):
        if model.latent_dim != 2:
            raise ValueError(f"{title}: a latent plane needs a 2-D code, got {model.latent_dim}")
        info = export_decoder(model, folder / f"{name}-{index}.onnx")
        codes = encode_all(model, images).mu
        reach = float(codes.abs().quantile(0.99)) * 1.15
        points = dict(codes=[[round(a, 3), round(b, 3)] for a, b in codes.tolist()],
                      labels=[int(y) for y in labels.tolist()])
        write_page_config(folder / f"{name}-{index}-points.json", points)
        config["panels"].append(dict(title=title, model=info["file"],
                                     points=f"{name}-{index}-points.json",
                                     extent=[-reach, reach]))
        config["image_shape"] = info["image_shape"]
        print(f"{title}: " + _describe(info))
    write_page_config(folder / f"{name}.json", config)
    return _page_widget(name, caption)
