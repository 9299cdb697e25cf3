import pytest
import torch

from vae_utils import checkpoints, models


def make_model(hidden=(16,)) -> models.VAE:
    torch.manual_seed(0)
    return models.VAE((1, 4, 4), latent_dim=2, hidden=hidden)


def fake_training(model, calls):
    def train():
        calls.append(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return {"train_loss": [3.0, 2.0]}
    return train


def test_train_once_then_load_the_same_weights_and_history(tmp_path):
    calls = []
    trained = make_model()
    history = checkpoints.train_or_load("toy", trained, {"epochs": 2}, fake_training(trained, calls),
                                        directory=tmp_path, verbose=False)
    fresh = make_model()
    loaded = checkpoints.train_or_load("toy", fresh, {"epochs": 2}, fake_training(fresh, calls),
                                       directory=tmp_path, verbose=False)
    assert len(calls) == 1
    assert loaded == history and loaded["train_loss"] == [3.0, 2.0] and "train_seconds" in loaded
    for a, b in zip(trained.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # no temp files


@pytest.mark.parametrize("change", ["config", "architecture"])
def test_a_changed_configuration_or_architecture_trains_anew(tmp_path, change):
    calls = []
    model = make_model()
    checkpoints.train_or_load("toy", model, {"seed": 0}, fake_training(model, calls),
                              directory=tmp_path, verbose=False)
    other = make_model(hidden=(8,)) if change == "architecture" else make_model()
    config = {"seed": 1} if change == "config" else {"seed": 0}
    checkpoints.train_or_load("toy", other, config, fake_training(other, calls),
                              directory=tmp_path, verbose=False)
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_loading_a_checkpoint_written_for_another_configuration_is_refused(tmp_path):
    model = make_model()
    path = tmp_path / "toy.pt"
    config = checkpoints.full_config(model, {"seed": 0})
    checkpoints.save_checkpoint(path, model, config, {"train_loss": [1.0]})
    with pytest.raises(ValueError, match="another configuration"):
        checkpoints.load_checkpoint(path, make_model(), checkpoints.full_config(model, {"seed": 1}))


def test_checkpoints_load_with_weights_only(tmp_path):
    model = make_model()
    path = tmp_path / "toy.pt"
    checkpoints.save_checkpoint(path, model, checkpoints.full_config(model, {}), {"a": [1.0]})
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"config_json", "state_dict", "history"}


def test_checkpoint_folder_prefers_argument_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(checkpoints.CHECKPOINT_ENV_VAR, str(tmp_path))
    assert checkpoints.checkpoint_dir() == tmp_path
    assert checkpoints.checkpoint_dir("elsewhere").name == "elsewhere"


def test_non_json_configuration_is_rejected_early():
    with pytest.raises(TypeError):
        checkpoints.full_config(make_model(), {"transform": object()})
