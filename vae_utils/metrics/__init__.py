"""Measurements of trained models, by what they measure:

- ``likelihood``: the importance-weighted estimate of log p(x) (the VAE chapter);
- ``latents``: what codes hold: active dimensions, probes, mutual information, MIG, holes;
- ``samples``: how good generated images are: Fréchet distance, precision/recall, coverage,
  confident share, sharpness, novelty (the GAN and comparison chapters);
- ``evaluation``: the protocol: seeded evaluation subsets, standard errors, intervals, verdicts.

Every function is also reachable as ``metrics.<name>``, the way the chapters call them.
"""

from .evaluation import (CONFIDENCE, EVALUATION_SEED, VERDICTS, Estimate, Interval,
                         bootstrap_interval, difference_interval, mean_stderr, seed_interval,
                         subset_indices, verdict)
from .latents import (ActiveUnits, active_units, discretize, fit_probe, fraction_in_holes,
                      hole_threshold, latent_labels, mig, mutual_information_matrix,
                      posterior_probe_r2, posterior_samples, probe_r2, slider_factor_changes)
from .likelihood import iwae_log_likelihoods, iwae_log_weights, iwae_nll
from .samples import (ClassifierView, EdgeSlopes, check_view, classifier_view,
                      distance_to_uniform, edge_slopes, frechet_distance, manifold_membership,
                      nearest_neighbour_distances, precision_recall, quality_differences,
                      sample_quality, sample_quality_monitor, sharpness, sharpness_difference)

__all__ = [name for name in dir() if not name.startswith("_")]
