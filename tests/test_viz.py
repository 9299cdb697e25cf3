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
