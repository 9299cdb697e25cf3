import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vae_utils import models, viz  # noqa: E402


@pytest.fixture
def decode():
    model = models.VAE((1, 28, 28), latent_dim=2, hidden=(16,))
    return viz.decoder_images(model)


def test_every_plot_returns_a_figure(decode):
    images = torch.rand(6, 1, 28, 28)
    history = {"train_loss": [3.0, 2.0], "test_loss": [3.5, 2.5], "train_kl": [1.0, 1.5]}
    figures = [
        viz.image_grid(images, nrow=3, title="grid"),
        viz.compare_rows([images, images], ["a", "b"]),
        viz.image_row(images[:2], ["x", "y"]),
        viz.latent_scatter(torch.randn(50, 2), torch.randint(0, 10, (50,))),
        viz.manifold_grid(decode, [-1.0, 0.0, 1.0]),
        viz.traversal(decode, torch.zeros(2), [-1.0, 1.0]),
        viz.loss_curves(history, ["train_loss", "train_kl"]),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    grid = figures[4].axes[0].images[0].get_array()
    assert grid.shape[:2] == (3 * 28, 3 * 28)


def test_decoder_images_are_in_the_unit_interval(decode):
    images = decode(torch.randn(4, 2) * 10)
    assert images.shape == (4, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_interpolate_runs_from_start_to_end():
    path = viz.interpolate(torch.zeros(3), torch.ones(3), steps=5)
    assert path.shape == (5, 3) and torch.equal(path[0], torch.zeros(3)) and torch.equal(path[-1], torch.ones(3))


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        viz.image_grid(torch.rand(4, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        viz.latent_scatter(torch.randn(10, 3), torch.zeros(10))
    with pytest.raises(ValueError, match="labels"):
        viz.compare_rows([torch.rand(2, 1, 4, 4)], ["a", "b"])
    with pytest.raises(KeyError, match="test_kl"):
        viz.loss_curves({"train_loss": [1.0]}, ["test_kl"])


def test_heatmap_and_posterior_bars_check_their_shapes():
    fig = viz.heatmap(torch.rand(3, 2), ["z1", "z2", "z3"], ["a", "b"])
    assert isinstance(fig, Figure) and len(fig.axes[0].texts) == 6
    with pytest.raises(ValueError, match="does not match"):
        viz.heatmap(torch.rand(3, 2), ["z1", "z2"], ["a", "b"])
    assert isinstance(viz.posterior_bars(torch.zeros(4), torch.ones(4)), Figure)
    with pytest.raises(ValueError, match="differ in shape"):
        viz.posterior_bars(torch.zeros(4), torch.ones(3))


def test_a_test_value_from_the_last_epoch_only_is_drawn_at_the_last_epoch():
    fig = viz.loss_curves({"train_loss": [3.0, 2.0, 1.0], "test_loss": [1.5]}, ["train_loss"])
    test_line = fig.axes[0].lines[1]
    assert list(test_line.get_xdata()) == [3] and list(test_line.get_ydata()) == [1.5]
    fig.clf()


def test_a_figure_png_keeps_its_audit_record_and_a_chart_its_exact_colours(monkeypatch):
    """figure_png stores a palette PNG when that is smaller: a chart's few colours survive
    exactly, an image grid's many colours each move by little, and the audit record stays."""
    import io
    import json

    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("VAE_UTILS_FIGURE_AUDIT", "1")
    fig, (chart, grid) = plt.subplots(1, 2)
    chart.plot([0, 1], [0, 1], color="#1f77b4", lw=8)
    grid.imshow(np.random.default_rng(0).random((28, 28, 3)))
    png = viz.figure_png(fig)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "P" and json.loads(image.info[viz.AUDIT_KEY])["dpi"] == viz.DPI
    fig.savefig(reference := io.BytesIO(), format="png", dpi=viz.DPI, bbox_inches="tight",
                facecolor="white")
    assert len(png) < len(reference.getvalue())
    rgb = np.asarray(image.convert("RGB"), dtype=float)
    exact = np.asarray(Image.open(reference).convert("RGB"), dtype=float)
    assert rgb.shape == exact.shape
    assert np.abs(rgb - exact).max(axis=-1).mean() < 4        # grey levels of 255, on average
    assert (rgb == (31, 119, 180)).all(axis=-1).sum() == (exact == (31, 119, 180)).all(axis=-1).sum()
    plt.close(fig)


def _audited_png(fig, monkeypatch) -> tuple[dict, int]:
    """The PNG a notebook shows for fig, with its audit record, and its width in pixels."""
    import io
    import json

    from PIL import Image

    monkeypatch.setenv("VAE_UTILS_FIGURE_AUDIT", "1")
    image = Image.open(io.BytesIO(viz.figure_png(fig)))
    return json.loads(image.info[viz.AUDIT_KEY]), image.width


def test_every_figure_helper_draws_text_a_phone_can_read(decode, monkeypatch):
    """On a 390 px phone the column is 342 px: every helper's smallest text, at the width the
    browser shows its PNG, is at least 9 CSS px (the phone test checks the chapters' own charts
    the same way, in the built site)."""
    images = torch.rand(16, 1, 28, 28)
    history = {"train_loss": [3.0, 2.0], "test_loss": [2.5], "train_kl": [1.0, 1.5],
               "train_recon": [2.0, 0.5]}
    figures = {
        "image_grid": viz.image_grid(images, nrow=16, title="sixteen across"),
        "compare_rows": viz.compare_rows([images, images], ["input", "a long row label"]),
        "image_row": viz.image_row(images[:5], ["a", "b", "c\nd", "e", "f"]),
        "latent_scatter": viz.latent_scatter(torch.randn(50, 2), torch.randint(0, 10, (50,)), title="t"),
        "manifold_grid": viz.manifold_grid(decode, torch.linspace(-2, 2, 15).tolist()),
        "traversal": viz.traversal(decode, torch.zeros(2), torch.linspace(-2, 2, 9).tolist()),
        "loss_curves": viz.loss_curves(history, ["train_loss", "train_recon", "train_kl"], title="t"),
        "heatmap": viz.heatmap(torch.rand(10, 6), [f"z{i}" for i in range(10)], list("abcdef")),
        "posterior_bars": viz.posterior_bars(torch.zeros(10), torch.ones(10)),
    }
    for name, fig in figures.items():
        audit, width = _audited_png(fig, monkeypatch)
        px = viz.phone_text_px(audit["smallest_points"], audit["dpi"], width)
        assert px >= 9.0, f"{name}: smallest text {px:.1f} px on a phone ({width} px wide)"
        assert width <= 1.05 * viz.MAX_WIDTH * viz.DPI, f"{name}: {width} px wide"


def test_a_figure_without_text_records_none_and_the_audit_is_off_by_default(monkeypatch):
    import io

    from PIL import Image

    fig = viz.image_grid(torch.rand(4, 1, 8, 8), nrow=4)
    assert viz.smallest_text_points(fig) is None
    monkeypatch.delenv("VAE_UTILS_FIGURE_AUDIT", raising=False)
    assert viz.AUDIT_KEY not in Image.open(io.BytesIO(viz.figure_png(fig))).info


def test_phone_text_follows_the_width_the_browser_shows():
    assert viz.phone_text_px(11, 110, 342) == pytest.approx(11 * 110 / 72)
    assert viz.phone_text_px(11, 110, 684) == pytest.approx(11 * 110 / 72 / 2)


def test_a_table_renders_escaped_html_with_labels_for_phones_and_plain_text():
    table = viz.Table(["model", "nats"], [["<b>vae</b>", 91.234], ["gan", "none"]], caption="c & d")
    html = table._repr_html_()
    assert "&lt;b&gt;vae&lt;/b&gt;" in html and "<b>" not in html
    assert "data-label='nats'>91.234</td>" in html and "<caption>c &amp; d</caption>" in html
    assert str(table).splitlines()[1].startswith("model") and "91.234" in str(table)
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        viz.Table(["a", "b"], [[1.0]])


def test_a_verdict_table_reads_each_verdict_from_its_interval():
    from vae_utils import metrics

    table = viz.verdict_table([("sharper", "GAN − VAE", metrics.Interval(0.2, 0.1, 0.3, "images")),
                               ("closer", "VAE − GAN", metrics.Interval(0.2, -0.1, 0.5, "seeds"))])
    assert [row[1] for row in table.rows] == ["holds", "inconclusive"]
    assert table.rows[0][2] == "GAN − VAE = +0.2 [+0.1, +0.3]"
