"""Measurements of trained models: importance-weighted log-likelihood (VAE chapter), mutual
information and MIG (latent attributes chapter), Fréchet distance, precision/recall and class
coverage (VAE vs GAN chapter). Every input is checked for NaN and infinite values.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from .data import batches
from .losses import reconstruction_nll
from .models import VAE, check_finite


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
    log_px_z = -reconstruction_nll(logits.flatten(0, 1), x.expand(k, *x.shape).flatten(0, 1),
                                   model.likelihood, model.sigma).view(k, -1)
    log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    log_qz = _log_normal(z, mu, logvar)
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def iwae_log_likelihoods(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 200) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) for every image (Burda et al. 2015), on the CPU:
    log (1/k) sum_i w_i with z_i ~ q(z|x). x: (N, C, H, W) in [0, 1] -> (N,) nats.

    With k = 1 it is a one-sample ELBO; it rises towards log p(x) as k grows. Uses the model's
    likelihood (``losses.reconstruction_nll``). For a Bernoulli model it is a log-likelihood only
    on binary x (e.g. ``data.binarized(test_images)``); on grey levels it is a cross-entropy.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(x) == 0:
        raise ValueError("iwae got no images: there is nothing to average")
    model.eval()
    device = next(model.parameters()).device
    per_image = []
    for (xb,) in batches(x, batch_size=batch_size):
        log_w = iwae_log_weights(model, xb.to(device), k)
        per_image.append((torch.logsumexp(log_w, dim=0) - math.log(k)).cpu())
    return torch.cat(per_image)


def iwae_nll(model: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 200) -> float:
    """Importance-weighted estimate of -log p(x), nats per image, averaged over x (N, C, H, W):
    the mean of -:func:`iwae_log_likelihoods`."""
    return -float(iwae_log_likelihoods(model, x, k, batch_size).double().mean())


# --- Latent attributes: which latent dimension holds which known factor (latent attributes chapter)

class Posterior(NamedTuple):
    """The encoder's q(z|x) for a set of images, on the CPU: mu, logvar (N, D)."""

    mu: torch.Tensor
    logvar: torch.Tensor


@torch.no_grad()
def encode_all(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 2000) -> Posterior:
    """q(z|x) of every image: images (N, C, H, W) in [0, 1] -> Posterior with mu, logvar (N, D)
    on the CPU (the model may live on any device)."""
    if len(images) == 0:
        raise ValueError("encode_all() got no images")
    device = next(model.parameters()).device
    model.eval()
    parts = [model.encode(x.to(device)) for (x,) in batches(images, batch_size=batch_size)]
    return Posterior(torch.cat([mu.cpu() for mu, _ in parts]), torch.cat([lv.cpu() for _, lv in parts]))


def posterior_samples(posterior: Posterior, generator: torch.Generator | None = None) -> torch.Tensor:
    """One code per image drawn from q(z|x): mu + sigma * eps, eps ~ N(0, I) from the CPU
    ``generator``. Returns (N, D). These, not the means, are what the mutual information below
    should see: a switched-off dimension (q(z_j|x) = N(0, 1) for every x) then carries only noise
    and scores about 0, however its mean wiggles with x."""
    mu, logvar = posterior
    check_finite(mu, "posterior means")
    check_finite(logvar, "posterior log-variances")
    eps = torch.randn(mu.shape, generator=generator, device="cpu", dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


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
    if mu.ndim != 2 or mu.shape != logvar.shape or len(mu) < 2:
        raise ValueError(f"expected mu and logvar of the same shape (N >= 2, D), got "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    check_finite(mu, "posterior means")
    check_finite(logvar, "posterior log-variances")
    mu, logvar = mu.double(), logvar.double()
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0)
    activity = mu.var(0)
    return ActiveUnits(kl.float(), activity.float(), activity > threshold)


def fit_probe(latents: torch.Tensor, factors: torch.Tensor,
              ridge: float = 1e-3) -> Callable[[torch.Tensor], torch.Tensor]:
    """A probe that reads factors off codes: a ridge fit of each factor on a second-order
    polynomial of the code (a constant, the values, their squares and pairwise products: a factor
    may lie along a curved direction that mixes dimensions).

    latents (N, D), factors (N, K) -> a function codes (M, D) -> predicted factors (M, K).
    """
    latents, factors = (torch.as_tensor(t, device="cpu").double() for t in (latents, factors))
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(f"expected latents (N, D) and factors (N, K) with the same N, got "
                         f"{tuple(latents.shape)} and {tuple(factors.shape)}")
    check_finite(latents, "latents")
    check_finite(factors, "factors")
    d = latents.shape[1]
    mean, scale = latents.mean(0), latents.std(0).clamp(min=1e-8)
    pairs = torch.triu_indices(d, d, device="cpu")  # j <= k

    def design(codes: torch.Tensor) -> torch.Tensor:  # (M, 1 + D + D (D + 1) / 2)
        codes = torch.as_tensor(codes, device="cpu").double()
        if codes.ndim != 2 or codes.shape[1] != d:
            raise ValueError(f"the probe reads codes (M, {d}), got {tuple(codes.shape)}")
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
    test_factors = torch.as_tensor(test_factors, device="cpu").double()
    if test_factors.ndim != 2 or len(test_latents) != len(test_factors):
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
    score it. Returns (K,) held-out R^2."""
    n_fit = len(images) // 2 if n_fit is None else n_fit
    if not 0 < n_fit < len(images) or len(factors) != len(images):
        raise ValueError(f"expected as many factors as images ({len(factors)} vs {len(images)}) "
                         f"and 0 < n_fit < {len(images)}, got n_fit={n_fit}")
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
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    if not span > 0:
        raise ValueError(f"span must be > 0, got {span!r}")
    z = torch.zeros(2 * latent_dim, latent_dim, device="cpu")
    for j in range(latent_dim):
        z[2 * j, j], z[2 * j + 1, j] = -span, span
    factors = torch.as_tensor(read_factors(decode(z)), device="cpu").float()  # (2D, K)
    changes = (factors[1::2] - factors[0::2]).abs()
    if scale is not None:
        scale = torch.as_tensor(scale, device="cpu").float()
        if scale.shape != changes.shape[1:] or not (scale > 0).all():
            raise ValueError(f"scale must hold {changes.shape[1]} positive numbers, got {scale}")
        changes = changes / scale
    return changes


def discretize(values: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """Bin each column of values (N, K) into ``bins`` equal-width bins between its min and max.

    A column with at most ``bins`` distinct values (e.g. glasses on/off) keeps one bin per value.
    Returns int64 (N, K) bin indices.
    """
    values = torch.as_tensor(values, device="cpu").to(torch.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a matrix (N, K), got shape {tuple(values.shape)}")
    check_finite(values, "values")
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
    latents, factors = torch.as_tensor(latents, device="cpu"), torch.as_tensor(factors, device="cpu")
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(f"expected latents (N, D) and factors (N, K) with the same N, got "
                         f"{tuple(latents.shape)} and {tuple(factors.shape)}")
    if len(latents) < 10 * bins:
        raise ValueError(f"need at least {10 * bins} samples for {bins} bins, got {len(latents)}")
    check_finite(latents, "latents")
    check_finite(factors, "factors")
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


# --- Sample quality in a feature space (VAE vs GAN chapter)

class FeatureExtractor(torch.nn.Module):
    """Wraps a model with ``features(x)`` (e.g. ``models.Classifier``) as a feature network:
    x: (B, C, H, W) in [0, 1] -> (B, num_features) on the CPU."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model.eval()
        self.num_features = int(model.num_features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x.to(next(self.model.parameters()).device)).cpu()


@torch.no_grad()
def extract_features(feature_net: torch.nn.Module, images: torch.Tensor,
                     batch_size: int = 1000) -> torch.Tensor:
    """images (N, C, H, W) in [0, 1] -> features (N, F), computed in batches."""
    if len(images) == 0:
        raise ValueError("extract_features() got no images")
    return torch.cat([feature_net(x) for (x,) in batches(images, batch_size=batch_size)])


def _check_feature_sets(first: torch.Tensor, second: torch.Tensor, min_rows: int) -> None:
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != second.shape[1]:
        raise ValueError(f"expected features (N, F) and (M, F), got {tuple(first.shape)} "
                         f"and {tuple(second.shape)}")
    for name, features in (("the first set", first), ("the second set", second)):
        if len(features) < min_rows:
            raise ValueError(f"{name} has {len(features)} feature vectors; this needs at least "
                             f"{min_rows}")
        check_finite(features, f"{name}'s features")


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features (the FID of Heusel et
    al. 2017, in whatever feature space the features come from):

        |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)).

    real_features (N, F), fake_features (M, F), N, M >= 2. Computed in float64;
    tr (S_r S_g)^(1/2) = tr (S_r^(1/2) S_g S_r^(1/2))^(1/2), a symmetric matrix whose
    eigenvalues are real and >= 0, so no complex square root is needed.
    """
    real_features = torch.as_tensor(real_features, device="cpu")
    fake_features = torch.as_tensor(fake_features, device="cpu")
    _check_feature_sets(real_features, fake_features, min_rows=2)
    real, fake = real_features.double(), fake_features.double()
    features = real.shape[1]
    mu_r, mu_g = real.mean(0), fake.mean(0)
    cov_r = torch.cov(real.T).reshape(features, features)  # reshape: F = 1 gives a scalar
    cov_g = torch.cov(fake.T).reshape(features, features)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_r)
    sqrt_r = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    middle = sqrt_r @ cov_g @ sqrt_r
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu_r - mu_g).pow(2).sum() + cov_r.trace() + cov_g.trace() - 2 * trace_sqrt
    return float(distance)


def _kth_neighbour_radius(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from every point to its k-th nearest other point in the same set: (N,)."""
    radii = []
    for start in range(0, len(features), chunk):
        d = torch.cdist(features[start:start + chunk], features)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _covered(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each query, whether it lies inside some support point's k-NN ball: (M,) bool."""
    inside = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk], support)
        inside.append((d <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3,
                     chunk: int = 2000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision: the share of generated samples inside the real data's manifold (the union of
    balls reaching each real point's k-th nearest real neighbour): are samples realistic?
    Recall: the share of real samples inside the generated manifold: is the data covered?
    real_features (N, F), fake_features (M, F), each with more than k rows.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    real_features = torch.as_tensor(real_features, device="cpu").float()
    fake_features = torch.as_tensor(fake_features, device="cpu").float()
    _check_feature_sets(real_features, fake_features, min_rows=k + 1)
    real_radii = _kth_neighbour_radius(real_features, k, chunk)
    fake_radii = _kth_neighbour_radius(fake_features, k, chunk)
    precision = _covered(fake_features, real_features, real_radii, chunk).float().mean()
    recall = _covered(real_features, fake_features, fake_radii, chunk).float().mean()
    return float(precision), float(recall)


def class_histogram(classifier: torch.nn.Module, images: torch.Tensor, n_classes: int = 10,
                    batch_size: int = 1000) -> torch.Tensor:
    """Share of images the classifier assigns to each class: (n_classes,), sums to 1.

    images: (N, C, H, W) in [0, 1], N >= 1."""
    if len(images) == 0:
        raise ValueError("class_histogram() got no images")
    device = next(classifier.parameters()).device
    classifier.eval()
    with torch.no_grad():
        predicted = torch.cat([classifier(x.to(device)).argmax(1).cpu()
                               for (x,) in batches(images, batch_size=batch_size)])
    return torch.bincount(predicted, minlength=n_classes).float() / len(predicted)


class ClassifierView(NamedTuple):
    """What the book's classifier sees in a set of images, computed in one pass (CPU tensors):
    features (N, F) for distances, probabilities (N, C) for classes and confidence."""

    features: torch.Tensor
    probabilities: torch.Tensor

    def histogram(self) -> torch.Tensor:
        """Share of images assigned to each class: (C,), sums to 1."""
        predicted = self.probabilities.argmax(1)
        return torch.bincount(predicted, minlength=self.probabilities.shape[1]).float() / len(predicted)

    def confident_share(self, threshold: float = 0.9) -> float:
        """Share of images whose most likely class has probability >= threshold."""
        return float((self.probabilities.max(1).values >= threshold).float().mean())


@torch.no_grad()
def classifier_view(classifier: torch.nn.Module, images: torch.Tensor,
                    batch_size: int = 1000) -> ClassifierView:
    """Features and class probabilities of images (N, C, H, W) in [0, 1] from a classifier with
    ``features(x)`` and ``head`` (``models.Classifier``), one forward pass per batch."""
    if len(images) == 0:
        raise ValueError("classifier_view() got no images")
    classifier.eval()
    device = next(classifier.parameters()).device
    features, probabilities = [], []
    for (x,) in batches(images, batch_size=batch_size):
        f = classifier.features(x.to(device))
        features.append(f.cpu())
        probabilities.append(torch.softmax(classifier.head(f), dim=1).cpu())
    return ClassifierView(torch.cat(features), torch.cat(probabilities))


def sample_quality(real: ClassifierView, samples: ClassifierView, k: int = 3) -> dict[str, float]:
    """Every feature-space measurement of a sample set against real images, from two classifier
    views (each computed once): Fréchet distance, precision and recall (k-NN manifolds), class
    coverage (total variation distance of the samples' class histogram to uniform) and the
    confident share (top class probability >= 0.9)."""
    precision, recall = precision_recall(real.features, samples.features, k=k)
    return {"frechet_distance": frechet_distance(real.features, samples.features),
            "precision": precision, "recall": recall,
            "coverage_tv": distance_to_uniform(samples.histogram()),
            "confident": samples.confident_share()}


def sample_quality_monitor(classifier: torch.nn.Module, real_images: torch.Tensor,
                           n_samples: int = 2000, seed: int = 0, n_snapshots: int = 0,
                           ) -> Callable[[torch.nn.Module], dict[str, float | torch.Tensor]]:
    """A training monitor (``training.fit(..., monitor=)``): after every epoch, draw ``n_samples``
    from ``model.sample`` with a fixed CPU generator (the same codes every epoch) and measure
    :func:`sample_quality` against ``real_images`` (N, C, H, W) in [0, 1], whose classifier
    view is computed once here. With ``n_snapshots``, the first samples themselves are kept
    too, as "snapshots": (n_snapshots, C, H, W)."""
    real = classifier_view(classifier, real_images)

    def monitor(model: torch.nn.Module) -> dict[str, float | torch.Tensor]:
        samples = model.sample(n_samples, generator=torch.Generator(device="cpu").manual_seed(seed))
        samples = samples.cpu()
        values: dict[str, float | torch.Tensor] = sample_quality(real, classifier_view(classifier, samples))
        if n_snapshots:
            values["snapshots"] = samples[:n_snapshots].clone()
        return values

    return monitor


def sharpness(images: torch.Tensor) -> float:
    """Mean magnitude of the image gradient: the average absolute difference between
    neighbouring pixels, horizontally and vertically. Blur lowers it; crisp strokes with hard
    edges raise it. images: (N, C, H, W) in [0, 1], H, W >= 2."""
    images = torch.as_tensor(images, device="cpu")
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[-2] < 2 or len(images) == 0:
        raise ValueError(f"expected images (N, C, H, W) with H, W >= 2, got {tuple(images.shape)}")
    check_finite(images, "images")
    images = images.double()
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return float((dx + dy) / 2)


def nearest_neighbour_distances(queries: torch.Tensor, reference: torch.Tensor,
                                chunk: int = 500) -> torch.Tensor:
    """Euclidean distance (in pixel space) from every query image to its nearest reference image.

    queries (M, ...), reference (N, ...) with the same image shape -> (M,) on the CPU. A sample
    much closer to the training set than held-out real images are is a likely copy."""
    queries = torch.as_tensor(queries, device="cpu").flatten(1).float()
    reference = torch.as_tensor(reference, device="cpu").flatten(1).float()
    if queries.shape[1] != reference.shape[1] or len(queries) == 0 or len(reference) == 0:
        raise ValueError(f"expected non-empty image sets of one shape, got {tuple(queries.shape)} "
                         f"and {tuple(reference.shape)} (flattened)")
    check_finite(queries, "queries")
    check_finite(reference, "reference")
    return torch.cat([torch.cdist(queries[i:i + chunk], reference).min(1).values
                      for i in range(0, len(queries), chunk)])


def distance_to_uniform(histogram: torch.Tensor) -> float:
    """Total variation distance 1/2 sum |p_c - 1/C| between a class histogram and uniform:
    0 when every class is equally common, (C - 1)/C when all samples fall in one class."""
    histogram = torch.as_tensor(histogram, device="cpu").to(torch.float64)
    if histogram.ndim != 1 or not math.isclose(float(histogram.sum()), 1.0, rel_tol=1e-6):
        raise ValueError("expected a 1-D histogram that sums to 1")
    return float(0.5 * (histogram - 1.0 / len(histogram)).abs().sum())
