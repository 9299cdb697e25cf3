import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_utils import faces


@pytest.fixture(scope="session")
def small_faces() -> torch.Tensor:
    """256 procedural faces (256, 3, 32, 32) in [0, 1]."""
    return faces.make_faces(256, seed=7)[0]


@pytest.fixture(scope="session")
def html_dir(tmp_path_factory) -> Path:
    """The whole book built as `make book` builds it (every notebook executed, warnings are
    errors, the decoders exported for the website's sliders): the HTML folder. Shared by the
    HTML checks (test_book_build.py) and the browser test (test_site_browser.py). With
    VAE_UTILS_BUILT_SITE=_build/html the tests check that folder instead of building."""
    from book_files import ROOT

    if os.environ.get("VAE_UTILS_BUILT_SITE"):        # check a site built before, e.g. by `make book`
        return Path(os.environ["VAE_UTILS_BUILT_SITE"])
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    env = {**os.environ, "VAE_UTILS_CACHE_MESSAGES": "0"}
    env.setdefault("VAE_UTILS_WEB_EXPORT", str(ROOT / "_site_assets" / "models"))
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--all", "-W", "-n", "--keep-going",
         "--path-output", str(out)],
        capture_output=True, text=True, timeout=1800, env=env)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return out / "_build" / "html"
