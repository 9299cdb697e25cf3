"""Training: device choice, seeding, the training history, and one epoch runner shared by the
VAE and GAN fit loops.

The loop is the one the autoencoder chapter writes out by hand, plus a progress bar
(``tqdm.auto``: a widget in Jupyter and Colab, text in a terminal; ``TQDM_DISABLE=1`` hides it),
a per-epoch :class:`History` and a clear stop on a non-finite loss or gradient.

Device safety, by construction: every random draw that orders the data or makes noise comes from
a CPU generator and is moved to the training device once per epoch; each step copies its loss
terms and a flag for its gradients to the host once (one synchronisation) and checks them
*before* the optimiser step, so a NaN never reaches the weights. The data order and a GAN's
noise are therefore the same for a seed on any device; the draws inside a model (the VAE's ε,
dropout masks) come from the device's own generator, so a GPU run still differs from a CPU run
in its details.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import checks, settings
from .data import batches

BatchLoss = Callable[..., NamedTuple]
"""``batch_loss(model, *batch) -> NamedTuple`` of batch-mean terms whose first field is ``loss``."""


class NonFiniteLossError(ValueError):
    """Training produced a NaN or infinite loss or gradient; the weights keep their last finite
    values."""


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
    seed = checks.integer(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- The history of a run ---------------------------------------------------------------------

@dataclass(eq=False)
class History:
    """What a training run recorded, epoch by epoch.

    ``history[name]`` is a list of finite numbers, one per epoch ("train_loss", "test_kl",
    "d_fake", "epoch_seconds", "monitor_frechet_distance", ...; a "test_" list holds one value
    when the test set was evaluated after the last epoch only), or, for images kept after every
    epoch ("snapshots", "monitor_snapshots"), a CPU tensor (epochs, n, C, H, W).
    ``train_seconds``: the wall time of the run that trained the model (set by ``zoo.trained``).
    """

    values: dict[str, list[float]] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    train_seconds: float | None = None

    def record(self, name: str, value: float) -> None:
        """Append one epoch's number; a NaN or infinite one is refused, naming it."""
        series = self.values.setdefault(name, [])
        value = float(value)
        if not math.isfinite(value):
            raise NonFiniteLossError(f"{name} after epoch {len(series) + 1} is {value}; a history "
                                     "holds finite numbers only")
        series.append(value)

    def record_images(self, name: str, images: torch.Tensor) -> None:
        """Append one epoch's images (n, C, H, W), kept on the CPU."""
        images = images.detach().cpu()[None]
        self.images[name] = (images if name not in self.images
                             else torch.cat([self.images[name], images]))

    @property
    def epochs(self) -> int:
        """How many epochs were trained."""
        return len(self.values.get("epoch_seconds", []))

    def __getitem__(self, name: str) -> list[float] | torch.Tensor:
        if name in self.values:
            return self.values[name]
        if name in self.images:
            return self.images[name]
        raise KeyError(f"the history has no {name!r}; it has {sorted(self)}")

    def __contains__(self, name: object) -> bool:
        return name in self.values or name in self.images

    def __iter__(self) -> Iterator[str]:
        return iter([*self.values, *self.images])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, History) and self.values == other.values
                and self.train_seconds == other.train_seconds
                and self.images.keys() == other.images.keys()
                and all(torch.equal(v, other.images[k]) for k, v in self.images.items()))

    def to_payload(self) -> dict:
        """Plain data for ``torch.save`` (loadable with ``weights_only=True``)."""
        return {"values": {k: list(v) for k, v in self.values.items()},
                "images": dict(self.images), "train_seconds": self.train_seconds}

    @classmethod
    def from_payload(cls, payload) -> "History":
        """The inverse of :meth:`to_payload`; a ValueError if it does not hold a history."""
        if not isinstance(payload, dict) or set(payload) != {"values", "images", "train_seconds"}:
            raise ValueError("not a saved History: expected keys values, images, train_seconds")
        history = cls(train_seconds=payload["train_seconds"])
        for name, series in payload["values"].items():
            for value in series:
                history.record(name, value)
        for name, images in payload["images"].items():
            history.images[name] = checks.floats(images, f"history images {name!r}")
        return history


# --- One step, checked ------------------------------------------------------------------------

def checked_values(terms: dict[str, torch.Tensor], parameters: Iterable[nn.Parameter]) -> dict[str, float]:
    """After ``backward()`` and before ``optimizer.step()``: copy a step's loss terms (scalar
    tensors) to the host together with a check of the gradients, in one synchronisation.

    Raises NonFiniteLossError naming the term if a loss term is NaN or infinite, or saying so if
    a gradient is (a finite loss can have a NaN gradient: a square root at 0, say); the step has
    then not touched the weights.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    # The gradients' norm (one fused kernel): NaN or infinite when a gradient is, or when the
    # gradients are so large (|g| > 1e19) that their squares overflow: a diverging step either way.
    norm = (torch.nn.utils.get_total_norm(grads) if grads
            else terms[next(iter(terms))].new_zeros(()))
    values = torch.stack([t.detach().reshape(()).float() for t in terms.values()]
                         + [norm.float()]).tolist()
    named = dict(zip(terms, values[:-1]))
    bad = {name: value for name, value in named.items() if not math.isfinite(value)}
    if bad:
        raise NonFiniteLossError(", ".join(f"{name} = {value}" for name, value in bad.items()))
    if not math.isfinite(values[-1]):
        raise NonFiniteLossError(f"the gradients' norm is {values[-1]} although the loss is finite "
                                 f"({', '.join(f'{k} = {v:.4g}' for k, v in named.items())})")
    return named


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _parameters_finite(model: nn.Module) -> bool:
    """One synchronisation: are all parameters and buffers finite?"""
    tensors = [t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()]
    return bool(math.isfinite(float(torch.nn.utils.get_total_norm(tensors, norm_type=math.inf))))


@torch.no_grad()
def evaluate(model: nn.Module, batch_loss: BatchLoss, data: torch.Tensor | Sequence[torch.Tensor],
             batch_size: int = 1000, device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean of each loss term over a whole dataset, model in eval mode.

    data: images (N, C, H, W) in [0, 1], or a tuple such as (images, labels) passed to batch_loss.
    Returns {term: mean over the N items}; a ValueError for an empty dataset, a
    NonFiniteLossError if a term is NaN or infinite.
    """
    tensors = _as_tuple(data)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    if len(tensors[0]) == 0:
        raise ValueError("evaluate() got an empty dataset: there is nothing to average")
    check_training_data(model, tensors)
    model.eval()
    totals: dict[str, float] = {}
    with checks.values_checked():
        for batch in batches(*tensors, batch_size=batch_size):
            batch = tuple(t.to(device) for t in batch)
            terms = batch_loss(model, *batch)
            values = torch.stack([t.detach().reshape(()) for t in terms]).tolist()  # one sync
            for name, value in zip(terms._fields, values):
                totals[name] = totals.get(name, 0.0) + value * len(batch[0])
    means = {name: total / len(tensors[0]) for name, total in totals.items()}
    bad = [name for name, value in means.items() if not math.isfinite(value)]
    if bad:
        raise NonFiniteLossError(f"evaluate(): {', '.join(f'{n} = {means[n]}' for n in bad)} "
                                 "(a model with damaged weights, or data it cannot score?)")
    return means


# --- The epoch runner -------------------------------------------------------------------------

Step = Callable[..., dict[str, float]]
"""``step(*batch) -> {term: value}``: one optimisation step on a batch of training tensors
(plus a batch of noise codes for a GAN), returning its loss terms as Python numbers."""


def steps_per_epoch(n: int, batch_size: int, skip_single_item: bool) -> int:
    """Optimiser steps in one epoch over n items (a final batch of one item is skipped under
    BatchNorm, which cannot train on it)."""
    full, rest = divmod(n, batch_size)
    return full + (rest > 0) - (skip_single_item and rest == 1 and n > 1)


def run_epochs(step: Step, tensors: tuple[torch.Tensor, ...], *, epochs: int, batch_size: int,
               generator: torch.Generator, device: torch.device | str, model: nn.Module | None = None,
               noise_dim: int = 0, end_of_epoch: Callable[[History], None] | None = None,
               progress: bool = True, desc: str = "training", hint: str = "") -> History:
    """The epoch loop that ``fit`` and ``fit_gan`` share.

    tensors: aligned training tensors (N, ...) already on ``device``. Each epoch draws a data
    order (and, if ``noise_dim``, N noise codes z ~ N(0, I) of that size) from ``generator``, a
    CPU generator, moves them to ``device`` once, and calls ``step`` on every batch. With a
    ``model`` that has BatchNorm, a final batch of a single item is skipped; at the end of every
    epoch the model's weights are checked once (and put back as they were at the epoch's start
    if any is NaN or infinite). ``end_of_epoch(history)`` may record more (test losses,
    snapshots). Epoch times are measured after synchronising the device. The caller has
    validated the data: inside the loop the models do not read their inputs' values.
    """
    epochs = checks.integer(epochs, "epochs", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    n = len(tensors[0])
    if n == 0:
        raise ValueError("the training data is empty: there is nothing to train on")
    if generator.device.type != "cpu":
        raise ValueError(f"the generator must live on the CPU, got one on {generator.device}")
    skip_single = model is not None and _has_batchnorm(model)
    if steps_per_epoch(n, batch_size, skip_single) < 1:
        raise ValueError(f"{n} item(s) with batch_size {batch_size} give no training step")
    history = History()
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch",
               disable=not progress or settings.progress_bars_disabled())
    for epoch in bar:
        start_weights = ({k: v.detach().clone() for k, v in model.state_dict().items()}
                         if model is not None else None)
        synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device="cpu").to(device)
        noise = (torch.randn(n, noise_dim, generator=generator, device="cpu").to(device)
                 if noise_dim else None)
        totals: dict[str, float] = {}
        seen = 0
        for number, begin in enumerate(range(0, n, batch_size), start=1):
            index = order[begin:begin + batch_size]
            if skip_single and len(index) == 1 and n > 1:
                continue
            batch = tuple(t[index] for t in tensors)
            if noise is not None:
                batch += (noise[begin:begin + len(index)],)
            try:
                with checks.values_checked():
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
        seconds = time.perf_counter() - start
        if model is not None and not _parameters_finite(model):
            model.load_state_dict(start_weights)
            raise NonFiniteLossError(f"a weight became NaN or infinite during epoch {epoch} "
                                     f"(batch size {batch_size}{hint}); the weights are put back "
                                     f"as they were at the start of epoch {epoch}.")
        history.record("epoch_seconds", seconds)
        for name, total in totals.items():
            history.record(name, total / seen)
        if end_of_epoch is not None:
            end_of_epoch(history)
        bar.set_postfix({k: f"{v[-1]:.2f}" for k, v in history.values.items()
                         if k.endswith("loss") and v})
    return history


def _as_tuple(data: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (data,) if isinstance(data, torch.Tensor) else tuple(data)


def check_training_data(model: nn.Module, tensors: tuple[torch.Tensor, ...],
                        batch_size: int | None = None) -> tuple[torch.Tensor, ...]:
    """Validate a dataset once (image shape, dtype, range and finite values; one class label per
    image, in range) instead of on every batch, and refuse what a model with BatchNorm cannot
    train on (batches of one item, fewer than 2 images). Returns the tensors as checked.

    tensors: (images (N, C, H, W) in [0, 1], optional labels (N,) ...) as the model takes them;
    batch_size: the training batch size (None for data that is only evaluated)."""
    tensors = list(tensors)
    if hasattr(model, "image_shape"):
        tensors[0] = checks.images(tensors[0], model.image_shape)
    if len(tensors) > 1 and hasattr(model, "n_classes"):
        tensors[1] = checks.labels(tensors[1], model.n_classes, count=len(tensors[0]))
    checks.same_length(**{f"tensor {i}": t for i, t in enumerate(tensors)})
    if batch_size is not None and _has_batchnorm(model):
        if batch_size < 2:
            raise ValueError(f"batch_size {batch_size}: a model with BatchNorm needs batches of "
                             "at least 2 items to train")
        if len(tensors[0]) < 2:
            raise ValueError(f"a model with BatchNorm needs at least 2 training images, got "
                             f"{len(tensors[0])}")
    return tuple(tensors)


LR_SCHEDULES = ("constant", "cosine")

Monitor = Callable[[nn.Module], dict[str, "float | torch.Tensor"]]
"""``monitor(model) -> {name: value}``, called with the model in eval mode after every epoch;
each value (a number, or a tensor such as a few samples, kept on the CPU) is recorded in the
history as ``"monitor_<name>"`` (e.g. sample quality per epoch)."""


def _monitored(model: nn.Module, monitor: Monitor | None, device: torch.device | str,
               history: History) -> None:
    """Run ``monitor`` on ``model`` in eval mode, without touching the training's random
    streams, and record its values in ``history`` as "monitor_<name>"."""
    if monitor is None:
        return
    was_training = model.training
    model.eval()
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        values = monitor(model)
    model.train(was_training)
    for name, value in values.items():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            history.record_images(f"monitor_{name}", value)
        else:
            history.record(f"monitor_{name}", float(value))


def _training_settings(epochs, batch_size, lr, seed, stop_after) -> tuple[int, int, float, int, int]:
    """Validated (epochs, batch_size, lr, seed, epochs to run)."""
    epochs = checks.integer(epochs, "epochs", minimum=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    lr = checks.number(lr, "lr (the learning rate)", above=0)
    seed = checks.integer(seed, "seed", minimum=0)
    run = epochs if stop_after is None else checks.integer(
        stop_after, f"stop_after (at most epochs = {epochs})", minimum=1, maximum=epochs)
    return epochs, batch_size, lr, seed, run


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
) -> History:
    """Train ``model`` with Adam and return its per-epoch :class:`History`.

    lr_schedule: "constant", or "cosine": the learning rate falls from ``lr`` to ``lr / 20``
    along a half cosine over all the training steps (Loshchilov & Hutter 2017, without restarts).
    test_every_epoch: evaluate ``test_data`` after every epoch (True) or only after the last
    (False: the "test_<term>" lists then hold one value; on small datasets such as the faces an
    evaluation costs a third of an epoch).
    stop_after: run only the first ``stop_after`` of the ``epochs`` (the learning-rate schedule
    keeps its full length), giving exactly the model that a full run holds after that epoch.
    monitor: measured after every epoch (see ``Monitor``); its time is not in "epoch_seconds".

    train_data / test_data: images (N, C, H, W) in [0, 1], or tuples of aligned tensors.
    Records "train_<term>" and "test_<term>" for every field of ``batch_loss``'s result (nats
    per image for the VAE terms) and "epoch_seconds". Raises NonFiniteLossError naming the epoch
    and step if a loss term or a gradient becomes NaN or infinite; the model then keeps the
    weights of the last finite step.
    """
    epochs, batch_size, lr, seed, run = _training_settings(epochs, batch_size, lr, seed, stop_after)
    checks.choice(lr_schedule, "lr_schedule", LR_SCHEDULES)
    train = check_training_data(model, tuple(t.to(device) for t in _as_tuple(train_data)), batch_size)
    test = None if test_data is None else check_training_data(model, _as_tuple(test_data))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = steps_per_epoch(len(train[0]), batch_size, _has_batchnorm(model))
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * steps), eta_min=lr / 20)
        if lr_schedule == "cosine" else None)

    def step(*batch: torch.Tensor) -> dict[str, float]:
        terms = batch_loss(model, *batch)
        optimizer.zero_grad(set_to_none=True)
        terms[0].backward()
        values = checked_values(terms._asdict(), model.parameters())   # the step's one sync
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return {f"train_{name}": value for name, value in values.items()}

    def test_and_monitor(history: History) -> None:
        if test is not None and (test_every_epoch or history.epochs == run):
            # The evaluation's random draws (a VAE's z) must not shift the training's noise.
            cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                terms = evaluate(model, batch_loss, test, device=device)
            for name, value in terms.items():
                history.record(f"test_{name}", value)
        _monitored(model, monitor, device, history)
        model.train()

    model.train()
    shuffle = torch.Generator(device="cpu").manual_seed(seed)
    history = run_epochs(step, train, epochs=run, batch_size=batch_size, generator=shuffle,
                         device=device, model=model, end_of_epoch=test_and_monitor,
                         progress=progress, desc=desc, hint=f", lr {lr}")
    model.eval()
    return history


def gan_step(gan, d_optimizer: torch.optim.Optimizer, g_optimizer: torch.optim.Optimizer,
             real: torch.Tensor, z: torch.Tensor):
    """One adversarial step (written out in the GAN chapter): update D on real and generated
    images, then update G with the non-saturating loss. real: (B, C, H, W) in [0, 1];
    z: (B, latent_dim). Returns the step's ``losses.GANTerms`` as Python numbers.

    Each update's loss and gradients are checked before its optimiser step
    (NonFiniteLossError): one host-device synchronisation per update, two per adversarial step.
    """
    from .losses import GANTerms, discriminator_loss, generator_loss

    fake = torch.sigmoid(gan.decode(z, trained=True))
    real_logits = gan.discriminate(real)
    fake_logits = gan.discriminate(fake.detach())      # no gradient into G on D's step
    d_loss = discriminator_loss(real_logits, fake_logits)
    d_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    d_values = checked_values({"d_loss": d_loss, "d_real": torch.sigmoid(real_logits).mean(),
                               "d_fake": torch.sigmoid(fake_logits).mean()},
                              gan.discriminator.parameters())
    d_optimizer.step()

    g_loss = generator_loss(gan.discriminate(fake))   # D just changed: ask it again
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_values = checked_values({"g_loss": g_loss}, gan.generator.parameters())
    g_optimizer.step()
    return GANTerms(d_values["d_loss"], g_values["g_loss"], d_values["d_real"], d_values["d_fake"])


AVERAGE_STATISTICS_CODES = 2048
"""Codes on which the averaged generator's BatchNorm statistics are measured after every epoch."""


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
) -> History:
    """Train a ``gan.GAN`` with Adam (Radford et al. 2015's settings by default; ``d_lr``
    gives the discriminator its own learning rate).

    images: (N, C, H, W) in [0, 1]. Records per-epoch means of d_loss, g_loss, d_real, d_fake,
    epoch_seconds, and "snapshots": (epochs, n_snapshots, C, H, W) generated from fixed codes
    at the end of every epoch by the generator the GAN samples from (its weight average, if it
    keeps one: updated after every step, its BatchNorm statistics measured after every epoch).
    Raises NonFiniteLossError if a loss or a gradient becomes NaN or infinite.
    stop_after and monitor as in :func:`fit`.
    """
    epochs, batch_size, lr, seed, run = _training_settings(epochs, batch_size, lr, seed, stop_after)
    d_lr = lr if d_lr is None else checks.number(d_lr, "d_lr (the discriminator's learning rate)",
                                                 above=0)
    n_snapshots = checks.integer(n_snapshots, "n_snapshots", minimum=1)
    (images,) = check_training_data(gan, (images.to(device),), batch_size)
    gan.to(device).train()
    g_optimizer = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    d_optimizer = torch.optim.Adam(gan.discriminator.parameters(), lr=d_lr, betas=betas)
    generator = torch.Generator(device="cpu").manual_seed(seed)   # codes, data order, noise
    fixed_z = torch.randn(n_snapshots, gan.latent_dim, generator=generator, device="cpu").to(device)
    statistics_z = torch.randn(AVERAGE_STATISTICS_CODES, gan.latent_dim, generator=generator,
                               device="cpu").to(device)

    def step(real: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        terms = gan_step(gan, d_optimizer, g_optimizer, real, z)._asdict()
        gan.update_average()
        return terms

    @torch.no_grad()
    def snapshot(history: History) -> None:
        with checks.values_checked():   # the codes were drawn here: nothing to read
            gan.refresh_average_statistics(statistics_z)
            gan.eval()
            history.record_images("snapshots", torch.sigmoid(gan.decode(fixed_z)))
        _monitored(gan, monitor, device, history)
        gan.train()

    history = run_epochs(step, (images,), epochs=run, batch_size=batch_size,
                         generator=generator, device=device, model=gan, noise_dim=gan.latent_dim,
                         end_of_epoch=snapshot, progress=progress, desc=desc,
                         hint=f", lr {lr}, d_lr {d_lr}")
    gan.eval()
    return history
