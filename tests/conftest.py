import os
import subprocess
from pathlib import Path

import pytest
import torch

from vae_utils import faces


@pytest.fixture(scope="session")
def small_faces() -> torch.Tensor:
    """256 procedural faces (256, 3, 32, 32) in [0, 1]."""
    return faces.make_faces(256, seed=7)[0]


@pytest.fixture(scope="session")
def html_dir() -> Path:
    """The whole book as `make book` builds it (every notebook executed, warnings are errors,
    the decoders exported for the website's sliders): the HTML folder. Shared by the HTML checks
    (test_book_build.py) and the browser test (test_site_browser.py). `make test` builds the
    book first and passes VAE_UTILS_BUILT_SITE; without it, these tests run `make book` (the
    Makefile is the one place the build command is written)."""
    from book_files import ROOT

    if os.environ.get("VAE_UTILS_BUILT_SITE"):
        return Path(os.environ["VAE_UTILS_BUILT_SITE"])
    result = subprocess.run(["make", "book"], cwd=ROOT, capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return ROOT / "_build" / "html"


def pytest_collection_modifyitems(items):
    """Every test that uses the built site is marked `book` (`make check` leaves them out)."""
    for item in items:
        if "html_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends with no open matplotlib figure (a leaked figure warns)."""
    yield
    import matplotlib.pyplot as plt
    plt.close("all")
