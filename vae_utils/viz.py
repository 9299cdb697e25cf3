"""Figures and tables, drawn for the column they are shown in. Every plotting function returns a
matplotlib ``Figure`` and never calls ``plt.show()``; a notebook displays the figure it gets back.

The book's pages are about 690 px wide on a desktop and 342 px on a phone. A figure W inches
wide is shown at most 342 px wide there, so text of s points appears at s * 342 / (72 W) px:
every figure here is at most ``MAX_WIDTH`` inches wide with text of at least ``MIN_POINTS``
points, which is 9.5 px or more on a phone. :func:`book_style` sets these sizes for the
chapters' own charts too, renders every figure of a notebook at ``DPI`` and, in the book build
(``settings.figure_audit()``), writes the figure's smallest text into its PNG so that a test can
check every figure of the website (tests/test_book_build.py).
"""

from __future__ import annotations

import html
import io
import json
from functools import partial
from typing import Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from torchvision.utils import make_grid

from . import checks, settings
from .models import decode_images

Decode = Callable[[torch.Tensor], torch.Tensor]
"""decode(z: (B, D)) -> images (B, C, H, W) in [0, 1]."""

MAX_WIDTH = 5.5
"""Inches: the widest figure, so that its text stays legible on a phone."""
MIN_POINTS = 11.0
"""The smallest text in any figure, in points."""
DPI = 110
"""Pixels per inch of the PNGs a notebook shows (5.5 in is 605 px: the desktop column's width)."""
PHONE_COLUMN_PX = 342
"""The width of the text column on a 390 px phone (the browser test measures it)."""
AUDIT_KEY = "vae-utils-figure"

STYLE = {"font.size": MIN_POINTS, "axes.titlesize": MIN_POINTS + 1, "axes.labelsize": MIN_POINTS,
         "xtick.labelsize": MIN_POINTS, "ytick.labelsize": MIN_POINTS,
         "legend.fontsize": MIN_POINTS, "legend.title_fontsize": MIN_POINTS,
         "figure.titlesize": MIN_POINTS + 1, "figure.dpi": DPI, "savefig.dpi": DPI,
         "figure.figsize": (MAX_WIDTH, 3.6)}


def smallest_text_points(fig: Figure) -> float | None:
    """The size in points of the smallest text drawn in ``fig`` (None if it has none); the tick
    labels of an axis that is switched off are not drawn, so they do not count."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if not ax.axison or not axis.get_visible():
                hidden.update(id(t) for t in axis.findobj(Text))
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if id(t) not in hidden and t.get_visible() and t.get_text().strip()
             and t.get_alpha() != 0]
    return min(sizes) if sizes else None


def figure_png(fig: Figure) -> bytes:
    """The PNG a notebook shows for ``fig``: ``DPI``, trimmed to its contents, and with the
    smallest text size and the resolution recorded in the file (a text chunk, ``AUDIT_KEY``)
    when the book build audits figures."""
    buffer = io.BytesIO()
    metadata = {}
    if settings.figure_audit():
        fig.draw_without_rendering()          # tick labels get their text when drawn
        metadata[AUDIT_KEY] = json.dumps({"smallest_points": smallest_text_points(fig), "dpi": DPI})
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white",
                metadata=metadata)
    return _palette_png(buffer.getvalue())


def _palette_png(png: bytes) -> bytes:
    """``png`` with at most 256 colours (a palette by median cut, no dithering) and its text
    chunks kept, when that is smaller. A figure with at most 256 colours keeps them exactly; an
    anti-aliased chart or an image grid moves a pixel by ~3 grey levels of 255 on average
    (white stays white), for about half the bytes: a chapter sends a dozen figures to a phone."""
    from PIL import Image, PngImagePlugin

    with Image.open(io.BytesIO(png)) as image:
        text = dict(getattr(image, "text", {}))
        rgb = image.convert("RGB")
    palette = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                           dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True, pnginfo=info)
    return buffer.getvalue() if buffer.tell() < len(png) else png


def book_style() -> None:
    """The book's figure sizes for every chart (``STYLE``), and, inside a notebook, every
    displayed figure rendered by :func:`figure_png`. Each chapter calls it in its setup cell."""
    matplotlib.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        # Load the notebook's plotting backend now: loading it later (at the first figure) would
        # register its own PNG formatter over this one.
        plt.close(plt.figure())
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def phone_text_px(points: float, dpi: float, png_width: int) -> float:
    """How tall text of ``points`` appears on a phone, in CSS px, in a PNG ``png_width`` pixels
    wide rendered at ``dpi`` (the browser shrinks a wider image to the column)."""
    return points * dpi / 72 * min(1.0, PHONE_COLUMN_PX / png_width)


def _styled(function):
    """Draw inside the book's sizes (``STYLE``), whatever the global settings are."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


# --- Tables -----------------------------------------------------------------------------------

class Table:
    """A table a notebook shows as HTML (on the website it wraps inside the column; on a phone
    each row stacks its cells) and a terminal prints as text. rows: lists of cells, numbers
    formatted with ``number_format``."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence], caption: str = "",
                 number_format: str = "{:.3f}"):
        self.columns, self.caption = [str(c) for c in columns], caption
        if any(len(row) != len(self.columns) for row in rows):
            raise ValueError(f"every row needs {len(self.columns)} cells: {list(self.columns)}")
        self.rows = [[cell if isinstance(cell, str) else number_format.format(cell) for cell in row]
                     for row in rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th scope='col'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td data-label='{html.escape(self.columns[i], quote=True)}'>"
                             f"{html.escape(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
            for row in self.rows)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f"<table class='vae-table'>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __str__(self) -> str:
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) for i, c in enumerate(self.columns)]
        lines = [self.caption] if self.caption else []
        lines.append(" | ".join(c.ljust(w) for c, w in zip(self.columns, widths)))
        lines += [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in self.rows]
        return "\n".join(lines)

    __repr__ = __str__


VERDICT_COLUMNS = ("claim", "verdict", "difference [95% interval]", "interval over")


def verdict_table(claims: Sequence[tuple[str, str, "Interval"]], caption: str = "") -> Table:
    """The verdicts on a list of claims, each read from its interval: rows of (claim, what the
    difference is, e.g. "VAE − GAN", interval oriented so that > 0 means the claim holds).
    The verdict column is ``metrics.verdict(interval)``: holds, does not hold or inconclusive
    (tests/test_book_build.py re-reads every verdict from its printed interval)."""
    from .metrics.evaluation import verdict

    rows = [[claim, verdict(interval), f"{what} = {interval.estimate:+.3g} "
             f"[{interval.low:+.3g}, {interval.high:+.3g}]", interval.source]
            for claim, what, interval in claims]
    return Table(VERDICT_COLUMNS, rows, caption=caption)


# --- Images -----------------------------------------------------------------------------------

def decoder_images(model: torch.nn.Module) -> Decode:
    """``models.decode_images`` bound to a model: z -> images in [0, 1] on the CPU, for the
    figure helpers and sliders that take a ``Decode``."""
    return partial(decode_images, model)


def _grid_array(images: torch.Tensor, nrow: int, padding: int = 1) -> np.ndarray:
    images = checks.tensor(images, "images").detach().to("cpu").float()
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


@_styled
def image_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None,
               scale: float = 1.0) -> Figure:
    """images: (N, C, H, W) in [0, 1], shown ``nrow`` per row (at most ``MAX_WIDTH`` wide)."""
    nrow = checks.integer(nrow, "nrow", minimum=1)
    rows = -(-len(images) // nrow)
    side = min(scale * 0.8, MAX_WIDTH / nrow)
    fig, ax = plt.subplots(figsize=(side * nrow, side * rows + (0.45 if title else 0)))
    _imshow(ax, images, nrow, title)
    fig.tight_layout()
    return fig


@_styled
def compare_rows(rows: Sequence[torch.Tensor], labels: Sequence[str], scale: float = 0.8) -> Figure:
    """Rows of equally many images (N, C, H, W), one label each: inputs vs reconstructions...
    At most ``MAX_WIDTH`` wide: many images per row make each one smaller, never the labels."""
    if len(rows) != len(labels):
        raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
    n = len(rows[0])
    label_width = 0.095 * max(len(label) for label in labels) + 0.15  # inches, at 11 pt
    side = min(scale, (MAX_WIDTH - label_width) / n)
    width, height = side * n + label_width, side * len(rows) + 0.05
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=label_width / width, right=0.99, top=0.99, bottom=0.01, hspace=0.08)
    for ax, images, label in zip(axes[:, 0], rows, labels):
        _imshow(ax, images, nrow=n)
        ax.text(-0.02, 0.5, label, transform=ax.transAxes, ha="right", va="center")
    return fig


@_styled
def image_row(images: torch.Tensor, captions: Sequence[str], scale: float = 1.3) -> Figure:
    """One row of images (N, C, H, W), each with its own caption underneath (on two lines when
    it is long)."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    side = min(scale, MAX_WIDTH / len(images))
    lines = max(caption.count("\n") + 1 for caption in captions)
    fig, axes = plt.subplots(1, len(images), figsize=(side * len(images), side + 0.3 * lines + 0.1),
                             squeeze=False)
    for ax, image, caption in zip(axes[0], images, captions):
        _imshow(ax, image[None], nrow=1)
        ax.text(0.5, -0.04, caption, transform=ax.transAxes, ha="center", va="top",
                linespacing=1.1)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99,
                        bottom=(0.3 * lines + 0.1) / (side + 0.3 * lines + 0.1), wspace=0.08)
    return fig


@_styled
def latent_scatter(z: torch.Tensor, labels: torch.Tensor, title: str | None = None,
                   ax: plt.Axes | None = None) -> Figure:
    """z: (N, 2) latent codes, coloured by integer labels (N,) such as MNIST digits."""
    z, labels = checks.tensor(z, "codes").to("cpu"), checks.tensor(labels, "labels").to("cpu")
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter needs 2-D codes of shape (N, 2), got {tuple(z.shape)}")
    fig = ax.figure if ax is not None else plt.figure(figsize=(MAX_WIDTH, 4.3))
    ax = ax if ax is not None else fig.add_subplot()
    points = ax.scatter(z[:, 0].numpy(), z[:, 1].numpy(), c=labels.numpy(), cmap="tab10", s=2,
                        alpha=0.6, vmin=-0.5, vmax=9.5, rasterized=True)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig


@_styled
def manifold_grid(decode: Decode, values: Sequence[float], title: str | None = None) -> Figure:
    """Decode the 2-D latent grid values x values (first latent across, second down)."""
    values = torch.as_tensor(values, dtype=torch.float32, device="cpu")
    z2, z1 = torch.meshgrid(values, values, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], dim=1)
    n = len(values)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, MAX_WIDTH))
    images = decode(z)
    ax.imshow(_grid_array(images, nrow=n, padding=0), interpolation="nearest")
    shown = list(range(0, n, 2 if n > 8 else 1))
    ticks = (np.array(shown) + 0.5) * images.shape[-1]
    labels = [f"{values[i]:.1f}" for i in shown]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Straight line between two codes (D,) -> (steps, D)."""
    steps = checks.integer(steps, "steps", minimum=2)
    t = torch.linspace(0, 1, steps, device=z_start.device).unsqueeze(1)
    return (1 - t) * z_start.unsqueeze(0) + t * z_end.unsqueeze(0)


@_styled
def traversal(decode: Decode, z_base: torch.Tensor, values: Sequence[float],
              dims: Sequence[int] | None = None, names: Sequence[str] | None = None) -> Figure:
    """One row per latent dimension: z_base (D,) with that dimension set to each of ``values``
    (the figure's caption says the range)."""
    z_base = torch.as_tensor(z_base, dtype=torch.float32, device="cpu").flatten()
    dims = list(range(len(z_base))) if dims is None else list(dims)
    values = torch.as_tensor(values, dtype=torch.float32, device="cpu")
    rows = []
    for d in dims:
        z = z_base.repeat(len(values), 1)
        z[:, d] = values
        rows.append(decode(z))
    labels = [names[i] if names else f"$z_{{{d + 1}}}$" for i, d in enumerate(dims)]
    return compare_rows(rows, labels)


@_styled
def loss_curves(history, keys: Sequence[str], title: str | None = None,
                ylabel: str = "nats per image") -> Figure:
    """Per-epoch curves of ``history[key]`` for each key, one panel per key, two panels per
    row. A "train_<term>" panel also shows "test_<term>" if the history has it: a curve if the
    test set was evaluated every epoch, a single point at the last epoch if only then."""
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(history)}")
    columns = min(2, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(MAX_WIDTH, 2.9 * rows + (0.4 if title else 0)),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        test_key = key.replace("train_", "test_")
        if key.startswith("train_") and test_key in history:
            test_values = history[test_key]
            ax.plot(epochs[-len(test_values):], test_values, marker="o", ms=4, ls="none",
                    label="test")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("train_", ""))
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for row in axes:
        row[0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@_styled
def heatmap(matrix: torch.Tensor, row_labels: Sequence[str], col_labels: Sequence[str],
            title: str | None = None, vmax: float = 1.0) -> Figure:
    """An annotated (R, C) matrix, e.g. normalised mutual information between latents and factors."""
    matrix = checks.tensor(matrix, "matrix").detach().to("cpu").float()
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix {tuple(matrix.shape)} does not match {len(row_labels)} row and "
                         f"{len(col_labels)} column labels")
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 0.42 * len(row_labels) + 1.6))
    image = ax.imshow(matrix.numpy(), cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    for (r, c), value in np.ndenumerate(matrix.numpy()):
        ax.text(c, r, f"{value:.2f}", ha="center", va="center",
                color="black" if value > 0.6 * vmax else "white")
    fig.colorbar(image, ax=ax)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


@_styled
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
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 3.4))
    ax.errorbar(range(d), np.zeros(d), yerr=2 * np.ones(d), fmt="none", ecolor="0.8",
                elinewidth=8, label="prior N(0, 1): ±2")
    ax.errorbar(range(d), mu, yerr=2 * sigma, fmt="o", capsize=4, label="q(z|x): mean ± 2 sd")
    ax.set_xticks(range(d), labels, rotation=30, ha="right")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.legend(loc="best")   # where it hides the fewest points
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
