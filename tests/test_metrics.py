import math

import pytest
import torch

from vae_utils import losses, metrics, models
from vae_utils.classifier import Classifier


def tiny_vae() -> models.VAE:
    torch.manual_seed(0)
    return models.VAE((1, 2, 2), latent_dim=1, hidden=(8,)).eval()


def exact_nll(model: models.VAE, x: torch.Tensor) -> float:
    """-log p(x) by quadrature over the 1-D latent: p(x) = ∫ p(x|z) N(z; 0, 1) dz."""
    z = torch.linspace(-10, 10, 20_001).unsqueeze(1)
    dz = (z[1] - z[0]).item()
    with torch.no_grad():
        logits = model.decode(z)  # (G, 1, 2, 2)
    totals = []
    for image in x:
        log_px_z = -losses.bernoulli_nll(logits, image.expand_as(logits))
        log_pz = -0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
        totals.append(-(torch.logsumexp(log_px_z + log_pz, 0) + math.log(dz)).item())
    return sum(totals) / len(totals)


def test_iwae_estimate_matches_the_exact_likelihood_of_a_tiny_model():
    model = tiny_vae()
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.2, 0.9], [0.5, 0.1]]]])
    torch.manual_seed(1)
    estimate = metrics.iwae_nll(model, x, k=20_000)
    assert estimate == pytest.approx(exact_nll(model, x), abs=0.01)


def test_iwae_bound_tightens_with_more_samples():
    model = tiny_vae()
    x = torch.rand(64, 1, 2, 2)
    torch.manual_seed(2)
    one = metrics.iwae_nll(model, x, k=1)
    many = metrics.iwae_nll(model, x, k=500)
    exact = exact_nll(model, x)
    assert exact <= many + 1e-3 and many < one


def test_iwae_rejects_k_below_one():
    with pytest.raises(ValueError, match=r"k \(importance samples per image\) must be >= 1, got 0"):
        metrics.iwae_nll(tiny_vae(), torch.rand(2, 1, 2, 2), k=0)


def factors_and_noise(n: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    factors = torch.rand(n, 3, generator=generator)
    factors[:, 2] = (factors[:, 2] < 0.5).float()  # a binary factor, like glasses
    noise = torch.randn(n, 3, generator=generator)
    return factors, noise


def test_a_latent_copy_of_each_factor_gives_a_perfect_score():
    factors, noise = factors_and_noise()
    latents = torch.cat([factors * 3 - 1, noise], dim=1)  # z_j = affine copy of factor j, then noise
    mi = metrics.mutual_information_matrix(latents, factors)
    assert torch.allclose(mi[:3].diagonal(), torch.ones(3), atol=1e-5)
    score, gaps = metrics.mig(mi)
    assert score > 0.9 and (gaps > 0.9).all()


def test_independent_noise_scores_close_to_zero():
    factors, noise = factors_and_noise()
    mi = metrics.mutual_information_matrix(noise, factors)
    assert mi.max() < 0.05
    assert metrics.mig(mi)[0] < 0.03


def test_a_factor_copied_into_two_latents_has_no_gap():
    factors, _ = factors_and_noise()
    latents = torch.cat([factors[:, :1], factors[:, :1] * 2, factors[:, 1:]], dim=1)
    _, gaps = metrics.mig(metrics.mutual_information_matrix(latents, factors))
    assert gaps[0] < 1e-6 and gaps[1] > 0.9


def switched_on_and_off_posterior(factors: torch.Tensor) -> models.Posterior:
    """z1 encodes factor 0 sharply; z2 is switched off (q = N(0, 1) but for a mean that follows
    factor 1 by a hair, as a collapsed VAE dimension's mean does); z3 is the prior exactly."""
    n = len(factors)
    mu = torch.stack([4 * factors[:, 0] - 2, 1e-3 * factors[:, 1], torch.zeros(n)], dim=1)
    logvar = torch.stack([torch.full((n,), -12.0), torch.zeros(n), torch.zeros(n)], dim=1)
    return models.Posterior(mu, logvar)


def test_a_switched_off_dimension_scores_near_zero_on_samples_but_not_on_means():
    factors, _ = factors_and_noise()
    posterior = switched_on_and_off_posterior(factors)
    on_means = metrics.mutual_information_matrix(posterior.mu, factors)
    assert on_means[1, 1] > 0.9  # the estimator on means credits the switched-off z2 with factor 1
    samples = metrics.posterior_samples(posterior, torch.Generator().manual_seed(123))
    on_samples = metrics.mutual_information_matrix(samples, factors)
    assert on_samples[0, 0] > 0.9  # the sharp dimension keeps its information
    assert on_samples[1:].max() < 0.05
    assert metrics.latent_labels(on_samples, ["a", "b", "c"]) == ["a", "z2", "z3"]


def test_active_units_by_kl_and_by_the_covariance_criterion():
    factors, _ = factors_and_noise()
    posterior = switched_on_and_off_posterior(factors)
    units = metrics.active_units(posterior)
    assert units.active.tolist() == [True, False, False]
    # KL per dimension: z3 is the prior exactly; z1's closed form averaged over the uniform factor.
    mu, logvar = posterior
    expected_kl = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0)
    assert torch.allclose(units.kl, expected_kl, atol=1e-5)
    assert units.kl[2] == 0 and units.kl[1] < 1e-6 and units.kl[0] > 3
    assert units.activity[0] == pytest.approx(16 / 12, rel=0.05)  # Var(4U) for U ~ Uniform(0, 1)
    with pytest.raises(ValueError, match="same shape"):
        metrics.active_units(models.Posterior(mu, logvar[:, :2]))


def test_probe_r2_reads_a_factor_from_any_dimension_and_nothing_from_noise():
    factors, noise = factors_and_noise(n=4000)
    # Factor 0 sits in z1; factor 1 is spread over z2 and z3 (their sum): both are readable.
    # Factor 2 is absent from the code.
    latents = torch.stack([2 * factors[:, 0] - 1, factors[:, 1] + noise[:, 0],
                           factors[:, 1] - noise[:, 0]], dim=1)
    r2 = metrics.probe_r2(latents[:3000], factors[:3000], latents[3000:], factors[3000:])
    assert r2[0] > 0.999 and r2[1] > 0.999
    assert abs(r2[2]) < 0.02
    u = latents[:, :1]  # uniform on [-1, 1]: u^2 is uncorrelated with u, so only the squared
    squared = metrics.probe_r2(u[:3000], u[:3000] ** 2, u[3000:], u[3000:] ** 2)  # terms read it
    assert squared[0] > 0.999
    # A factor that is the product of two dimensions (a curved direction) is read too.
    product = (latents[:, 0] * latents[:, 1]).unsqueeze(1)
    assert metrics.probe_r2(latents[:3000], product[:3000], latents[3000:], product[3000:])[0] > 0.99
    with pytest.raises(ValueError, match="same number of items in each: latents 10, factors 20"):
        metrics.probe_r2(latents[:10], factors[:20], latents, factors)


class _ReadsPixels(torch.nn.Module):
    """An 'encoder' whose posterior mean is the first two pixels of a (1, 2, 2) image."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        mu = x.flatten(1)[:, :2]
        return mu, torch.zeros_like(mu)


def test_posterior_probe_r2_fits_on_the_first_images_and_scores_the_rest():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 2, 2, generator=generator)
    pixels = images.flatten(1)
    factors = torch.stack([pixels[:, 0], pixels[:, 3]], dim=1)   # one in the code, one not
    r2 = metrics.posterior_probe_r2(_ReadsPixels(), images, factors)
    assert r2[0] > 0.999 and abs(r2[1]) < 0.05
    expected = metrics.probe_r2(pixels[:300, :2], factors[:300], pixels[300:, :2], factors[300:])
    assert torch.equal(metrics.posterior_probe_r2(_ReadsPixels(), images, factors, n_fit=300),
                       expected)
    with pytest.raises(ValueError, match="n_fit"):
        metrics.posterior_probe_r2(_ReadsPixels(), images, factors, n_fit=400)
    with pytest.raises(ValueError, match="images 400, factors 10"):
        metrics.posterior_probe_r2(_ReadsPixels(), images, factors[:10])


def test_latent_labels_name_only_clearly_tied_dimensions_once_each():
    mi = torch.tensor([[0.9, 0.0, 0.1],    # z1: clearly factor a
                       [0.5, 0.0, 0.0],    # z2: also a, but z1 knows more
                       [0.0, 0.1, 0.05],   # z3: too little about anything
                       [0.0, 0.0, 0.6]])   # z4: clearly factor c
    assert metrics.latent_labels(mi, ["a", "b", "c"]) == ["a", "z2", "z3", "c"]
    with pytest.raises(ValueError, match="2 factor names for 3 factors"):
        metrics.latent_labels(mi, ["a", "b"])


def test_information_measures_reject_bad_inputs():
    factors, noise = factors_and_noise(n=1000)
    with pytest.raises(ValueError, match="same N"):
        metrics.mutual_information_matrix(noise[:10], factors)
    with pytest.raises(ValueError, match="at least 200 samples"):
        metrics.mutual_information_matrix(noise[:100], factors[:100])
    with pytest.raises(ValueError, match="constant"):
        metrics.mutual_information_matrix(noise, torch.zeros(1000, 1))
    with pytest.raises(ValueError, match="has 1 rows; this needs at least 2"):
        metrics.mig(torch.ones(1, 3))


def test_frechet_distance_of_a_shifted_gaussian_matches_the_closed_form():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(20_000, 4, generator=generator, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    fake = torch.randn(20_000, 4, generator=generator, dtype=torch.float64) * 2 + shift
    # N(0, I) vs N(m, 4I): |m|^2 + tr(I + 4I - 2 (4I)^(1/2)) = |m|^2 + 4 (1 + 4 - 4)
    expected = float(shift.pow(2).sum()) + 4 * (1 + 4 - 2 * 2)
    measured = metrics.frechet_distance(real, fake)
    assert measured == pytest.approx(expected, rel=0.03)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert abs(metrics.frechet_distance(x, x)) < 1e-6


def test_frechet_distance_agrees_with_torchmetrics_on_correlated_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    generator = torch.Generator().manual_seed(2)
    mixing = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    real = torch.randn(3000, 6, generator=generator, dtype=torch.float64) @ mixing
    fake = torch.randn(2000, 6, generator=generator, dtype=torch.float64) @ mixing.T * 0.7 + 0.3

    class Identity(torch.nn.Module):
        num_features = 6

        def forward(self, x):
            return x

    reference = FrechetInceptionDistance(feature=Identity())
    reference.update(real, real=True)
    reference.update(fake, real=False)
    assert metrics.frechet_distance(real, fake) == pytest.approx(float(reference.compute()), rel=1e-6)


def test_frechet_distance_rejects_bad_feature_sets_with_clear_errors():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(torch.randn(100, 8), torch.randn(1, 8))
    with pytest.raises(ValueError, match="second set's features with 3 columns, got \\(50, 4\\)"):
        metrics.frechet_distance(torch.randn(50, 3), torch.randn(50, 4))
    features = torch.randn(50, 4)
    features[7, 2] = float("nan")
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        metrics.frechet_distance(torch.randn(50, 4), features)


def test_precision_and_recall_on_identical_disjoint_and_collapsed_sets():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 5, generator=generator)
    assert metrics.precision_recall(real, real.clone()) == (1.0, 1.0)
    far = real + 100.0
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    collapsed = real[:20].repeat(50, 1) + 1e-4 * torch.randn(1000, 5, generator=generator)
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.1  # realistic but covers little of the data
    with pytest.raises(ValueError, match="with 5 columns, got \\(10, 4\\)"):
        metrics.precision_recall(real, torch.randn(10, 4))


def test_class_coverage_distance_to_uniform():
    assert metrics.distance_to_uniform(torch.full((10,), 0.1)) == pytest.approx(0.0, abs=1e-6)
    one_class = torch.zeros(10)
    one_class[3] = 1.0
    assert metrics.distance_to_uniform(one_class) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="shares >= 0 that sum to 1"):
        metrics.distance_to_uniform(torch.ones(10))


def test_class_histogram_counts_the_classifiers_predictions():
    class Threshold(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):  # class 1 if the mean pixel is above 0.5
            m = x.flatten(1).mean(1, keepdim=True)
            return torch.cat([0.5 - m, m - 0.5], dim=1)

        def features(self, x):
            return x.flatten(1).mean(1, keepdim=True)

        def head(self, m):
            return torch.cat([0.5 - m, m - 0.5], dim=1)

    Threshold.image_shape = (1, 2, 2)
    images = torch.cat([torch.zeros(30, 1, 2, 2), torch.ones(10, 1, 2, 2)])
    assert metrics.classifier_view(Threshold(), images).histogram().tolist() == [0.75, 0.25]


def test_a_nan_image_in_a_sample_set_is_reported_not_a_crash():
    classifier = Classifier().eval()
    samples = torch.rand(20, 1, 28, 28)
    samples[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.classifier_view(classifier, samples).histogram()


def test_neighbour_metrics_refuse_k_at_or_above_the_number_of_samples():
    real = torch.randn(5, 3)
    with pytest.raises(ValueError, match="at least 6"):
        metrics.precision_recall(real, torch.randn(50, 3), k=5)
    with pytest.raises(ValueError, match=r"k \(neighbours\) must be >= 1, got 0"):
        metrics.precision_recall(real, real, k=0)
    with pytest.raises(TypeError, match=r"k \(neighbours\) must be an int, got 2.5"):
        metrics.precision_recall(real, real, k=2.5)


def test_empty_and_non_finite_inputs_to_the_other_metrics_get_clear_errors():
    with pytest.raises(ValueError, match="expected at least 1 images, got 0"):
        metrics.iwae_nll(tiny_vae(), torch.rand(0, 1, 2, 2))
    with pytest.raises(ValueError, match="expected at least 1 images, got 0"):
        metrics.classifier_view(Classifier(), torch.rand(0, 1, 28, 28))
    latents = torch.randn(400, 2)
    latents[0, 1] = float("nan")
    with pytest.raises(ValueError, match="latents has 1 NaN"):
        metrics.mutual_information_matrix(latents, torch.rand(400, 2))


def test_slider_factor_changes_find_the_factor_each_slider_moves():
    """A 'decoder' whose images are the factors themselves: slider 0 moves factor 2, slider 1
    moves factor 0 (and a little of factor 1), slider 2 is dead."""
    mixing = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.2, 0.0], [0.0, 0.0, 0.0]])  # (D, K)

    def decode(z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ mixing)

    changes = metrics.slider_factor_changes(decode, lambda images: images, latent_dim=3, span=2.0)
    assert changes.shape == (3, 3)
    assert changes[0].argmax() == 2 and changes[1].argmax() == 0
    assert changes[2].abs().max() == 0
    assert changes[0, 2].item() == pytest.approx(2 * torch.sigmoid(torch.tensor(2.0)).item() - 1, rel=1e-5)
    # Scaled by each factor's spread: slider 1 moves factor 1 less than factor 0 in raw units,
    # but more when counted in factor 1's (ten times smaller) standard deviation.
    scaled = metrics.slider_factor_changes(decode, lambda images: images, 3,
                                           scale=torch.tensor([1.0, 0.1, 1.0]))
    assert changes[1, 1] < changes[1, 0] and scaled[1].argmax() == 1
    assert scaled[1, 1].item() == pytest.approx(10 * changes[1, 1].item(), rel=1e-5)
    with pytest.raises(ValueError, match="3 positive numbers"):
        metrics.slider_factor_changes(decode, lambda images: images, 3, scale=torch.ones(2))


def test_a_fitted_probe_predicts_new_codes_and_checks_their_width():
    factors, noise = factors_and_noise(n=2000)
    latents = torch.stack([factors[:, 0] + factors[:, 1], factors[:, 0] - factors[:, 1],
                           factors[:, 2]], dim=1)
    targets = torch.cat([factors, (factors[:, 0] * factors[:, 1]).unsqueeze(1)], dim=1)  # + a product
    probe = metrics.fit_probe(latents[:1500], targets[:1500])
    assert torch.allclose(probe(latents[1500:]), targets[1500:], atol=0.02)
    with pytest.raises(ValueError, match=r"codes for the probe \(M, 3\) with 3 columns, got \(2000, 2\)"):
        probe(latents[:, :2])


def strokes(n: int, seed: int = 0) -> torch.Tensor:
    """n digit-like images (n, 1, 28, 28): three anti-aliased strokes 2.5 pixels wide each."""
    generator = torch.Generator().manual_seed(seed)
    ends = 5 + 18 * torch.rand(n, 3, 2, 2, generator=generator)          # (n, strokes, end, xy)
    axis = torch.arange(28.0) + 0.5
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    p = torch.stack([x, y], -1).view(1, 1, 28, 28, 2)
    a, b = ends[:, :, 0].view(n, 3, 1, 1, 2), ends[:, :, 1].view(n, 3, 1, 1, 2)
    t = (((p - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1)).clamp(0, 1).unsqueeze(-1)
    distance = (p - (a + t * (b - a))).norm(dim=-1)                       # (n, 3, 28, 28)
    ink = (1.75 - distance).clamp(0, 1)                                  # a one-pixel soft edge
    return ink.max(1, keepdim=True).values


def blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    from vae_utils.metrics.samples import _gaussian_smooth

    return _gaussian_smooth(images.double(), sigma).float().clamp(0, 1)


def test_sharpness_falls_monotonically_with_blur():
    clean = strokes(300)
    values = [metrics.sharpness(clean)] + [metrics.sharpness(blurred(clean, s)) for s in (0.5, 1, 2)]
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("noise", ["bernoulli draws", "salt and pepper 1%", "salt and pepper 5%"])
@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_sharpness_never_rates_speckle_as_sharper(noise, blur):
    """The old measure (mean |neighbour difference|) rated Bernoulli draws of blurry images
    sharper than real digits: noise is not sharpness."""
    generator = torch.Generator().manual_seed(1)
    clean = strokes(300) if not blur else blurred(strokes(300), blur)
    if noise == "bernoulli draws":
        noisy = torch.bernoulli(clean, generator=generator)
    else:
        share = 0.01 if noise.endswith("1%") else 0.05
        hit = torch.rand(clean.shape, generator=generator) < share
        noisy = torch.where(hit, (torch.rand(clean.shape, generator=generator) < 0.5).float(), clean)
    assert metrics.sharpness(noisy) <= metrics.sharpness(clean)


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_sharpness_of_a_blurred_step_is_its_rise_over_the_edge_band(sigma):
    """A straight edge from 0 to 1 blurred by a Gaussian of sigma: the edge pixels are those where
    the copy (blurred by sqrt(sigma^2 + 1.5^2) in all) is within [0.1, 0.9], and the mean slope
    over them is the rise of the image across that band divided by its width."""
    from vae_utils.metrics.samples import SHARPNESS_SMOOTHING

    normal = torch.distributions.Normal(0.0, 1.0)
    x = torch.arange(64.0) + 0.5 - 32
    image = normal.cdf(x / sigma).view(1, 1, 1, 64).expand(1, 1, 64, 64).contiguous()
    copy_sigma = (sigma ** 2 + SHARPNESS_SMOOTHING ** 2) ** 0.5
    half_width = float(normal.icdf(torch.tensor(0.9))) * copy_sigma
    rise = float(normal.cdf(torch.tensor(half_width / sigma)) - normal.cdf(torch.tensor(-half_width / sigma)))
    assert metrics.sharpness(image) == pytest.approx(rise / (2 * half_width), rel=0.15)


def test_sharpness_refuses_blank_small_and_out_of_range_images():
    with pytest.raises(ValueError, match="no edge pixels"):
        metrics.sharpness(torch.full((2, 1, 8, 8), 0.0))
    with pytest.raises(ValueError, match="at least 3x3"):
        metrics.sharpness(torch.rand(4, 1, 2, 28))
    with pytest.raises(ValueError, match=r"in \[0, 1\], got range"):
        metrics.sharpness(strokes(4) * 255)
    with pytest.raises(TypeError, match="divide uint8 pixels by 255"):
        metrics.sharpness((strokes(4) * 255).to(torch.uint8))


def test_nearest_neighbour_distances_find_copies_and_measure_new_images():
    torch.manual_seed(0)
    reference = torch.rand(50, 1, 4, 4)
    copies = reference[[3, 7]] + 0.001
    far = torch.full((1, 1, 4, 4), 1.0)
    d = metrics.nearest_neighbour_distances(torch.cat([copies.clamp(max=1), far]), reference, chunk=2)
    assert d[:2].max() < 0.01
    expected = (reference.flatten(1) - 1.0).norm(dim=1).min()
    assert d[2].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"reference images of shape \(N, 1, 3, 3\), got \(50, 1, 4, 4\)"):
        metrics.nearest_neighbour_distances(torch.rand(2, 1, 3, 3), reference)


def test_a_classifier_view_gives_features_classes_and_confidence_in_one_pass():
    classifier = Classifier().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        classifier.head.weight.zero_()
        classifier.head.bias.copy_(torch.tensor([5.0] + [0.0] * 9))  # always "0", p = 0.94
    images = torch.rand(30, 1, 28, 28)
    view = metrics.classifier_view(classifier, images, batch_size=7)
    assert view.features.shape == (30, 64) and view.probabilities.shape == (30, 10)
    with torch.no_grad():
        reference = classifier.features(images)
    assert torch.allclose(view.features, reference, atol=1e-5)
    assert view.histogram().tolist() == [1.0] + [0.0] * 9
    assert torch.equal(view.histogram(), metrics.classifier_view(classifier, images).histogram())
    assert view.confident_share(0.9) == 1.0 and view.confident_share(0.95) == 0.0


def test_sample_quality_of_a_set_against_itself_is_perfect():
    torch.manual_seed(0)
    features = torch.randn(300, 4)
    probabilities = torch.softmax(3 * torch.randn(300, 10), dim=1)
    view = metrics.ClassifierView(features, probabilities)
    quality = metrics.sample_quality(view, view)
    assert abs(quality["frechet_distance"]) < 1e-6
    assert quality["precision"] == 1.0 and quality["recall"] == 1.0
    assert quality["coverage_tv"] == metrics.distance_to_uniform(view.histogram())
    assert quality["confident"] == view.confident_share()
    shifted = metrics.sample_quality(view, metrics.ClassifierView(features + 5, probabilities))
    assert shifted["frechet_distance"] > 90 and shifted["precision"] < 0.1


def test_the_sample_quality_monitor_measures_the_model_s_samples():
    torch.manual_seed(0)
    classifier = Classifier().eval()
    real = torch.rand(40, 1, 28, 28)

    class Copier(torch.nn.Module):     # "samples" are the real images themselves
        def sample(self, n, generator=None):
            return real[:n]

    monitor = metrics.sample_quality_monitor(classifier, real, n_samples=40, n_snapshots=3)
    quality = monitor(Copier())
    assert abs(quality["frechet_distance"]) < 1e-3 and quality["precision"] == 1.0
    assert torch.equal(quality["snapshots"], real[:3])
