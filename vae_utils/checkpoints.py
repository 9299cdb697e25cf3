"""Train once, reuse everywhere: a checkpoint cache keyed by the full training configuration.

``zoo.trained`` asks :func:`load_cached` for a model. If a checkpoint written for the *same*
configuration (model config, parameter shapes, training settings, seed, data, code) exists, the
weights are loaded; otherwise the zoo trains the model and :func:`save_cached` saves it. A
changed setting gives a new key, so a stale file is never loaded.

A broken cache never costs a reader their work: a damaged or foreign file under a cache name
(truncated, not ours, weights that do not fit, NaN or infinite weights) is moved aside
(``<file>.damaged``) with a :class:`CheckpointWarning` and the model is trained again; a folder
that cannot be written, or a disk that fills up while saving, gives a warning and the trained
model, never an error. Files are written atomically (a temporary file, then a rename) and
durably (fsync before and after the rename).

Weights are stored in half precision (float16): half the bytes (the website publishes every
checkpoint, see ``vae_utils.pretrained``), at a relative rounding of at most 2**-11, which moves
the book's main VAE's test -ELBO by 1e-4 nats. ``zoo.trained`` rounds a model it has just
trained to what is stored (:func:`round_to_stored`), so a model gives the same numbers whether
it was trained in this session or loaded.

Folder: the ``directory`` argument > ``$VAE_UTILS_CHECKPOINTS`` > ``./checkpoints``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checks, settings
from .training import History

CHECKPOINT_ENV_VAR = "VAE_UTILS_CHECKPOINTS"   # read by settings.checkpoint_dir()
FORMAT_VERSION = 3
STORED_DTYPE = torch.float16
PAYLOAD_KEYS = {"config_json", "state_dict", "history"}


class CheckpointError(ValueError):
    """A file under a checkpoint name that cannot be used: damaged, foreign, or written for
    another configuration."""


class CheckpointWarning(UserWarning):
    """The cache could not be used as asked (a damaged file, a folder that cannot be written);
    the model is trained anyway."""


def checkpoint_dir(directory: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder: explicit > ``$VAE_UTILS_CHECKPOINTS`` > ``./checkpoints``."""
    return Path(directory) if directory is not None else settings.checkpoint_dir()


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


def checkpoint_path(name: str, config: dict[str, Any],
                    directory: str | os.PathLike | None = None) -> Path:
    """The file ``<folder>/<name>-<key>.pt`` for this configuration; ``name`` may only use
    letters, digits, '.', '_' and '-', so it can never address a file outside the folder."""
    checks.file_stem(name, "checkpoint name")
    folder = checkpoint_dir(directory)
    path = folder / f"{name}-{config_key(config)}.pt"
    folder_abs = Path(os.path.normpath(folder.absolute()))  # lexical: a symlinked file is fine
    if Path(os.path.normpath(path.absolute())).parent != folder_abs:
        raise ValueError(f"checkpoint name {name!r} leads outside the folder {folder}")
    return path


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(folder: Path) -> None:
    """Make a rename inside ``folder`` durable; skipped where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to fsync a folder; the rename has still happened
    finally:
        os.close(fd)


def _stored(t: torch.Tensor) -> torch.Tensor:
    """``t`` as the file stores it: float tensors in float16 where every value fits (|x| <=
    65504), otherwise unchanged; other tensors (counters) unchanged. On the CPU."""
    t = t.detach().cpu()
    if t.is_floating_point() and t.dtype != STORED_DTYPE:
        half = t.to(STORED_DTYPE)
        if torch.isfinite(half).all() or not torch.isfinite(t).all():
            return half
    return t


@torch.no_grad()
def round_to_stored(model: nn.Module) -> nn.Module:
    """Round ``model``'s weights and buffers in place to the precision a checkpoint stores, so
    that the model just trained and the model loaded from its file are the same model."""
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(_stored(tensor))
    return model


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict[str, Any],
                    history: History) -> None:
    """Write weights (float16, see :func:`round_to_stored`), configuration and history atomically and durably: a temporary file in the same folder, flushed and fsynced,
    renamed over ``path``, then the folder fsynced. The file gets the permissions the umask
    allows (``0o666 & ~umask``). Raises OSError (full disk, read-only folder) and leaves no
    temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config_json": json.dumps(config, sort_keys=True),
               "state_dict": {k: _stored(v) for k, v in model.state_dict().items()},
               "history": history.to_payload()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0o600: only the owner could read it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(path.parent)


def _first_line(err: BaseException) -> str:
    """``ErrorClass: first line of the message``, for a one-line warning."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _read_payload(path: Path) -> dict[str, Any]:
    """The saved dict, checked to be one of ours; CheckpointError if it cannot be."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # empty, truncated, not a torch file, or it pickles other objects
        raise CheckpointError(f"checkpoint {path} cannot be read: it is empty, truncated or not a "
                              f"PyTorch file ({_first_line(err)})") from err
    if not isinstance(payload, dict) or set(payload) != PAYLOAD_KEYS:
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {path} is not a vae_utils checkpoint: expected a dict "
                              f"with keys {sorted(PAYLOAD_KEYS)}, found {found}")
    return payload


def _check_fits(path: Path, model: nn.Module, state: Any) -> None:
    """Refuse a state_dict whose names or shapes differ from ``model``'s, *before* loading it:
    a failed ``load_state_dict`` would leave the model half overwritten."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = state if isinstance(state, dict) else {}
    found = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state.items()}
    names = expected.keys() | found.keys()
    differ = sorted(str(k) for k in names if expected.get(k) != found.get(k))
    if differ:
        raise CheckpointError(f"checkpoint {path} holds weights that do not fit "
                              f"{type(model).__name__}: {len(differ)} tensors are missing, extra "
                              f"or differently shaped (first: {differ[:3]})")


def _check_finite_weights(path: Path, state: dict[str, torch.Tensor]) -> None:
    bad = [name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path} holds NaN or infinite weights in {len(bad)} "
                              f"tensors (first: {bad[:3]}): a model trained from it would only "
                              "give NaN")


def load_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict[str, Any]) -> History:
    """Load weights into ``model`` and return the saved history.

    Raises CheckpointError (a ValueError) if the file is damaged, is not a checkpoint of this
    package, does not fit ``model``, holds NaN or infinite weights, or was written for another
    configuration; ``model`` is then left untouched.
    """
    path = Path(path)
    payload = _read_payload(path)
    try:
        saved = json.loads(payload["config_json"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an unreadable configuration "
                              f"({_first_line(err)})") from err
    if saved != json.loads(json.dumps(config, sort_keys=True)):
        raise CheckpointError(f"checkpoint {path} was written for another configuration:\n"
                              f"  saved:    {saved}\n  expected: {config}")
    _check_fits(path, model, payload["state_dict"])
    _check_finite_weights(path, payload["state_dict"])
    try:
        history = History.from_payload(payload["history"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has an unreadable history ({_first_line(err)})") from err
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return history


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to the first free name of ``<file>.damaged``, ``<file>.damaged-2``, ...;
    return the new path (the bytes are kept for inspection)."""
    target, n = path.with_name(f"{path.name}.damaged"), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{n}")
    os.replace(path, target)
    return target


def _warn(message: str) -> None:
    warnings.warn(message, CheckpointWarning, stacklevel=4)  # points at zoo.trained's caller


def _load_or_set_aside(path: Path, model: nn.Module, full: dict[str, Any]) -> History | None:
    """The saved history if ``path`` loads into ``model``; None if there is no usable file (a
    damaged one is moved aside, with a warning, so the model can be trained and saved)."""
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, model, full)
    except CheckpointError as err:
        problem = str(err).splitlines()[0]
    try:
        where = f"moved it to {_move_aside(path).name} for inspection"
    except OSError as err:
        where = f"could not move it aside ({_first_line(err)}); delete it by hand"
    _warn(f"{problem}; {where} and training the model again.")
    return None


def writable(name: str, directory: str | os.PathLike | None = None) -> bool:
    """Whether the cache folder can be written: create it and a probe file in it. If that
    fails, warn now, before training, that ``name`` will be trained but not saved."""
    folder = checkpoint_dir(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe-", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
        return True
    except OSError as err:
        _warn(f"cannot write checkpoints to {folder.absolute()} ({_first_line(err)}): {name} will "
              f"be trained but NOT saved, so the next run trains it again. To keep it, point "
              f"{CHECKPOINT_ENV_VAR} at a writable folder, e.g. "
              f"`export {CHECKPOINT_ENV_VAR}=$HOME/vae-checkpoints` (or pass directory=...).")
        return False


def _save_or_warn(path: Path, model: nn.Module, full: dict[str, Any], history: History) -> bool:
    """Save, or warn (full disk, folder gone read-only...) and go on: the model is trained."""
    try:
        save_checkpoint(path, model, full, history)
        return True
    except (OSError, RuntimeError) as err:  # RuntimeError: torch's writer reporting a failed write
        _warn(f"could not save checkpoint {path} ({_first_line(err)}); the trained model is "
              f"kept in memory but the next run trains it again. Free some space or point "
              f"{CHECKPOINT_ENV_VAR} at another folder.")
        return False


def cached_path(name: str, model: nn.Module, config: dict[str, Any],
                directory: str | os.PathLike | None = None) -> Path:
    """The cache file for ``model`` trained with ``config``: ``<folder>/<name>-<key>.pt``.

    name: letters, digits, '.', '_', '-' (ValueError otherwise). config: plain data (numbers,
    strings, lists, dicts) describing everything else that changes the result: data, loss,
    epochs, learning rate, seed, code..."""
    return checkpoint_path(name, full_config(model, config), directory)


def load_cached(name: str, model: nn.Module, config: dict[str, Any],
                directory: str | os.PathLike | None = None) -> History | None:
    """Load ``model``'s weights from the cache and return their history, or None if there is no
    usable file (a damaged one is moved aside with a :class:`CheckpointWarning`)."""
    full = full_config(model, config)
    return _load_or_set_aside(checkpoint_path(name, full, directory), model, full)


def save_cached(name: str, model: nn.Module, config: dict[str, Any], history: History,
                directory: str | os.PathLike | None = None) -> Path | None:
    """Save a trained model under its cache name; the file's path, or None (with a
    :class:`CheckpointWarning`) if the write failed (a full disk, a folder gone read-only)."""
    full = full_config(model, config)
    path = checkpoint_path(name, full, directory)
    return path if _save_or_warn(path, model, full, history) else None
