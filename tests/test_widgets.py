import os
import sys
from importlib import metadata
from pathlib import Path

import ipywidgets
import pytest
import torch
from packaging.requirements import Requirement

from vae_utils import models, widgets, data


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


# ipywidgets 7 (Colab) and 8 (JupyterLab): `make test` runs this file in .venv (ipywidgets 8) and
# again in .venv-widgets7 with VAE_UTILS_EXPECT_IPYWIDGETS=7.7.1.

@pytest.mark.parametrize("version", [ipywidgets.__version__], ids=lambda v: f"ipywidgets-{v}")
def test_report_the_ipywidgets_major_version(version, model):
    """The test id names the ipywidgets this run used (shown by pytest -v)."""
    major = int(version.split(".")[0])
    assert major in (7, 8), f"the sliders are tested on ipywidgets 7 and 8, not {version}"
    print(f"ipywidgets {version} (major {major}) from {ipywidgets.__file__}")
    assert widgets.latent_sliders(model).image.value[:4] == b"\x89PNG"


def test_the_expected_ipywidgets_version_was_imported():
    expected = os.environ.get("VAE_UTILS_EXPECT_IPYWIDGETS")
    if not expected:
        pytest.skip("VAE_UTILS_EXPECT_IPYWIDGETS is not set (make test sets it for the run "
                    "against ipywidgets 7.7.1)")
    assert ipywidgets.__version__ == expected


def test_the_ipywidgets_stack_is_not_mixed_with_another_environment(model):
    """ipywidgets' own requirements, and the Jupyter modules it imports at run time, come from
    the site-packages that holds ipywidgets, at versions it accepts: .venv-widgets7 falls back
    to .venv for torch and pytest only, never for the widget stack."""
    widgets.latent_sliders(model).sliders[0].value = 1.0  # import whatever widgets import
    home = Path(metadata.distribution("ipywidgets").locate_file("")).resolve()
    for line in metadata.requires("ipywidgets") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        dist = metadata.distribution(requirement.name)
        where = Path(dist.locate_file("")).resolve()
        assert where == home, f"{requirement.name} comes from {where}, ipywidgets from {home}"
        assert dist.version in requirement.specifier, f"{requirement} but got {dist.version}"
    stack = {"ipywidgets", "ipykernel", "comm", "IPython", "traitlets", "jupyter_client",
             "jupyter_core", "zmq", "tornado", "ipython_genutils"}
    for name in sorted(stack & set(sys.modules)):
        where = Path(sys.modules[name].__file__).resolve()
        assert home in where.parents, f"{name} was imported from {where}, ipywidgets from {home}"


# Only finite numbers get in.

def test_set_latent_rejects_non_finite_codes_naming_the_dimensions(model):
    sliders = widgets.latent_sliders(model, names=["a", "b", "c"])
    before = sliders.image.value
    with pytest.raises(ValueError, match=r"b \(index 1\) = nan, c \(index 2\) = inf"):
        sliders.set_latent(torch.tensor([0.5, float("nan"), float("inf")]))
    with pytest.raises(ValueError, match=r"a \(index 0\) = -inf"):
        sliders.set_latent([float("-inf"), 0.0, 0.0])
    assert (sliders.latent() == 0).all() and sliders.image.value == before


def test_a_slider_set_to_nan_is_put_back(model):
    sliders = widgets.latent_sliders(model, names=["a", "b", "c"])
    sliders.sliders[2].value = 1.0
    before = sliders.image.value
    with pytest.raises(ValueError, match="slider 'c' was set to nan.*put back to 1.0"):
        sliders.sliders[2].value = float("nan")
    assert sliders.sliders[2].value == 1.0 and sliders.image.value == before


def test_image_png_rejects_non_finite_images():
    image = torch.rand(3, 8, 8)
    image[0, 1, 2], image[2, 3, 4] = float("nan"), float("-inf")
    with pytest.raises(ValueError, match="2 non-finite pixel value"):
        widgets.image_png(image)


def test_a_decode_with_nan_pixels_raises_instead_of_drawing():
    def decode(z):
        images = torch.full((len(z), 1, 8, 8), 0.5, device="cpu")
        images[:, :, 0, 0] = float("nan") if z[0, 0] > 1 else 0.5
        return images

    sliders = widgets.LatentSliders(decode, latent_dim=2)
    before = sliders.image.value
    with pytest.raises(ValueError, match=r"decode returned 1 non-finite pixel.*\[2\.0, 0\.0\]"):
        sliders.set_latent(torch.tensor([2.0, 0.0]))
    assert sliders.image.value == before


@pytest.mark.parametrize("returned, found", [
    (None, "NoneType"), ("empty", r"shape \(0, 1, 8, 8\)"), ("flat", r"shape \(1, 64\)")])
def test_a_decode_that_returns_no_image_raises_instead_of_drawing(returned, found):
    def decode(z):
        if z[0, 0] < 1:
            return torch.full((1, 1, 8, 8), 0.5, device="cpu")
        return {None: None, "empty": torch.zeros(0, 1, 8, 8, device="cpu"),
                "flat": torch.zeros(1, 64, device="cpu")}[returned]

    sliders = widgets.LatentSliders(decode, latent_dim=2)
    before = sliders.image.value
    with pytest.raises(ValueError, match=f"decode must return one image .*got {found}"):
        sliders.set_latent(torch.tensor([2.0, 0.0]))
    assert sliders.image.value == before


@pytest.mark.parametrize("setting, value, error, message", [
    ("latent_dim", True, TypeError, "latent_dim must be an int, got True"),
    ("latent_dim", 0, ValueError, "latent_dim must be >= 1, got 0"),
    ("scale", 2.5, TypeError, "scale must be an int, got 2.5"),
    ("value_range", (3.0, -3.0), ValueError, "low < high"),
    ("value_range", (float("nan"), 3.0), ValueError, "must be a finite number, got nan"),
])
def test_bad_slider_settings_get_clear_errors(setting, value, error, message):
    kwargs = dict(latent_dim=2)
    kwargs[setting] = value
    with pytest.raises(error, match=message):
        widgets.LatentSliders(lambda z: torch.zeros(1, 1, 4, 4, device="cpu"), **kwargs)


def test_the_sliders_name_the_device_of_every_tensor_they_create(model):
    """With torch's default device "meta", a tensor made without naming its device has no data."""
    torch.set_default_device("meta")
    try:
        sliders = widgets.latent_sliders(model, seed=1)
        first = sliders.image.value
        sliders.sliders[0].value = 1.5
        moved = sliders.image.value
        sample_button, reset_button = sliders.widget.children[0].children[-1].children
        sample_button.click()
        sampled = sliders.latent()
        reset_button.click()
        assert (sliders.latent() == 0).all()
    finally:
        torch.set_default_device(None)
    assert sampled.device.type == "cpu" and (sampled != 0).all()
    for png in (first, moved, sliders.image.value):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert moved != first and sliders.image.value == first
