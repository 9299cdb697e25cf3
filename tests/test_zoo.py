import dataclasses

import pytest
import torch

from vae_utils import zoo


def tiny(name: str, kind: str = "vae", **settings) -> zoo.Recipe:
    base = dict(epochs=1, batch_size=32, lr=1e-3, image_shape=(3, 32, 32), latent_dim=2,
                hidden=(16,), n_faces=64)
    return zoo.Recipe(name, kind, "faces", **{**base, **settings})


def test_every_recipe_builds_its_model():
    for name, recipe in zoo.RECIPES.items():
        model = zoo.build_model(dict(kind=recipe.kind, **recipe.model_settings()))
        assert getattr(model, "latent_dim", None) == recipe.latent_dim, name
        assert zoo.build_model(model.config).config == model.config, name


def test_recipes_are_frozen_and_validated_where_they_are_made():
    recipe = zoo.RECIPES["mnist-vae"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 1
    with pytest.raises(TypeError, match="epochs must be an int"):
        dataclasses.replace(recipe, epochs=True)
    with pytest.raises(ValueError, match="lr must be > 0"):
        dataclasses.replace(recipe, lr=0.0)
    with pytest.raises(ValueError, match="is a gan: it has no beta"):
        dataclasses.replace(zoo.RECIPES["mnist-gan"], beta=4.0)
    with pytest.raises(ValueError, match="unknown model kind 'diffusion'"):
        dataclasses.replace(recipe, kind="diffusion")


def test_one_entry_per_model_kind_holds_its_class_loss_and_fit():
    assert set(zoo.KINDS) == {"autoencoder", "vae", "cvae", "classifier", "gan"}
    assert {recipe.kind for recipe in zoo.RECIPES.values()} == set(zoo.KINDS)
    assert zoo.KINDS["gan"].loss is None and zoo.KINDS["vae"].loss is not None
    assert "beta" in zoo.KINDS["vae"].settings() and "beta" not in zoo.KINDS["gan"].settings()


def test_a_recipe_prints_in_short_lines():
    for recipe in zoo.RECIPES.values():
        text = str(recipe)
        assert text.startswith(recipe.name) and all(len(line) <= 60 for line in text.splitlines())


def test_unknown_model_name_is_rejected():
    with pytest.raises(ValueError, match="unknown model 'mnist-diffusion'"):
        zoo.trained("mnist-diffusion")


def test_trained_trains_once_then_loads(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-vae", tiny("tiny-faces-vae"))
    first = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    assert "Trained tiny-faces-vae" in capsys.readouterr().out
    second = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    assert "Loaded tiny-faces-vae" in capsys.readouterr().out
    assert first.history == second.history and first.history.train_seconds > 0
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)


def test_a_change_to_the_face_renderer_invalidates_face_checkpoints(monkeypatch, tmp_path, capsys):
    import numpy as np

    from vae_utils import faces

    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-ae", tiny("tiny-faces-ae", "autoencoder",
                                                           hidden=(8,), n_faces=32))
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    monkeypatch.setattr(faces, "_MOUTH", np.array([0.0, 0.0, 1.0]))  # blue mouths
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    assert capsys.readouterr().out.count("Trained tiny-faces-ae") == 2


def test_an_edit_to_the_training_code_trains_the_model_anew(monkeypatch, tmp_path, capsys):
    import types

    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-ae", tiny("tiny-faces-ae", "autoencoder",
                                                           hidden=(8,), n_faces=32))
    source, original = tmp_path / "extra_training_code.py", zoo.TRAINING_CODE
    for text in ("LR = 1e-3\n", "LR = 1e-3\n", "LR = 1e-4\n"):  # same, same, edited
        source.write_text(text)
        module = types.ModuleType("extra_training_code")  # a fresh import in a new process
        module.__file__ = str(source)
        monkeypatch.setattr(zoo, "TRAINING_CODE", (*original, module))
        zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path / "cache")
    out = capsys.readouterr().out
    assert out.count("Trained tiny-faces-ae") == 2 and out.count("Loaded tiny-faces-ae") == 1


def test_the_code_fingerprint_covers_the_modules_that_train_a_model():
    from vae_utils import checks, classifier, data, faces, gan, losses, models, training

    assert {checks, models, gan, classifier, losses, training, data, faces} <= set(zoo.TRAINING_CODE)


def test_variants_are_settings_with_their_own_checkpoint(monkeypatch, tmp_path, capsys):
    recipe = tiny("tiny-faces-vae")
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-vae", recipe)
    assert recipe.variant(beta=4.0).name == "tiny-faces-vae-beta4"
    assert recipe.variant(beta=1.0, seed=0) is recipe  # the recipe's own settings
    changed = recipe.variant(beta=0.5, seed=2)
    assert changed.name == "tiny-faces-vae-beta0.5-seed2" and changed.beta == 0.5 and changed.seed == 2
    assert recipe.beta == 1.0  # the recipe itself is untouched

    plain = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    strong = zoo.trained("tiny-faces-vae", beta=4.0, progress=False, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert "Trained tiny-faces-vae " in out and "Trained tiny-faces-vae-beta4 " in out
    assert plain.history["train_kl"] != strong.history["train_kl"]
    zoo.trained("tiny-faces-vae", beta=4.0, progress=False, checkpoint_dir=tmp_path)
    assert "Loaded tiny-faces-vae-beta4 " in capsys.readouterr().out
    assert len(list(tmp_path.glob("tiny-faces-vae-beta4-*.pt"))) == 1


def test_bad_variant_settings_get_clear_errors():
    with pytest.raises(ValueError, match="is a gan: it has no beta"):
        zoo.RECIPES["mnist-gan"].variant(beta=4.0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        zoo.RECIPES["mnist-vae"].variant(seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        zoo.RECIPES["mnist-vae"].variant(seed=True)
    with pytest.raises(ValueError, match="beta must be > 0"):
        zoo.RECIPES["faces-vae"].variant(beta=0)
    with pytest.raises(ValueError, match="unknown setting 'lr'"):
        zoo.RECIPES["faces-vae"].variant(lr=1.0)
    with pytest.raises(ValueError, match=r"stop_after .* must be <= 40, got 41"):
        zoo.RECIPES["mnist-vae"].variant(stop_after=41)


def test_stop_after_is_a_variant_with_the_full_schedule():
    recipe = zoo.RECIPES["mnist-vae"].variant(seed=1, stop_after=18)
    assert recipe.name == "mnist-vae-seed1-stop18"
    assert recipe.stop_after == 18 and recipe.epochs == zoo.RECIPES["mnist-vae"].epochs
    gan = zoo.RECIPES["mnist-gan"]
    assert gan.variant(stop_after=gan.epochs).name == "mnist-gan"
    assert gan.variant(stop_after=8).name == "mnist-gan-stop8"


def test_the_monitor_measures_against_a_seeded_random_subset_of_the_test_set():
    from vae_utils import metrics

    first = metrics.subset_indices(10_000, zoo.MONITOR.real_images)
    assert len(first) == 2_000 and len(set(first.tolist())) == 2_000
    assert not torch.equal(first, torch.arange(2_000))          # never the leading images
    assert torch.equal(first, metrics.subset_indices(10_000, 2_000))


def test_cache_messages_can_be_silenced_for_the_website(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-ae", tiny("tiny-faces-ae", "autoencoder",
                                                           hidden=(8,), n_faces=32))
    monkeypatch.setenv("VAE_UTILS_CACHE_MESSAGES", "0")
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("VAE_UTILS_CACHE_MESSAGES")
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    assert "Loaded tiny-faces-ae" in capsys.readouterr().out
