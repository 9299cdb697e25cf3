"""Device safety without a GPU.

The guard: with torch's default device set to "meta", any tensor the package creates without
naming its device lands on "meta". Some operations quietly accept such a tensor (indexing a CPU
tensor with meta indices returns a CPU tensor of garbage), so a dispatch mode also fails on the
first operation that meets a meta tensor. One short run of every fit loop, metric and figure
helper under the guard proves that every tensor the package creates names its device, the
property that keeps Colab's GPU runs alive (a CPU generator with an implicit-device randperm
crashed every GPU run of the old fit loop).
The tests below it train on CUDA and MPS where present and are skipped here.
"""


import matplotlib

matplotlib.use("Agg")

import sys  # noqa: E402
from functools import partial  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from torch.utils._device import _device_constructors  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from vae_utils import data, faces, losses, metrics, models, training, viz, zoo  # noqa: E402
from vae_utils.classifier import Classifier
from vae_utils.gan import GAN


def _caller_is_torch() -> bool:
    """Whether the Python code that asked for the current operation is torch's own (an
    optimiser's internals, say) rather than the package's or this test's: the first frame above
    the torch-function machinery decides."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == __name__ or module.startswith(_FUNCTION_MACHINERY):
            frame = frame.f_back
            continue
        return module == "torch" or module.startswith("torch.")
    return False


# torch's layers between a call and a torch-function mode
_FUNCTION_MACHINERY = ("torch.overrides", "torch.utils._device", "torch._compile",
                       "torch._dynamo", "torch.utils._contextlib")


class ImplicitDeviceIsMeta(TorchFunctionMode):
    """torch's default device, made to tell who asked: a factory call (zeros, randperm, tensor...)
    that names no device makes its tensor on "meta" when the package or this test called it,
    and on the CPU, as outside the guard, when torch's own code did. This is how
    ``torch.set_default_device`` works (a function mode that fills in the missing device); some
    torch releases create optimiser state without a device (torch 2.11's Adam makes its step
    counter so and reads it back with ``.item()``; torch 2.14's does not), which is torch's choice,
    not a tensor the package created without naming its device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            kwargs["device"] = "cpu" if _caller_is_torch() else "meta"
        return func(*args, **kwargs)


class NoMetaTensors(TorchDispatchMode):
    """Fail on the first operation that takes or returns a tensor on the "meta" device."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self._check(func, (args, kwargs))       # before running it: .item() fails on meta
        out = func(*args, **kwargs)
        self._check(func, out)
        return out

    @staticmethod
    def _check(func, values) -> None:
        for value in tree_flatten(values)[0]:
            if isinstance(value, torch.Tensor) and value.device.type == "meta":
                raise AssertionError(f"{func} met a tensor created on the implicit default device")


@pytest.fixture
def meta_default():
    with ImplicitDeviceIsMeta(), NoMetaTensors():
        yield


def test_the_guard_catches_a_tensor_created_without_a_device(meta_default):
    """The guard itself must be able to fail: an implicit-device randperm breaks it."""
    images = torch.rand(8, 1, 4, 4, device="cpu")
    with pytest.raises(AssertionError, match="implicit default device"):
        images[torch.randperm(8, generator=torch.Generator(device="cpu"))]  # the old fit's bug


def test_the_guard_lets_torch_s_own_internals_use_the_default_device(meta_default):
    """What torch's code does with the default device is torch's business: the same implicit
    tensors fail the guard when the package's code makes them, and work, on the CPU as outside
    the guard, when torch's code does (torch 2.11's Adam: a step counter read with .item())."""
    made_by_torch = {"__name__": "torch.optim.fake_optimizer", "torch": torch}
    exec("def make():\n    step = torch.tensor(0.0)\n    return step.item(), torch.zeros(3) + 1",
         made_by_torch)
    step, made = made_by_torch["make"]()
    assert step == 0.0 and made.device.type == "cpu"
    with pytest.raises(AssertionError, match="implicit default device"):
        torch.zeros(3) + 1
    with pytest.raises(AssertionError, match="implicit default device"):
        torch.tensor(0.0).item()


def small_models():
    torch.manual_seed(0)
    return {
        "autoencoder": models.Autoencoder((1, 28, 28), latent_dim=2, hidden=(16,)),
        "vae": models.VAE((1, 28, 28), latent_dim=2, hidden=(16,)),
        "cvae": models.ConditionalVAE((1, 28, 28), latent_dim=2, n_classes=10, hidden=(16,)),
        "classifier": Classifier(),
        "gan": GAN((1, 28, 28), latent_dim=4, hidden=(16, 32), average_decay=0.9),
        "binarized_vae": models.VAE((1, 28, 28), latent_dim=2, hidden=(16,), binarize=True),
        "gaussian_vae": models.VAE((1, 28, 28), latent_dim=2, hidden=(16,),
                                   likelihood="gaussian", sigma=0.1),
    }


BATCH_LOSSES = {"autoencoder": losses.autoencoder_batch_loss, "vae": losses.vae_batch_loss,
                "cvae": losses.vae_batch_loss, "classifier": losses.classifier_batch_loss}


def train_every_kind(nets: dict, images: torch.Tensor, labels: torch.Tensor, device: str) -> None:
    """One short epoch of every model kind through the package's fit loops."""
    for kind, batch_loss in BATCH_LOSSES.items():
        data = (images, labels) if kind in ("cvae", "classifier") else images
        history = training.fit(nets[kind], batch_loss, data, test_data=data, epochs=1,
                               batch_size=16, device=device, progress=False)
        assert len(history["train_loss"]) == 1, kind
    # The sample-quality monitor, after every epoch of a GAN (weight-averaged) and of a VAE,
    # and a run stopped before the end of its schedule.
    monitor = metrics.sample_quality_monitor(nets["classifier"], images[:20], n_samples=20,
                                             n_snapshots=2)
    history = training.fit_gan(nets["gan"], images, epochs=2, stop_after=1, batch_size=16,
                               n_snapshots=2, device=device, progress=False, monitor=monitor)
    assert history["snapshots"].shape == (1, 2, 1, 28, 28)
    assert len(history["monitor_frechet_distance"]) == 1
    assert history["monitor_snapshots"].shape == (1, 2, 1, 28, 28)
    assert history["monitor_snapshots"].device.type == "cpu"
    history = training.fit(nets["vae"], losses.vae_batch_loss, images, epochs=2, stop_after=1,
                           batch_size=16, device=device, progress=False, monitor=monitor,
                           lr_schedule="cosine")
    assert len(history["monitor_confident"]) == 1
    # The likelihood variants: dynamic binarisation, a Gaussian decoder, free bits, cosine lr.
    for model in (nets["binarized_vae"], nets["gaussian_vae"]):
        history = training.fit(model, partial(losses.vae_batch_loss, free_bits=0.5), images,
                               test_data=images, epochs=1, batch_size=16, device=device,
                               progress=False, lr_schedule="cosine")
        assert len(history["train_loss"]) == 1


def test_every_fit_loop_names_the_device_of_what_it_creates(meta_default):
    with torch.device("cpu"):
        nets = small_models()
        images = torch.rand(40, 1, 28, 28)
        labels = torch.randint(0, 10, (40,))
    train_every_kind(nets, images, labels, device="cpu")


def test_every_metric_and_figure_helper_names_its_devices(meta_default, tmp_path, monkeypatch):
    with torch.device("cpu"):
        nets = small_models()
        images = torch.rand(300, 1, 28, 28)
        factors = torch.rand(300, 3)
        features = torch.randn(300, 4)
    vae, gan, classifier = nets["vae"].eval(), nets["gan"].eval(), nets["classifier"].eval()

    assert metrics.iwae_nll(vae, images[:8], k=3) > 0
    assert metrics.iwae_log_likelihoods(nets["gaussian_vae"].eval(), images[:8], k=3).shape == (8,)
    binary = data.binarize_fixed(images)
    posterior = models.encode_all(vae, binary)
    units = metrics.active_units(posterior)
    assert units.kl.device.type == "cpu"
    samples = metrics.posterior_samples(posterior, torch.Generator(device="cpu").manual_seed(0))
    r2 = metrics.probe_r2(samples[:200], factors[:200], samples[200:], factors[200:])
    probe = metrics.fit_probe(posterior.mu, factors)
    changes = metrics.slider_factor_changes(viz.decoder_images(vae),
                                            lambda x: probe(models.encode_all(vae, x).mu), 2)
    assert r2.shape == (3,) and changes.shape == (2, 3)
    assert metrics.posterior_probe_r2(vae, images, factors).shape == (3,)
    latents = vae.encode(images)[0]
    mi = metrics.mutual_information_matrix(latents.detach(), factors, bins=5)
    metrics.mig(mi)
    metrics.latent_labels(mi, ["a", "b", "c"])
    assert metrics.frechet_distance(features, features + 1) > 0
    metrics.precision_recall(features, features + 0.1, k=3)
    histogram = metrics.classifier_view(classifier, images).histogram()
    metrics.bootstrap_interval(lambda i: float(images[i].mean()), len(images), resamples=20)
    metrics.seed_interval([1.0, 2.0, 3.0], [2.0, 2.5, 3.5])
    metrics.mean_stderr(images.flatten(1).mean(1))
    metrics.subset_indices(len(images), 10)
    threshold = metrics.hole_threshold(factors[:50, :2], factors[50:, :2])
    metrics.fraction_in_holes(factors[:20, :2], factors[50:, :2], threshold)
    metrics.distance_to_uniform(histogram)
    view = metrics.classifier_view(classifier, images[:20])
    view.histogram(), view.confident_share()
    assert metrics.sharpness(images) > 0
    assert metrics.nearest_neighbour_distances(images[:5], images[5:50]).shape == (5,)
    metrics.edge_slopes(images[:5])
    assert vae.sample(3).device.type == "cpu" and gan.sample(3).device.type == "cpu"
    training.evaluate(vae, losses.vae_batch_loss, images[:20])

    decode = viz.decoder_images(vae)
    viz.image_grid(images[:4], nrow=2)
    viz.compare_rows([images[:2], images[2:4]], ["a", "b"])
    viz.image_row(images[:2], ["a", "b"])
    viz.latent_scatter(latents.detach()[:50], torch.zeros(50, dtype=torch.long, device="cpu"))
    viz.manifold_grid(decode, [-1.0, 0.0, 1.0])
    viz.traversal(decode, [0.0, 0.0], [-1.0, 1.0])
    viz.interpolate(torch.zeros(2, device="cpu"), torch.ones(2, device="cpu"), steps=3)
    viz.heatmap(mi, ["z1", "z2"], ["a", "b", "c"])
    viz.posterior_bars([0.0, 1.0], [1.0, 0.5])

    # The zoo: build from a recipe, train, save, load again.
    recipe = zoo.Recipe("tiny-guard-vae", "vae", "faces", epochs=1, batch_size=16, lr=1e-3,
                        image_shape=(3, 32, 32), latent_dim=2, hidden=(8,), n_faces=32)
    monkeypatch.setitem(zoo.RECIPES, "tiny-guard-vae", recipe)
    first = zoo.trained("tiny-guard-vae", progress=False, checkpoint_dir=tmp_path)
    second = zoo.trained("tiny-guard-vae", progress=False, checkpoint_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters()))
    faces.make_faces(4, seed=0)


ACCELERATORS = [
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device on this machine")),
    pytest.param("mps", marks=pytest.mark.skipif(
        not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        reason="no Apple MPS device on this machine")),
]


@pytest.mark.parametrize("device", ACCELERATORS)
def test_every_model_kind_trains_and_is_measured_on_an_accelerator(device, tmp_path, monkeypatch):
    nets = small_models()
    images = torch.rand(40, 1, 28, 28)
    labels = torch.randint(0, 10, (40,))
    train_every_kind(nets, images, labels, device=device)
    vae = nets["vae"]
    assert next(vae.parameters()).device.type == device
    assert metrics.iwae_nll(vae, images[:8], k=3) > 0
    assert vae.sample(4, generator=torch.Generator().manual_seed(0)).device.type == device
    metrics.classifier_view(nets["classifier"], images).histogram()
    recipe = zoo.Recipe("tiny-device-gan", "gan", "faces", epochs=1, batch_size=16, lr=2e-4,
                        d_lr=2e-4, image_shape=(3, 32, 32), latent_dim=4, hidden=(8, 16), n_faces=32)
    monkeypatch.setitem(zoo.RECIPES, "tiny-device-gan", recipe)
    trained = zoo.trained("tiny-device-gan", device=device, progress=False, checkpoint_dir=tmp_path)
    assert next(trained.model.parameters()).device.type == device


def test_the_same_seed_gives_the_same_data_order_and_gan_noise_on_any_device(monkeypatch):
    """The order and noise come from a CPU generator: record what the step sees."""
    seen = []

    def step(x, z):
        seen.append((x.clone(), z.clone()))
        return {"loss": 0.0}

    x = torch.arange(10.0).unsqueeze(1)
    for _ in range(2):
        training.run_epochs(step, (x,), epochs=1, batch_size=4,
                            generator=torch.Generator().manual_seed(3), device="cpu",
                            noise_dim=2, progress=False)
    first, second = seen[:3], seen[3:]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second))
    assert sorted(torch.cat([b[0] for b in first]).flatten().tolist()) == x.flatten().tolist()


def test_a_generator_on_another_device_is_refused():
    class CudaGenerator:  # a stand-in: a real CUDA generator needs a GPU
        device = torch.device("cuda")

    with pytest.raises(ValueError, match="CPU"):
        training.run_epochs(lambda x: {}, (torch.zeros(4, 1),), epochs=1, batch_size=2,
                            generator=CudaGenerator(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="CPU generator"):
        models.prior_codes(3, 2, generator=CudaGenerator())
