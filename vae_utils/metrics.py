"""Measurements of trained models: held-out loss and importance-weighted log-likelihood.

``iwae_nll`` is introduced in the VAE chapter.
"""

from __future__ import annotations

import math

import torch

from .data import batches
from .losses import bernoulli_nll
from .models import VAE


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


@torch.no_grad()
def iwae_log_weights(model: VAE, x: torch.Tensor, k: int) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x).

    x: (B, C, H, W) in [0, 1] -> (k, B).
    """
    mu, logvar = model.encode(x)  # (B, D)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, device=mu.device)  # (k, B, D)
    logits = model.decode(z.flatten(0, 1)).unflatten(0, (k, len(x)))  # (k, B, C, H, W)
    log_px_z = -bernoulli_nll(logits.flatten(0, 1), x.expand(k, *x.shape).flatten(0, 1)).view(k, -1)
    log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    log_qz = _log_normal(z, mu, logvar)
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def iwae_nll(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 200) -> float:
    """Importance-weighted estimate of -log p(x) (Burda et al. 2015), nats per image.

    -log (1/k) sum_i w_i, averaged over x: (N, C, H, W) in [0, 1]. With k = 1 it is a one-sample
    negative ELBO; it decreases towards -log p(x) as k grows. Uses the model's Bernoulli
    likelihood (see ``losses.bernoulli_nll``).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for (xb,) in batches(x, batch_size=batch_size):
        log_w = iwae_log_weights(model, xb.to(device), k)
        total += -(torch.logsumexp(log_w, dim=0) - math.log(k)).sum().item()
    return total / len(x)


# --- Latent attributes: which latent dimension holds which known factor (latent attributes chapter)

def discretize(values: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Bin each column of values (N, K) into ``bins`` equal-width bins between its min and max.

    A column with at most ``bins`` distinct values (e.g. glasses on/off) keeps one bin per value.
    Returns int64 (N, K) bin indices.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a matrix (N, K), got shape {tuple(values.shape)}")
    columns = []
    for column in values.T.contiguous():
        distinct = column.unique()
        if len(distinct) <= bins:
            columns.append(torch.searchsorted(distinct, column))
            continue
        low, high = column.min(), column.max()
        scaled = (column - low) / (high - low) * bins
        columns.append(scaled.long().clamp(max=bins - 1))
    return torch.stack(columns, dim=1)


def _entropy(codes: torch.Tensor) -> float:
    p = torch.bincount(codes).double() / len(codes)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def _mutual_information(a: torch.Tensor, b: torch.Tensor) -> float:
    """I(a; b) in nats for two integer code vectors (N,)."""
    width = int(b.max()) + 1
    joint = torch.bincount(a * width + b).double() / len(a)
    pa = torch.bincount(a).double() / len(a)
    pb = torch.bincount(b).double() / len(b)
    ab = torch.nonzero(joint > 0, as_tuple=True)[0]
    ia, ib = ab // width, ab % width
    p = joint[ab]
    return float((p * (p.log() - pa[ia].log() - pb[ib].log())).sum())


def mutual_information_matrix(latents: torch.Tensor, factors: torch.Tensor,
                              bins: int = 20) -> torch.Tensor:
    """Normalised mutual information I(z_j; v_k) / H(v_k) between every latent dimension and every
    known factor, both discretised (the estimator of Locatello et al. 2019).

    latents: (N, D), e.g. posterior means; factors: (N, K) true factor values.
    Returns (D, K) in [0, 1]: 1 means z_j determines v_k completely (at this binning).
    """
    latents, factors = torch.as_tensor(latents), torch.as_tensor(factors)
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(f"expected latents (N, D) and factors (N, K) with the same N, got "
                         f"{tuple(latents.shape)} and {tuple(factors.shape)}")
    if len(latents) < 10 * bins:
        raise ValueError(f"need at least {10 * bins} samples for {bins} bins, got {len(latents)}")
    z, v = discretize(latents, bins), discretize(factors, bins)
    result = torch.zeros(z.shape[1], v.shape[1], dtype=torch.float64)
    for k in range(v.shape[1]):
        h = _entropy(v[:, k])
        if h == 0:
            raise ValueError(f"factor {k} is constant: its information cannot be measured")
        for j in range(z.shape[1]):
            result[j, k] = _mutual_information(z[:, j], v[:, k]) / h
    return result.float()


def mig(normalised_mi: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mutual Information Gap (Chen et al. 2018): for each factor, the gap between the two latent
    dimensions that know most about it, averaged over factors.

    normalised_mi: (D, K) from :func:`mutual_information_matrix`, D >= 2.
    Returns (MIG in [0, 1], per-factor gaps (K,)).
    """
    if normalised_mi.ndim != 2 or normalised_mi.shape[0] < 2:
        raise ValueError(f"expected a (D >= 2, K) matrix, got {tuple(normalised_mi.shape)}")
    top2 = normalised_mi.topk(2, dim=0).values  # (2, K)
    gaps = top2[0] - top2[1]
    return float(gaps.mean()), gaps


def latent_labels(normalised_mi: torch.Tensor, factor_names: list[str] | tuple[str, ...],
                  min_information: float = 0.3) -> list[str]:
    """A name for every latent dimension: the factor it is most informative about, if it is that
    factor's most informative dimension and knows at least ``min_information`` of it; otherwise
    "z<j>". Each factor names at most one dimension.

    normalised_mi: (D, K) as from :func:`mutual_information_matrix`; factor_names: K names.
    """
    d, k = normalised_mi.shape
    if len(factor_names) != k:
        raise ValueError(f"{len(factor_names)} factor names for {k} factors")
    labels = [f"z{j + 1}" for j in range(d)]
    best_latent_per_factor = normalised_mi.argmax(dim=0)  # (K,)
    for j in range(d):
        factor = int(normalised_mi[j].argmax())
        if best_latent_per_factor[factor] == j and normalised_mi[j, factor] >= min_information:
            labels[j] = factor_names[factor]
    return labels
