"""The package as pip installs it (Colab's first cell does `pip install git+...`): the wheel built
from pyproject.toml holds every module and data file of the source tree. An editable install
(the book's venv) reads the source folder and cannot show a missing subpackage."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_module_and_data_file_of_the_package(tmp_path):
    pytest.importorskip("setuptools", reason="builds with the venv's setuptools (offline)")
    tree = tmp_path / "source"      # a copy: setuptools writes build/ and *.egg-info beside it
    shutil.copytree(ROOT / "vae_utils", tree / "vae_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--wheel-dir", str(tmp_path), str(tree)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("vae_utils-*.whl")
    packaged = {name for name in zipfile.ZipFile(wheel).namelist()
                if name.startswith("vae_utils/")}
    source = {path.relative_to(ROOT).as_posix() for path in (ROOT / "vae_utils").rglob("*")
              if path.is_file() and path.suffix in (".py", ".json")
              and "__pycache__" not in path.parts}
    assert "vae_utils/metrics/evaluation.py" in source
    assert source - packaged == set(), "pyproject.toml leaves these out of the wheel"
