"""Training: device choice, seeding, and one epoch runner shared by the VAE and GAN fit loops.

The loop is the one the autoencoder chapter writes out by hand, plus a progress bar
(``tqdm.auto``: a widget in Jupyter and Colab, text in a terminal; ``TQDM_DISABLE=1`` hides it),
a per-epoch history and a clear stop on a non-finite loss.

Device safety, by construction: every random draw that orders the data or makes noise comes from
a CPU generator and is moved to the training device once per epoch; each step copies its loss
terms to the host once (one synchronisation) and checks them *before* the optimiser step, so a
NaN never reaches the weights. The data order and a GAN's noise are therefore the same for a
seed on any device; the draws inside a model (the VAE's ε, dropout masks) come from the
device's own generator, so a GPU run still differs from a CPU run in its details.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import batches
from .models import check_images, check_labels, values_checked

BatchLoss = Callable[..., NamedTuple]
"""``batch_loss(model, *batch) -> NamedTuple`` of batch-mean terms whose first field is ``loss``."""


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss; the weights keep their last finite values."""


def _bars_disabled_by_env() -> bool:
    """True if TQDM_DISABLE is set (tqdm's notebook bar ignores that variable by itself)."""
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")


def pick_device() -> torch.device:
    """The fastest available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device: torch.device | str) -> None:
    """Wait until ``device`` has finished its queued work (GPUs run asynchronously), so that a
    clock read afterwards measures the work itself. A no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _as_tuple(data: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def finite_values(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Copy a step's loss terms (scalar tensors) to the host in one synchronisation.

    Raises NonFiniteLossError naming the term if any is NaN or infinite; call it *before*
    ``optimizer.step()`` so that the weights never see that step.
    """
    values = torch.stack([t.detach().reshape(()) for t in terms.values()]).tolist()
    named = dict(zip(terms, values))
    bad = {name: value for name, value in named.items() if not math.isfinite(value)}
    if bad:
        raise NonFiniteLossError(", ".join(f"{name} = {value}" for name, value in bad.items()))
    return named


@torch.no_grad()
def evaluate(model: nn.Module, batch_loss: BatchLoss, data: torch.Tensor | Sequence[torch.Tensor],
             batch_size: int = 1000, device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean of each loss term over a whole dataset, model in eval mode.

    data: images (N, C, H, W) in [0, 1], or a tuple such as (images, labels) passed to batch_loss.
    Returns {term: mean over the N items}; raises ValueError for an empty dataset.
    """
    tensors = _as_tuple(data)
    if len(tensors[0]) == 0:
        raise ValueError("evaluate() got an empty dataset: there is nothing to average")
    model.eval()
    totals: dict[str, float] = {}
    for batch in batches(*tensors, batch_size=batch_size):
        batch = tuple(t.to(device) for t in batch)
        terms = batch_loss(model, *batch)
        values = torch.stack([t.detach().reshape(()) for t in terms]).tolist()  # one sync
        for name, value in zip(terms._fields, values):
            totals[name] = totals.get(name, 0.0) + value * len(batch[0])
    return {name: total / len(tensors[0]) for name, total in totals.items()}


Step = Callable[..., dict[str, float]]
"""``step(*batch) -> {term: value}``: one optimisation step on a batch of training tensors
(plus a batch of noise codes for a GAN), returning its loss terms as Python numbers."""


def run_epochs(step: Step, tensors: tuple[torch.Tensor, ...], *, epochs: int, batch_size: int,
               generator: torch.Generator, device: torch.device | str, noise_dim: int = 0,
               end_of_epoch: Callable[[dict[str, list]], None] | None = None,
               progress: bool = True, desc: str = "training", hint: str = "") -> dict[str, list]:
    """The epoch loop that ``fit`` and ``fit_gan`` share.

    tensors: aligned training tensors (N, ...) already on ``device``. Each epoch draws a data
    order (and, if ``noise_dim``, N noise codes z ~ N(0, I) of that size) from ``generator``, a
    CPU generator, moves them to ``device`` once, and calls ``step`` on every batch. A final
    batch of a single item is skipped (BatchNorm cannot train on it). ``end_of_epoch(history)``
    may add per-epoch entries (test losses, snapshots). Returns {term: per-epoch means of what
    ``step`` returned, "epoch_seconds": [...], ...}; epoch times are measured after
    synchronising the device. The caller has validated the data: inside the loop the models do
    not read their inputs' values (``models.values_checked``).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(tensors[0])
    if n == 0:
        raise ValueError("the training data is empty: there is nothing to train on")
    if generator.device.type != "cpu":
        raise ValueError(f"the generator must live on the CPU, got one on {generator.device}")
    history: dict[str, list] = {"epoch_seconds": []}
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch",
               disable=not progress or _bars_disabled_by_env())
    for epoch in bar:
        synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device="cpu").to(device)
        noise = (torch.randn(n, noise_dim, generator=generator, device="cpu").to(device)
                 if noise_dim else None)
        totals: dict[str, float] = {}
        seen = 0
        for number, begin in enumerate(range(0, n, batch_size), start=1):
            index = order[begin:begin + batch_size]
            if len(index) == 1 and n > 1:
                continue
            batch = tuple(t[index] for t in tensors)
            if noise is not None:
                batch += (noise[begin:begin + len(index)],)
            try:
                with values_checked():
                    values = step(*batch)
            except NonFiniteLossError as err:
                raise NonFiniteLossError(
                    f"{err} at epoch {epoch}, step {number} (batch size {batch_size}{hint}); the "
                    "weights keep their values from before this step. Lower the learning rate "
                    "or check the inputs.") from None
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + value * len(index)
            seen += len(index)
        synchronize(device)
        history["epoch_seconds"].append(time.perf_counter() - start)
        for name, total in totals.items():
            history.setdefault(name, []).append(total / seen)
        if end_of_epoch is not None:
            with values_checked():
                end_of_epoch(history)
        bar.set_postfix({k: f"{v[-1]:.2f}" for k, v in history.items()
                         if k.endswith("loss") and isinstance(v, list) and v})
    return history


def check_training_data(model: nn.Module, tensors: tuple[torch.Tensor, ...],
                        batch_size: int | None = None) -> None:
    """Validate a dataset once (image shape, dtype, range and finite values; class labels)
    instead of on every batch, and refuse batches of one item under BatchNorm.

    tensors: (images (N, C, H, W) in [0, 1], optional labels (N,) ...) as the model takes them;
    batch_size: the training batch size (None for data that is only evaluated)."""
    if hasattr(model, "image_shape"):
        check_images(tensors[0], model.image_shape)
    if hasattr(model, "n_classes") and len(tensors) > 1 and not tensors[1].is_floating_point():
        check_labels(tensors[1], model.n_classes)
    if batch_size is not None and batch_size < 2 and _has_batchnorm(model):
        raise ValueError(f"batch_size {batch_size}: a model with BatchNorm needs batches of at "
                         "least 2 items to train")


LR_SCHEDULES = ("constant", "cosine")

Monitor = Callable[[nn.Module], dict[str, "float | torch.Tensor"]]
"""``monitor(model) -> {name: value}``, called with the model in eval mode after every epoch;
each value (a number, or a tensor such as a few samples, kept on the CPU) is appended to the
history as ``"monitor_<name>"`` (e.g. sample quality per epoch)."""


def _check_stop_after(stop_after: int | None, epochs: int) -> int:
    """The number of epochs to run: ``stop_after`` if given (1 <= stop_after <= epochs)."""
    if stop_after is None:
        return epochs
    if not isinstance(stop_after, int) or not 1 <= stop_after <= epochs:
        raise ValueError(f"stop_after must be an int in [1, epochs={epochs}], got {stop_after!r}")
    return stop_after


def _monitored(model: nn.Module, monitor: Monitor | None, device: torch.device | str,
               history: dict[str, list]) -> None:
    """Run ``monitor`` on ``model`` in eval mode, without touching the training's random
    streams, and append its values to ``history`` as "monitor_<name>"."""
    if monitor is None:
        return
    was_training = model.training
    model.eval()
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        values = monitor(model)
    model.train(was_training)
    for name, value in values.items():
        value = value.detach().cpu() if isinstance(value, torch.Tensor) else float(value)
        history.setdefault(f"monitor_{name}", []).append(value)


def _stack_tensors(history: dict[str, list]) -> dict[str, list | torch.Tensor]:
    """Per-epoch tensors (a monitor's snapshots) stacked into one (epochs, ...) tensor."""
    return {name: torch.stack(values)
            if isinstance(values, list) and values and isinstance(values[0], torch.Tensor)
            else values
            for name, values in history.items()}


def fit(
    model: nn.Module,
    batch_loss: BatchLoss,
    train_data: torch.Tensor | Sequence[torch.Tensor],
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    test_data: torch.Tensor | Sequence[torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
    lr_schedule: str = "constant",
    test_every_epoch: bool = True,
    stop_after: int | None = None,
    monitor: Monitor | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` with Adam and return its per-epoch history.

    lr_schedule: "constant", or "cosine": the learning rate falls from ``lr`` to ``lr / 20``
    along a half cosine over all the training steps (Loshchilov & Hutter 2017, without restarts).
    test_every_epoch: evaluate ``test_data`` after every epoch (True) or only after the last
    (False: the "test_<term>" lists then hold one value; on small datasets such as the faces an
    evaluation costs a third of an epoch).
    stop_after: run only the first ``stop_after`` of the ``epochs`` (the learning-rate schedule
    keeps its full length), giving exactly the model that a full run holds after that epoch.
    monitor: measured after every epoch (see ``Monitor``); its time is not in "epoch_seconds".

    train_data / test_data: images (N, C, H, W) in [0, 1], or tuples of aligned tensors.
    Returns {"train_<term>": [...], "test_<term>": [...], "epoch_seconds": [...]}, one value
    per epoch for every field of ``batch_loss``'s result (nats per image for the VAE terms).
    Raises NonFiniteLossError naming the epoch and step if a loss term becomes NaN or infinite;
    the model then keeps the weights of the last finite step.
    """
    train = tuple(t.to(device) for t in _as_tuple(train_data))
    check_training_data(model, train, batch_size)
    if test_data is not None:
        check_training_data(model, _as_tuple(test_data))
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; expected one of {LR_SCHEDULES}")
    run = _check_stop_after(stop_after, epochs)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(train[0])
    steps_per_epoch = n // batch_size + (n % batch_size > 1)  # a final batch of 1 is skipped
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * steps_per_epoch), eta_min=lr / 20)
        if lr_schedule == "cosine" else None)

    def step(*batch: torch.Tensor) -> dict[str, float]:
        terms = batch_loss(model, *batch)
        values = finite_values(terms._asdict())   # the step's one host-device synchronisation
        optimizer.zero_grad(set_to_none=True)
        terms[0].backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return {f"train_{name}": value for name, value in values.items()}

    def test(history: dict[str, list]) -> None:
        last = len(history["epoch_seconds"]) == run
        if test_data is not None and (test_every_epoch or last):
            # The evaluation's random draws (a VAE's z) must not shift the training's noise.
            cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                terms = evaluate(model, batch_loss, test_data, device=device)
            for name, value in terms.items():
                history.setdefault(f"test_{name}", []).append(value)
        _monitored(model, monitor, device, history)
        model.train()

    model.train()
    shuffle = torch.Generator(device="cpu").manual_seed(seed)
    history = run_epochs(step, train, epochs=run, batch_size=batch_size, generator=shuffle,
                         device=device, end_of_epoch=test, progress=progress, desc=desc,
                         hint=f", lr {lr}")
    model.eval()
    return _stack_tensors(history)


def gan_step(gan, d_optimizer: torch.optim.Optimizer, g_optimizer: torch.optim.Optimizer,
             real: torch.Tensor, z: torch.Tensor):
    """One adversarial step (written out in the GAN chapter): update D on real and generated
    images, then update G with the non-saturating loss. real: (B, C, H, W) in [0, 1];
    z: (B, latent_dim). Returns the step's ``losses.GANTerms`` as Python numbers.

    Each loss is checked before its optimiser step (NonFiniteLossError): one host-device
    synchronisation per update, two per adversarial step.
    """
    from .losses import GANTerms, discriminator_loss, generator_loss

    fake = torch.sigmoid(gan.decode(z))
    real_logits = gan.discriminate(real)
    fake_logits = gan.discriminate(fake.detach())      # no gradient into G on D's step
    d_loss = discriminator_loss(real_logits, fake_logits)
    d_values = finite_values({"d_loss": d_loss, "d_real": torch.sigmoid(real_logits).mean(),
                              "d_fake": torch.sigmoid(fake_logits).mean()})
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_optimizer.step()

    g_loss = generator_loss(gan.discriminate(fake))   # D just changed: ask it again
    g_values = finite_values({"g_loss": g_loss})
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    return GANTerms(d_values["d_loss"], g_values["g_loss"], d_values["d_real"], d_values["d_fake"])


def fit_gan(
    gan: nn.Module,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    d_lr: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
    device: torch.device | str = "cpu",
    seed: int = 0,
    n_snapshots: int = 8,
    progress: bool = True,
    desc: str = "GAN",
    stop_after: int | None = None,
    monitor: Monitor | None = None,
) -> dict[str, list[float] | torch.Tensor]:
    """Train a ``models.GAN`` with Adam (Radford et al. 2015's settings by default; ``d_lr``
    gives the discriminator its own learning rate).

    images: (N, C, H, W) in [0, 1]. Returns per-epoch means of d_loss, g_loss, d_real, d_fake,
    epoch_seconds, and "snapshots": (epochs, n_snapshots, C, H, W) generated from fixed codes
    at the end of every epoch (by the weight-averaged generator, if the GAN keeps one; it is
    updated after every step). Raises NonFiniteLossError if a loss becomes NaN or infinite.
    stop_after and monitor as in :func:`fit`.
    """
    run = _check_stop_after(stop_after, epochs)
    images = images.to(device)
    check_training_data(gan, (images,), batch_size)
    gan.to(device).train()
    g_optimizer = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    d_optimizer = torch.optim.Adam(gan.discriminator.parameters(), lr=d_lr or lr, betas=betas)
    generator = torch.Generator(device="cpu").manual_seed(seed)   # codes, data order, noise
    fixed_z = torch.randn(n_snapshots, gan.latent_dim, generator=generator, device="cpu").to(device)
    snapshots = []

    def step(real: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        terms = gan_step(gan, d_optimizer, g_optimizer, real, z)._asdict()
        gan.update_average()
        return terms

    @torch.no_grad()
    def snapshot(history: dict[str, list]) -> None:
        gan.eval()
        snapshots.append(torch.sigmoid(gan.decode(fixed_z)).cpu())
        _monitored(gan, monitor, device, history)
        gan.train()

    history = run_epochs(step, (images,), epochs=run, batch_size=batch_size,
                         generator=generator, device=device, noise_dim=gan.latent_dim,
                         end_of_epoch=snapshot, progress=progress, desc=desc, hint=f", lr {lr}")
    history["snapshots"] = torch.stack(snapshots)
    gan.eval()
    return _stack_tensors(history)
