import gzip
import io
import struct
from pathlib import Path

import pytest
import torch
import torchvision

from vae_utils import data


def write_idx(folder: Path, train: bool, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Write (N, 28, 28) uint8 images and (N,) labels as the IDX files torchvision reads."""
    prefix = "train" if train else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, n, 28, 28) + images.numpy().tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, n) + labels.numpy().tobytes())


def fake_dataset(root: Path, folder_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([3, 1, 4, 1, 5], dtype=torch.uint8)
    for train in (True, False):
        write_idx(root / folder_name / "raw", train, images, labels)
    return images, labels


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_loads_idx_files_from_the_data_root_as_float_tensors(tmp_path, name, folder):
    images, labels = fake_dataset(tmp_path, folder)
    loaded = data.load_dataset(name, train=True, root=tmp_path)
    assert loaded.images.shape == (5, 1, 28, 28) and loaded.images.dtype == torch.float32
    assert torch.allclose(loaded.images[:, 0] * 255, images.float())
    assert loaded.labels.tolist() == labels.tolist()


def test_data_root_prefers_argument_then_environment_then_local_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv(data.DATA_ENV_VAR)
    assert data.data_root() == Path("data")


def test_missing_data_offline_names_the_folder_and_the_fix(monkeypatch, tmp_path):
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(FileNotFoundError) as error:
        data.load_mnist(root=tmp_path)
    message = str(error.value)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in message
    assert data.DATA_ENV_VAR in message and "internet" in message


def test_unknown_dataset_name_is_rejected():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist"):
        data.load_dataset("cifar")


def test_faces_dataset_has_distinct_train_and_test_splits():
    train = data.load_dataset("faces", train=True, n_faces=32)
    test = data.load_dataset("faces", train=False, n_faces=32)
    assert train.images.shape == (32, 3, 32, 32) and train.labels.shape == (32, 6)
    assert not torch.equal(train.images, test.images)


def test_batches_cover_every_item_once_in_aligned_order():
    x = torch.arange(10)
    y = torch.arange(10) * 10
    seen = []
    for xb, yb in data.batches(x, y, batch_size=3, shuffle=True,
                               generator=torch.Generator().manual_seed(0)):
        assert torch.equal(yb, xb * 10)
        seen += xb.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_batches_reject_tensors_of_different_length():
    with pytest.raises(ValueError, match="differ in length"):
        list(data.batches(torch.zeros(3), torch.zeros(4), batch_size=2))


def cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def replace_magic(path: Path, magic: int) -> None:
    path.write_bytes(struct.pack(">I", magic) + path.read_bytes()[4:])


def gzip_in_place(path: Path) -> None:
    path.write_bytes(gzip.compress(path.read_bytes()))


RAW_DAMAGES = {  # damage: (file, how, what the message says)
    "truncated images": ("train-images-idx3-ubyte", lambda p: cut(p, 1000),
                         "is truncated: the header promises 5 images of 28x28 (3,936 bytes) but "
                         "the file has 1,000 bytes"),
    "header cut short": ("train-labels-idx1-ubyte", lambda p: cut(p, 6), "is truncated: 6 bytes"),
    "extra bytes": ("train-labels-idx1-ubyte", lambda p: p.write_bytes(p.read_bytes() + b"\0"),
                    "longer than its header says"),
    "labels as images": ("train-images-idx3-ubyte", lambda p: replace_magic(p, 0x801),
                         "is not an IDX images file: it starts with 0x00000801"),
    "still gzipped": ("train-labels-idx1-ubyte", gzip_in_place, "is not an IDX labels file"),
}


@pytest.mark.parametrize("damage", RAW_DAMAGES)
def test_a_damaged_idx_file_is_named_with_what_is_wrong(tmp_path, damage):
    fake_dataset(tmp_path, "MNIST")
    file_name, spoil, problem = RAW_DAMAGES[damage]
    path = tmp_path / "MNIST" / "raw" / file_name
    spoil(path)
    with pytest.raises(data.DamagedDataError) as error:
        data.load_dataset("mnist", train=True, root=tmp_path)
    message = str(error.value)
    assert message.startswith(str(path)) and problem in message
    assert data.DATA_ENV_VAR in message and "could not be downloaded" not in message


def test_images_and_labels_of_different_counts_are_refused(tmp_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8, generator=generator)
    raw = tmp_path / "FashionMNIST" / "raw"
    for train in (True, False):
        write_idx(raw, train, images, labels=torch.zeros(5, dtype=torch.uint8))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 4) + bytes(4))
    assert len(data.load_dataset("fashion-mnist", train=True, root=tmp_path).images) == 5
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte holds 5 images but .*"
                                         "t10k-labels-idx1-ubyte holds 4 labels"):
        data.load_dataset("fashion-mnist", train=False, root=tmp_path)


def test_images_of_another_size_are_refused(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    fake_dataset(tmp_path, "MNIST")
    header = struct.pack(">IIII", 0x803, 1, 32, 32)  # one 32x32 image
    (raw / "t10k-images-idx3-ubyte").write_bytes(header + bytes(32 * 32))
    with pytest.raises(data.DamagedDataError, match="images of 32x32 pixels, expected 28x28"):
        data.load_dataset("mnist", train=False, root=tmp_path)


def test_checking_an_idx_file_reads_only_its_header(tmp_path, monkeypatch):
    fake_dataset(tmp_path, "MNIST")
    sizes = []

    class RecordingFile(io.FileIO):
        def read(self, size=-1):
            sizes.append(size)
            return super().read(size)

    monkeypatch.setattr(data, "open", lambda path, mode: RecordingFile(path, "rb"), raising=False)
    data.check_idx_files(tmp_path / "MNIST" / "raw", train=True)
    assert sizes == [16, 8]  # the images header, the labels header


def test_empty_tensors_give_no_batches():
    assert list(data.batches(torch.zeros(0, 3), torch.zeros(0), batch_size=4, shuffle=True)) == []


def test_zero_faces_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"n_faces \(how many faces to draw\) must be >= 1, got 0"):
        data.load_dataset("faces", n_faces=0)


def test_a_fixed_binarisation_is_repeatable_and_binary():
    grey = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(99))
    first, again = data.binarize_fixed(grey, seed=0), data.binarize_fixed(grey, seed=0)
    assert torch.equal(first, again) and set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, data.binarize_fixed(grey, seed=1))
    assert abs(first.mean().item() - grey.mean().item()) < 0.01
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.binarize_fixed(grey * 2)
