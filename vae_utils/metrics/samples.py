"""How good a set of generated images is, in the feature space of the book's digit classifier
(Fréchet distance, precision and recall, class coverage, confident share) and in pixels
(sharpness, distance to the nearest training image): the GAN and comparison chapters."""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from .. import checks
from ..data import batches


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
        threshold = checks.number(threshold, "threshold", minimum=0, maximum=1)
        return float((self.probabilities.max(1).values >= threshold).float().mean())


def check_view(view: ClassifierView, name: str) -> ClassifierView:
    """A classifier view with finite features, one row of class probabilities per feature row."""
    if not isinstance(view, ClassifierView):
        raise TypeError(f"{name} must be a metrics.ClassifierView (from metrics.classifier_view), "
                        f"got {type(view).__name__}")
    features = checks.matrix(view.features, f"{name}'s features", min_rows=1,
                             bound=checks.MAX_FEATURE)
    probabilities = checks.probabilities(view.probabilities, f"{name}'s class probabilities",
                                         rows=len(features))
    return ClassifierView(features, probabilities)


@torch.no_grad()
def classifier_view(classifier: torch.nn.Module, images: torch.Tensor,
                    batch_size: int = 1000) -> ClassifierView:
    """Features and class probabilities of images (N, C, H, W) in [0, 1] from a classifier with
    ``features(x)`` and ``head`` (``classifier.Classifier``), one forward pass per batch."""
    images = checks.images(images, classifier.image_shape, min_count=1)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    classifier.eval()
    device = next(classifier.parameters()).device
    features, probabilities = [], []
    with checks.values_checked():
        for (x,) in batches(images, batch_size=batch_size):
            f = classifier.features(x.to(device))
            features.append(f.cpu())
            probabilities.append(torch.softmax(classifier.head(f), dim=1).cpu())
    return check_view(ClassifierView(torch.cat(features), torch.cat(probabilities)),
                      "the classifier view (a classifier with damaged weights?)")


def _feature_pair(first, second, min_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    first = checks.matrix(first, "the first set's features", min_rows=min_rows,
                          bound=checks.MAX_FEATURE)
    second = checks.matrix(second, "the second set's features", min_rows=min_rows,
                           columns=first.shape[1], bound=checks.MAX_FEATURE)
    return first, second


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features (the FID of Heusel et
    al. 2017, in whatever feature space the features come from):

        |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)).

    real_features (N, F), fake_features (M, F), N, M >= 2. Computed in float64;
    tr (S_r S_g)^(1/2) = tr (S_r^(1/2) S_g S_r^(1/2))^(1/2), a symmetric matrix whose
    eigenvalues are real and >= 0, so no complex square root is needed.
    """
    real, fake = (f.double() for f in _feature_pair(real_features, fake_features, min_rows=2))
    features = real.shape[1]
    mu_r, mu_g = real.mean(0), fake.mean(0)
    cov_r = torch.cov(real.T).reshape(features, features)  # reshape: F = 1 gives a scalar
    cov_g = torch.cov(fake.T).reshape(features, features)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_r)
    sqrt_r = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    middle = sqrt_r @ cov_g @ sqrt_r
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu_r - mu_g).pow(2).sum() + cov_r.trace() + cov_g.trace() - 2 * trace_sqrt
    return checks.result(float(distance), "the Fréchet distance", "the features overflow float64")


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


def manifold_membership(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3,
                        chunk: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of :func:`precision_recall`: for every generated sample, whether it lies in
    the real data's k-NN manifold (M,), and for every real sample, whether it lies in the
    generated one's (N,); precision and recall are their means."""
    k = checks.integer(k, "k (neighbours)", minimum=1)
    chunk = checks.integer(chunk, "chunk", minimum=1)
    real, fake = _feature_pair(real_features, fake_features, min_rows=k + 1)
    real, fake = real.double(), fake.double()   # squared distances of large features stay finite
    real_radii = _kth_neighbour_radius(real, k, chunk)
    fake_radii = _kth_neighbour_radius(fake, k, chunk)
    return _covered(fake, real, real_radii, chunk), _covered(real, fake, fake_radii, chunk)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3,
                     chunk: int = 2000) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision: the share of generated samples inside the real data's manifold (the union of
    balls reaching each real point's k-th nearest real neighbour): are samples realistic?
    Recall: the share of real samples inside the generated manifold: is the data covered?
    real_features (N, F), fake_features (M, F), each with more than k rows.
    """
    fake_inside, real_inside = manifold_membership(real_features, fake_features, k, chunk)
    return float(fake_inside.float().mean()), float(real_inside.float().mean())


def distance_to_uniform(histogram: torch.Tensor) -> float:
    """Total variation distance 1/2 sum |p_c - 1/C| between a class histogram and uniform:
    0 when every class is equally common, (C - 1)/C when all samples fall in one class."""
    histogram = checks.floats(histogram, "histogram", ndim=1).double()
    if len(histogram) < 2 or (histogram < 0).any() or not math.isclose(
            float(histogram.sum()), 1.0, rel_tol=1e-6):
        raise ValueError(f"expected a 1-D histogram of >= 2 classes with shares >= 0 that sum to "
                         f"1, got {histogram.tolist()}")
    return float(0.5 * (histogram - 1.0 / len(histogram)).abs().sum())


def sample_quality(real: ClassifierView, samples: ClassifierView, k: int = 3) -> dict[str, float]:
    """Every feature-space measurement of a sample set against real images, from two classifier
    views (each computed once): Fréchet distance, precision and recall (k-NN manifolds), class
    coverage (total variation distance of the samples' class histogram to uniform) and the
    confident share (top class probability >= 0.9)."""
    real, samples = check_view(real, "the real images' view"), check_view(samples, "the samples' view")
    precision, recall = precision_recall(real.features, samples.features, k=k)
    return {"frechet_distance": frechet_distance(real.features, samples.features),
            "precision": precision, "recall": recall,
            "coverage_tv": distance_to_uniform(samples.histogram()),
            "confident": samples.confident_share()}


def quality_differences(real: ClassifierView, first: ClassifierView, second: ClassifierView,
                        k: int = 3, resamples: int = 200, seed: int = 0) -> dict[str, "Interval"]:
    """first − second for every measurement of :func:`sample_quality`, each with a 95%
    bootstrap interval over the images of the three sets (one run of each model: the interval
    covers the choice of samples and test images, not of training seeds). The Fréchet distance
    is recomputed on every resample; precision, recall, coverage and the confident share are
    means of per-image values (for precision and recall, membership of the k-NN manifolds of
    the full sets), so they are resampled as such."""
    from .evaluation import bootstrap_interval

    real = check_view(real, "the real images' view")
    first, second = check_view(first, "the first view"), check_view(second, "the second view")
    n = min(len(real.features), len(first.features), len(second.features))
    real, first, second = (ClassifierView(v.features[:n], v.probabilities[:n])
                           for v in (real, first, second))
    a_in, real_in_a = manifold_membership(real.features, first.features, k)
    b_in, real_in_b = manifold_membership(real.features, second.features, k)
    classes = real.probabilities.shape[1]

    def coverage(view: ClassifierView, i: torch.Tensor) -> float:
        counts = torch.bincount(view.probabilities[i].argmax(1), minlength=classes).double()
        return distance_to_uniform(counts / counts.sum())

    def confident(view: ClassifierView, i: torch.Tensor) -> float:
        return float((view.probabilities[i].max(1).values >= 0.9).double().mean())

    statistics = {
        "frechet_distance": lambda i: frechet_distance(real.features[i], first.features[i])
        - frechet_distance(real.features[i], second.features[i]),
        "precision": lambda i: float(a_in[i].double().mean() - b_in[i].double().mean()),
        "recall": lambda i: float(real_in_a[i].double().mean() - real_in_b[i].double().mean()),
        "coverage_tv": lambda i: coverage(first, i) - coverage(second, i),
        "confident": lambda i: confident(first, i) - confident(second, i),
    }
    source = f"bootstrap over {n:,} samples of each (one run each)"
    return {name: bootstrap_interval(statistic, n, resamples=resamples, seed=seed, source=source)
            for name, statistic in statistics.items()}


def sample_quality_monitor(classifier: torch.nn.Module, real_images: torch.Tensor,
                           n_samples: int = 2000, seed: int = 0, n_snapshots: int = 0,
                           ) -> Callable[[torch.nn.Module], dict[str, float | torch.Tensor]]:
    """A training monitor (``training.fit(..., monitor=)``): after every epoch, draw ``n_samples``
    from ``model.sample`` with a fixed CPU generator (the same codes every epoch) and measure
    :func:`sample_quality` against ``real_images`` (N, C, H, W) in [0, 1], whose classifier
    view is computed once here. With ``n_snapshots``, the first samples themselves are kept
    too, as "snapshots": (n_snapshots, C, H, W)."""
    n_samples = checks.integer(n_samples, "n_samples", minimum=4)
    seed = checks.integer(seed, "seed", minimum=0)
    n_snapshots = checks.integer(n_snapshots, "n_snapshots", minimum=0, maximum=n_samples)
    real = classifier_view(classifier, real_images)

    def monitor(model: torch.nn.Module) -> dict[str, float | torch.Tensor]:
        samples = model.sample(n_samples, generator=torch.Generator(device="cpu").manual_seed(seed))
        samples = samples.cpu()
        values: dict[str, float | torch.Tensor] = sample_quality(real, classifier_view(classifier, samples))
        if n_snapshots:
            values["snapshots"] = samples[:n_snapshots].clone()
        return values

    return monitor


SHARPNESS_SMOOTHING = 1.5
"""Gaussian standard deviation (pixels) of the smoothed copies in which :func:`sharpness` finds
edges and their directions."""
EDGE_BAND = (0.1, 0.9)
"""Pixels whose smoothed grey level lies between these form the edges :func:`sharpness` reads."""


def _gaussian_smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """images (N, C, H, W) blurred by a Gaussian of ``sigma`` pixels (edges replicated)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device="cpu")
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    flat = images.reshape(-1, 1, *images.shape[2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(-1, c, *images.shape[2:])


def _central_differences(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d/dx and d/dy at the inner pixels (N, C, H - 2, W - 2), from each pixel's 4 neighbours."""
    dx = (images[..., 1:-1, 2:] - images[..., 1:-1, :-2]) / 2
    dy = (images[..., 2:, 1:-1] - images[..., :-2, 1:-1]) / 2
    return dx, dy


class EdgeSlopes(NamedTuple):
    """Per image (N,): the summed slope across its edge pixels, and how many edge pixels it has.
    :func:`sharpness` is sums.sum() / counts.sum(); a bootstrap resamples images."""

    sums: torch.Tensor
    counts: torch.Tensor


def edge_slopes(images: torch.Tensor) -> EdgeSlopes:
    """The parts of :func:`sharpness`, per image. images: (N, C, H, W) in [0, 1], H, W >= 3."""
    images = checks.images(images, min_count=1).double()
    if images.shape[-1] < 3 or images.shape[-2] < 3:
        raise ValueError(f"sharpness needs images of at least 3x3 pixels, got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    rows = torch.arange(height, device="cpu").view(height, 1)
    columns = torch.arange(width, device="cpu").view(1, width)
    dx, dy = _central_differences(images)           # read from the 4 neighbours: other colour
    low, high = EDGE_BAND
    sums = torch.zeros(len(images), dtype=torch.float64, device="cpu")
    counts = torch.zeros(len(images), dtype=torch.float64, device="cpu")
    for colour in (0, 1):
        mask = (((rows + columns) % 2) == colour).to(images.dtype).expand_as(images).contiguous()
        # A smoothed copy made of this colour's pixels only: where the edges are, and their normal.
        copy = _gaussian_smooth(images * mask, SHARPNESS_SMOOTHING) / \
            _gaussian_smooth(mask, SHARPNESS_SMOOTHING)
        nx, ny = _central_differences(copy)
        norm = (nx ** 2 + ny ** 2).sqrt()
        inner = copy[..., 1:-1, 1:-1]
        edges = (inner > low) & (inner < high) & (norm > 1e-3) & mask[..., 1:-1, 1:-1].bool()
        slope = (dx * nx + dy * ny) / norm.clamp(min=1e-12)
        sums += (slope * edges).flatten(1).sum(1)
        counts += edges.flatten(1).sum(1)
    return EdgeSlopes(sums, counts)


def sharpness_difference(first: torch.Tensor, second: torch.Tensor, resamples: int = 200,
                         seed: int = 0) -> "Interval":
    """:func:`sharpness` of ``first`` minus that of ``second`` (two image sets of the same
    size), with a 95% bootstrap interval over the images."""
    from .evaluation import bootstrap_interval

    a, b = edge_slopes(first), edge_slopes(second)
    n = checks.same_length(first=a.sums, second=b.sums)
    return bootstrap_interval(
        lambda i: float(a.sums[i].sum() / a.counts[i].sum() - b.sums[i].sum() / b.counts[i].sum()),
        n, resamples=resamples, seed=seed, source=f"bootstrap over {n:,} images of each")


def sharpness(images: torch.Tensor) -> float:
    """How steep the edges of the images are, in grey levels per pixel: the mean slope of the
    pixels across their edges. Edges are the pixels whose grey level, in a lightly smoothed copy
    (``SHARPNESS_SMOOTHING``), lies within ``EDGE_BAND``; the slope is the image's own gradient
    (from its 4 neighbours) along the edge normal of that copy. Blur widens edges and lowers it.

    Noise is not sharpness: the copy that chooses each edge pixel and its normal is made of the
    pixels of that pixel's checkerboard colour only, while its gradient is read from its
    neighbours, all of the other colour. Independent pixel noise (Bernoulli draws, salt and
    pepper) then cannot steer where the slope is read; it averages out of the slope and makes
    the edges harder to find, so it lowers the value (the tests check blur and both noises on
    known images). images: (N, C, H, W) in [0, 1], H, W >= 3.
    """
    parts = edge_slopes(images)
    total = float(parts.counts.sum())
    if total == 0:
        raise ValueError("the images have no edge pixels (no grey level between "
                         f"{EDGE_BAND[0]} and {EDGE_BAND[1]} after smoothing): blank images have "
                         "no sharpness")
    return float(parts.sums.sum()) / total


def nearest_neighbour_distances(queries: torch.Tensor, reference: torch.Tensor,
                                chunk: int = 500) -> torch.Tensor:
    """Euclidean distance (in pixel space) from every query image to its nearest reference image.

    queries (M, C, H, W), reference (N, C, H, W) in [0, 1], of the same image shape -> (M,) on
    the CPU. A sample much closer to the training set than held-out real images are is a likely
    copy."""
    chunk = checks.integer(chunk, "chunk", minimum=1)
    queries = checks.images(queries, name="query images", min_count=1)
    reference = checks.images(reference, queries.shape[1:], name="reference images", min_count=1)
    queries, reference = queries.flatten(1), reference.flatten(1)
    return torch.cat([torch.cdist(queries[i:i + chunk], reference).min(1).values
                      for i in range(0, len(queries), chunk)])
