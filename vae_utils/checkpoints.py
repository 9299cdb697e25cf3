"""Train once, reuse everywhere: a checkpoint cache keyed by the full training configuration.

A chapter asks :func:`train_or_load` for a model. If a checkpoint written for the *same*
configuration (model config, parameter shapes, training settings, seed, data) exists, the
weights are loaded; otherwise the model is trained and saved. A changed setting gives a new
key, so a stale file is never loaded.

Folder: the ``directory`` argument > ``$VAE_UTILS_CHECKPOINTS`` > ``./checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

CHECKPOINT_ENV_VAR = "VAE_UTILS_CHECKPOINTS"
FORMAT_VERSION = 1


def checkpoint_dir(directory: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder: explicit > ``$VAE_UTILS_CHECKPOINTS`` > ``./checkpoints``."""
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get(CHECKPOINT_ENV_VAR) or "checkpoints")


def full_config(model: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a trained model: ``config`` plus the model's own config and parameter shapes."""
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    full = {"format": FORMAT_VERSION, "model": getattr(model, "config", None),
            "shapes": shapes, "train": config}
    json.dumps(full, sort_keys=True)  # raises TypeError early if config is not plain data
    return full


def config_key(config: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict[str, Any],
                    history: dict[str, list[float] | torch.Tensor]) -> None:
    """Write weights, configuration and history (lists of numbers, or tensors such as sample
    snapshots) atomically: a temporary file, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config_json": json.dumps(config, sort_keys=True),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "history": {k: v.detach().cpu() if isinstance(v, torch.Tensor) else [float(x) for x in v]
                           for k, v in history.items()}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | os.PathLike, model: nn.Module,
                    config: dict[str, Any]) -> dict[str, list[float]]:
    """Load weights into ``model`` and return the saved history.

    Raises ValueError if the file was written for another configuration.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved = json.loads(payload["config_json"])
    if saved != json.loads(json.dumps(config, sort_keys=True)):
        raise ValueError(f"checkpoint {path} was written for another configuration:\n"
                         f"  saved:    {saved}\n  expected: {config}")
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return payload["history"]


def train_or_load(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    train: Callable[[], dict[str, list[float]]],
    directory: str | os.PathLike | None = None,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """Load ``model``'s weights from the cache, or run ``train()`` (which trains ``model`` in
    place and returns its history) and save the result.

    config: plain data (numbers, strings, lists, dicts) describing everything else that
    changes the result: data, loss, epochs, learning rate, seed... Returns the history, with
    ``train_seconds`` (the wall time of the original training run).
    """
    full = full_config(model, config)
    path = checkpoint_dir(directory) / f"{name}-{config_key(full)}.pt"
    if path.exists():
        history = load_checkpoint(path, model, full)
        if verbose:
            print(f"Loaded {name} from {path.name} (trained in {history['train_seconds'][0]:.0f} s).")
        return history
    start = time.perf_counter()
    history = dict(train())
    history["train_seconds"] = [time.perf_counter() - start]
    save_checkpoint(path, model, full, history)
    if verbose:
        print(f"Trained {name} in {history['train_seconds'][0]:.0f} s; saved {path.name}.")
    return history
