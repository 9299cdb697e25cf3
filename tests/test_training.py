import math
import sys
from collections import namedtuple

import pytest
import torch

from vae_utils import losses, models, training
from vae_utils.gan import GAN


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


def test_a_gan_step_changes_both_networks_and_reports_probabilities():
    torch.manual_seed(0)
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    g_before = [p.clone() for p in gan.generator.parameters()]
    d_before = [p.clone() for p in gan.discriminator.parameters()]
    d_opt = torch.optim.Adam(gan.discriminator.parameters(), lr=1e-3)
    g_opt = torch.optim.Adam(gan.generator.parameters(), lr=1e-3)
    terms = training.gan_step(gan, d_opt, g_opt, torch.rand(8, 1, 28, 28), torch.randn(8, 4))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gan.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, gan.discriminator.parameters()))
    assert 0 < terms.d_real < 1 and 0 < terms.d_fake < 1 and terms.d_loss > 0 and terms.g_loss > 0


def test_fit_gan_records_history_and_snapshots_and_is_repeatable():
    images = torch.rand(96, 1, 28, 28)

    def run():
        training.seed_everything(0)
        gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
        return training.fit_gan(gan, images, epochs=2, batch_size=32, n_snapshots=3, progress=False)

    first, second = run(), run()
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "epoch_seconds"):
        assert len(first[key]) == 2
    assert first["snapshots"].shape == (2, 3, 1, 28, 28)
    assert first["d_loss"] == second["d_loss"] and torch.equal(first["snapshots"], second["snapshots"])


def test_a_diverging_gan_stops_with_a_clear_error():
    training.seed_everything(0)
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    with torch.no_grad():
        gan.discriminator[-2].bias.fill_(float("nan"))
    with pytest.raises(training.NonFiniteLossError, match="epoch 1, step 1"):
        training.fit_gan(gan, torch.rand(64, 1, 28, 28), epochs=1, batch_size=32, progress=False)


# --- Faults: a NaN never reaches the weights; empty data and odd batches get clear errors


def test_a_non_finite_loss_leaves_the_weights_of_the_last_finite_step(small_faces):
    Terms = namedtuple("Terms", "loss")
    model = small_vae()
    calls = {"n": 0}
    before_bad_step = {}

    def explodes_at_step_3(m, x):
        calls["n"] += 1
        loss = losses.vae_batch_loss(m, x).loss
        if calls["n"] == 3:
            before_bad_step.update({k: v.clone() for k, v in m.state_dict().items()})
            return Terms(loss * float("inf"))
        return Terms(loss)

    with pytest.raises(training.NonFiniteLossError, match="loss = inf at epoch 1, step 3"):
        training.fit(model, explodes_at_step_3, small_faces, epochs=1, batch_size=32, progress=False)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before_bad_step[name]), name
        assert torch.isfinite(value).all(), name


def test_images_with_nan_are_refused_before_training_starts(small_faces):
    images = small_faces.clone()
    images[5, 0, 3, 3] = float("nan")
    model = small_vae()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="1 pixel values of the images are NaN"):
        training.fit(model, losses.vae_batch_loss, images, epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        training.fit(model, losses.vae_batch_loss, small_faces, test_data=images, epochs=1,
                     progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_labels_out_of_range_are_refused_before_training_starts():
    cvae = models.ConditionalVAE((1, 28, 28), latent_dim=2, n_classes=10, hidden=(16,))
    labels = torch.tensor([0, 1, 2, 10])
    with pytest.raises(ValueError, match=r"\[0, 9\].*\[0, 10\]"):
        training.fit(cvae, losses.vae_batch_loss, (torch.rand(4, 1, 28, 28), labels), epochs=1,
                     progress=False)


def test_empty_data_gets_a_clear_error_not_a_division_by_zero(small_faces):
    with pytest.raises(ValueError, match="empty"):
        training.fit(small_vae(), losses.vae_batch_loss, small_faces[:0], epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        training.evaluate(small_vae(), losses.vae_batch_loss, small_faces[:0])


def test_a_last_batch_of_one_image_is_skipped_under_batchnorm():
    training.seed_everything(0)
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    history = training.fit_gan(gan, torch.rand(65, 1, 28, 28), epochs=1, batch_size=32,
                               progress=False)   # batches of 32, 32 and 1
    assert all(len(history[k]) == 1 and math.isfinite(history[k][0]) for k in ("d_loss", "g_loss"))
    with pytest.raises(ValueError, match="BatchNorm needs batches of at least 2"):
        training.fit_gan(gan, torch.rand(8, 1, 28, 28), epochs=1, batch_size=1, progress=False)


def count_host_syncs(monkeypatch) -> dict:
    """Count calls, made from vae_utils' own code, of the Tensor methods that copy a value to
    the host (on a GPU each waits for the device to finish its queued work)."""
    counts = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            if sys._getframe(1).f_globals.get("__name__", "").startswith("vae_utils"):
                counts["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


def test_a_training_step_synchronises_with_the_device_once(small_faces, monkeypatch):
    model = small_vae()
    counts = count_host_syncs(monkeypatch)
    training.fit(model, losses.vae_batch_loss, small_faces, epochs=2, batch_size=32,
                 progress=False)
    steps = 2 * len(small_faces) // 32
    assert counts["n"] == steps + 2 + 1  # one per step, one per epoch (the weights), the data once


def test_an_adversarial_step_synchronises_once_per_optimiser_update(monkeypatch):
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32))
    counts = count_host_syncs(monkeypatch)
    training.fit_gan(gan, torch.rand(64, 1, 28, 28), epochs=1, batch_size=16, n_snapshots=2,
                     progress=False)
    steps = 64 // 16
    assert counts["n"] == 2 * steps + 1 + 1 + 1  # D and G per step; data; weights; one snapshot


def test_epoch_times_are_read_after_synchronising_the_device(small_faces, monkeypatch):
    synced = []
    monkeypatch.setattr(training, "synchronize", lambda device: synced.append(str(device)))
    training.fit(small_vae(), losses.vae_batch_loss, small_faces, epochs=2, batch_size=64,
                 progress=False)
    assert synced == ["cpu"] * 4  # before and after every epoch


def test_the_cosine_schedule_ends_at_a_twentieth_of_the_learning_rate(small_faces):
    """Adam's learning rate, read after every step, falls from lr to lr / 20 along a cosine."""
    model = models.VAE((3, 32, 32), 2, hidden=(16,))
    seen: list[float] = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        training.fit(model, losses.vae_batch_loss, small_faces, epochs=3, batch_size=16, lr=1e-2,
                     progress=False, lr_schedule="cosine")
    finally:
        torch.optim.Adam.step = original
    steps = 3 * math.ceil(len(small_faces) / 16)
    assert len(seen) == steps and seen[0] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(seen, seen[1:]))
    assert seen[-1] == pytest.approx(5e-4 + (1e-2 - 5e-4) * (1 + math.cos(math.pi * (steps - 1) / steps)) / 2)
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        training.fit(model, losses.vae_batch_loss, small_faces, epochs=1, lr_schedule="step")


def test_the_test_set_can_be_evaluated_after_the_last_epoch_only(small_faces):
    training.seed_everything(0)
    every = training.fit(models.VAE((3, 32, 32), 2, hidden=(16,)), losses.vae_batch_loss,
                         small_faces[:192], test_data=small_faces[192:], epochs=3, batch_size=64,
                         progress=False)
    training.seed_everything(0)
    last = training.fit(models.VAE((3, 32, 32), 2, hidden=(16,)), losses.vae_batch_loss,
                        small_faces[:192], test_data=small_faces[192:], epochs=3, batch_size=64,
                        progress=False, test_every_epoch=False)
    assert len(every["test_loss"]) == 3 and len(last["test_loss"]) == 1
    assert last["train_loss"] == every["train_loss"]
    assert last["test_loss"][0] == pytest.approx(every["test_loss"][-1], rel=0.05)


def test_stop_after_gives_the_model_a_full_run_holds_after_that_epoch():
    """With a cosine schedule over 3 epochs, stopping after 2 leaves exactly the weights that
    the full run has after its second epoch; the monitor sees the model after every epoch and
    changes nothing in training."""
    images = torch.rand(64, 1, 28, 28)
    weights_after_epoch = []

    def monitor(model):
        weights_after_epoch.append([p.detach().clone() for p in model.parameters()])
        return {"first_weight": float(next(model.parameters()).detach().flatten()[0])}

    def run(**kwargs):
        training.seed_everything(0)
        vae = models.VAE((1, 28, 28), latent_dim=2, hidden=(8,))
        history = training.fit(vae, losses.vae_batch_loss, images, epochs=3, batch_size=16,
                               lr=1e-2, lr_schedule="cosine", progress=False, **kwargs)
        return vae, history

    _, full = run(monitor=monitor)
    assert len(full["monitor_first_weight"]) == 3 and len(full["epoch_seconds"]) == 3
    stopped, history = run(stop_after=2)
    assert len(history["train_loss"]) == 2 and history["train_loss"] == full["train_loss"][:2]
    assert all(torch.equal(a, b) for a, b in zip(stopped.parameters(), weights_after_epoch[1]))
    unmonitored, _ = run()
    assert all(torch.equal(a, b) for a, b in zip(unmonitored.parameters(), weights_after_epoch[2]))
    with pytest.raises(ValueError, match=r"stop_after \(at most epochs = 3\) must be <= 3, got 4"):
        run(stop_after=4)


def test_fit_gan_updates_the_weight_average_and_snapshots_it():
    training.seed_everything(0)
    gan = GAN((1, 28, 28), latent_dim=4, hidden=(16, 32), average_decay=0.5)
    start = [p.clone() for p in gan.generator_average.parameters()]
    history = training.fit_gan(gan, torch.rand(64, 1, 28, 28), epochs=1, batch_size=16,
                               n_snapshots=2, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(start, gan.generator_average.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(gan.generator.parameters(),
                                                     gan.generator_average.parameters()))
    z = torch.Generator().manual_seed(0)   # fit_gan's fixed snapshot codes come first
    fixed = torch.randn(2, 4, generator=z)
    with torch.no_grad():
        assert torch.allclose(history["snapshots"][0], torch.sigmoid(gan.generator_average(fixed)))
