import pytest
import torch

from vae_utils import models, widgets


@pytest.fixture
def model():
    torch.manual_seed(0)
    return models.VAE((3, 32, 32), latent_dim=3, hidden=(16,))


def test_one_slider_per_latent_dimension_and_the_image_follows_them(model):
    sliders = widgets.latent_sliders(model, names=["a", "b", "c"])
    assert [s.description for s in sliders.sliders] == ["a", "b", "c"]
    before = sliders.image.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n"
    sliders.sliders[1].value = 2.0
    assert sliders.image.value != before
    assert torch.equal(sliders.latent(), torch.tensor([[0.0, 2.0, 0.0]]))


def test_reset_and_prior_sampling_move_all_sliders(model):
    sliders = widgets.latent_sliders(model, seed=3)
    sliders.sample_prior()
    assert (sliders.latent() != 0).all()
    sliders.reset()
    assert (sliders.latent() == 0).all()


def test_set_latent_clips_to_the_slider_range_and_redraws_once(model):
    calls = []
    decode = lambda z: (calls.append(z), torch.full((1, 3, 8, 8), 0.5))[1]  # noqa: E731
    sliders = widgets.LatentSliders(decode, latent_dim=3)
    calls.clear()
    sliders.set_latent(torch.tensor([10.0, -10.0, 1.0]))
    assert len(calls) == 1
    assert torch.equal(sliders.latent(), torch.tensor([[3.0, -3.0, 1.0]]))


def test_wrong_latent_sizes_are_rejected(model):
    with pytest.raises(ValueError, match="2 slider names for a latent size of 3"):
        widgets.latent_sliders(model, names=["a", "b"])
    sliders = widgets.latent_sliders(model)
    with pytest.raises(ValueError, match="3 values, got 4"):
        sliders.set_latent(torch.zeros(4))


def test_image_png_rejects_a_batch():
    with pytest.raises(ValueError, match="one image"):
        widgets.image_png(torch.rand(2, 3, 8, 8))
