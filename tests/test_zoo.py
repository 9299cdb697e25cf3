import pytest
import torch

from vae_utils import zoo


def test_every_recipe_builds_its_model():
    from vae_utils import models

    for name, recipe in zoo.RECIPES.items():
        model = models.build_model(**dict(recipe["model"]))
        assert getattr(model, "latent_dim", None) == recipe["model"].get("latent_dim"), name


def test_unknown_model_name_is_rejected():
    with pytest.raises(ValueError, match="unknown model 'mnist-diffusion'"):
        zoo.trained("mnist-diffusion")


def test_trained_trains_once_then_loads(monkeypatch, tmp_path, capsys):
    recipe = dict(model=dict(kind="vae", image_shape=[3, 32, 32], latent_dim=2, arch="mlp",
                             hidden=[16]),
                  data="faces", n_faces=64, epochs=1, batch_size=32, lr=1e-3, beta=1.0, seed=0)
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-vae", recipe)
    first = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    assert "Trained tiny-faces-vae" in capsys.readouterr().out
    second = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    assert "Loaded tiny-faces-vae" in capsys.readouterr().out
    assert first.history == second.history
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)


def test_a_change_to_the_face_renderer_invalidates_face_checkpoints(monkeypatch, tmp_path, capsys):
    import numpy as np

    from vae_utils import faces

    recipe = dict(model=dict(kind="autoencoder", image_shape=[3, 32, 32], latent_dim=2,
                             arch="mlp", hidden=[8]),
                  data="faces", n_faces=32, epochs=1, batch_size=32, lr=1e-3, seed=0)
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-ae", recipe)
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    monkeypatch.setattr(faces, "_MOUTH", np.array([0.0, 0.0, 1.0]))  # blue mouths
    zoo.trained("tiny-faces-ae", progress=False, checkpoint_dir=tmp_path)
    assert capsys.readouterr().out.count("Trained tiny-faces-ae") == 2


def test_an_edit_to_the_training_code_trains_the_model_anew(monkeypatch, tmp_path, capsys):
    import types

    recipe = dict(model=dict(kind="autoencoder", image_shape=[3, 32, 32], latent_dim=2,
                             arch="mlp", hidden=[8]),
                  data="faces", n_faces=32, epochs=1, batch_size=32, lr=1e-3, seed=0)
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-ae", recipe)
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
    from vae_utils import data, faces, losses, models, training

    assert {models, losses, training, data, faces} <= set(zoo.TRAINING_CODE)


def test_variants_are_settings_with_their_own_checkpoint(monkeypatch, tmp_path, capsys):
    recipe = dict(model=dict(kind="vae", image_shape=[3, 32, 32], latent_dim=2, arch="mlp",
                             hidden=[16]),
                  data="faces", n_faces=64, epochs=1, batch_size=32, lr=1e-3, beta=1.0, seed=0)
    monkeypatch.setitem(zoo.RECIPES, "tiny-faces-vae", recipe)
    assert zoo.variant("tiny-faces-vae", beta=4.0)[0] == "tiny-faces-vae-beta4"
    assert zoo.variant("tiny-faces-vae", beta=1.0, seed=0)[0] == "tiny-faces-vae"  # the recipe's own
    name, changed = zoo.variant("tiny-faces-vae", beta=0.5, seed=2)
    assert name == "tiny-faces-vae-beta0.5-seed2" and changed["beta"] == 0.5 and changed["seed"] == 2
    assert zoo.RECIPES["tiny-faces-vae"]["beta"] == 1.0  # the recipe itself is untouched

    plain = zoo.trained("tiny-faces-vae", progress=False, checkpoint_dir=tmp_path)
    strong = zoo.trained("tiny-faces-vae", beta=4.0, progress=False, checkpoint_dir=tmp_path)
    out = capsys.readouterr().out
    assert "Trained tiny-faces-vae " in out and "Trained tiny-faces-vae-beta4 " in out
    assert plain.history["train_kl"] != strong.history["train_kl"]
    zoo.trained("tiny-faces-vae", beta=4.0, progress=False, checkpoint_dir=tmp_path)
    assert "Loaded tiny-faces-vae-beta4 " in capsys.readouterr().out
    assert len(list(tmp_path.glob("tiny-faces-vae-beta4-*.pt"))) == 1


def test_bad_variant_settings_get_clear_errors():
    with pytest.raises(ValueError, match="has no beta"):
        zoo.variant("mnist-gan", beta=4.0)
    with pytest.raises(ValueError, match="seed must be an int"):
        zoo.variant("mnist-vae", seed=-1)
    with pytest.raises(ValueError, match="beta must be a number > 0"):
        zoo.variant("faces-vae", beta=0)
    with pytest.raises(ValueError, match="unknown setting 'lr'"):
        zoo.variant("faces-vae", lr=1.0)
    with pytest.raises(ValueError, match=r"stop_after must be an int in \[1, 40\]"):
        zoo.variant("mnist-vae", stop_after=41)


def test_stop_after_is_a_variant_with_the_full_schedule():
    name, recipe = zoo.variant("mnist-vae", seed=1, stop_after=18)
    assert name == "mnist-vae-seed1-stop18"
    assert recipe["stop_after"] == 18 and recipe["epochs"] == zoo.RECIPES["mnist-vae"]["epochs"]
    assert zoo.variant("mnist-gan", stop_after=zoo.RECIPES["mnist-gan"]["epochs"])[0] == "mnist-gan"
    assert zoo.variant("mnist-gan", stop_after=8)[0] == "mnist-gan-stop8"
