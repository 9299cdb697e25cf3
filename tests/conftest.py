import pytest
import torch

from vae_utils import faces


@pytest.fixture(scope="session")
def small_faces() -> torch.Tensor:
    """256 procedural faces (256, 3, 32, 32) in [0, 1]."""
    return faces.make_faces(256, seed=7)[0]
