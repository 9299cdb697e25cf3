from collections import namedtuple

import pytest
import torch

from vae_utils import losses, models, training


def small_vae() -> models.VAE:
    return models.VAE((3, 32, 32), latent_dim=4, hidden=(32, 16))


def train_once(images: torch.Tensor, seed: int = 0):
    training.seed_everything(seed)
    model = small_vae()
    history = training.fit(model, losses.vae_batch_loss, images[:192], test_data=images[192:],
                           epochs=2, batch_size=32, seed=seed, progress=False)
    return model, history


def test_a_seeded_run_gives_identical_numbers_twice(small_faces):
    model_a, history_a = train_once(small_faces)
    model_b, history_b = train_once(small_faces)
    for key in ("train_loss", "train_recon", "train_kl", "test_loss"):
        assert history_a[key] == history_b[key]
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)
    _, history_c = train_once(small_faces, seed=1)
    assert history_c["train_loss"] != history_a["train_loss"]


def test_history_records_every_loss_term_per_epoch_and_the_loss_falls(small_faces):
    _, history = train_once(small_faces)
    for key in ("train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl",
                "epoch_seconds"):
        assert len(history[key]) == 2, key
    assert history["train_loss"][1] < history["train_loss"][0]
    for train_loss, recon, kl in zip(history["train_loss"], history["train_recon"], history["train_kl"]):
        assert train_loss == pytest.approx(recon + kl, rel=1e-5)


def test_a_non_finite_loss_stops_training_and_names_epoch_and_step(small_faces):
    Terms = namedtuple("Terms", "loss")
    calls = {"n": 0}

    def explodes_at_step_3(model, x):
        calls["n"] += 1
        loss = losses.vae_batch_loss(model, x).loss
        return Terms(loss * float("nan") if calls["n"] == 3 else loss)

    with pytest.raises(training.NonFiniteLossError, match="epoch 1, step 3"):
        training.fit(small_vae(), explodes_at_step_3, small_faces, epochs=1, batch_size=32,
                     progress=False)


def test_fit_passes_extra_tensors_such_as_labels_to_the_batch_loss(small_faces):
    Terms = namedtuple("Terms", "loss")
    labels = torch.arange(len(small_faces))
    seen = []

    def loss_with_labels(model, x, y):
        seen.extend(y.tolist())
        return Terms(losses.vae_batch_loss(model, x).loss)

    training.fit(small_vae(), loss_with_labels, (small_faces, labels), epochs=1, batch_size=64,
                 progress=False)
    assert sorted(seen) == labels.tolist()


def test_evaluate_averages_over_the_whole_dataset(small_faces):
    model = small_vae()
    Terms = namedtuple("Terms", "loss")
    constant_per_image = lambda m, x: Terms(x.mean(dim=(1, 2, 3)).mean())  # noqa: E731
    result = training.evaluate(model, constant_per_image, small_faces, batch_size=100)
    assert result["loss"] == pytest.approx(small_faces.mean().item(), rel=1e-5)


def test_pick_device_returns_an_available_device():
    device = training.pick_device()
    assert isinstance(device, torch.device)
    torch.zeros(1, device=device)


def test_bad_epochs_are_rejected(small_faces):
    with pytest.raises(ValueError, match="epochs"):
        training.fit(small_vae(), losses.vae_batch_loss, small_faces, epochs=0, progress=False)
