"""The book's trained models: each recipe is written here once, and every chapter that needs
the model calls :func:`trained`, which loads the cached checkpoint or trains it.

- :class:`Recipe`: every setting of one trained model, typed and validated where it is made;
  ``recipe.variant(beta=4.0)`` gives a variant (its own name and cache file).
- :data:`KINDS`: one entry per model kind (autoencoder, VAE, conditional VAE, GAN, classifier):
  its model class, its loss, the function that fits it, and the data it trains on. A new kind
  of model is one entry.
- :data:`RECIPES`: the book's models by name. A chapter that introduces a model prints its
  recipe; a Colab user who opens any chapter alone trains what it needs with exactly the same
  settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import textwrap
import time
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple

import torch
from torch import nn

from . import checks, checkpoints, classifier, data, faces, gan, losses, models, settings, training
from . import pretrained as website
from .metrics import evaluation as metrics_evaluation
from .metrics import samples as metrics_samples
from .training import History


@dataclass(frozen=True)
class MonitorSettings:
    """Sample quality measured after every epoch (``metrics.sample_quality_monitor``): ``samples``
    model samples against ``real_images`` test images (a seeded random subset,
    ``metrics.subset_indices``), in the features of the ``classifier`` model; the first
    ``snapshots`` samples are kept too ("monitor_snapshots")."""

    classifier: str = "mnist-classifier"
    samples: int = 2_000
    real_images: int = 2_000
    seed: int = 0
    snapshots: int = 8

    def __post_init__(self) -> None:
        for name in ("samples", "real_images"):
            checks.integer(getattr(self, name), f"monitor {name}", minimum=4)
        checks.integer(self.seed, "monitor seed", minimum=0)
        checks.integer(self.snapshots, "monitor snapshots", minimum=0, maximum=self.samples)


MONITOR = MonitorSettings()


@dataclass(frozen=True)
class Recipe:
    """Every setting of one of the book's trained models. Validated once, when it is made; the
    model class checks its own settings when :func:`trained` builds it."""

    name: str
    kind: str                          # a key of KINDS
    data: str                          # "mnist" or "faces" (data.DATASETS)
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    # the model (the kind's model class takes the settings it knows)
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int | None = None
    hidden: tuple[int, ...] = (512, 256)
    arch: str = "mlp"
    likelihood: str = "bernoulli"      # VAEs: the pixels' distribution p(x|z)
    sigma: float | None = None         # ... its standard deviation, for "gaussian"
    binarize: bool = False             # ... dynamic binarisation of grey-level images
    n_classes: int | None = None       # conditional VAE, classifier
    stabilised: bool = True            # GAN: BatchNorm in G and centred inputs in D
    average_decay: float | None = None  # GAN: the weight average it samples from
    # the loss and the fit
    beta: float = 1.0                  # VAEs: the KL term's weight
    free_bits: float = 0.0             # VAEs: nats per latent dimension that cost nothing
    lr_schedule: str = "constant"      # or "cosine"
    d_lr: float | None = None          # GAN: the discriminator's learning rate
    stop_after: int | None = None      # train only the first epochs of the full schedule
    n_faces: int | None = None         # data "faces": how many
    monitor: MonitorSettings | None = None

    def __post_init__(self) -> None:
        checks.file_stem(self.name, "recipe name")
        kind = KINDS[checks.choice(self.kind, "model kind", tuple(KINDS))]
        checks.choice(self.data, "dataset", data.DATASETS)
        checks.integer(self.epochs, "epochs", minimum=1)
        checks.integer(self.batch_size, "batch_size", minimum=1)
        checks.number(self.lr, "lr", above=0)
        checks.integer(self.seed, "seed", minimum=0)
        checks.number(self.beta, "beta", above=0)
        checks.number(self.free_bits, "free_bits", minimum=0)
        checks.choice(self.lr_schedule, "lr_schedule", training.LR_SCHEDULES)
        if self.stop_after is not None:
            checks.integer(self.stop_after, f"stop_after (at most the recipe's {self.epochs} epochs)",
                           minimum=1, maximum=self.epochs)
        if (self.data == "faces") != (self.n_faces is not None):
            raise ValueError(f"{self.name}: n_faces is set for the faces data, and only for them")
        if self.n_faces is not None:
            checks.integer(self.n_faces, "n_faces", minimum=2)
        if self.d_lr is not None:
            checks.number(self.d_lr, "d_lr", above=0)
        defaults = {f.name: f.default for f in dataclasses.fields(Recipe)}
        for setting in defaults.keys() - COMMON_SETTINGS - kind.settings():
            if getattr(self, setting) != defaults[setting]:
                raise ValueError(f"{self.name!r} is a {self.kind}: it has no {setting} "
                                 f"(got {getattr(self, setting)!r})")

    VARIANTS = ("beta", "seed", "free_bits", "likelihood", "stop_after")

    def variant(self, **changes: Any) -> "Recipe":
        """This recipe with some settings replaced, under a name that says so
        ("faces-vae-beta4", "mnist-gan-seed2"; the same recipe when nothing changes):
        ``beta`` and ``free_bits`` (a VAE's loss), ``seed``, ``likelihood="bernoulli"`` (a
        Gaussian-likelihood VAE's Bernoulli twin) and ``stop_after`` (train only the recipe's
        first epochs, its learning-rate schedule unchanged: the model a full run holds after
        that epoch). None leaves a setting as it is."""
        suffix, replaced = "", {}
        for setting, value in changes.items():
            if setting not in self.VARIANTS:
                raise ValueError(f"unknown setting {setting!r}; a variant may change {self.VARIANTS}")
            if value is None or value == getattr(self, setting) or (
                    setting == "stop_after" and value == self.epochs and self.stop_after is None):
                continue
            if setting == "likelihood":
                if value != "bernoulli":
                    raise ValueError(f"likelihood {value!r}: a variant can switch a recipe to the "
                                     "'bernoulli' likelihood only (a gaussian needs the recipe's sigma)")
                replaced.update(likelihood="bernoulli", sigma=None)
                suffix += "-bernoulli"
                continue
            if setting in ("seed", "stop_after"):
                value = checks.integer(value, setting, minimum=0)
                suffix += f"-{'stop' if setting == 'stop_after' else 'seed'}{value}"
            else:
                value = checks.number(value, setting, minimum=0)
                suffix += f"-{setting.replace('_', '')}{value:g}"
            replaced[setting] = value
        if not replaced:
            return self
        return dataclasses.replace(self, name=self.name + suffix, **replaced)

    def model_settings(self) -> dict[str, Any]:
        """The keyword arguments of the kind's model class."""
        parameters = inspect.signature(KINDS[self.kind].model).parameters
        return {name: getattr(self, name) for name in parameters}

    def key(self) -> dict[str, Any]:
        """Everything that decides the trained weights and history, as plain data: the
        checkpoint cache's key (the name is in the file name)."""
        key = dataclasses.asdict(self)
        del key["name"]
        key["data_fingerprint"] = data_fingerprint(self)
        key["code_fingerprint"] = code_fingerprint()
        if self.monitor is not None:   # the monitor's numbers depend on its classifier and code
            key["monitor_classifier"] = RECIPES[self.monitor.classifier].key()
            key["monitor_code"] = _source_hash((metrics_samples, metrics_evaluation))
        return key

    def __str__(self) -> str:
        """The recipe in a few short lines (they fit a phone's column)."""
        defaults = {f.name: f.default for f in dataclasses.fields(Recipe)}
        own = KINDS[self.kind].settings()
        shown = [f"{name} {getattr(self, name)}" for name in defaults
                 if name in own and (getattr(self, name) != defaults[name]
                                     or name in ("latent_dim", "hidden"))]
        fit = (f"{self.epochs} epochs, batch {self.batch_size}, lr {self.lr:g}, seed {self.seed}"
               + (f", only the first {self.stop_after} epochs" if self.stop_after else ""))
        article = "an" if self.kind[0] in "aeiou" else "a"
        lines = [f"{self.name}: {article} {self.kind} of {self.data}"
                 + (f" ({self.n_faces:,} faces)" if self.n_faces else "")]
        for text in (", ".join(shown), fit):
            lines += textwrap.wrap(text, 56, initial_indent="  ", subsequent_indent="  ")
        if self.monitor is not None:
            lines.append(f"  monitor: {self.monitor.samples:,} samples vs "
                         f"{self.monitor.real_images:,} test images")
        return "\n".join(lines)


COMMON_SETTINGS = {"name", "kind", "data", "epochs", "batch_size", "lr", "seed", "stop_after",
                   "n_faces", "monitor"}


class Trained(NamedTuple):
    """A trained model (in eval mode, on ``device``) and its training history."""

    model: nn.Module
    history: History


# --- How each kind of model is fitted ---------------------------------------------------------

def training_data(recipe: Recipe, train: bool) -> tuple[torch.Tensor, ...]:
    """What a recipe trains on (train=True) or is tested on: (images,) with images (N, C, H, W)
    in [0, 1], or (images, labels) for a kind that trains on labels. A model trained on
    dynamically binarised images (``binarize``) is tested on one fixed binarisation."""
    extra = {"n_faces": recipe.n_faces} if recipe.data == "faces" else {}
    loaded = data.load_dataset(recipe.data, train=train, **extra)
    images = data.binarize_fixed(loaded.images, seed=0) if recipe.binarize and not train else loaded.images
    return (images, loaded.labels) if KINDS[recipe.kind].labelled else (images,)


def _fit_with_loss(model: nn.Module, recipe: Recipe, **common: Any) -> History:
    """Fit by minimising the kind's loss (``training.fit``), tested after the last epoch."""
    kind = KINDS[recipe.kind]
    loss = partial(kind.loss, **{name: getattr(recipe, name) for name in kind.loss_settings})
    return training.fit(model, loss, training_data(recipe, True),
                        test_data=training_data(recipe, False), lr_schedule=recipe.lr_schedule,
                        test_every_epoch=False, **common)


def _fit_adversarially(model: nn.Module, recipe: Recipe, **common: Any) -> History:
    """Fit a GAN (``training.fit_gan``)."""
    return training.fit_gan(model, training_data(recipe, True)[0], d_lr=recipe.d_lr, **common)


@dataclass(frozen=True)
class Kind:
    """One kind of model: its class, how it is fitted, its loss (and which recipe settings the
    loss takes), whether it trains on (images, labels), and the fit's own settings."""

    model: type[nn.Module]
    fit: Callable[..., History]
    loss: Callable[..., Any] | None = None
    loss_settings: tuple[str, ...] = ()
    labelled: bool = False
    fit_settings: tuple[str, ...] = ("lr_schedule",)

    def settings(self) -> set[str]:
        """The recipe settings this kind reads, beyond the common ones."""
        return {*inspect.signature(self.model).parameters, *self.loss_settings, *self.fit_settings}


KINDS: dict[str, Kind] = {
    "autoencoder": Kind(models.Autoencoder, _fit_with_loss, losses.autoencoder_batch_loss),
    "vae": Kind(models.VAE, _fit_with_loss, losses.vae_batch_loss, ("beta", "free_bits")),
    "cvae": Kind(models.ConditionalVAE, _fit_with_loss, losses.vae_batch_loss,
                 ("beta", "free_bits"), labelled=True),
    "classifier": Kind(classifier.Classifier, _fit_with_loss, losses.classifier_batch_loss,
                       labelled=True),
    "gan": Kind(gan.GAN, _fit_adversarially, fit_settings=("d_lr",)),
}


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from its ``config`` (``model.config``, as a checkpoint stores it)."""
    config = dict(config)
    kind = KINDS[checks.choice(config.pop("kind", None), "model kind", tuple(KINDS))]
    for name in ("image_shape", "hidden"):
        if name in config:
            config[name] = tuple(config[name])
    with torch.device("cpu"):   # the package names the device of everything it creates
        return kind.model(**config)


# --- The book's models ------------------------------------------------------------------------

_MNIST_GAN = Recipe(
    # Chapter "GANs": an MLP GAN with the VAE's latent size (D learns 10x faster than G: a two
    # time-scale update rule) that samples from a running average of G's weights, chosen by
    # `benchmarks/benchmark.py gan-recipes`.
    "mnist-gan", "gan", "mnist", epochs=12, batch_size=64, lr=2e-4, d_lr=2e-3, latent_dim=20,
    hidden=(256, 512), average_decay=0.999, monitor=MONITOR)

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    # Chapter "Autoencoders": a 2-D code, so the latent space can be drawn.
    Recipe("mnist-ae-2d", "autoencoder", "mnist", epochs=10, batch_size=128, lr=1e-3, latent_dim=2),
    # The faces through six numbers, with the faces VAE's 256-128 hidden units.
    Recipe("faces-ae", "autoencoder", "faces", epochs=10, batch_size=128, lr=1e-3, latent_dim=6,
           image_shape=(3, 32, 32), hidden=(256, 128), n_faces=10_000),
    # Chapter "Variational autoencoders": the book's main MNIST model, a likelihood model of
    # dynamically binarised MNIST (a fresh binary draw of every image each epoch), 40 epochs
    # with a cosine learning-rate decay (benchmarks/benchmark.py mnist-recipes compares) ...
    Recipe("mnist-vae", "vae", "mnist", epochs=40, batch_size=128, lr=1e-3, latent_dim=20,
           binarize=True, lr_schedule="cosine", monitor=MONITOR),
    # ... and a 2-D one (grey levels, cross-entropy) to draw beside the 2-D autoencoder.
    Recipe("mnist-vae-2d", "vae", "mnist", epochs=10, batch_size=128, lr=1e-3, latent_dim=2),
    # Chapter "Latent playground": a VAE of the procedural faces, with a Gaussian likelihood
    # (continuous colours; the chapter compares it with a Bernoulli twin). 30 epochs with a
    # cosine decay: its loss then still falls by 5-10 nats per epoch, little beside the ~100 nats
    # between seeds (the latent attributes chapter prints both); 256-128 hidden units keep an
    # epoch cheap (about 1.2 s on 2 cores). Six of its runs share the book's CPU budget.
    Recipe("faces-vae", "vae", "faces", epochs=30, batch_size=128, lr=1e-3, latent_dim=10,
           image_shape=(3, 32, 32), hidden=(256, 128), likelihood="gaussian", sigma=0.05,
           lr_schedule="cosine", n_faces=10_000),
    # Chapter "Latent attributes": a conditional VAE of MNIST digits. Its code has 4
    # dimensions: room for a digit's style, too little to also hold the class, which the
    # decoder then takes from the label (the chapter measures how often it does).
    Recipe("mnist-cvae", "cvae", "mnist", epochs=10, batch_size=128, lr=1e-3, latent_dim=4,
           n_classes=10),
    _MNIST_GAN,
    # ... the same GAN without its stabilisers, which collapses on purpose, and the digit
    # classifier that measures samples.
    dataclasses.replace(_MNIST_GAN, name="mnist-gan-collapse", epochs=3, stabilised=False),
    Recipe("mnist-classifier", "classifier", "mnist", epochs=3, batch_size=128, lr=1e-3,
           n_classes=10),
)}

# Variants are settings, not names: ``trained("faces-vae", beta=4.0)``, ``trained("mnist-vae",
# seed=1)``. Chapter "VAE vs GAN" trains three seeds; chapter "Latent attributes" two betas.
SEEDS = (0, 1, 2)
BETAS = (1.0, 4.0)


# --- What invalidates a cached model ----------------------------------------------------------

def data_fingerprint(recipe: Recipe) -> str | None:
    """A hash of the first procedural training faces, so that a change to the face renderer
    invalidates checkpoints trained on the old faces (MNIST's files never change)."""
    if recipe.data != "faces":
        return None
    images, _ = faces.make_faces(64, seed=0)
    return hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]


# The package code that builds, feeds and trains a model: an edit to any of these files trains
# every model anew (see :func:`code_fingerprint`). From this module, only the functions that
# train (below): adding a recipe does not retrain the others.
TRAINING_CODE: tuple[ModuleType, ...] = (checks, models, gan, classifier, losses, training, data,
                                         faces)


def code_fingerprint() -> str:
    """A hash of the source files in ``TRAINING_CODE``, part of every checkpoint's key.

    What invalidates a cached model: a change to its recipe, to its model class's config or
    parameter shapes, to the procedural faces it sees, or to *any byte* of ``TRAINING_CODE``'s
    files or of this module's functions that fit a model (a comment too: the hash cannot tell
    which edits change the weights); for a monitored model, of the metrics its monitor uses.
    Computed once per process: an edit made while a notebook's kernel runs counts from its next
    restart.
    """
    return _source_hash(TRAINING_CODE, (trained, training_data, _fit_with_loss, _fit_adversarially))


@cache
def _source_hash(modules: tuple[ModuleType, ...], functions: tuple = ()) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


# --- Train or load ----------------------------------------------------------------------------

def trained(name: str, device: torch.device | str = "cpu", progress: bool = True,
            checkpoint_dir: str | None = None, pretrained: bool = True, **variant: Any) -> Trained:
    """The model ``name`` (a key of :data:`RECIPES`), loaded from the checkpoint cache or
    trained from its recipe; ``variant`` settings (``beta``, ``seed``, ``free_bits``,
    ``likelihood``, ``stop_after``) replace the recipe's own (:meth:`Recipe.variant`). A recipe
    with a ``monitor`` records sample quality after every epoch (it loads or trains the
    classifier first). On a cache miss with ``$VAE_UTILS_PRETRAINED_URL`` set (and
    ``pretrained``), the website's published checkpoint of exactly this recipe is downloaded
    instead of training (``vae_utils.pretrained``); if that fails, the model is trained."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; the book's models are {tuple(RECIPES)}")
    recipe = RECIPES[name].variant(**variant)
    training.seed_everything(recipe.seed)
    model = build_model(dict(kind=recipe.kind, **recipe.model_settings()))
    key = recipe.key()
    history = checkpoints.load_cached(recipe.name, model, key, checkpoint_dir)
    if history is None and pretrained and settings.pretrained_url():
        history = _published(recipe, model, key, checkpoint_dir, progress)
    if history is not None:
        _say(f"Loaded {recipe.name} (trained in {history.train_seconds:.0f} s).")
        return Trained(model.to(device).eval(), history)

    can_save = checkpoints.writable(recipe.name, checkpoint_dir)
    monitor = None
    if recipe.monitor is not None:
        monitor = _sample_monitor(recipe.monitor, device, progress, checkpoint_dir)
    start = _clock(device)
    history = KINDS[recipe.kind].fit(
        model, recipe, epochs=recipe.epochs, stop_after=recipe.stop_after,
        batch_size=recipe.batch_size, lr=recipe.lr, device=device, seed=recipe.seed,
        progress=progress, desc=recipe.name, monitor=monitor)
    history.train_seconds = _clock(device) - start
    checkpoints.round_to_stored(model)          # the model as its file stores it
    saved = can_save and checkpoints.save_cached(recipe.name, model, key, history, checkpoint_dir)
    _say(f"Trained {recipe.name} in {history.train_seconds:.0f} s; "
         + (f"saved {saved.name}." if saved else "not saved."))
    return Trained(model.to(device).eval(), history)


def _published(recipe: Recipe, model: nn.Module, key: dict, checkpoint_dir, progress: bool):
    """The website's checkpoint of this recipe, downloaded into the cache and loaded, or None
    (one line says why: the model is then trained here)."""
    base = settings.pretrained_url()
    path = checkpoints.cached_path(recipe.name, model, key, checkpoint_dir)
    try:
        website.fetch(path.name, path.parent, base, progress=progress)
    except website.PretrainedError as err:
        print(f"Could not download {recipe.name} from {base} ({err}); training it here.")
        return None
    except OSError as err:   # the cache folder cannot be written
        print(f"Could not download {recipe.name} into {path.parent} ({err}); training it here.")
        return None
    history = checkpoints.load_cached(recipe.name, model, key, checkpoint_dir)
    print(f"Downloaded {recipe.name} from {base} ({path.stat().st_size / 1e6:.1f} MB)."
          if history is not None else
          f"The downloaded {recipe.name} could not be loaded (set aside); training it here.")
    return history


def _clock(device: torch.device | str) -> float:
    training.synchronize(device)
    return time.perf_counter()


def _say(line: str) -> None:
    if settings.cache_messages():
        print(line)


def _sample_monitor(monitor: MonitorSettings, device, progress, checkpoint_dir) -> training.Monitor:
    """The per-epoch sample-quality measurement of a monitored recipe."""
    measuring = trained(monitor.classifier, device=device, progress=progress,
                        checkpoint_dir=checkpoint_dir).model
    test_images = data.load_mnist(train=False).images
    real = test_images[metrics_evaluation.subset_indices(len(test_images), monitor.real_images)]
    return metrics_samples.sample_quality_monitor(measuring, real, monitor.samples, monitor.seed,
                                                  monitor.snapshots)


def measurement(name: str) -> dict[str, Any]:
    """A measurement too long to repeat in a chapter, saved by ``benchmarks/benchmark.py`` as
    package data (``vae_utils/measurements/<name>.json``), with the command, date and machine
    that produced it; e.g. ``measurement("gan_recipes")``."""
    checks.file_stem(name, "measurement name")
    path = resources.files("vae_utils").joinpath("measurements", f"{name}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no saved measurement {name!r} in vae_utils/measurements/; "
                                "benchmarks/benchmark.py writes them")
    return json.loads(path.read_text())
