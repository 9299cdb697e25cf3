"""What a model's codes hold: posterior samples, active dimensions, probes of known factors,
mutual information and MIG (the latent attributes chapter), and the holes of a latent space
(the autoencoder and VAE chapters)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .. import checks
from ..losses import kl_per_dimension
from ..models import Posterior, encode_all, reparameterize


def posterior_samples(posterior: Posterior, generator: torch.Generator | None = None) -> torch.Tensor:
    """One code per image drawn from q(z|x): mu + sigma * eps, eps ~ N(0, I) from the CPU
    ``generator``. Returns (N, D). These, not the means, are what the mutual information below
    should see: a switched-off dimension (q(z_j|x) = N(0, 1) for every x) then carries only noise
    and scores about 0, however its mean wiggles with x."""
    mu, logvar = posterior
    if logvar is None:
        raise ValueError("posterior_samples() needs a VAE's posterior (mu and logvar); an "
                         "autoencoder's codes have no spread to sample")
    mu = checks.matrix(mu, "posterior means")
    logvar = checks.matrix(logvar, "posterior log-variances", columns=mu.shape[1])
    checks.same_length(**{"posterior means": mu, "posterior log-variances": logvar})
    eps = torch.randn(mu.shape, generator=generator, device="cpu", dtype=mu.dtype)
    return reparameterize(mu, logvar, eps)


class ActiveUnits(NamedTuple):
    """Per latent dimension (D,): mean KL(q(z_j|x) || N(0, 1)) in nats, the variance over x of
    the posterior mean (Burda et al. 2015's activity), and whether that activity exceeds the
    threshold (Burda et al.: 0.01)."""

    kl: torch.Tensor
    activity: torch.Tensor
    active: torch.Tensor


def active_units(posterior: Posterior, threshold: float = 0.01) -> ActiveUnits:
    """Which latent dimensions the model uses: per-dimension KL and Burda et al.'s criterion
    Cov_x(E_q[z_j]) > threshold. A dimension whose q(z_j|x) is the prior for every x has KL 0 and
    activity 0: it is *collapsed* (switched off). posterior: mu, logvar (N, D), N >= 2."""
    mu, logvar = posterior
    if logvar is None or mu.shape != logvar.shape or mu.ndim != 2 or len(mu) < 2:
        raise ValueError(f"expected mu and logvar of the same shape (N >= 2, D), got "
                         f"{tuple(mu.shape)} and {None if logvar is None else tuple(logvar.shape)}")
    threshold = checks.number(threshold, "threshold (variance of the posterior mean)", minimum=0)
    mu = checks.matrix(mu, "posterior means", min_rows=2).double()
    logvar = checks.matrix(logvar, "posterior log-variances", min_rows=2).double()
    kl = kl_per_dimension(mu, logvar).mean(0)
    activity = mu.var(0)
    return ActiveUnits(kl.float(), activity.float(), activity > threshold)


def fit_probe(latents: torch.Tensor, factors: torch.Tensor,
              ridge: float = 1e-3) -> Callable[[torch.Tensor], torch.Tensor]:
    """A probe that reads factors off codes: a ridge fit of each factor on a second-order
    polynomial of the code (a constant, the values, their squares and pairwise products: a factor
    may lie along a curved direction that mixes dimensions).

    latents (N, D), factors (N, K) -> a function codes (M, D) -> predicted factors (M, K).
    """
    latents = checks.matrix(latents, "latents", min_rows=2).double()
    factors = checks.matrix(factors, "factors", min_rows=2).double()
    checks.same_length(latents=latents, factors=factors)
    ridge = checks.number(ridge, "ridge", above=0)
    d = latents.shape[1]
    mean, scale = latents.mean(0), latents.std(0).clamp(min=1e-8)
    pairs = torch.triu_indices(d, d, device="cpu")  # j <= k

    def design(codes: torch.Tensor) -> torch.Tensor:  # (M, 1 + D + D (D + 1) / 2)
        codes = checks.matrix(codes, f"codes for the probe (M, {d})", columns=d).double()
        u = (codes - mean) / scale
        return torch.cat([torch.ones(len(u), 1, dtype=u.dtype, device="cpu"), u,
                          u[:, pairs[0]] * u[:, pairs[1]]], 1)

    a = design(latents)
    weights = torch.linalg.solve(a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype,
                                                                    device="cpu"),
                                 a.T @ factors)
    return lambda codes: (design(codes) @ weights).float()


def probe_r2(train_latents: torch.Tensor, train_factors: torch.Tensor, test_latents: torch.Tensor,
             test_factors: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """How much of each factor a code holds, in any of its dimensions (DCI's *informativeness*,
    with a simple probe): :func:`fit_probe` fitted on one set, scored by R^2 on another.

    latents (N, D), factors (N, K); test latents (M, D), test factors (M, K). Returns (K,)
    held-out R^2: 1 = the factor is read off the code exactly, 0 = no better than its mean (it
    can be negative on held-out data).
    """
    test_factors = checks.matrix(test_factors, "test factors", min_rows=2).double()
    test_latents = checks.matrix(test_latents, "test latents", min_rows=2)
    if len(test_latents) != len(test_factors):
        raise ValueError("expected latents (N, D) with factors (N, K) for training, and (M, D) "
                         f"with (M, K) for testing; got {tuple(test_latents.shape)} and "
                         f"{tuple(test_factors.shape)} for testing")
    predicted = fit_probe(train_latents, train_factors, ridge)(test_latents).double()
    if predicted.shape != test_factors.shape:
        raise ValueError(f"{train_factors.shape[1]} factors to fit but {test_factors.shape[1]} to test")
    total = (test_factors - test_factors.mean(0)).pow(2).sum(0)
    if (total == 0).any():
        raise ValueError("a test factor is constant: R^2 is undefined for it")
    return (1 - (test_factors - predicted).pow(2).sum(0) / total).float()


@torch.no_grad()
def posterior_probe_r2(model: torch.nn.Module, images: torch.Tensor, factors: torch.Tensor,
                       n_fit: int | None = None) -> torch.Tensor:
    """:func:`probe_r2` on a model's posterior means: images (N, C, H, W) in [0, 1] with their
    known factors (N, K); the first ``n_fit`` images (default: half) fit the probe, the rest
    score it (pass images in a random order, e.g. the procedural faces, which are drawn i.i.d.).
    Returns (K,) held-out R^2."""
    n_fit = len(images) // 2 if n_fit is None else n_fit
    n_fit = checks.integer(n_fit, "n_fit", minimum=2, maximum=len(images) - 2)
    checks.same_length(images=images, factors=factors)
    mu = encode_all(model, images).mu
    return probe_r2(mu[:n_fit], factors[:n_fit], mu[n_fit:], factors[n_fit:])


@torch.no_grad()
def slider_factor_changes(decode: Callable[[torch.Tensor], torch.Tensor],
                          read_factors: Callable[[torch.Tensor], torch.Tensor], latent_dim: int,
                          span: float = 2.0, scale: torch.Tensor | None = None) -> torch.Tensor:
    """What each slider does to each factor: set latent dimension j to -span and to +span (the
    others at 0, the prior's mean), decode both codes, read the factors off the two images, and
    take |difference|, divided by ``scale`` (K,) if given (e.g. each factor's standard deviation
    in the data, so that a binary and a uniform factor compare).
    decode: codes (S, D) -> images; read_factors: images -> factors (S, K), e.g. re-encode the
    images and apply a :func:`fit_probe` probe.

    Returns (D, K): row j says how far slider j moves each factor.
    """
    latent_dim = checks.integer(latent_dim, "latent_dim", minimum=1)
    span = checks.number(span, "span", above=0)
    z = torch.zeros(2 * latent_dim, latent_dim, device="cpu")
    for j in range(latent_dim):
        z[2 * j, j], z[2 * j + 1, j] = -span, span
    factors = checks.matrix(read_factors(decode(z)), "factors read off the decoded images",
                            min_rows=2 * latent_dim)                       # (2D, K)
    changes = (factors[1::2] - factors[0::2]).abs()
    if scale is not None:
        scale = torch.as_tensor(scale, device="cpu").float()
        if scale.shape != changes.shape[1:] or not (scale > 0).all() or not scale.isfinite().all():
            raise ValueError(f"scale must hold {changes.shape[1]} positive numbers, got {scale}")
        changes = changes / scale
    return changes


def discretize(values: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Bin each column of values (N, K) into ``bins`` equal-width bins between its min and max.

    A column with at most ``bins`` distinct values (e.g. glasses on/off) keeps one bin per value.
    Returns int64 (N, K) bin indices.
    """
    bins = checks.integer(bins, "bins", minimum=1)
    values = checks.matrix(values, "values").double()
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

    latents: (N, D), one sample of q(z|x) per image (:func:`posterior_samples`): with posterior
    *means* a switched-off dimension can score high, since its mean still varies a little with x;
    factors: (N, K) true factor values.
    Returns (D, K) in [0, 1]: 1 means z_j determines v_k completely (at this binning).
    """
    bins = checks.integer(bins, "bins", minimum=2)
    latents = checks.matrix(latents, "latents")
    factors = checks.matrix(factors, "factors")
    if len(latents) != len(factors):
        raise ValueError(f"expected latents (N, D) and factors (N, K) with the same N, got "
                         f"{tuple(latents.shape)} and {tuple(factors.shape)}")
    if len(latents) < 10 * bins:
        raise ValueError(f"need at least {10 * bins} samples for {bins} bins, got {len(latents)}")
    z, v = discretize(latents, bins), discretize(factors, bins)
    result = torch.zeros(z.shape[1], v.shape[1], dtype=torch.float64, device="cpu")
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

    normalised_mi: (D, K) from :func:`mutual_information_matrix`, D >= 2, K >= 1.
    Returns (MIG in [0, 1], per-factor gaps (K,)).
    """
    normalised_mi = checks.matrix(normalised_mi, "the normalised mutual information (D, K)",
                                  min_rows=2)
    if normalised_mi.shape[1] < 1:
        raise ValueError("the normalised mutual information has no factor column: MIG needs K >= 1")
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
    normalised_mi = checks.matrix(normalised_mi, "the normalised mutual information (D, K)")
    min_information = checks.number(min_information, "min_information", minimum=0, maximum=1)
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


def hole_threshold(test_codes: torch.Tensor, train_codes: torch.Tensor,
                   quantile: float = 0.99) -> float:
    """How far real codes lie from the training codes: the ``quantile`` of the distances from
    each test code (N, D) to its nearest training code (M, D). A generated code farther than
    this from every training code lies in a *hole* (written out in the autoencoder chapter)."""
    test_codes = checks.matrix(test_codes, "test codes")
    train_codes = checks.matrix(train_codes, "training codes", columns=test_codes.shape[1])
    quantile = checks.number(quantile, "quantile", above=0, maximum=1)
    return float(torch.cdist(test_codes, train_codes).min(1).values.quantile(quantile))


def fraction_in_holes(generated: torch.Tensor, train_codes: torch.Tensor,
                      threshold: float) -> float:
    """Share of generated codes (G, D) farther than ``threshold`` (:func:`hole_threshold`) from
    every training code (M, D)."""
    generated = checks.matrix(generated, "generated codes")
    train_codes = checks.matrix(train_codes, "training codes", columns=generated.shape[1])
    threshold = checks.number(threshold, "threshold", minimum=0)
    return float((torch.cdist(generated, train_codes).min(1).values > threshold).float().mean())
