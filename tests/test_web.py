"""The website's decoders: what the exported file computes (read back the way the page's
JavaScript reads it) is PyTorch's decode within the int8 rounding of its weights, and the page
helpers write what the page script reads, inside their folder and escaped for HTML."""

import json

import numpy as np
import pytest
import torch

from vae_utils import models, web
from vae_utils.gan import GAN


@pytest.fixture
def small_vae() -> models.VAE:
    torch.manual_seed(0)
    return models.VAE((1, 28, 28), latent_dim=3, hidden=(32, 16)).eval()


def test_the_export_decodes_like_pytorch_with_int8_weights(small_vae, tmp_path):
    info = web.export_decoder(small_vae, tmp_path, "vae")
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        rounded = torch.sigmoid(web.dequantized(small_vae).decode(z))
        exact = torch.sigmoid(small_vae.decode(z))
    page = web.run_exported(tmp_path, info, z)
    assert page.shape == (5, 1, 28, 28)
    assert torch.allclose(page.float(), rounded, atol=1e-5)
    # the rounding is real but small, and the reported error measures it
    assert 0 < (page.float() - exact).abs().max() <= info["max_pixel_error"] + 1e-4 < 0.02
    assert info["bytes"] == (tmp_path / "vae.bin").stat().st_size
    assert 0 < info["mean_pixel_error"] <= info["max_pixel_error"]
    assert {k: info[k] for k in ("file", "latent_dim", "image_shape", "rank")} == dict(
        file="vae.bin", latent_dim=3, image_shape=[1, 28, 28], rank=None)
    # a quarter of float32's bytes for the weights, plus the scales and biases
    weights = sum(p.numel() for n, p in small_vae.decoder.named_parameters() if n.endswith("weight"))
    assert info["bytes"] < weights + 8 * 1000


def test_a_gan_generator_with_leaky_relu_exports_but_batchnorm_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot run a BatchNorm1d layer"):
        web.export_decoder(_WithDecoder(GAN((1, 28, 28), 4, hidden=(8, 16)).generator, 4), tmp_path, "g")
    leaky = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 784),
                                torch.nn.Unflatten(1, (1, 28, 28)))
    model = _WithDecoder(leaky, 4)
    info = web.export_decoder(model, tmp_path, "leaky")
    z = torch.randn(3, 4)
    with torch.no_grad():
        expected = torch.sigmoid(web.dequantized(model).decode(z))
    assert torch.allclose(web.run_exported(tmp_path, info, z).float(), expected, atol=1e-5)


class _WithDecoder(torch.nn.Module):
    image_shape = (1, 28, 28)

    def __init__(self, decoder, latent_dim):
        super().__init__()
        self.decoder, self.latent_dim = decoder, latent_dim

    def decode(self, z):
        return self.decoder(z)


def test_a_model_too_large_for_the_page_is_refused(tmp_path):
    big = models.VAE((3, 32, 32), latent_dim=10, hidden=(512, 256))
    with pytest.raises(ValueError, match="over the website's limit"):
        web.export_decoder(big, tmp_path, "big")
    assert not (tmp_path / "big.bin").exists()


@pytest.mark.parametrize("damage, message", [
    ("nan weight", "holds NaN or infinite weights"),
    ("flat output", r"returns shape \(1, 784\) for one code; the page draws \(1, 1, 28, 28\)"),
])
def test_a_damaged_or_misshapen_decoder_is_not_exported(small_vae, tmp_path, damage, message):
    if damage == "nan weight":
        with torch.no_grad():
            small_vae.decoder[0].weight[0, 0] = float("nan")
    else:
        small_vae.decoder = small_vae.decoder[:-1]          # (B, 784) instead of images
    with pytest.raises(ValueError, match=message):
        web.export_decoder(small_vae, tmp_path, "vae")
    assert list(tmp_path.iterdir()) == []


def test_export_needs_a_decoder(tmp_path):
    with pytest.raises(TypeError, match="decoder"):
        web.export_decoder(torch.nn.Linear(2, 2), tmp_path, "x")


def test_page_helpers_do_nothing_outside_the_website_build(small_vae, monkeypatch):
    monkeypatch.delenv("VAE_UTILS_WEB_EXPORT", raising=False)
    assert web.site_sliders(small_vae, "vae") is None
    assert web.site_plane({"a": small_vae}, "plane", torch.rand(4, 1, 28, 28),
                          torch.arange(4)) is None


def test_site_sliders_write_the_model_and_the_config_the_page_reads(small_vae, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(tmp_path / "models"))
    html = web.site_sliders(small_vae, "vae", names=["a", "b", "c"], caption="Try <it>").data
    config = json.loads((tmp_path / "models" / "vae.json").read_text())
    assert config["kind"] == "sliders" and config["names"] == ["a", "b", "c"]
    assert (tmp_path / "models" / config["decoder"]["file"]).is_file()
    assert 'data-config="../models/vae.json"' in html and "latent_sliders.mjs" in html
    assert "Try &lt;it&gt;" in html                                  # the caption is escaped
    assert 'role="status"' in html and "Loading" in html             # visible from first paint
    out = capsys.readouterr().out
    assert "kB, int8 weights" in out and max(len(line) for line in out.splitlines()) <= 56
    with pytest.raises(ValueError, match="expected 3 slider names"):
        web.site_sliders(small_vae, "vae", names=["a"])


BAD_NAMES = ["../x", "sub/dir/x", "/tmp/absolute", 'a"b', "a b", "", ".hidden", "x..y", "<p>"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_widget_name_can_write_nowhere_but_its_folder(small_vae, tmp_path, monkeypatch, name):
    folder = tmp_path / "models"
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(folder))
    with pytest.raises(ValueError, match="is not allowed: use letters, digits"):
        web.site_sliders(small_vae, name)
    with pytest.raises(ValueError, match="is not allowed: use letters, digits"):
        web.site_plane({"ae": models.Autoencoder((1, 28, 28), 2, hidden=(8,))}, name,
                       torch.rand(4, 1, 28, 28), torch.arange(4))
    assert [p for p in tmp_path.rglob("*")] == []                   # nothing written anywhere


def test_slider_and_panel_labels_are_escaped_where_they_meet_the_page(small_vae, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(tmp_path))
    html = web.site_sliders(small_vae, "vae", names=['a"b', "<c>", "d"], caption='"quoted"').data
    assert "&quot;quoted&quot;" in html and '"quoted"' not in html
    config = json.loads((tmp_path / "vae.json").read_text())   # the script sets textContent
    assert config["names"] == ['a"b', "<c>", "d"]
    with pytest.raises(ValueError, match="short non-empty string"):
        web.site_sliders(small_vae, "vae", names=["", "b", "c"])


def test_site_plane_writes_codes_for_2d_models_only(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(tmp_path))
    torch.manual_seed(0)
    ae = models.Autoencoder((1, 28, 28), latent_dim=2, hidden=(16,)).eval()
    images, labels = torch.rand(10, 1, 28, 28), torch.arange(10)
    web.site_plane({"autoencoder": ae}, "plane", images, labels)
    config = json.loads((tmp_path / "plane.json").read_text())
    points = json.loads((tmp_path / config["panels"][0]["points"]).read_text())
    with torch.no_grad():
        expected = ae.encode(images)
    assert np.allclose(points["codes"], expected.numpy(), atol=1e-3)
    assert points["labels"] == list(range(10))
    low, high = config["panels"][0]["extent"]
    assert low == -high and high > expected.abs().max() * 0.9
    with pytest.raises(ValueError, match="2-D code"):
        web.site_plane({"vae": models.VAE((1, 28, 28), latent_dim=3, hidden=(8,))}, "p",
                       images, labels)
    with pytest.raises(ValueError, match="one label per image: 6 images but 2 labels"):
        web.site_plane({"autoencoder": ae}, "plane", images[:6], labels[:2])


def test_low_rank_is_exact_when_a_layer_sees_few_directions():
    """Known answer: without a nonlinearity, h = A z + c spans a 2-D affine subspace for 2-D
    codes, so 2 principal components reproduce the decoder exactly, with far fewer weights;
    the first layer (2 -> 64) would not get smaller and is kept."""
    torch.manual_seed(0)
    vae = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,)).eval()
    vae.decoder = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Linear(64, 784),
                                      torch.nn.Unflatten(1, (1, 28, 28)))
    reduced = web.low_rank(vae, rank=2, n_codes=500)
    assert isinstance(reduced.decoder[0], torch.nn.Linear)
    z = torch.randn(50, 2)
    with torch.no_grad():
        assert torch.allclose(reduced.decode(z), vae.decode(z), atol=1e-4)
    sizes = [p.numel() for p in reduced.decoder[1].parameters()]
    assert sum(sizes) < 64 * 784 / 10
    with pytest.raises(ValueError, match="rank 64 would reduce none"):
        web.low_rank(vae, rank=64)


def test_a_reduced_export_reports_the_error_it_costs(tmp_path):
    torch.manual_seed(0)
    vae = models.VAE((1, 28, 28), latent_dim=4, hidden=(64, 32)).eval()
    full = web.export_decoder(vae, tmp_path, "full")
    reduced = web.export_decoder(vae, tmp_path, "reduced", rank=4)
    assert reduced["bytes"] < full["bytes"] and reduced["rank"] == 4
    assert reduced["max_pixel_error"] > full["max_pixel_error"]
    z = torch.randn(2, 4)
    with torch.no_grad():
        expected = torch.sigmoid(web.dequantized(web.low_rank(vae, 4)).decode(z))
    assert torch.allclose(web.run_exported(tmp_path, reduced, z).float(), expected, atol=1e-5)


def test_a_slider_preview_is_a_smaller_low_rank_decoder_preloaded_instead_of_the_exact_one(
        tmp_path, monkeypatch, capsys):
    """preview_rank: a second, low-rank export that the page draws first; only its file is
    preloaded (the exact one would share the connection), and a rank at or above the exact
    export's is refused."""
    from vae_utils.models import VAE

    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(tmp_path / "models"))
    torch.manual_seed(0)
    vae = VAE(image_shape=(1, 28, 28), latent_dim=4, hidden=(64, 256))
    html = web.site_sliders(vae, "big", preview_rank=8).data
    config = json.loads((tmp_path / "models" / "big.json").read_text())
    preview, exact = config["preview"], config["decoder"]
    assert preview["rank"] == 8 and exact["rank"] is None
    sizes = {entry["file"]: (tmp_path / "models" / entry["file"]).stat().st_size
             for entry in (preview, exact)}
    assert sizes["big-preview.bin"] < sizes["big.bin"] / 2
    assert 0 < preview["mean_pixel_error"] < 1
    assert 'href="../models/big-preview.bin"' in html and 'href="../models/big.bin"' not in html
    assert "a preview" in capsys.readouterr().out
    with pytest.raises(ValueError, match="must be below rank"):
        web.site_sliders(vae, "big", rank=8, preview_rank=8)


def test_a_plane_preview_preloads_each_panel_s_low_rank_decoder_and_codes_not_the_exact_ones(
        tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(tmp_path / "models"))
    torch.manual_seed(0)
    panels = {"autoencoder": models.Autoencoder((1, 28, 28), latent_dim=2, hidden=(64, 256)),
              "VAE": models.VAE((1, 28, 28), latent_dim=2, hidden=(64, 256))}
    images, labels = torch.rand(10, 1, 28, 28), torch.arange(10)
    html = web.site_plane(panels, "plane", images, labels, preview_rank=4).data
    config = json.loads((tmp_path / "models" / "plane.json").read_text())
    for index, panel in enumerate(config["panels"]):
        preview, exact = panel["preview"], panel["decoder"]
        assert preview["rank"] == 4 and exact["rank"] is None
        assert ((tmp_path / "models" / preview["file"]).stat().st_size
                < (tmp_path / "models" / exact["file"]).stat().st_size / 2)
        assert f'href="../models/{preview["file"]}"' in html
        assert f'href="../models/{exact["file"]}"' not in html
        assert f'href="../models/plane-{index}-points.json"' in html
    with pytest.raises(ValueError, match="must be below rank"):
        web.site_plane(panels, "plane", images, labels, rank=4, preview_rank=4)
