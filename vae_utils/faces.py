"""Procedural faces: small RGB images drawn from six known latent factors.

The book's embedded dataset (introduced in the "memorising network" chapter): it needs no
download, renders 10,000 faces in about a second, and returns the true factor values, so later
chapters can measure how well a model's latent space recovers them.

Every factor is a number in [0, 1]:

=============  ==============================================================
``smile``      mouth curvature: 0 = frown, 0.5 = straight, 1 = broad smile
``skin_tone``  0 = light, 1 = dark
``hair``       hair colour: 0 = black, 0.5 = brown, 1 = blond
``glasses``    0 = none, 1 = glasses (sampled as a coin flip)
``beard``      beard: 0 = clean-shaven; it grows up from the chin, 1 = the whole lower face
``width``      face width: 0 = narrow, 1 = wide
=============  ==============================================================
"""

from __future__ import annotations

import numpy as np
import torch

FACTOR_NAMES: tuple[str, ...] = ("smile", "skin_tone", "hair", "glasses", "beard", "width")
N_FACTORS = len(FACTOR_NAMES)
DEFAULT_SIZE = 32

_BACKGROUND = np.array([0.90, 0.92, 0.95])
_SKIN_LIGHT, _SKIN_DARK = np.array([0.99, 0.87, 0.76]), np.array([0.42, 0.27, 0.17])
_HAIR_STOPS = np.array([[0.10, 0.08, 0.07], [0.45, 0.27, 0.12], [0.95, 0.82, 0.45]])
_EYE = np.array([0.10, 0.10, 0.15])
_GLASSES = np.array([0.05, 0.05, 0.30])
_MOUTH = np.array([0.60, 0.08, 0.12])
_BEARD_DARK = np.array([0.08, 0.06, 0.05])
_CHUNK = 2048  # faces rendered at once; bounds peak memory for large n


def sample_factors(n: int, seed: int = 0) -> torch.Tensor:
    """Draw ``n`` factor vectors, each factor uniform on [0, 1] except ``glasses`` in {0, 1}.

    Returns: (n, 6) float32, columns in the order of ``FACTOR_NAMES``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = np.random.default_rng(seed)
    factors = rng.random((n, N_FACTORS))
    glasses = FACTOR_NAMES.index("glasses")
    factors[:, glasses] = (factors[:, glasses] < 0.5).astype(float)
    return torch.from_numpy(factors.astype(np.float32))


def _soft_inside(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """1 inside a shape, 0 outside, a one-pixel linear ramp across the edge (anti-aliasing)."""
    return np.clip(0.5 - signed_distance / pixel, 0.0, 1.0)


def _ellipse_sd(u, v, cu, cv, a, b):
    """Approximate signed distance to an ellipse (negative inside), in image units."""
    rho = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return (rho - 1.0) * np.minimum(a, b)


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-blend ``colour`` (N, 3) or (3,) into ``canvas`` (N, 3, S, S) where ``mask`` (N, S, S)."""
    colour = np.broadcast_to(colour, (mask.shape[0], 3))[:, :, None, None]
    alpha = mask[:, None]
    canvas *= 1.0 - alpha
    canvas += alpha * colour


def _render_chunk(f: np.ndarray, size: int) -> np.ndarray:
    n = f.shape[0]
    smile, skin, hair, glasses, beard, width = (f[:, i, None, None] for i in range(N_FACTORS))
    axis = ((np.arange(size) + 0.5) / size * 2.0 - 1.0).astype(np.float32)  # pixel centres in [-1, 1]
    v, u = np.meshgrid(axis, axis, indexing="ij")  # v grows downwards
    u, v = u[None], v[None]
    pixel = 2.0 / size

    skin_rgb = (1 - f[:, 1:2]) * _SKIN_LIGHT + f[:, 1:2] * _SKIN_DARK
    t = f[:, 2:3] * 2.0  # piecewise-linear hair palette through the three stops
    hair_rgb = np.where(t < 1, (1 - t) * _HAIR_STOPS[0] + t * _HAIR_STOPS[1],
                        (2 - t) * _HAIR_STOPS[1] + (t - 1) * _HAIR_STOPS[2])

    canvas = np.empty((n, 3, size, size), dtype=np.float32)
    canvas[:] = _BACKGROUND[None, :, None, None]

    a = 0.50 + 0.25 * width  # half-width of the face
    b = 0.70
    face_sd = _ellipse_sd(u, v, 0.0, 0.12, a, b)
    head = _soft_inside(_ellipse_sd(u, v, 0.0, 0.02, a + 0.10, b + 0.08), pixel)
    _paint(canvas, head * _soft_inside(v - 0.25, pixel), hair_rgb)  # hair behind the face
    face = _soft_inside(face_sd, pixel)
    _paint(canvas, face, skin_rgb)
    _paint(canvas, face * _soft_inside(v + 0.38, pixel), hair_rgb)  # fringe

    # Beard: nearly black, tinted by the hair colour (visible on every skin tone),
    # growing up from the chin with the beard amount: none at 0, the whole lower face at 1.
    beard_top = 0.84 - 0.54 * beard
    beard_rgb = 0.2 * hair_rgb + 0.8 * _BEARD_DARK
    _paint(canvas, face * _soft_inside(beard_top - v, pixel) * 0.95, beard_rgb)

    eye_u, eye_v = 0.42 * a, 0.02
    for side in (-1.0, 1.0):
        _paint(canvas, _soft_inside(_ellipse_sd(u, v, side * eye_u, eye_v, 0.08, 0.08), pixel), _EYE)
        ring = np.abs(_ellipse_sd(u, v, side * eye_u, eye_v, 0.20, 0.17)) - 0.045
        _paint(canvas, _soft_inside(ring, pixel) * glasses, _GLASSES)
    bridge = np.maximum(np.abs(u) - (eye_u - 0.20), np.abs(v - eye_v) - 0.035)
    _paint(canvas, _soft_inside(bridge, pixel) * glasses, _GLASSES)

    # Mouth: a band around the parabola v = v0 + c (w^2 - u^2); c > 0 puts the corners up.
    # Wide and thick enough that the curve moves about 60 pixels of a 32x32 face.
    half_width = 0.42
    curvature = (2.0 * smile - 1.0) * 2.0
    centre_line = 0.46 + curvature * (half_width**2 - u**2)
    mouth = np.maximum(np.abs(v - centre_line) - 0.085, np.abs(u) - half_width)
    _paint(canvas, _soft_inside(mouth, pixel), _MOUTH)
    return np.clip(canvas, 0.0, 1.0)


def render_faces(factors: torch.Tensor, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """Draw one face per factor vector.

    factors: (N, 6) in [0, 1], columns as ``FACTOR_NAMES``; size: image side in pixels (>= 16).
    Returns: (N, 3, size, size) float32 in [0, 1].
    """
    factors = torch.as_tensor(factors, dtype=torch.float32, device="cpu")
    if factors.ndim != 2 or factors.shape[1] != N_FACTORS:
        raise ValueError(f"factors must have shape (N, {N_FACTORS}) ordered as {FACTOR_NAMES}, "
                         f"got {tuple(factors.shape)}")
    if not torch.isfinite(factors).all() or factors.min() < 0 or factors.max() > 1:
        raise ValueError("factors must be finite and lie in [0, 1]")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    f = factors.numpy()
    chunks = [_render_chunk(f[i:i + _CHUNK], size) for i in range(0, len(f), _CHUNK)]
    return torch.from_numpy(np.concatenate(chunks).astype(np.float32))


def make_faces(n: int, seed: int = 0, size: int = DEFAULT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``n`` faces: the same ``seed`` always gives the same faces.

    Returns: images (n, 3, size, size) float32 in [0, 1], factors (n, 6) float32 in [0, 1].
    """
    factors = sample_factors(n, seed)
    return render_faces(factors, size), factors
