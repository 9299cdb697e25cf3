"""Every environment variable the package reads, in one place.

Each function reads its variable when called (not at import), so a notebook or a test can change
it on the fly. :data:`SETTINGS` lists them with their defaults and who sets them;
``ARCHITECTURE.md`` prints the same table (a test checks that the two agree).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple


class Setting(NamedTuple):
    """One environment variable: its name, what it holds when unset, and who sets it."""

    name: str
    default: str
    set_by: str
    meaning: str


SETTINGS = (
    Setting("VAE_UTILS_DATA", "./data", "the Makefile (../shared/data where it holds MNIST)",
            "folder that holds the datasets; torchvision downloads MNIST into it if missing"),
    Setting("VAE_UTILS_CHECKPOINTS", "./checkpoints", "the Makefile; a reader, to move the cache",
            "folder of the trained-model cache"),
    Setting("VAE_UTILS_CACHE_MESSAGES", "1", "the Makefile's book build (0)",
            "0 silences the cache's 'Loaded ... / Trained ...' lines"),
    Setting("VAE_UTILS_WEB_EXPORT", "unset", "the Makefile's book build",
            "folder the website serves as /models/; unset, nothing is exported"),
    Setting("VAE_UTILS_FIGURE_AUDIT", "unset", "the Makefile's book build",
            "1: every figure's PNG records its smallest text size, for the phone test"),
    Setting("VAE_UTILS_PRETRAINED_URL", "unset", "the Colab notebooks (the website's address)",
            "base URL of the published checkpoints; unset or empty, models are trained here"),
    Setting("TQDM_DISABLE", "unset", "the Makefile", "1 hides the progress bars"),
)
"""What the package reads. The tests read three more, which the package never does:
VAE_UTILS_BUILT_SITE (check this built site instead of building one), VAE_UTILS_EXPECT_IPYWIDGETS
(the ipywidgets version the widget tests must find) and CI (under CI=true a missing browser fails
the browser test instead of skipping it)."""


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def data_dir() -> Path:
    """``$VAE_UTILS_DATA``, else ``./data``."""
    return Path(os.environ.get("VAE_UTILS_DATA") or "data")


def checkpoint_dir() -> Path:
    """``$VAE_UTILS_CHECKPOINTS``, else ``./checkpoints``."""
    return Path(os.environ.get("VAE_UTILS_CHECKPOINTS") or "checkpoints")


def cache_messages() -> bool:
    """Whether the checkpoint cache prints what it loaded or trained (``$VAE_UTILS_CACHE_MESSAGES``)."""
    return _flag("VAE_UTILS_CACHE_MESSAGES", True)


def web_export_dir() -> Path | None:
    """The folder the website's decoders are exported into, or None (Jupyter, Colab, tests)."""
    folder = os.environ.get("VAE_UTILS_WEB_EXPORT")
    return Path(folder) if folder else None


def figure_audit() -> bool:
    """Whether figures record their smallest text size in their PNG (the book build does)."""
    return _flag("VAE_UTILS_FIGURE_AUDIT", False)


def pretrained_url() -> str | None:
    """Base URL of published checkpoints (``$VAE_UTILS_PRETRAINED_URL``), or None: train locally."""
    url = (os.environ.get("VAE_UTILS_PRETRAINED_URL") or "").strip()
    return url.rstrip("/") + "/" if url else None


def progress_bars_disabled() -> bool:
    """True if ``$TQDM_DISABLE`` is set (tqdm's notebook bar ignores that variable by itself)."""
    return _flag("TQDM_DISABLE", False)
