"""Architecture diagrams, drawn by code when a chapter runs: the autoencoder, the VAE (with the
reparameterisation path and where the gradient flows) and the GAN (two networks, two losses).

Each function returns a matplotlib ``Figure`` of ``WIDTH_INCHES`` at ``DPI`` whose smallest
text is ``FONT_POINTS``: on a 390 px phone the text column is about 350 px wide, so a label is
drawn at about ``FONT_POINTS * DPI / 72 * 358 / (WIDTH_INCHES * DPI)`` ≈ 11 px (checked in the
browser by ``tests/test_site_browser.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

WIDTH_INCHES = 6.0
DPI = 100
FONT_POINTS = 14.0

DATA, NETWORK, CODE, LOSS, NOISE = "#eeeeee", "#cfe2f3", "#fff2cc", "#f4cccc", "#ffffff"
FORWARD, GRADIENT = "#333333", "#c0392b"


@dataclass(frozen=True)
class Node:
    """A labelled box centred at (x, y), in the diagram's units (the width is 10)."""

    x: float
    y: float
    w: float
    h: float
    text: str
    fill: str
    dashed: bool = False


def _canvas(height_units: float) -> tuple[Figure, plt.Axes]:
    fig = plt.figure(figsize=(WIDTH_INCHES, WIDTH_INCHES * height_units / 10), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height_units)
    ax.set_axis_off()
    return fig, ax


def _draw_nodes(ax: plt.Axes, nodes: dict[str, Node]) -> None:
    for node in nodes.values():
        ax.add_patch(FancyBboxPatch((node.x - node.w / 2, node.y - node.h / 2), node.w, node.h,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=node.fill, edgecolor="#555555",
                                    linestyle="--" if node.dashed else "-", linewidth=1.2))
        ax.text(node.x, node.y, node.text, ha="center", va="center", fontsize=FONT_POINTS,
                linespacing=1.15)


def _edge_point(node: Node, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the straight line from the node's centre to ``towards`` leaves its box."""
    dx, dy = towards[0] - node.x, towards[1] - node.y
    scale = min(node.w / 2 / abs(dx) if dx else float("inf"),
                node.h / 2 / abs(dy) if dy else float("inf"))
    return node.x + dx * scale, node.y + dy * scale


def _line(ax: plt.Axes, a: tuple[float, float], b: tuple[float, float], gradient: bool = False,
          dashed: bool | None = None, bend: float = 0.0) -> None:
    """An arrow from point a to point b: a thin forward-pass arrow, or a thick dashed red
    gradient arrow (``dashed`` also marks the noise's forward arrows)."""
    dashed = gradient if dashed is None else dashed
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14,
                                 color=GRADIENT if gradient else FORWARD,
                                 linewidth=2.2 if gradient else 1.4,
                                 linestyle=(0, (4, 3)) if dashed else "-",
                                 connectionstyle=f"arc3,rad={bend}"))


def _arrow(ax: plt.Axes, start: Node, end: Node, gradient: bool = False, dashed: bool = False,
           bend: float = 0.0, label: str | None = None, label_offset: tuple[float, float] = (0, 0.25)
           ) -> None:
    """An arrow between two boxes, from edge to edge, with an optional label beside it."""
    a = _edge_point(start, (end.x, end.y))
    b = _edge_point(end, (start.x, start.y))
    _line(ax, a, b, gradient, dashed or gradient, bend)
    if label:
        ax.text((a[0] + b[0]) / 2 + label_offset[0], (a[1] + b[1]) / 2 + label_offset[1], label,
                ha="center", va="center", fontsize=FONT_POINTS,
                color=GRADIENT if gradient else FORWARD)


def _legend(ax: plt.Axes, y: float, gradient_text: str) -> None:
    _line(ax, (0.2, y), (1.0, y))
    ax.text(1.15, y, "forward pass", va="center", fontsize=FONT_POINTS)
    _line(ax, (4.4, y), (5.2, y), gradient=True)
    ax.text(5.35, y, gradient_text, va="center", fontsize=FONT_POINTS, color=GRADIENT)


def autoencoder_diagram() -> Figure:
    """Image -> encoder -> a few numbers -> decoder -> reconstruction, scored against the image."""
    fig, ax = _canvas(4.6)
    n = {
        "x": Node(0.9, 2.6, 1.75, 1.0, "image $x$\n784 pixels", DATA),
        "enc": Node(2.95, 2.6, 1.5, 1.0, "encoder\nnetwork", NETWORK),
        "z": Node(5.0, 2.6, 1.9, 1.0, "code $z$\n2 numbers", CODE),
        "dec": Node(7.05, 2.6, 1.5, 1.0, "decoder\nnetwork", NETWORK),
        "xhat": Node(9.1, 2.6, 1.75, 1.0, "output $\\hat x$\n784 pixels", DATA),
        "loss": Node(5.0, 4.1, 4.8, 0.7, "loss: how far $\\hat x$ is from $x$", LOSS),
    }
    _draw_nodes(ax, n)
    for a, b in [("x", "enc"), ("enc", "z"), ("z", "dec"), ("dec", "xhat")]:
        _arrow(ax, n[a], n[b])
    _arrow(ax, n["x"], n["loss"], bend=-0.25)
    _arrow(ax, n["xhat"], n["loss"], bend=0.25)
    _arrow(ax, n["loss"], n["enc"], gradient=True, bend=0.3)
    _arrow(ax, n["loss"], n["dec"], gradient=True, bend=-0.3)
    ax.text(5.0, 1.55, "the only way from $x$ to $\\hat x$ is through $z$", ha="center",
            va="center", fontsize=FONT_POINTS)
    _legend(ax, 0.55, "gradient")
    return fig


def vae_diagram() -> Figure:
    """The VAE: the encoder gives a mean and a spread; z = mu + sigma * eps with outside noise eps,
    so the gradient reaches mu and sigma (and the encoder) but never the noise."""
    fig, ax = _canvas(7.0)
    n = {
        "x": Node(0.7, 3.9, 1.2, 1.0, "image\n$x$", DATA),
        "enc": Node(2.45, 3.9, 1.7, 1.0, "encoder", NETWORK),
        "mu": Node(4.2, 4.65, 0.9, 0.6, "$\\mu$", CODE),
        "sigma": Node(4.2, 3.15, 0.9, 0.6, "$\\sigma$", CODE),
        "z": Node(6.05, 3.9, 2.1, 1.0, "$z = \\mu + \\sigma\\,\\varepsilon$", CODE),
        "eps": Node(6.05, 1.5, 2.1, 0.85, "noise $\\varepsilon$\n$\\sim \\mathcal{N}(0, I)$",
                    NOISE, dashed=True),
        "dec": Node(8.25, 3.9, 1.7, 1.0, "decoder", NETWORK),
        "kl": Node(2.45, 6.2, 4.3, 0.9,
                   "KL term\n$D_{KL}(q(z \\mid x)\\,\\|\\,\\mathcal{N}(0, I))$", LOSS),
        "rec": Node(7.6, 6.2, 4.3, 0.9, "reconstruction term\n$-\\log p(x \\mid z)$ at the input $x$",
                    LOSS),
    }
    _draw_nodes(ax, n)
    for a, b in [("x", "enc"), ("enc", "mu"), ("enc", "sigma"), ("mu", "z"), ("sigma", "z"),
                 ("z", "dec"), ("enc", "kl"), ("dec", "rec")]:
        _arrow(ax, n[a], n[b])
    _arrow(ax, n["eps"], n["z"], dashed=True)
    # The gradient of the reconstruction term, routed under the boxes: decoder -> z -> mu and
    # sigma -> encoder. It passes through z = mu + sigma * eps to mu and sigma, not into eps.
    _line(ax, (8.25, 3.35), (6.8, 3.35), gradient=True, bend=-0.9)
    _line(ax, (5.3, 3.35), (4.25, 2.8), gradient=True, bend=-0.5)
    _line(ax, (5.3, 4.45), (4.25, 5.0), gradient=True, bend=0.5)
    _line(ax, (3.75, 3.1), (2.45, 3.35), gradient=True, bend=-0.5)
    _line(ax, (3.75, 4.7), (3.0, 4.45), gradient=True, bend=0.5)
    ax.text(8.3, 1.5, "no gradient\ninto the noise", ha="center", va="center",
            fontsize=FONT_POINTS, color=GRADIENT)
    _legend(ax, 0.45, "gradient of the loss")
    return fig


def gan_diagram() -> Figure:
    """The GAN: a generator maps noise to images; a discriminator scores real and generated
    images; two losses, each updating only its own network."""
    fig, ax = _canvas(6.4)
    n = {
        "noise": Node(0.95, 2.4, 1.85, 0.9, "noise $z$\n$\\sim \\mathcal{N}(0, I)$", NOISE,
                      dashed=True),
        "gen": Node(3.15, 2.4, 1.85, 0.9, "generator\n$G$", NETWORK),
        "fake": Node(5.35, 2.4, 1.85, 0.9, "generated\n$G(z)$", DATA),
        "real": Node(5.35, 4.4, 1.85, 0.9, "real image\n$x$", DATA),
        "disc": Node(7.95, 3.4, 2.35, 1.0, "discriminator\n$D$", NETWORK),
        "dloss": Node(7.95, 5.6, 3.6, 0.9, "$D$'s loss: call $x$ real,\n$G(z)$ fake", LOSS),
        "gloss": Node(7.95, 1.1, 3.6, 0.9, "$G$'s loss: make $D$\ncall $G(z)$ real", LOSS),
    }
    _draw_nodes(ax, n)
    for a, b in [("noise", "gen"), ("gen", "fake"), ("fake", "disc"), ("real", "disc"),
                 ("disc", "dloss"), ("disc", "gloss")]:
        _arrow(ax, n[a], n[b])
    _arrow(ax, n["dloss"], n["disc"], gradient=True, bend=-0.5, label="updates\n$D$",
           label_offset=(1.35, 0.0))
    _arrow(ax, n["gloss"], n["gen"], gradient=True, bend=-0.3,
           label="updates $G$,\nthrough $D$", label_offset=(-1.5, -0.55))
    _legend(ax, 0.35, "gradient")
    return fig
