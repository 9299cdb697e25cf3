import pytest
import torch

from vae_utils import faces


def test_same_seed_gives_identical_faces_and_other_seeds_differ():
    a_images, a_factors = faces.make_faces(64, seed=3)
    b_images, b_factors = faces.make_faces(64, seed=3)
    c_images, _ = faces.make_faces(64, seed=4)
    assert torch.equal(a_images, b_images) and torch.equal(a_factors, b_factors)
    assert not torch.equal(a_images, c_images)


def test_shapes_ranges_and_factor_types():
    images, factors = faces.make_faces(100, seed=0, size=48)
    assert images.shape == (100, 3, 48, 48) and images.dtype == torch.float32
    assert factors.shape == (100, len(faces.FACTOR_NAMES))
    assert images.min() >= 0 and images.max() <= 1
    assert factors.min() >= 0 and factors.max() <= 1
    glasses = factors[:, faces.FACTOR_NAMES.index("glasses")]
    assert set(glasses.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("name", faces.FACTOR_NAMES)
def test_each_factor_visibly_changes_the_image(name):
    base = torch.full((2, faces.N_FACTORS), 0.5)
    base[:, faces.FACTOR_NAMES.index(name)] = torch.tensor([0.0, 1.0])
    low, high = faces.render_faces(base)
    changed = ((low - high).abs().amax(0) > 0.1).float().mean()
    assert changed > 0.01, f"{name} changes only {changed:.2%} of the pixels"


@pytest.mark.parametrize("name", faces.FACTOR_NAMES)
def test_each_factor_changes_every_face_measurably(name):
    """Whatever the other factors are (a blond beard on dark skin too), moving one factor from
    0.2 to 0.8 (glasses: off to on) changes the image by a mean |pixel change| a VAE can see."""
    k = faces.FACTOR_NAMES.index(name)
    low, high = faces.sample_factors(300, seed=3), faces.sample_factors(300, seed=3)
    low[:, k], high[:, k] = (0.0, 1.0) if name == "glasses" else (0.2, 0.8)
    change = (faces.render_faces(low) - faces.render_faces(high)).abs().mean((1, 2, 3))  # (300,)
    assert change.min() > 0.005, f"{name}: some faces change by only {change.min():.4f}"


def test_factors_only_change_their_own_region():
    """Glasses must not alter the hair at the top of the head, nor hair colour the mouth."""
    base = torch.full((2, faces.N_FACTORS), 0.5)
    base[:, faces.FACTOR_NAMES.index("glasses")] = torch.tensor([0.0, 1.0])
    low, high = faces.render_faces(base)
    assert torch.equal(low[:, :6], high[:, :6])  # top rows: hair and background


def test_bad_factors_are_rejected_with_clear_errors():
    with pytest.raises(ValueError, match=r"shape \(N, 6\)"):
        faces.render_faces(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        faces.render_faces(torch.full((1, 6), 1.5))
    with pytest.raises(ValueError, match="size"):
        faces.render_faces(torch.zeros(1, 6), size=8)
    with pytest.raises(ValueError, match="positive"):
        faces.sample_factors(0)
