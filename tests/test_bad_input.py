"""Bad input never passes silently: every public entry refuses what it cannot use with an error
of a stated type whose message says what was expected, one table per module. (The cases come
from an adversarial review of the package: uint8 or out-of-range images, mismatched lengths,
bools and non-integral floats as counts, NaN in factors, features or probabilities, names that
leave their folder, NaN gradients behind finite losses, damaged weights.)"""

import math
from collections import namedtuple

import pytest
import torch

from vae_utils import checks, data, losses, metrics, models, training, viz, web, widgets, zoo
from vae_utils.classifier import Classifier
from vae_utils.gan import GAN

torch.manual_seed(0)
IMAGES = torch.rand(20, 1, 28, 28)
VAE = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,)).eval()
AE = models.Autoencoder((1, 28, 28), latent_dim=2, hidden=(8,)).eval()
CVAE = models.ConditionalVAE((1, 28, 28), latent_dim=2, n_classes=10, hidden=(8,)).eval()
CLASSIFIER = Classifier().eval()
FEATURES = torch.randn(40, 4)
PROBABILITIES = torch.softmax(torch.randn(40, 10), dim=1)


def nan_at(tensor: torch.Tensor, index=(0, 0)) -> torch.Tensor:
    tensor = tensor.clone()
    tensor[index] = float("nan")
    return tensor


def case(call, error, message):
    return pytest.param(call, error, message, id=message[:50])


CHECKS = [
    case(lambda: checks.integer(True, "seed"), TypeError, "seed must be an int, got True"),
    case(lambda: checks.integer(2.0, "epochs"), TypeError, "epochs must be an int, got 2.0"),
    case(lambda: checks.integer(0, "bins", minimum=1), ValueError, "bins must be >= 1, got 0"),
    case(lambda: checks.number(float("nan"), "beta"), ValueError, "beta must be a finite number, got nan"),
    case(lambda: checks.number(float("inf"), "lr", above=0), ValueError, "lr must be a finite number, got inf"),
    case(lambda: checks.number(False, "sigma"), TypeError, "sigma must be a number, got False"),
    case(lambda: checks.images(IMAGES.mul(255).to(torch.uint8)), TypeError, "divide uint8 pixels by 255"),
    case(lambda: checks.images(IMAGES * 10 - 5), ValueError, "expected pixel values of the images in [0, 1]"),
    case(lambda: checks.images(IMAGES[:, 0]), ValueError, "expected images of shape (N, C, H, W)"),
    case(lambda: checks.labels(torch.zeros(21, dtype=torch.long), 10, count=20), ValueError,
         "one label per image: 20 images but 21 labels"),
    case(lambda: checks.labels(torch.zeros(20), 10), TypeError, "labels must be integer class indices"),
    case(lambda: checks.file_stem("../x", "name"), ValueError, "name '../x' is not allowed"),
    case(lambda: checks.probabilities(torch.full((3, 2), 0.7)), ValueError, "must sum to 1"),
]

MODELS = [
    case(lambda: VAE.encode(IMAGES.double() * 2), ValueError, "expected pixel values of the images in [0, 1]"),
    case(lambda: VAE.decode(torch.zeros(3, 5)), ValueError, "expected latent codes of shape (B, 2)"),
    case(lambda: VAE.decode(nan_at(torch.zeros(3, 2))), ValueError, "1 values of the latent codes are NaN"),
    case(lambda: models.VAE((1, 28, 28), True), TypeError, "latent_dim must be an int, got True"),
    case(lambda: models.VAE((1, 28, 28), 2, likelihood="gaussian", sigma=float("inf")), ValueError,
         "must be a finite number, got inf"),
    case(lambda: CVAE.decode(torch.zeros(19, 2), torch.zeros(20, dtype=torch.long)), ValueError,
         "one label per image: 19 images but 20 labels"),
    case(lambda: models.prior_codes(True, 2), TypeError, "n must be an int, got True"),
    case(lambda: models.encode_all(VAE, IMAGES, batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    case(lambda: GAN((1, 28, 28), 2, average_decay=1.5), ValueError, "average_decay must be < 1"),
    case(lambda: zoo.build_model(dict(kind="diffusion")), ValueError, "unknown model kind 'diffusion'"),
]


def _loss_of(value: float):
    Terms = namedtuple("Terms", "loss")

    def batch_loss(model, x):
        return Terms(losses.vae_batch_loss(model, x).loss * value)
    return batch_loss


TRAINING = [
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES[:5], epochs=1, batch_size=0,
                              progress=False), ValueError, "batch_size must be >= 1, got 0"),
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES, epochs=True, progress=False),
         TypeError, "epochs must be an int, got True"),
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES, epochs=1, lr=float("inf"),
                              progress=False), ValueError, "lr (the learning rate) must be a finite number, got inf"),
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES, epochs=1, seed=1.5,
                              progress=False), TypeError, "seed must be an int, got 1.5"),
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES, epochs=2, stop_after=True,
                              progress=False), TypeError, "stop_after (at most epochs = 2) must be an int"),
    case(lambda: training.fit(CVAE, losses.vae_batch_loss, (IMAGES, torch.zeros(21, dtype=torch.long)),
                              epochs=1, progress=False), ValueError, "20 images but 21 labels"),
    case(lambda: training.fit(CVAE, losses.vae_batch_loss, (IMAGES, torch.zeros(19, dtype=torch.long)),
                              epochs=1, progress=False), ValueError, "20 images but 19 labels"),
    case(lambda: training.fit(VAE, losses.vae_batch_loss, IMAGES.mul(255).to(torch.uint8), epochs=1,
                              progress=False), TypeError, "divide uint8 pixels by 255"),
    case(lambda: training.fit_gan(GAN((1, 28, 28), 4, hidden=(8, 16)), IMAGES[:1], epochs=1,
                                  batch_size=4, progress=False), ValueError,
         "BatchNorm needs at least 2 training images, got 1"),
    case(lambda: training.fit(VAE, partial_beta(float("inf")), IMAGES, epochs=1, progress=False),
         ValueError, "beta must be a finite number, got inf"),
    case(lambda: training.evaluate(VAE, losses.vae_batch_loss, IMAGES, batch_size=2.5), TypeError,
         "batch_size must be an int, got 2.5"),
]


def partial_beta(beta):
    from functools import partial

    return partial(losses.vae_batch_loss, beta=beta)


LOSSES = [
    case(lambda: losses.elbo_loss(VAE(IMAGES), IMAGES, beta=-1.0), ValueError, "beta must be >= 0"),
    case(lambda: losses.elbo_loss(VAE(IMAGES), IMAGES, free_bits=float("nan")), ValueError,
         "free_bits (nats per latent dimension) must be a finite number, got nan"),
    case(lambda: losses.kl_per_dimension(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
         "differ in shape"),
]

METRICS = [
    case(lambda: metrics.sharpness(IMAGES.mul(255).to(torch.uint8)), TypeError, "divide uint8 pixels by 255"),
    case(lambda: metrics.sharpness(IMAGES * 10 - 5), ValueError, "expected pixel values of the images in [0, 1]"),
    case(lambda: metrics.nearest_neighbour_distances(IMAGES * 255, IMAGES), ValueError,
         "expected pixel values of the query images in [0, 1]"),
    case(lambda: metrics.nearest_neighbour_distances(IMAGES, torch.rand(5, 1, 14, 14)), ValueError,
         "expected reference images of shape (N, 1, 28, 28)"),
    case(lambda: metrics.nearest_neighbour_distances(IMAGES, IMAGES, chunk=0), ValueError,
         "chunk must be >= 1, got 0"),
    case(lambda: metrics.probe_r2(nan_at(FEATURES), FEATURES, FEATURES, FEATURES), ValueError,
         "latents has 1 NaN or infinite values"),
    case(lambda: metrics.probe_r2(FEATURES, nan_at(FEATURES), FEATURES, FEATURES), ValueError,
         "factors has 1 NaN or infinite values"),
    case(lambda: metrics.posterior_probe_r2(VAE, IMAGES, torch.rand(20, 2), n_fit=10.5), TypeError,
         "n_fit must be an int, got 10.5"),
    case(lambda: metrics.mutual_information_matrix(torch.randn(400, 2), torch.rand(400, 2), bins=0),
         ValueError, "bins must be >= 2, got 0"),
    case(lambda: metrics.mutual_information_matrix(nan_at(torch.randn(400, 2)), torch.rand(400, 2)),
         ValueError, "latents has 1 NaN"),
    case(lambda: metrics.mig(torch.zeros(0, 3)), ValueError, "has 0 rows; this needs at least 2"),
    case(lambda: metrics.mig(nan_at(torch.rand(3, 3))), ValueError, "1 NaN or infinite values"),
    case(lambda: metrics.precision_recall(FEATURES, FEATURES, k=2.5), TypeError, "k (neighbours) must be an int, got 2.5"),
    case(lambda: metrics.precision_recall(FEATURES * 1e30, FEATURES), ValueError,
         "expected magnitudes of at most 1e+12"),
    case(lambda: metrics.frechet_distance(nan_at(FEATURES), FEATURES), ValueError, "1 NaN or infinite"),
    case(lambda: metrics.sample_quality(metrics.ClassifierView(FEATURES, PROBABILITIES[:5]),
                                        metrics.ClassifierView(FEATURES, PROBABILITIES)), ValueError,
         "expected 40 rows of the real images' view's class probabilities"),
    case(lambda: metrics.sample_quality(metrics.ClassifierView(FEATURES, nan_at(PROBABILITIES)),
                                        metrics.ClassifierView(FEATURES, PROBABILITIES)), ValueError,
         "class probabilities has 1 NaN"),
    case(lambda: metrics.classifier_view(CLASSIFIER, IMAGES[:0]), ValueError, "expected at least 1 images, got 0"),
    case(lambda: metrics.active_units(models.encode_all(VAE, IMAGES), threshold=float("nan")), ValueError,
         "threshold (variance of the posterior mean) must be a finite number, got nan"),
    case(lambda: metrics.iwae_nll(VAE, IMAGES, k=True), TypeError, "k (importance samples per image) must be an int"),
    case(lambda: metrics.distance_to_uniform(torch.tensor([0.5, 0.6])), ValueError, "that sum to 1"),
    case(lambda: metrics.subset_indices(100, 101), ValueError, "size must be <= 100, got 101"),
    case(lambda: metrics.seed_interval([1.0, float("nan")], [1.0, 2.0]), ValueError, "NaN or infinite"),
    case(lambda: metrics.slider_factor_changes(lambda z: torch.zeros(len(z), 1, 2, 2),
                                               lambda x: torch.full((len(x), 2), float("nan")), 2),
         ValueError, "factors read off the decoded images has 8 NaN"),
]

VIZ_WEB_WIDGETS = [
    case(lambda: viz.image_grid(IMAGES, nrow=0), ValueError, "nrow must be >= 1, got 0"),
    case(lambda: viz.interpolate(torch.zeros(2), torch.ones(2), steps=1.5), TypeError, "steps must be an int"),
    case(lambda: viz.Table(["a"], [[1.0, 2.0]]), ValueError, "every row needs 1 cells"),
    case(lambda: web.export_decoder(VAE, "/tmp", "a b"), ValueError, "decoder name 'a b' is not allowed"),
    case(lambda: widgets.LatentSliders(lambda z: None, latent_dim=2), ValueError,
         "decode must return one image (1, C, H, W)"),
    case(lambda: widgets.LatentSliders(lambda z: torch.zeros(0, 1, 4, 4), latent_dim=2), ValueError,
         "decode must return one image (1, C, H, W) for the code (1, 2), got shape (0, 1, 4, 4)"),
    case(lambda: data.load_dataset("faces", n_faces=True), TypeError, "n_faces (how many faces to draw) must be an int"),
    case(lambda: data.binarize_fixed(IMAGES * 2), ValueError, "expected pixel values of the images in [0, 1]"),
    case(lambda: list(data.batches(IMAGES, batch_size=0)), ValueError, "batch_size must be >= 1, got 0"),
]


@pytest.mark.parametrize("call, error, message", CHECKS + MODELS + TRAINING + LOSSES + METRICS + VIZ_WEB_WIDGETS)
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value), str(raised.value)


def test_a_nan_gradient_behind_a_finite_loss_leaves_the_weights_untouched():
    """The loss is finite but its gradient is NaN (sqrt at 0): the step is refused before the
    optimiser moves any weight, and the error says so."""
    Terms = namedtuple("Terms", "loss")
    model = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def nan_gradient(m, x):
        loss = losses.vae_batch_loss(m, x).loss
        weight = next(m.parameters())
        return Terms(loss + torch.sqrt((weight - weight.detach()).abs()).sum() * 0)

    with pytest.raises(training.NonFiniteLossError, match=r"the gradients' norm is nan although "
                                                          r"the loss is finite.*epoch 1, step 1"):
        training.fit(model, nan_gradient, IMAGES, epochs=1, batch_size=8, progress=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_weight_that_turns_nan_inside_an_epoch_is_put_back():
    """A step whose update makes a weight NaN although its loss and gradients were finite (here
    an optimiser patched to do so): the epoch's end finds it and restores the epoch's start."""
    model = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    original = torch.optim.Adam.step

    def damaging(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    torch.optim.Adam.step = damaging
    try:
        with pytest.raises(training.NonFiniteLossError, match="put back as they were at the start of epoch 1"):
            training.fit(model, losses.vae_batch_loss, IMAGES, epochs=1, batch_size=20, progress=False)
    finally:
        torch.optim.Adam.step = original
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_an_epoch_of_single_items_without_batchnorm_trains_and_with_it_is_refused():
    history = training.fit(models.VAE((1, 28, 28), 2, hidden=(8,)), losses.vae_batch_loss,
                           IMAGES[:5], epochs=1, batch_size=1, progress=False)
    assert history.epochs == 1 and math.isfinite(history["train_loss"][0])   # 5 steps, not 0
    with pytest.raises(ValueError, match="BatchNorm needs batches of at least 2"):
        training.fit_gan(GAN((1, 28, 28), 4, hidden=(8, 16)), IMAGES[:5], epochs=1, batch_size=1,
                         progress=False)


def test_a_history_refuses_non_finite_values():
    history = training.History()
    with pytest.raises(training.NonFiniteLossError, match="monitor_frechet_distance after epoch 1 is nan"):
        history.record("monitor_frechet_distance", float("nan"))


def test_nothing_is_written_outside_the_cache_or_export_folder(tmp_path, monkeypatch):
    """Names that try to leave their folder are refused, and afterwards the folders hold only
    what the package wrote into them."""
    from vae_utils import checkpoints

    cache, export = tmp_path / "cache", tmp_path / "export"
    monkeypatch.setenv("VAE_UTILS_WEB_EXPORT", str(export))
    for name in ("../x", "sub/dir/x", str(tmp_path / "absolute"), 'a"b', ".hidden"):
        with pytest.raises(ValueError, match="is not allowed"):
            checkpoints.save_cached(name, AE, {}, training.History(), cache)
        with pytest.raises(ValueError, match="is not allowed"):
            web.site_sliders(AE, name)
    checkpoints.save_cached("fine", AE, {}, training.History(), cache)
    web.site_sliders(AE, "fine")
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["cache/" + next(cache.iterdir()).name, "export/fine.bin", "export/fine.json"]
