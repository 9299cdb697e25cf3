"""The website's decoders: the ONNX export computes what PyTorch computes, within the
float16 rounding of its weights, and the page helpers write what the page script reads."""

import json

import numpy as np
import pytest
import torch

from vae_utils import models, web

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture
def small_vae() -> models.VAE:
    torch.manual_seed(0)
    return models.VAE((1, 28, 28), latent_dim=3, hidden=(32, 16)).eval()


def run_onnx(path, z: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(str(path))
    return torch.from_numpy(session.run(None, {"z": z.numpy()})[0])


def test_the_export_decodes_like_pytorch_with_float16_weights(small_vae, tmp_path):
    info = web.export_decoder(small_vae, tmp_path / "vae.onnx")
    z = torch.randn(1, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        rounded = torch.sigmoid(web.half_rounded(small_vae).decode(z))
        exact = torch.sigmoid(small_vae.decode(z))
    browser = run_onnx(tmp_path / "vae.onnx", z)
    assert browser.shape == (1, 1, 28, 28)
    assert torch.allclose(browser, rounded, atol=1e-6)
    # the rounding is real but small, and the reported error measures it
    assert 0 < (browser - exact).abs().max() <= info["max_pixel_error"] + 1e-6 < 0.01
    assert info["bytes"] == (tmp_path / "vae.onnx").stat().st_size
    assert 0 < info["mean_pixel_error"] <= info["max_pixel_error"]
    assert {k: info[k] for k in ("file", "latent_dim", "image_shape", "rank")} == dict(
        file="vae.onnx", latent_dim=3, image_shape=[1, 28, 28], rank=None)


def test_weight_matrices_are_stored_as_float16_and_biases_stay_float32(small_vae, tmp_path):
    web.export_decoder(small_vae, tmp_path / "vae.onnx")
    graph = onnx.load(str(tmp_path / "vae.onnx")).graph
    kinds = {(len(t.dims) >= 2, t.data_type) for t in graph.initializer}
    assert (True, onnx.TensorProto.FLOAT16) in kinds
    assert (True, onnx.TensorProto.FLOAT) not in kinds
    assert sum(1 for node in graph.node if node.op_type == "Cast") >= 3


def test_a_model_too_large_for_the_page_is_refused(tmp_path):
    big = models.VAE((3, 32, 32), latent_dim=10, hidden=(512, 256))
    with pytest.raises(ValueError, match="over the website's limit"):
        web.export_decoder(big, tmp_path / "big.onnx")
    assert not (tmp_path / "big.onnx").exists()


def test_export_needs_a_decoder():
    with pytest.raises(TypeError, match="decode"):
        web.export_decoder(torch.nn.Linear(2, 2), "x.onnx")


def test_page_helpers_do_nothing_outside_the_website_build(small_vae, monkeypatch):
    monkeypatch.delenv(web.SITE_EXPORT_ENV, raising=False)
    assert web.site_sliders(small_vae, "vae") is None
    assert web.site_plane({"a": small_vae}, "plane", torch.rand(4, 1, 28, 28),
                          torch.arange(4)) is None


def test_site_sliders_write_the_model_and_the_config_the_page_reads(small_vae, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv(web.SITE_EXPORT_ENV, str(tmp_path / "models"))
    html = web.site_sliders(small_vae, "vae", names=["a", "b", "c"], caption="Try <it>").data
    config = json.loads((tmp_path / "models" / "vae.json").read_text())
    assert config["kind"] == "sliders" and config["names"] == ["a", "b", "c"]
    assert (tmp_path / "models" / config["model"]).is_file()
    assert 'data-config="../models/vae.json"' in html and "latent_sliders.mjs" in html
    assert "Try &lt;it&gt;" in html                                  # the caption is escaped
    assert "MB, float16" in capsys.readouterr().out
    with pytest.raises(ValueError, match="expected 3 slider names"):
        web.site_sliders(small_vae, "vae", names=["a"])


def test_site_plane_writes_codes_for_2d_models_only(tmp_path, monkeypatch):
    monkeypatch.setenv(web.SITE_EXPORT_ENV, str(tmp_path))
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


def test_low_rank_output_is_exact_when_the_last_layer_sees_few_directions():
    """Known answer: without a nonlinearity, h = A z + c spans a 2-D affine subspace for 2-D
    codes, so 2 principal components reproduce the decoder exactly, with far fewer weights."""
    torch.manual_seed(0)
    vae = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,)).eval()
    vae.decoder = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.Linear(64, 784),
                                      torch.nn.Unflatten(1, (1, 28, 28)))
    reduced = web.low_rank_output(vae, rank=2, n_codes=500)
    z = torch.randn(50, 2)
    with torch.no_grad():
        assert torch.allclose(reduced.decode(z), vae.decode(z), atol=1e-4)
    sizes = [p.numel() for p in reduced.decoder[1].parameters()]
    assert sum(sizes) < 64 * 784 / 10
    with pytest.raises(ValueError, match="rank must be"):
        web.low_rank_output(vae, rank=64)


def test_a_reduced_export_reports_the_error_it_costs(tmp_path):
    torch.manual_seed(0)
    vae = models.VAE((1, 28, 28), latent_dim=4, hidden=(64, 32)).eval()
    full = web.export_decoder(vae, tmp_path / "full.onnx")
    reduced = web.export_decoder(vae, tmp_path / "reduced.onnx", rank=4)
    assert reduced["bytes"] < full["bytes"] and reduced["rank"] == 4
    assert reduced["max_pixel_error"] > full["max_pixel_error"]
    z = torch.randn(1, 4)
    with torch.no_grad():
        expected = torch.sigmoid(web.half_rounded(web.low_rank_output(vae, 4)).decode(z))
    assert torch.allclose(run_onnx(tmp_path / "reduced.onnx", z), expected, atol=1e-5)
