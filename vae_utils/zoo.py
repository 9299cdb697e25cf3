"""The book's trained models: each recipe is written here once, and every chapter that needs
the model calls :func:`trained`, which loads the cached checkpoint or trains it.

A chapter that introduces a model shows its recipe (``zoo.RECIPES[name]``); a Colab user who
opens any chapter alone trains what it needs with exactly the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from functools import cache, partial
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import nn

from . import checkpoints, data, faces, losses, metrics, models, training

# Sample quality measured after every epoch of the models the VAE-vs-GAN chapter compares:
# 2,000 samples against the first 2,000 test images, in the classifier's feature space
# (metrics.sample_quality_monitor). It adds "monitor_<metric>" lists to the history.
# The first 8 samples are kept too ("monitor_snapshots"), to show what each epoch drew.
MONITOR = dict(classifier="mnist-classifier", samples=2_000, real_images=2_000, seed=0,
               snapshots=8)

RECIPES: dict[str, dict[str, Any]] = {
    # Chapter "Autoencoders": a 2-D code, so the latent space can be drawn.
    "mnist-ae-2d": dict(model=dict(kind="autoencoder", image_shape=[1, 28, 28], latent_dim=2,
                                   arch="mlp", hidden=[512, 256]),
                        data="mnist", epochs=10, batch_size=128, lr=1e-3, seed=0),
    "faces-ae": dict(model=dict(kind="autoencoder", image_shape=[3, 32, 32], latent_dim=6,
                                arch="mlp", hidden=[512, 256]),
                     data="faces", n_faces=10_000, epochs=10, batch_size=128, lr=1e-3, seed=0),
    # Chapter "Variational autoencoders": the book's main MNIST model, a likelihood model of
    # dynamically binarised MNIST (a fresh binary draw of every image each epoch), 40 epochs
    # with a cosine learning-rate decay (benchmarks/benchmark.py mnist-recipes compares) ...
    "mnist-vae": dict(model=dict(kind="vae", image_shape=[1, 28, 28], latent_dim=20,
                                 arch="mlp", hidden=[512, 256], binarize=True),
                      data="mnist", epochs=40, batch_size=128, lr=1e-3, lr_schedule="cosine",
                      beta=1.0, seed=0, monitor=MONITOR),
    # ... and a 2-D one (grey levels, cross-entropy) to draw beside the 2-D autoencoder.
    "mnist-vae-2d": dict(model=dict(kind="vae", image_shape=[1, 28, 28], latent_dim=2,
                                    arch="mlp", hidden=[512, 256]),
                         data="mnist", epochs=10, batch_size=128, lr=1e-3, beta=1.0, seed=0),
    # Chapter "Latent playground": a VAE of the procedural faces, with a Gaussian likelihood
    # (continuous colours; the chapter compares it with a Bernoulli twin).
    "faces-vae": dict(model=dict(kind="vae", image_shape=[3, 32, 32], latent_dim=10,
                                 arch="mlp", hidden=[512, 256], likelihood="gaussian",
                                 sigma=0.05),
                      data="faces", n_faces=10_000, epochs=20, batch_size=128, lr=1e-3,
                      lr_schedule="cosine", beta=1.0, seed=0),
    # Chapter "Latent attributes": a conditional VAE of MNIST digits.
    # Its code has 4 dimensions: room for a digit's style, too little to also hold the class,
    # which the decoder then takes from the label (with 8, about 92% of samples showed the
    # requested digit; with 4, over 95%: the chapter measures it).
    "mnist-cvae": dict(model=dict(kind="cvae", image_shape=[1, 28, 28], latent_dim=4,
                                  n_classes=10, arch="mlp", hidden=[512, 256]),
                       data="mnist", epochs=10, batch_size=128, lr=1e-3, beta=1.0, seed=0),
}
RECIPES.update({
    # Chapter "GANs": an MLP GAN with the VAE's latent size (D learns 10x faster than G: a
    # two time-scale update rule) that samples from a running average of G's weights, chosen by
    # `benchmarks/benchmark.py gan-recipes`; a classifier for measurements; and the same GAN
    # without its stabilisers, which collapses on purpose.
    "mnist-gan": dict(model=dict(kind="gan", image_shape=[1, 28, 28], latent_dim=20,
                                 hidden=[256, 512], stabilised=True, average_decay=0.999),
                      data="mnist", epochs=12, batch_size=64, lr=2e-4, d_lr=2e-3, seed=0,
                      monitor=MONITOR),
    "mnist-classifier": dict(model=dict(kind="classifier", n_classes=10),
                             data="mnist", epochs=3, batch_size=128, lr=1e-3, seed=0),
})
RECIPES["mnist-gan-collapse"] = dict(RECIPES["mnist-gan"], epochs=3,
                                     model=dict(RECIPES["mnist-gan"]["model"], stabilised=False))

# Variants are settings, not names: ``trained("faces-vae", beta=4.0)``, ``trained("mnist-vae",
# seed=1)``. Chapter "VAE vs GAN" trains three seeds; chapter "Latent attributes" two betas.
SEEDS = (0, 1, 2)
BETAS = (1.0, 4.0)
SETTINGS = ("beta", "seed", "free_bits", "likelihood", "stop_after")


def variant(name: str, **settings: Any) -> tuple[str, dict[str, Any]]:
    """The recipe ``name`` with ``settings`` replacing its own, and the name its checkpoint file
    gets ("faces-vae-beta4", "mnist-gan-seed2"; the plain name when every setting is the
    recipe's own). Settings: ``beta`` and ``free_bits`` (a VAE's loss), ``seed``, and
    ``likelihood="bernoulli"`` (a Gaussian-likelihood VAE's Bernoulli twin), and ``stop_after``
    (train only the recipe's first epochs, its learning-rate schedule unchanged: the model a
    full run holds after that epoch). The checkpoint's key holds the whole recipe, so each
    variant has its own cache file."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; the book's models are {tuple(RECIPES)}")
    recipe = copy.deepcopy(RECIPES[name])
    kind = recipe["model"]["kind"]
    defaults = dict(beta=1.0, free_bits=0.0, seed=recipe["seed"],
                    likelihood=recipe["model"].get("likelihood", "bernoulli"),
                    stop_after=recipe["epochs"])
    suffix = ""
    for setting, value in settings.items():
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; a variant may change {SETTINGS}")
        if value is None or value == recipe.get(setting, defaults[setting]):
            continue
        if setting not in ("seed", "stop_after") and kind not in ("vae", "cvae"):
            raise ValueError(f"{name!r} is a {kind}: it has no {setting}")
        if setting == "seed" and (not isinstance(value, int) or value < 0):
            raise ValueError(f"seed must be an int >= 0, got {value!r}")
        if setting == "stop_after":
            if not isinstance(value, int) or not 1 <= value <= recipe["epochs"]:
                raise ValueError(f"stop_after must be an int in [1, {recipe['epochs']}] (the "
                                 f"recipe's epochs), got {value!r}")
            recipe["stop_after"] = value
            suffix += f"-stop{value}"
            continue
        if setting == "beta" and not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"beta must be a number > 0, got {value!r}")
        if setting == "free_bits" and not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"free_bits must be a number >= 0 (nats per dimension), got {value!r}")
        if setting == "likelihood":
            if value != "bernoulli":
                raise ValueError(f"likelihood {value!r}: a variant can switch a recipe to the "
                                 "'bernoulli' likelihood only (a gaussian needs the recipe's sigma)")
            recipe["model"]["likelihood"] = "bernoulli"
            recipe["model"].pop("sigma", None)
            suffix += "-bernoulli"
            continue
        recipe[setting] = value if setting == "seed" else float(value)
        suffix += f"-{setting.replace('_', '')}{value:g}"
    return name + suffix, recipe


class Trained(NamedTuple):
    """A trained model (in eval mode, on ``device``) and its training history."""

    model: nn.Module
    history: dict[str, list[float]]


def recipe_data(recipe: dict[str, Any], train: bool) -> tuple[torch.Tensor, ...]:
    """What a recipe trains (train=True) or is tested on: (images,) with images (N, C, H, W) in
    [0, 1], or (images, labels) for a conditional model. A model trained on dynamically
    binarised images (``binarize``) is tested on one fixed binarisation of the test set."""
    extra = {"n_faces": recipe["n_faces"]} if recipe["data"] == "faces" else {}
    loaded = data.load_dataset(recipe["data"], train=train, **extra)
    if recipe["model"].get("binarize") and not train:  # one fixed binary test set (seed 0)
        loaded = data.ImageData(data.binarized(loaded.images, seed=0), loaded.labels)
    return tuple(loaded) if recipe["model"]["kind"] in ("cvae", "classifier") else (loaded.images,)


def data_fingerprint(recipe: dict[str, Any]) -> str | None:
    """A hash of the first procedural training faces, so that a change to the face renderer
    invalidates checkpoints trained on the old faces (MNIST's files never change)."""
    if recipe["data"] != "faces":
        return None
    images, _ = faces.make_faces(64, seed=0)
    return hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]


# The package code that builds, feeds and trains a model: an edit to any of these files trains
# every model anew (see :func:`code_fingerprint`). From this module, only the functions that
# train (below): adding a recipe does not retrain the others.
TRAINING_CODE: tuple[ModuleType, ...] = (models, losses, training, data, faces)


def code_fingerprint() -> str:
    """A hash of the source files in ``TRAINING_CODE``, part of every checkpoint's key.

    What invalidates a cached model: a change to its recipe, to its model class's config or
    parameter shapes, to the procedural faces it sees, or to *any byte* of ``TRAINING_CODE``'s
    files or of this module's :func:`trained` and :func:`recipe_data` (a comment too: the hash
    cannot tell which edits change the weights). Computed once per process: an edit made while
    a notebook's kernel runs counts from its next restart.
    """
    return _source_hash(TRAINING_CODE, (trained, recipe_data))


@cache
def _source_hash(modules: tuple[ModuleType, ...], functions: tuple = ()) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


def trained(name: str, device: torch.device | str = "cpu", progress: bool = True,
            checkpoint_dir: str | None = None, *, beta: float | None = None,
            seed: int | None = None, free_bits: float | None = None,
            likelihood: str | None = None, stop_after: int | None = None) -> Trained:
    """Load the model ``name`` from the checkpoint cache, or train it from its recipe; ``beta``,
    ``seed``, ``free_bits``, ``likelihood`` and ``stop_after`` (when given) replace the recipe's
    own (see :func:`variant`). A recipe with a ``monitor`` records sample quality after every
    epoch (:data:`MONITOR`; it loads or trains the classifier first)."""
    file_name, recipe = variant(name, beta=beta, seed=seed, free_bits=free_bits,
                                likelihood=likelihood, stop_after=stop_after)
    training.seed_everything(recipe["seed"])
    model = models.build_model(**copy.deepcopy(recipe["model"]))
    kind = recipe["model"]["kind"]
    batch_loss = {
        "vae": partial(losses.vae_batch_loss, beta=recipe.get("beta", 1.0),
                       free_bits=recipe.get("free_bits", 0.0)),
        "cvae": partial(losses.cvae_batch_loss, beta=recipe.get("beta", 1.0),
                        free_bits=recipe.get("free_bits", 0.0)),
        "autoencoder": losses.autoencoder_batch_loss,
        "classifier": losses.classifier_batch_loss,
        "gan": None,
    }[kind]

    def train() -> dict[str, list[float]]:
        monitor = None
        if recipe.get("monitor"):
            settings = recipe["monitor"]
            classifier = trained(settings["classifier"], device=device, progress=progress,
                                 checkpoint_dir=checkpoint_dir).model
            real = data.load_mnist(train=False).images[:settings["real_images"]]
            monitor = metrics.sample_quality_monitor(classifier, real, settings["samples"],
                                                     settings["seed"], settings["snapshots"])
        common = dict(epochs=recipe["epochs"], stop_after=recipe.get("stop_after"),
                      batch_size=recipe["batch_size"], lr=recipe["lr"], device=device,
                      seed=recipe["seed"], progress=progress, desc=file_name, monitor=monitor)
        if kind == "gan":
            return training.fit_gan(model, recipe_data(recipe, True)[0], d_lr=recipe["d_lr"],
                                    **common)
        return training.fit(model, batch_loss, recipe_data(recipe, True),
                            test_data=recipe_data(recipe, False),
                            lr_schedule=recipe.get("lr_schedule", "constant"),
                            test_every_epoch=False, **common)

    key = dict(recipe, data_fingerprint=data_fingerprint(recipe),
               code_fingerprint=code_fingerprint())
    if recipe.get("monitor"):  # the monitor's numbers depend on the classifier's recipe too
        key["monitor_classifier"] = RECIPES[recipe["monitor"]["classifier"]]
    history = checkpoints.train_or_load(file_name, model, key, train, directory=checkpoint_dir)
    return Trained(model.to(device).eval(), history)


def measurement(name: str) -> dict[str, Any]:
    """A measurement too long to repeat in a chapter, saved by ``benchmarks/benchmark.py`` as
    package data (``vae_utils/measurements/<name>.json``), with the command, date and machine
    that produced it; e.g. ``measurement("gan_recipes")``."""
    path = resources.files("vae_utils").joinpath("measurements", f"{name}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no saved measurement {name!r} in vae_utils/measurements/; "
                                "benchmarks/benchmark.py writes them")
    return json.loads(path.read_text())
