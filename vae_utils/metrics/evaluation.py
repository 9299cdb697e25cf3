"""The evaluation protocol, written once: which images a measurement uses, the standard error of
every mean, the interval of every comparison, and a verdict that can say "inconclusive".

- An evaluation set is the full test set or a *seeded random subset* (:func:`subset_indices`),
  never a leading slice: the first MNIST test images are easier than the rest.
- A mean over images comes with its standard error (:func:`mean_stderr`).
- A comparison between two models reports an interval for the difference: over images (a
  bootstrap, :func:`bootstrap_interval`; or the paired standard error) when one run of each is
  compared, or over seeds (:func:`seed_interval`, Welch's t interval) when several runs are.
- :func:`verdict` turns an interval into *holds*, *does not hold* or *inconclusive*.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch

from .. import checks

EVALUATION_SEED = 1234
"""The seed of every evaluation subset in the book (one permutation of the test set)."""
CONFIDENCE = 0.95


def subset_indices(n_total: int, size: int | None = None, seed: int = EVALUATION_SEED) -> torch.Tensor:
    """Indices of an evaluation set drawn from n_total items: all of them (``size=None``, in
    order), or the first ``size`` of a permutation drawn with ``seed`` (a CPU generator, so the
    same subset on every machine). Subsets of one seed are nested: the 1,000 are in the 2,000."""
    n_total = checks.integer(n_total, "n_total", minimum=1)
    if size is None:
        return torch.arange(n_total, device="cpu")
    size = checks.integer(size, "size", minimum=1, maximum=n_total)
    seed = checks.integer(seed, "seed", minimum=0)
    return torch.randperm(n_total, generator=torch.Generator(device="cpu").manual_seed(seed),
                          device="cpu")[:size]


class Estimate(NamedTuple):
    """A mean over n items and its standard error."""

    mean: float
    stderr: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.stderr:.2f}"


def mean_stderr(values: torch.Tensor | Sequence[float]) -> Estimate:
    """Mean and standard error (sd / sqrt(n)) of per-item values (n >= 2)."""
    values = torch.as_tensor(values, dtype=torch.float64, device="cpu").flatten()
    if len(values) < 2:
        raise ValueError(f"a standard error needs at least 2 values, got {len(values)}")
    checks.finite(values, "the values to average")
    return Estimate(float(values.mean()), float(values.std() / math.sqrt(len(values))), len(values))


class Interval(NamedTuple):
    """An estimate of a difference (or any quantity) with a two-sided interval, and how the
    interval was obtained ("bootstrap over 10,000 images", "3 seeds each", ...)."""

    estimate: float
    low: float
    high: float
    source: str

    def __str__(self) -> str:
        return f"{self.estimate:+.3g} [{self.low:+.3g}, {self.high:+.3g}]"


def _normal_quantile(confidence: float) -> float:
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + confidence / 2, device="cpu")))


def _t_quantile(confidence: float, df: float) -> float:
    """Student's t quantile for a two-sided interval: bisection on the CDF, which integrates
    the t density numerically (Simpson's rule, in float64)."""
    p = 0.5 + confidence / 2
    log_norm = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi))

    def cdf(t: float) -> float:   # P(T <= t) for t >= 0
        x = torch.linspace(0.0, t, 2001, dtype=torch.float64, device="cpu")
        density = torch.exp(log_norm - (df + 1) / 2 * torch.log1p(x * x / df))
        weights = torch.ones(2001, dtype=torch.float64, device="cpu")
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        return 0.5 + float((weights * density).sum()) * t / 2000 / 3

    low, high = 0.0, 200.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


def difference_interval(first: Estimate, second: Estimate, source: str,
                        confidence: float = CONFIDENCE) -> Interval:
    """first - second from two independent estimates, with a normal interval."""
    z = _normal_quantile(confidence)
    difference = first.mean - second.mean
    spread = z * math.hypot(first.stderr, second.stderr)
    return Interval(difference, difference - spread, difference + spread, source)


def seed_interval(first: Sequence[float], second: Sequence[float],
                  confidence: float = CONFIDENCE) -> Interval:
    """mean(first) - mean(second) over independent training runs (seeds), with Welch's t
    interval: the spread between runs is the uncertainty. Each needs >= 2 runs."""
    a = torch.as_tensor(first, dtype=torch.float64, device="cpu")
    b = torch.as_tensor(second, dtype=torch.float64, device="cpu")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a seed interval needs >= 2 runs of each, got {len(a)} and {len(b)}")
    checks.finite(a, "the first runs' values")
    checks.finite(b, "the second runs' values")
    va, vb = float(a.var()) / len(a), float(b.var()) / len(b)
    difference = float(a.mean() - b.mean())
    if va + vb == 0:
        return Interval(difference, difference, difference, f"{len(a)} and {len(b)} seeds")
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    spread = _t_quantile(confidence, df) * math.sqrt(va + vb)
    return Interval(difference, difference - spread, difference + spread,
                    f"{len(a)} and {len(b)} seeds, Welch's t")


def bootstrap_interval(statistic: Callable[[torch.Tensor], float], n: int, resamples: int = 200,
                       seed: int = EVALUATION_SEED, confidence: float = CONFIDENCE,
                       source: str | None = None) -> Interval:
    """A percentile bootstrap: ``statistic(indices)`` on the original items (indices 0..n-1) and
    on ``resamples`` draws of n indices with replacement (a CPU generator seeded by ``seed``).
    The statistic picks what the indices index (images, samples, paired rows)."""
    n = checks.integer(n, "n", minimum=2)
    resamples = checks.integer(resamples, "resamples", minimum=20)
    generator = torch.Generator(device="cpu").manual_seed(checks.integer(seed, "seed", minimum=0))
    estimate = float(statistic(torch.arange(n, device="cpu")))
    draws = torch.tensor([float(statistic(torch.randint(n, (n,), generator=generator, device="cpu")))
                          for _ in range(resamples)], dtype=torch.float64, device="cpu")
    checks.finite(draws, "the bootstrap's statistics")
    tail = (1 - confidence) / 2
    low, high = torch.quantile(draws, torch.tensor([tail, 1 - tail], dtype=torch.float64,
                                                   device="cpu")).tolist()
    return Interval(estimate, low, high, source or f"bootstrap over {n:,} items")


VERDICTS = ("holds", "does not hold", "inconclusive")


def verdict(interval: Interval) -> str:
    """The verdict on a claim whose interval is oriented so that positive means the claim holds:
    "holds" if the whole interval is above 0, "does not hold" if it is below, "inconclusive" if
    it contains 0."""
    if interval.low > 0:
        return "holds"
    if interval.high < 0:
        return "does not hold"
    return "inconclusive"
