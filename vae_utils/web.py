"""Decoders for the website's in-browser latent sliders and planes.

At build time a chapter exports a trained decoder (:func:`export_decoder`): its linear layers'
weights as int8 with one float32 scale per output row (symmetric quantisation, a quarter of the
float32 bytes), their biases as float32, into one binary file, and the layer list into the JSON
the page reads. The page's own few dozen lines of JavaScript (``web/sliders/latent_sliders.mjs``)
compute ``z (latent_dim,) -> sigmoid(decoder(z))``, exactly what :func:`dequantized` computes
in PyTorch; the pixel change the quantisation costs is measured over 1,000 prior codes and
printed on the page. Decoders made of ``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``,
``nn.Flatten``/``nn.Unflatten`` and ``nn.Sequential`` export; anything else is refused.

Nothing is exported unless the book build asks (``settings.web_export_dir()``): in Jupyter and
Colab the page helpers return None and the ipywidgets sliders run instead.
"""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import torch
from torch import nn

from . import checks, settings
from .checks import values_checked
from .models import encode_all, prior_codes

MAX_MODEL_BYTES = 600_000
"""A page's decoders are downloaded before its first slider moves: keep each one small."""
ALIGN = 4   # float32 arrays in the binary start at multiples of 4 bytes


def site_export_dir() -> Path | None:
    """The folder to export decoders into for the website, or None (Jupyter, Colab, tests)."""
    return settings.web_export_dir()


@torch.no_grad()
def low_rank(model: nn.Module, rank: int, n_codes: int = 20_000, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose decoder's linear layers each act on the top ``rank`` principal
    components of their input only: h -> (W P) P^T (h - m) + W m + b, with m and P (in, rank)
    the mean and principal directions of the layer's input h over ``n_codes`` prior codes
    (computed through the layers already reduced). A layer is reduced only where that saves
    weights, rank * (in + out) < in * out. Far fewer weights for a decoder of a low-dimensional
    code, which spans few directions of each hidden layer; :func:`export_decoder` measures the
    pixel error it costs."""
    model = copy.deepcopy(model).cpu().eval()
    rank = checks.integer(rank, "rank", minimum=1)
    codes = prior_codes(checks.integer(n_codes, "n_codes", minimum=2), model.latent_dim,
                        torch.Generator(device="cpu").manual_seed(seed))
    names = [name for name, m in model.decoder.named_modules() if isinstance(m, nn.Linear)]
    reduced = 0
    for name in names:
        layer = model.decoder.get_submodule(name)
        if rank * (layer.in_features + layer.out_features) >= layer.in_features * layer.out_features:
            continue
        seen = []
        hook = layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
        model.decode(codes)
        hook.remove()
        h = seen[0]
        mean = h.mean(0)
        directions = torch.linalg.svd(h - mean, full_matrices=False).Vh[:rank].T  # (in, rank)
        project = nn.Linear(layer.in_features, rank, device="cpu")
        project.weight.copy_(directions.T)
        project.bias.copy_(-(directions.T @ mean))
        expand = nn.Linear(rank, layer.out_features, device="cpu")
        expand.weight.copy_(layer.weight @ directions)
        expand.bias.copy_(layer.bias + layer.weight @ mean)
        parent_name, _, leaf = name.rpartition(".")
        setattr(model.decoder.get_submodule(parent_name), leaf, nn.Sequential(project, expand))
        reduced += 1
    if not reduced:
        raise ValueError(f"rank {rank} would reduce none of the decoder's linear layers (a "
                         "layer is reduced only where rank * (in + out) < in * out)")
    return model


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The decoder's computation as a flat list of Linear and activation layers (shape-only
    layers dropped); a ValueError naming any layer the page cannot compute."""
    if not hasattr(model, "decoder") or not hasattr(model, "latent_dim"):
        raise TypeError(f"expected a model with a decoder and a latent_dim, got {type(model).__name__}")
    layers: list[nn.Module] = []

    def walk(module: nn.Module) -> None:
        if isinstance(module, nn.Sequential):
            for child in module:
                walk(child)
        elif isinstance(module, (nn.Linear, nn.ReLU, nn.LeakyReLU)):
            layers.append(module)
        elif not isinstance(module, (nn.Flatten, nn.Unflatten)):
            raise ValueError(f"the page cannot run a {type(module).__name__} layer; it computes "
                             "Linear, ReLU and LeakyReLU layers only")

    walk(model.decoder)
    if not any(isinstance(layer, nn.Linear) for layer in layers):
        raise ValueError("the decoder has no Linear layer to export")
    return layers


def _quantised(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantisation, one scale per output row: W ~ scale[:, None] * q."""
    scale = weight.abs().amax(1).clamp(min=1e-12) / 127
    return (weight / scale[:, None]).round().clamp(-127, 127).to(torch.int8), scale


def dequantized(model: nn.Module) -> nn.Module:
    """A float32 copy of ``model`` whose decoder weights are the exported int8 values times their
    scales: what the page computes, for measuring its pixel error in PyTorch."""
    rounded = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        for layer in decoder_layers(rounded):
            if isinstance(layer, nn.Linear):
                q, scale = _quantised(layer.weight)
                layer.weight.copy_(q.float() * scale[:, None])
    return rounded


@torch.no_grad()
def _decode(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(model.decode(z))


def export_decoder(model: nn.Module, folder: str | Path, name: str, rank: int | None = None) -> dict:
    """Write ``model``'s decoder as ``<folder>/<name>.bin`` for the page and return what its
    JSON needs: {"file", "layers", "image_shape", "latent_dim", "bytes", "rank",
    "max_pixel_error", "mean_pixel_error"} (the largest and mean difference from the float32
    model's pixels over 1,000 prior codes). ``rank``: each linear layer on at most that many
    (:func:`low_rank`). Refuses a decoder with NaN or infinite weights, one whose output
    is not (1, C, H, W) of its image shape, and files over ``MAX_MODEL_BYTES``. Written
    atomically (a temporary file, then a rename)."""
    checks.file_stem(name, "decoder name")
    folder = Path(folder)
    original = copy.deepcopy(model).cpu().eval()
    layers = decoder_layers(original)     # refuses what the page cannot compute
    for parameter_name, parameter in original.named_parameters():
        if not torch.isfinite(parameter).all():
            raise ValueError(f"the decoder's {parameter_name} holds NaN or infinite weights: "
                             "a damaged model cannot be exported")
    reduced = low_rank(original, rank) if rank else original
    image_shape = tuple(int(s) for s in reduced.image_shape)
    with values_checked():
        shape = tuple(_decode(reduced, torch.zeros(1, reduced.latent_dim, device="cpu")).shape)
    if shape != (1, *image_shape):
        raise ValueError(f"the decoder returns shape {shape} for one code; the page draws "
                         f"(1, {', '.join(map(str, image_shape))}) images")

    blob, spec = bytearray(), []
    for layer in decoder_layers(reduced):
        if isinstance(layer, nn.Linear):
            q, scale = _quantised(layer.weight.detach())
            entry = dict(type="linear", inputs=layer.in_features, outputs=layer.out_features)
            for key, array in (("weight", q.numpy().tobytes()),
                               ("scale", scale.float().numpy().tobytes()),
                               ("bias", layer.bias.detach().float().numpy().tobytes())):
                entry[key] = len(blob)
                blob += array + bytes(-len(array) % ALIGN)
            spec.append(entry)
        elif isinstance(layer, nn.LeakyReLU):
            spec.append(dict(type="leaky_relu", slope=float(layer.negative_slope)))
        else:
            spec.append(dict(type="relu"))
    if len(blob) > MAX_MODEL_BYTES:
        raise ValueError(f"{name}: {len(blob):,} bytes, over the website's limit of "
                         f"{MAX_MODEL_BYTES:,} bytes per model (pass a rank to shrink it)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.bin"
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(bytes(blob))
    partial.replace(path)

    codes = prior_codes(1_000, reduced.latent_dim, torch.Generator(device="cpu").manual_seed(0))
    with values_checked():
        error = (_decode(original, codes) - _decode(dequantized(reduced), codes)).abs()
    max_error = checks.result(float(error.max()), "the exported decoder's pixel error",
                              "the decoder gives NaN for some prior codes")
    return dict(file=path.name, layers=spec, image_shape=list(image_shape),
                latent_dim=reduced.latent_dim, bytes=len(blob), rank=rank,
                max_pixel_error=max_error, mean_pixel_error=float(error.mean()))


def write_page_config(path: str | Path, config: dict) -> None:
    """Write the JSON a slider page reads (decoder layers, slider names, ranges), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(config, indent=1, allow_nan=False) + "\n")
    partial.replace(path)


SCRIPT = "../sliders/latent_sliders.mjs"   # relative to a chapter page (book/<chapter>.html)
MODELS = "../models"


def _page_widget(config_name: str, caption: str, loading: str, files: list[str]):
    """The widget's HTML: its caption, a loading message shown from the first paint, a preload
    of every file it fetches (so that they download while the page is parsed), and the script,
    loaded ``async`` so that it does not wait for the page's other scripts."""
    from IPython.display import HTML

    source = html.escape(f"{MODELS}/{config_name}.json", quote=True)
    preloads = "".join(
        f'<link rel="preload" href="{html.escape(f"{MODELS}/{name}", quote=True)}" as="fetch" '
        f'crossorigin="anonymous">' for name in [f"{config_name}.json", *files])
    return HTML(f'{preloads}\n<p class="vae-web-caption">{html.escape(caption)}</p>\n'
                f'<div class="vae-web" data-config="{source}">'
                f'<p class="vae-web-loading" role="status">{html.escape(loading)}</p></div>\n'
                f'<script type="module" async src="{SCRIPT}"></script>')


def _describe(info: dict) -> str:
    """What the page says about its decoder, in lines of at most 56 characters (a phone)."""
    lines = [f"in-browser decoder: {info['bytes'] / 1e3:.0f} kB, int8 weights"]
    if info["rank"]:
        lines.append(f"  each layer on at most {info['rank']} directions")
    lines.append(f"  pixel change from the float32 model over 1,000")
    lines.append(f"  prior codes: largest {info['max_pixel_error']:.4f}, "
                 f"mean {info['mean_pixel_error']:.4f}")
    return "\n".join(lines)


def _names(names, latent_dim: int) -> list[str]:
    names = [f"z{i + 1}" for i in range(latent_dim)] if names is None else list(names)
    if len(names) != latent_dim:
        raise ValueError(f"expected {latent_dim} slider names, got {len(names)}")
    for label in names:
        if not isinstance(label, str) or not label.strip() or len(label) > 24:
            raise ValueError(f"a slider name must be a short non-empty string, got {label!r}")
    return names


def site_sliders(model: nn.Module, name: str, names: list[str] | None = None, *,
                 value_range: float = 3.0, step: float = 0.05, scale: int = 6,
                 alt: str = "the decoded image", caption: str = "", rank: int | None = None,
                 preview_rank: int | None = None):
    """On the website build: export ``model``'s decoder as ``<name>.bin`` and return the HTML
    of one slider per latent dimension (``names``: their labels, default z1, z2, ...), with
    "sample from the prior" and "reset" buttons, under ``caption`` (``rank``: as in
    :func:`export_decoder`). Elsewhere (Jupyter, Colab): None.

    ``preview_rank``: also export ``<name>-preview.bin``, the decoder reduced to that rank (a
    fraction of the bytes), which the page downloads first and draws with, saying so, until the
    exact decoder has arrived (a slow phone sees a digit in about a second instead of after the
    whole model)."""
    folder = site_export_dir()
    if folder is None:
        return None
    checks.file_stem(name, "slider widget name")
    names = _names(names, model.latent_dim)
    value_range = checks.number(value_range, "value_range", above=0)
    step = checks.number(step, "step", above=0, maximum=value_range)
    scale = checks.integer(scale, "scale", minimum=1, maximum=16)
    info = export_decoder(model, folder, name, rank=rank)
    config = dict(kind="sliders", decoder=_decoder_entry(info), latent_dim=model.latent_dim,
                  names=names, range=value_range, step=step, scale=scale, alt=str(alt))
    print(_describe(info))
    first = info
    preview_rank = _preview_rank(preview_rank, rank)
    if preview_rank is not None:
        first, config["preview"] = _preview(model, folder, name, preview_rank)
        print("shown first, until that has arrived, a preview:\n" + _describe(first))
    write_page_config(folder / f"{name}.json", config)
    # Only the first decoder's file is preloaded: the exact one must not share the connection
    # with the preview (the script fetches it as soon as the preview has drawn).
    return _page_widget(name, caption, "Loading the in-browser decoder…", [first["file"]])


def _decoder_entry(info: dict) -> dict:
    return {key: info[key] for key in ("file", "layers", "image_shape", "latent_dim", "rank")}


def _preview_rank(preview_rank: int | None, rank: int | None) -> int | None:
    if preview_rank is None:
        return None
    preview_rank = checks.integer(preview_rank, "preview_rank", minimum=1)
    if rank is not None and preview_rank >= rank:
        raise ValueError(f"preview_rank {preview_rank} must be below rank {rank}")
    return preview_rank


def _preview(model: nn.Module, folder: Path, name: str, preview_rank: int) -> tuple[dict, dict]:
    """Export ``<name>-preview.bin``: (its export info, its entry in the page's JSON)."""
    info = export_decoder(model, folder, f"{name}-preview", rank=preview_rank)
    return info, {**_decoder_entry(info), "mean_pixel_error": round(info["mean_pixel_error"], 4)}


def site_plane(panels: dict[str, nn.Module], name: str, images: torch.Tensor,
               labels: torch.Tensor, *, size: int = 260, scale: int = 4, caption: str = "",
               rank: int | None = None, preview_rank: int | None = None):
    """On the website build: export each 2-D model's decoder and return the HTML of their
    latent planes side by side: the codes of ``images`` (N, 1, 28, 28) coloured by ``labels``
    (N,) in 0..9, and the decoded image of whatever point the reader points at (or moves to
    with the arrow keys), under ``caption``. Elsewhere: None.

    ``preview_rank``: as in :func:`site_sliders`, a low-rank preview of each decoder, which the
    page downloads (with the codes) and draws with first, until the exact decoders arrive."""
    folder = site_export_dir()
    if folder is None:
        return None
    checks.file_stem(name, "plane widget name")
    labels = checks.labels(labels, 10, count=len(images))
    preview_rank = _preview_rank(preview_rank, rank)
    config = dict(kind="plane", size=checks.integer(size, "size", minimum=64, maximum=1024),
                  scale=checks.integer(scale, "scale", minimum=1, maximum=16), panels=[])
    files = []
    for index, (title, model) in enumerate(panels.items()):
        if model.latent_dim != 2:
            raise ValueError(f"{title}: a latent plane needs a 2-D code, got {model.latent_dim}")
        info = export_decoder(model, folder, f"{name}-{index}", rank=rank)
        codes = encode_all(model, images).mu
        reach = float(codes.abs().quantile(0.99)) * 1.15
        points = dict(codes=[[round(a, 3), round(b, 3)] for a, b in codes.tolist()],
                      labels=labels.tolist())
        write_page_config(folder / f"{name}-{index}-points.json", points)
        entry = dict(title=str(title), decoder=_decoder_entry(info),
                     points=f"{name}-{index}-points.json", extent=[-reach, reach])
        print(f"{title}: " + _describe(info))
        first = info
        if preview_rank is not None:
            first, entry["preview"] = _preview(model, folder, f"{name}-{index}", preview_rank)
            print("  shown first, a preview:\n" + _describe(first))
        files += [first["file"], f"{name}-{index}-points.json"]   # the exact ones: fetched later
        config["panels"].append(entry)
    write_page_config(folder / f"{name}.json", config)
    return _page_widget(name, caption, "Loading the in-browser decoders…", files)


def run_exported(folder: str | Path, decoder: dict, z: torch.Tensor) -> torch.Tensor:
    """What the page computes, read back from the exported files (for the tests): z (B, D) ->
    images (B, C, H, W) in [0, 1], in float64 like JavaScript's numbers."""
    import numpy as np

    blob = (Path(folder) / decoder["file"]).read_bytes()
    x = z.double().numpy()
    for layer in decoder["layers"]:
        if layer["type"] == "linear":
            n_in, n_out = layer["inputs"], layer["outputs"]
            w = np.frombuffer(blob, np.int8, n_in * n_out, layer["weight"]).reshape(n_out, n_in)
            s = np.frombuffer(blob, np.float32, n_out, layer["scale"]).astype(np.float64)
            b = np.frombuffer(blob, np.float32, n_out, layer["bias"]).astype(np.float64)
            x = (x @ w.T.astype(np.float64)) * s + b
        elif layer["type"] == "relu":
            x = np.maximum(x, 0)
        else:
            x = np.where(x > 0, x, layer["slope"] * x)
    images = 1 / (1 + np.exp(-x))
    return torch.from_numpy(images).reshape(len(z), *decoder["image_shape"])
