"""The book's trained models: each recipe is written here once, and every chapter that needs
the model calls :func:`trained`, which loads the cached checkpoint or trains it.

A chapter that introduces a model shows its recipe (``zoo.RECIPES[name]``); a Colab user who
opens any chapter alone trains what it needs with exactly the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import nn

from . import checkpoints, data, faces, losses, models, training

GAN_EPOCHS = 4

RECIPES: dict[str, dict[str, Any]] = {
    # Chapter "Autoencoders": a 2-D code, so the latent space can be drawn.
    "mnist-ae-2d": dict(model=dict(kind="autoencoder", image_shape=[1, 28, 28], latent_dim=2,
                                   arch="mlp", hidden=[512, 256]),
                        data="mnist", epochs=10, batch_size=128, lr=1e-3, seed=0),
    "faces-ae": dict(model=dict(kind="autoencoder", image_shape=[3, 32, 32], latent_dim=6,
                                arch="mlp", hidden=[512, 256]),
                     data="faces", n_faces=10_000, epochs=10, batch_size=128, lr=1e-3, seed=0),
    # Chapter "Variational autoencoders": the book's main MNIST model ...
    "mnist-vae": dict(model=dict(kind="vae", image_shape=[1, 28, 28], latent_dim=20,
                                 arch="mlp", hidden=[512, 256]),
                      data="mnist", epochs=10, batch_size=128, lr=1e-3, beta=1.0, seed=0),
    # ... and a 2-D one to draw beside the 2-D autoencoder.
    "mnist-vae-2d": dict(model=dict(kind="vae", image_shape=[1, 28, 28], latent_dim=2,
                                    arch="mlp", hidden=[512, 256]),
                         data="mnist", epochs=10, batch_size=128, lr=1e-3, beta=1.0, seed=0),
    # Chapter "Latent playground": a VAE of the procedural faces.
    "faces-vae": dict(model=dict(kind="vae", image_shape=[3, 32, 32], latent_dim=8,
                                 arch="mlp", hidden=[512, 256]),
                      data="faces", n_faces=10_000, epochs=15, batch_size=128, lr=1e-3,
                      beta=1.0, seed=0),
    # Chapter "Latent attributes": a conditional VAE of MNIST digits.
    "mnist-cvae": dict(model=dict(kind="cvae", image_shape=[1, 28, 28], latent_dim=8,
                                  n_classes=10, arch="mlp", hidden=[512, 256]),
                       data="mnist", epochs=10, batch_size=128, lr=1e-3, beta=1.0, seed=0),
}
RECIPES.update({
    # Chapter "GANs": an MLP GAN with the VAE's latent size (D learns 10x faster than G: a
    # two time-scale update rule), a classifier for measurements, and the same GAN without its
    # stabilisers, which collapses on purpose.
    "mnist-gan": dict(model=dict(kind="gan", image_shape=[1, 28, 28], latent_dim=20,
                                 hidden=[256, 512], stabilised=True),
                      data="mnist", epochs=GAN_EPOCHS, batch_size=64, lr=2e-4, d_lr=2e-3, seed=0),
    "mnist-classifier": dict(model=dict(kind="classifier", n_classes=10),
                             data="mnist", epochs=3, batch_size=128, lr=1e-3, seed=0),
})
RECIPES["mnist-gan-collapse"] = dict(RECIPES["mnist-gan"],
                                     model=dict(RECIPES["mnist-gan"]["model"], stabilised=False))
# Chapter "VAE vs GAN": the same recipes with other seeds, to measure stability.
SEEDS = (0, 1, 2)
for _seed in SEEDS[1:]:
    RECIPES[f"mnist-vae-seed{_seed}"] = dict(RECIPES["mnist-vae"], seed=_seed)
    RECIPES[f"mnist-gan-seed{_seed}"] = dict(RECIPES["mnist-gan"], seed=_seed)


def seeded_name(name: str, seed: int) -> str:
    """The zoo name of recipe ``name`` ("mnist-vae", "mnist-gan") trained with another seed."""
    return name if seed == 0 else f"{name}-seed{seed}"


# Chapter "Latent attributes": beta-VAEs of the faces, identical to "faces-vae" but for beta.
BETAS = (0.5, 1.0, 4.0)
for _beta in BETAS:
    if _beta != 1.0:
        RECIPES[f"faces-vae-beta{_beta:g}"] = dict(RECIPES["faces-vae"], beta=_beta)


def faces_vae_name(beta: float) -> str:
    """The zoo name of the faces VAE trained with this beta."""
    return "faces-vae" if beta == 1.0 else f"faces-vae-beta{beta:g}"


class Trained(NamedTuple):
    """A trained model (in eval mode, on ``device``) and its training history."""

    model: nn.Module
    history: dict[str, list[float]]


def recipe_data(recipe: dict[str, Any], train: bool) -> tuple[torch.Tensor, ...]:
    """What a recipe trains (train=True) or is tested on: (images,) with images (N, C, H, W) in
    [0, 1], or (images, labels) for a conditional model."""
    extra = {"n_faces": recipe["n_faces"]} if recipe["data"] == "faces" else {}
    loaded = data.load_dataset(recipe["data"], train=train, **extra)
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
            checkpoint_dir: str | None = None) -> Trained:
    """Load the model ``name`` from the checkpoint cache, or train it from its recipe."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; the book's models are {tuple(RECIPES)}")
    recipe = copy.deepcopy(RECIPES[name])
    training.seed_everything(recipe["seed"])
    model = models.build_model(**copy.deepcopy(recipe["model"]))
    kind = recipe["model"]["kind"]
    batch_loss = {
        "vae": partial(losses.vae_batch_loss, beta=recipe.get("beta", 1.0)),
        "cvae": partial(losses.cvae_batch_loss, beta=recipe.get("beta", 1.0)),
        "autoencoder": losses.autoencoder_batch_loss,
        "classifier": losses.classifier_batch_loss,
        "gan": None,
    }[kind]

    def train() -> dict[str, list[float]]:
        if kind == "gan":
            return training.fit_gan(model, recipe_data(recipe, True)[0], epochs=recipe["epochs"],
                                    batch_size=recipe["batch_size"], lr=recipe["lr"],
                                    d_lr=recipe["d_lr"], device=device, seed=recipe["seed"],
                                    progress=progress, desc=name)
        return training.fit(model, batch_loss, recipe_data(recipe, True),
                            test_data=recipe_data(recipe, False), epochs=recipe["epochs"],
                            batch_size=recipe["batch_size"], lr=recipe["lr"], device=device,
                            seed=recipe["seed"], progress=progress, desc=name)

    key = dict(recipe, data_fingerprint=data_fingerprint(recipe),
               code_fingerprint=code_fingerprint())
    history = checkpoints.train_or_load(name, model, key, train, directory=checkpoint_dir)
    return Trained(model.to(device).eval(), history)
