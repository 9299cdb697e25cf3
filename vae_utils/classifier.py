"""The book's digit classifier: the feature space and the class probabilities in which the
GAN and comparison chapters measure samples (``metrics.classifier_view``)."""

from __future__ import annotations

import torch
from torch import nn

from . import checks


class Classifier(nn.Module):
    """A small CNN for 1×28×28 digits: two conv-pool blocks, a 64-d feature layer, 10 logits."""

    num_features = 64

    def __init__(self, n_classes: int = 10):
        super().__init__()
        n_classes = checks.integer(n_classes, "n_classes", minimum=2)
        self.config = dict(kind="classifier", n_classes=n_classes)
        self.image_shape, self.n_classes = (1, 28, 28), n_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # (B, 16, 12, 12)
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 4, 4)
            nn.Flatten(), nn.Linear(32 * 4 * 4, self.num_features), nn.ReLU(),
        )
        self.head = nn.Linear(self.num_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [0, 1] -> (B, 64)."""
        return self.body(checks.images(x, self.image_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, 28, 28) in [0, 1] -> class logits (B, n_classes)."""
        return self.head(self.features(x))
