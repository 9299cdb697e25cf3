"""The evaluation protocol: seeded subsets, standard errors, intervals and verdicts, each
checked on a case with a known answer."""

import math

import pytest
import torch

from vae_utils import metrics
from vae_utils.metrics.evaluation import _t_quantile


def test_an_evaluation_subset_is_a_seeded_permutation_never_a_leading_slice():
    small, large = metrics.subset_indices(10_000, 1_000), metrics.subset_indices(10_000, 2_000)
    assert torch.equal(large[:1_000], small)                      # nested: one permutation
    assert len(set(large.tolist())) == 2_000 and int(large.max()) < 10_000
    assert not torch.equal(small, torch.arange(1_000))
    assert torch.equal(metrics.subset_indices(5), torch.arange(5))  # None: the full set
    assert not torch.equal(metrics.subset_indices(10_000, 100, seed=1), metrics.subset_indices(10_000, 100))
    with pytest.raises(ValueError, match="size must be <= 10"):
        metrics.subset_indices(10, 11)
    with pytest.raises(TypeError, match="size must be an int"):
        metrics.subset_indices(10, 2.5)


def test_the_mean_and_its_standard_error_match_the_formula():
    estimate = metrics.mean_stderr([1.0, 2.0, 3.0, 4.0])
    assert estimate.mean == 2.5 and estimate.n == 4
    assert estimate.stderr == pytest.approx(math.sqrt(5 / 3) / 2)
    assert str(estimate) == "2.50 ± 0.65"
    with pytest.raises(ValueError, match="at least 2 values"):
        metrics.mean_stderr([1.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.mean_stderr([1.0, float("nan")])


@pytest.mark.parametrize("df, table", [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (100, 1.984)])
def test_the_t_quantile_matches_the_table(df, table):
    assert _t_quantile(0.95, df) == pytest.approx(table, abs=2e-3)


def test_welch_interval_by_hand():
    a, b = [10.0, 12.0, 14.0], [1.0, 2.0, 3.0]
    interval = metrics.seed_interval(a, b)
    va, vb = 4 / 3, 1 / 3                                   # variances of the two means
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    half = _t_quantile(0.95, df) * math.sqrt(va + vb)
    assert interval.estimate == 10.0
    assert interval.low == pytest.approx(10 - half) and interval.high == pytest.approx(10 + half)
    assert "3 and 3 seeds" in interval.source
    with pytest.raises(ValueError, match=">= 2 runs"):
        metrics.seed_interval([1.0], [1.0, 2.0])


def test_seed_intervals_cover_a_true_difference_of_zero_about_95_percent_of_the_time():
    generator = torch.Generator().manual_seed(0)
    covered = 0
    for _ in range(400):
        a = torch.randn(3, generator=generator)
        b = 3 * torch.randn(3, generator=generator)        # unequal spreads: Welch's case
        interval = metrics.seed_interval(a.tolist(), b.tolist())
        covered += interval.low <= 0 <= interval.high
    assert 0.91 <= covered / 400 <= 0.99


def test_a_bootstrap_interval_has_the_width_of_the_normal_one_for_a_mean():
    values = torch.randn(4_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    interval = metrics.bootstrap_interval(lambda i: float(values[i].mean()), len(values),
                                          resamples=400)
    assert interval.estimate == pytest.approx(float(values.mean()))
    expected_half = 1.96 * float(values.std()) / math.sqrt(len(values))
    assert (interval.high - interval.low) / 2 == pytest.approx(expected_half, rel=0.15)
    assert interval.low < interval.estimate < interval.high


def test_verdicts_hold_fail_or_stay_inconclusive_with_their_interval():
    assert metrics.verdict(metrics.Interval(1.0, 0.2, 1.8, "x")) == "holds"
    assert metrics.verdict(metrics.Interval(-1.0, -1.8, -0.2, "x")) == "does not hold"
    assert metrics.verdict(metrics.Interval(0.5, -0.2, 1.2, "x")) == "inconclusive"
    assert set(metrics.VERDICTS) == {"holds", "does not hold", "inconclusive"}


def test_independent_estimates_combine_their_errors():
    interval = metrics.difference_interval(metrics.Estimate(5.0, 0.3, 100),
                                           metrics.Estimate(4.0, 0.4, 100), "images")
    assert interval.estimate == 1.0
    assert interval.high - 1.0 == pytest.approx(1.96 * 0.5, rel=1e-3)
