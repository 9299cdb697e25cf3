import errno
import os
import re
import stat
import tempfile

import pytest
import torch

from vae_utils import checkpoints, models, settings
from vae_utils.training import History


def make_model(hidden=(16,)) -> models.VAE:
    torch.manual_seed(0)
    return models.VAE((1, 4, 4), latent_dim=2, hidden=hidden)


def history(**values) -> History:
    return History(values={k: list(v) for k, v in (values or {"a": [1.0]}).items()})


def fake_training(model, calls):
    def train():
        calls.append(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return History(values={"train_loss": [3.0, 2.0]}, train_seconds=0.5)
    return train


def train_or_load(name, model, config, train, directory):
    """What zoo.trained does with the cache: load, or check the folder, train and save."""
    loaded = checkpoints.load_cached(name, model, config, directory)
    if loaded is not None:
        return loaded
    can_save = checkpoints.writable(name, directory)
    trained = train()
    checkpoints.round_to_stored(model)
    if can_save:
        checkpoints.save_cached(name, model, config, trained, directory)
    return trained


def test_train_once_then_load_the_same_weights_and_history(tmp_path):
    calls = []
    trained = make_model()
    history = train_or_load("toy", trained, {"epochs": 2}, fake_training(trained, calls),
                                        directory=tmp_path)
    fresh = make_model()
    loaded = train_or_load("toy", fresh, {"epochs": 2}, fake_training(fresh, calls),
                                       directory=tmp_path)
    assert len(calls) == 1
    assert loaded == history and loaded["train_loss"] == [3.0, 2.0] and loaded.train_seconds == 0.5
    for a, b in zip(trained.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.iterdir()).name]  # no temp files


def test_weights_are_stored_in_float16_and_a_just_trained_model_is_rounded_to_them(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.encoder[1].weight[0, 0] = 1 / 3                    # not a float16 number
        model.encoder[1].bias[0] = 1e6                           # beyond float16's range
    before = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoints.round_to_stored(model)
    after = model.state_dict()
    assert after["encoder.1.weight"][0, 0] == torch.tensor(1 / 3).half().float() != 1 / 3
    assert after["encoder.1.bias"][0] == 1e6                     # kept in float32, not inf
    for k in before:                                             # a rounding, nothing more
        assert torch.allclose(before[k], after[k], rtol=2 ** -11, atol=0)
    checkpoints.save_cached("toy", model, {"epochs": 1}, history(), tmp_path)
    path, = tmp_path.iterdir()
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert stored["encoder.1.weight"].dtype == torch.float16
    assert stored["encoder.1.bias"].dtype == torch.float32       # the tensor that does not fit
    fresh = make_model()
    checkpoints.load_cached("toy", fresh, {"epochs": 1}, tmp_path)
    assert all(p.dtype == torch.float32 for p in fresh.parameters())
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("change", ["config", "architecture"])
def test_a_changed_configuration_or_architecture_trains_anew(tmp_path, change):
    calls = []
    model = make_model()
    train_or_load("toy", model, {"seed": 0}, fake_training(model, calls),
                              directory=tmp_path)
    other = make_model(hidden=(8,)) if change == "architecture" else make_model()
    config = {"seed": 1} if change == "config" else {"seed": 0}
    train_or_load("toy", other, config, fake_training(other, calls),
                              directory=tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_loading_a_checkpoint_written_for_another_configuration_is_refused(tmp_path):
    model = make_model()
    path = tmp_path / "toy.pt"
    config = checkpoints.full_config(model, {"seed": 0})
    checkpoints.save_checkpoint(path, model, config, history(train_loss=[1.0]))
    with pytest.raises(ValueError, match="another configuration"):
        checkpoints.load_checkpoint(path, make_model(), checkpoints.full_config(model, {"seed": 1}))


def test_checkpoints_load_with_weights_only(tmp_path):
    model = make_model()
    path = tmp_path / "toy.pt"
    checkpoints.save_checkpoint(path, model, checkpoints.full_config(model, {}), history())
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"config_json", "state_dict", "history"}


def test_checkpoint_folder_prefers_argument_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(checkpoints.CHECKPOINT_ENV_VAR, str(tmp_path))
    assert checkpoints.checkpoint_dir() == tmp_path
    assert checkpoints.checkpoint_dir("elsewhere").name == "elsewhere"


def test_non_json_configuration_is_rejected_early():
    with pytest.raises(TypeError):
        checkpoints.full_config(make_model(), {"transform": object()})


# --- A broken cache never costs a reader their work ---------------------------------------

def cache_path(tmp_path, model, config=None):
    """Where train_or_load("toy", model, config) looks for its checkpoint."""
    full = checkpoints.full_config(model, config or {"epochs": 2})
    return checkpoints.checkpoint_path("toy", full, tmp_path)


def save_truncated(path, model):
    config = checkpoints.full_config(model, {"epochs": 2})
    checkpoints.save_checkpoint(path, model, config, history())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "empty": lambda path, model: path.write_bytes(b""),
    "truncated": save_truncated,
    "random bytes": lambda path, model: path.write_bytes(bytes(range(256)) * 4),
    "text": lambda path, model: path.write_text("not a checkpoint\n"),
    "other keys": lambda path, model: torch.save({"weights": torch.zeros(3)}, path),
    "unfit weights": lambda path, model: checkpoints.save_checkpoint(
        path, make_model(hidden=(8,)), checkpoints.full_config(model, {"epochs": 2}), history()),
    "another configuration": lambda path, model: checkpoints.save_checkpoint(
        path, model, checkpoints.full_config(model, {"epochs": 99}), history()),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_checkpoint_is_moved_aside_and_retrained(tmp_path, damage):
    calls = []
    model = make_model()
    path = cache_path(tmp_path, model)
    DAMAGES[damage](path, model)
    damaged_bytes = path.read_bytes()
    with pytest.warns(checkpoints.CheckpointWarning, match=re.escape(str(path))):
        history = train_or_load("toy", model, {"epochs": 2},
                                            fake_training(model, calls), directory=tmp_path)
    assert len(calls) == 1 and history["train_loss"] == [3.0, 2.0]
    assert (tmp_path / f"{path.name}.damaged").read_bytes() == damaged_bytes
    # the damaged file did not touch the weights: training started from the fresh model
    for trained, fresh in zip(model.parameters(), make_model().parameters()):
        assert torch.equal(trained, (fresh + 1.0).half().float())   # as stored
    reloaded = make_model()
    train_or_load("toy", reloaded, {"epochs": 2}, fake_training(reloaded, calls),
                              directory=tmp_path)
    assert len(calls) == 1  # the new checkpoint loads


def test_a_file_set_aside_never_overwrites_an_earlier_one(tmp_path):
    model = make_model()
    path = cache_path(tmp_path, model)
    for content in (b"first", b"second"):
        path.write_bytes(content)
        with pytest.warns(checkpoints.CheckpointWarning):
            train_or_load("toy", make_model(), {"epochs": 2}, fake_training(model, []),
                                      directory=tmp_path)
    assert (tmp_path / f"{path.name}.damaged").read_bytes() == b"first"
    assert (tmp_path / f"{path.name}.damaged-2").read_bytes() == b"second"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoint_files_are_readable_as_the_umask_allows(tmp_path, umask, mode):
    model = make_model()
    old = os.umask(umask)
    try:
        checkpoints.save_checkpoint(tmp_path / "toy.pt", model, {}, history())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "toy.pt").stat().st_mode) == mode


def test_writes_are_flushed_and_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append("fsync folder" if stat.S_ISDIR(info.st_mode) else f"fsync {info.st_size > 0}")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    checkpoints.save_checkpoint(tmp_path / "toy.pt", make_model(), {}, history())
    # "fsync True": the file's bytes had been flushed (it was not empty) when it was fsynced
    assert events == ["fsync True", "replace", "fsync folder"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc/passwd", ".hidden", "x..y", "", "a b"])
def test_a_name_cannot_escape_the_cache_folder(tmp_path, name):
    folder = tmp_path / "cache"
    calls = []
    with pytest.raises(ValueError, match="name .* is not allowed"):
        train_or_load(name, make_model(), {}, fake_training(make_model(), calls),
                                  directory=folder)
    assert calls == [] and list(tmp_path.iterdir()) == []


def deny_writes(folder, monkeypatch, how):
    """Make ``folder`` unwritable: really (chmod; not for root) or by refusing new files."""
    folder.mkdir()
    if how == "chmod":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the 'refused' variant covers this")
        folder.chmod(0o500)
        return

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


@pytest.mark.parametrize("how", ["refused", "chmod"])
def test_a_read_only_cache_folder_warns_before_training_and_still_returns_the_model(
        tmp_path, monkeypatch, how):
    folder = tmp_path / "read-only"
    deny_writes(folder, monkeypatch, how)
    model = make_model()
    warned_before_training = []
    train = fake_training(model, [])
    with pytest.warns(checkpoints.CheckpointWarning) as record:
        history = train_or_load(
            "toy", model, {}, lambda: warned_before_training.append(len(record)) or train(),
            directory=folder)
    folder.chmod(0o700)
    message = str(record[0].message)
    assert warned_before_training == [1] and len(record) == 1
    assert str(folder) in message and checkpoints.CHECKPOINT_ENV_VAR in message
    assert "not saved" in message.lower()
    assert history["train_loss"] == [3.0, 2.0] and list(folder.iterdir()) == []
    for trained, fresh in zip(model.parameters(), make_model().parameters()):
        assert torch.equal(trained, (fresh + 1.0).half().float())   # as stored


@pytest.mark.parametrize("failing", ["torch.save", "os.replace"])
def test_a_full_disk_at_save_time_keeps_the_trained_model(tmp_path, monkeypatch, failing):
    def disk_full(*args):
        if failing == "torch.save":
            args[1].write(b"partial")  # some bytes reach the disk first
        raise OSError(errno.ENOSPC, "No space left on device")

    module, attribute = {"torch.save": (torch, "save"), "os.replace": (os, "replace")}[failing]
    monkeypatch.setattr(module, attribute, disk_full)
    model = make_model()
    with pytest.warns(checkpoints.CheckpointWarning, match="No space left on device"):
        history = train_or_load("toy", model, {}, fake_training(model, []),
                                            directory=tmp_path)
    assert history["train_loss"] == [3.0, 2.0] and history.train_seconds == 0.5
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    for trained, fresh in zip(model.parameters(), make_model().parameters()):
        assert torch.equal(trained, (fresh + 1.0).half().float())   # as stored


def test_a_checkpoint_with_nan_weights_is_set_aside_and_retrained(tmp_path):
    model = make_model()
    path = cache_path(tmp_path, model)
    damaged = make_model()
    with torch.no_grad():
        next(damaged.parameters())[0, 0] = float("nan")
    checkpoints.save_checkpoint(path, damaged, checkpoints.full_config(model, {"epochs": 2}),
                                history())
    calls = []
    with pytest.warns(checkpoints.CheckpointWarning, match="NaN or infinite weights"):
        train_or_load("toy", model, {"epochs": 2}, fake_training(model, calls), directory=tmp_path)
    assert len(calls) == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    assert (tmp_path / f"{path.name}.damaged").exists()


def test_a_checkpoint_with_a_nan_in_its_history_is_set_aside(tmp_path):
    model = make_model()
    path = cache_path(tmp_path, model)
    checkpoints.save_checkpoint(path, model, checkpoints.full_config(model, {"epochs": 2}), history())
    payload = torch.load(path, weights_only=True)
    payload["history"]["values"]["a"] = [float("nan")]
    torch.save(payload, path)
    with pytest.warns(checkpoints.CheckpointWarning, match="unreadable history"):
        assert checkpoints.load_cached("toy", make_model(), {"epochs": 2}, tmp_path) is None


def test_the_cache_folder_comes_from_one_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_UTILS_CHECKPOINTS", str(tmp_path / "elsewhere"))
    assert settings.checkpoint_dir() == checkpoints.checkpoint_dir() == tmp_path / "elsewhere"
