"""Speed and quality measurements reported in benchmarks/README.md. Not a test: run it on a
quiet machine, through the Makefile (which sets the data folder):

    make benchmark BENCH=book           # every chapter from a cold cache
    make benchmark BENCH=vae            # book VAE vs pytorch/examples' VAE
    make benchmark BENCH=overhead       # training.fit vs a bare loop
    make benchmark BENCH=mnist-recipes  # how the MNIST VAE's recipe was chosen
    make benchmark BENCH=gan-recipes    # how the GAN's recipe was chosen (writes
                                        # vae_utils/measurements/gan_recipes.json)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def bench_book() -> None:
    """Execute every chapter in order, as the book build does, with an empty checkpoint cache."""
    import nbformat
    import yaml
    from nbclient import NotebookClient

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    os.environ["TQDM_DISABLE"] = "1"
    total = 0.0
    with tempfile.TemporaryDirectory() as cache:
        os.environ["VAE_UTILS_CHECKPOINTS"] = cache
        print("| chapter | seconds (cold cache) |\n|---|---:|")
        for chapter in chapters:
            path = ROOT / f"{chapter}.ipynb"
            if not path.exists():   # a Markdown page: nothing to execute
                continue
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            seconds = time.perf_counter() - start
            total += seconds
            print(f"| {path.name} | {seconds:.0f} |", flush=True)
        print(f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |")
        print("\n| model | training seconds |\n|---|---:|")
        for path in sorted(Path(cache).glob("*.pt")):
            history = torch.load(path, map_location="cpu", weights_only=True)["history"]
            print(f"| {path.stem.rsplit('-', 1)[0]} | {history['train_seconds']:.0f} |")


class ExamplesVAE(nn.Module):
    """The architecture of pytorch/examples' vae/main.py: 784-400-(20, 20), 20-400-784."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def examples_loss(recon, x, mu, logvar):
    """Summed BCE + KL over the batch, as in pytorch/examples."""
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def run_examples_baseline() -> tuple[float, float]:
    """pytorch/examples' recipe: per-item DataLoader with ToTensor, batch 128, Adam 1e-3,
    10 epochs, test loss after every epoch. Returns (wall seconds, final test nats per image)."""
    from torchvision import datasets, transforms

    from vae_utils import settings

    torch.manual_seed(1)
    root = str(settings.data_dir())
    train = torch.utils.data.DataLoader(datasets.MNIST(root, train=True, download=True,
                                        transform=transforms.ToTensor()), batch_size=128, shuffle=True)
    test = torch.utils.data.DataLoader(datasets.MNIST(root, train=False,
                                       transform=transforms.ToTensor()), batch_size=128)
    model = ExamplesVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for epoch in range(10):
        model.train()
        for x, _ in train:
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            loss = examples_loss(recon, x, mu, logvar)
            loss.backward()
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, _ in test:
                recon, mu, logvar = model(x)
                total += examples_loss(recon, x, mu, logvar).item()
        test_loss = total / len(test.dataset)
        print(f"  examples epoch {epoch + 1}: test {test_loss:.2f}", flush=True)
    return time.perf_counter() - start, test_loss


def run_book_vae() -> tuple[float, float]:
    """The book's MNIST VAE network and batching, trained like pytorch/examples' VAE (grey levels,
    10 epochs, constant learning rate), test loss as defined above."""
    import dataclasses

    from vae_utils import zoo

    zoo.RECIPES["bench-grey-vae"] = dataclasses.replace(
        zoo.RECIPES["mnist-vae"], name="bench-grey-vae", epochs=10, lr_schedule="constant",
        binarize=False, monitor=None)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        _, history = zoo.trained("bench-grey-vae", progress=False, checkpoint_dir=cache)
        seconds = time.perf_counter() - start
    return seconds, history["test_loss"][-1]


def bench_mnist_recipes() -> None:
    """The MNIST VAE's recipe against cheaper ones (same network, dynamically binarised MNIST):
    -log p(x) by IWAE, K = 1000, on the book's evaluation subset of 2,000 images of the fixed
    binary test set (metrics.subset_indices), with its standard error."""
    import dataclasses

    from vae_utils import data, metrics, zoo

    test = data.binarize_fixed(data.load_mnist(train=False).images, seed=0)
    test = test[metrics.subset_indices(len(test), 2000)]
    book = dataclasses.replace(zoo.RECIPES["mnist-vae"], name="bench-recipe", monitor=None)
    candidates = {
        "10 epochs, constant lr 1e-3": dataclasses.replace(book, epochs=10, lr_schedule="constant"),
        "20 epochs, cosine 1e-3 -> 5e-5": dataclasses.replace(book, epochs=20),
        "20 epochs, cosine 2e-3 -> 1e-4": dataclasses.replace(book, epochs=20, lr=2e-3),
        "30 epochs, cosine 1e-3 -> 5e-5": dataclasses.replace(book, epochs=30),
        "40 epochs, cosine 1e-3 -> 5e-5 (the book's)": book,
    }
    print("| recipe | training (s) | test -log p(x), IWAE K=1000 (nats) |\n|---|---:|---:|")
    with tempfile.TemporaryDirectory() as cache:
        for label, recipe in candidates.items():
            zoo.RECIPES["bench-recipe"] = recipe
            start = time.perf_counter()
            model, _ = zoo.trained("bench-recipe", progress=False, checkpoint_dir=cache)
            seconds = time.perf_counter() - start
            torch.manual_seed(0)
            nll = metrics.mean_stderr(-metrics.iwae_log_likelihoods(model, test, k=1000,
                                                                     batch_size=20))
            print(f"| {label} | {seconds:.0f} | {nll} |", flush=True)
            for path in Path(cache).glob("bench-recipe-*.pt"):
                path.unlink()


def small_dcgan(latent_dim: int) -> tuple[nn.Module, nn.Module]:
    """A DCGAN-style pair for 28x28 digits (Radford et al. 2015), 64 and 32 channels."""
    g = nn.Sequential(nn.Linear(latent_dim, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU(),
                      nn.Unflatten(1, (64, 7, 7)),
                      nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),  # 14x14
                      nn.ConvTranspose2d(32, 1, 4, 2, 1))                                  # 28x28
    d = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),                        # 14x14
                      nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),                       # 7x7
                      nn.Flatten(), nn.Linear(64 * 7 * 7, 1), nn.Flatten(0))
    return g, d


def bench_gan_recipes() -> None:
    """GAN candidates trained on MNIST, sample quality after every epoch against training
    seconds, for the trained generator and for its running weight average (the same run: the
    average does not change training). Quality as the book's monitor measures it
    (``zoo.MONITOR``: 2,000 samples vs the book's evaluation subset of 2,000 test images,
    classifier features), plus the samples' sharpness (``metrics.sharpness``)."""
    import copy
    import dataclasses
    import datetime
    import json
    import platform

    from vae_utils import data, metrics, models, training, zoo

    book = zoo.RECIPES["mnist-gan"]
    settings = zoo.MONITOR
    classifier = zoo.trained(settings.classifier, progress=False).model
    test_images = data.load_mnist(train=False).images
    real = metrics.classifier_view(
        classifier, test_images[metrics.subset_indices(len(test_images), settings.real_images)])
    images = data.load_mnist(train=True).images

    def quality(model: nn.Module, live: bool) -> dict[str, float]:
        z = models.prior_codes(settings.samples, model.latent_dim,
                               torch.Generator(device="cpu").manual_seed(settings.seed))
        with torch.no_grad():
            net = model.generator if live else model.generator_average
            samples = torch.sigmoid(net(z))
        measured = metrics.sample_quality(real, metrics.classifier_view(classifier, samples))
        return dict(measured, sharpness=metrics.sharpness(samples))

    def make(conv: bool) -> nn.Module:
        gan = zoo.build_model(dict(kind="gan", **book.model_settings()))
        if conv:  # the same GAN class, with convolutional networks swapped in
            gan.generator, gan.discriminator = small_dcgan(gan.latent_dim)
            gan.generator_average = copy.deepcopy(gan.generator).requires_grad_(False)
        return gan

    candidates = {
        "MLP GAN, batch 64, lr G 2e-4 / D 2e-3 (the book's)":
            dict(conv=False, epochs=12, batch_size=64, lr=2e-4, d_lr=2e-3),
        "MLP GAN, batch 128, lr G 4e-4 / D 4e-3":
            dict(conv=False, epochs=12, batch_size=128, lr=4e-4, d_lr=4e-3),
        "small DCGAN (64/32 channels), batch 64, lr 2e-4":
            dict(conv=True, epochs=6, batch_size=64, lr=2e-4, d_lr=2e-4),
    }
    runs = []
    for label, candidate in candidates.items():
        training.seed_everything(0)
        gan = make(candidate["conv"])
        history = training.fit_gan(
            gan, images, epochs=candidate["epochs"], batch_size=candidate["batch_size"],
            lr=candidate["lr"], d_lr=candidate["d_lr"], seed=0, progress=False,
            monitor=lambda model: {f"{which}_{name}": value
                                   for which, live in (("live", True), ("average", False))
                                   for name, value in quality(model, live).items()})
        seconds = torch.tensor(history["epoch_seconds"]).cumsum(0).tolist()
        run = dict(label=label, **{k: v for k, v in candidate.items() if k != "conv"},
                   architecture="conv" if candidate["conv"] else "mlp", seconds=seconds,
                   **{key.removeprefix("monitor_"): value for key, value in history.values.items()
                      if key.startswith("monitor_")})
        runs.append(run)
        print(f"{label}: {seconds[-1]:.0f} s, Fréchet distance live "
              f"{run['live_frechet_distance'][-1]:.1f}, average "
              f"{run['average_frechet_distance'][-1]:.1f}; confident "
              f"{run['live_confident'][-1]:.1%} / {run['average_confident'][-1]:.1%}", flush=True)
    result = dict(command="benchmarks/benchmark.py gan-recipes",
                  date=datetime.date.today().isoformat(),
                  machine=f"{os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}",
                  monitor=dataclasses.asdict(settings), evaluation_seed=metrics.EVALUATION_SEED,
                  average_decay=book.average_decay, runs=runs)
    out = ROOT / "vae_utils" / "measurements" / "gan_recipes.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def bench_vae() -> None:
    base_s, base_loss = run_examples_baseline()
    book_s, book_loss = run_book_vae()
    print("| model | wall time (s) | test BCE + KL (nats per image) |\n|---|---:|---:|")
    print(f"| pytorch/examples VAE (784-400-20, 10 epochs, DataLoader) | {base_s:.0f} | {base_loss:.1f} |")
    print(f"| book's VAE (784-512-256-20, 10 epochs, in-memory batches) | {book_s:.0f} | {book_loss:.1f} |")


def bench_overhead(epochs: int = 3) -> None:
    """training.fit against the same loop without progress bar, history or checks."""
    from vae_utils import checks, data, losses, models, training

    images = data.load_mnist(train=True).images

    def bare() -> float:
        training.seed_everything(0)
        model = models.VAE((1, 28, 28), 20, hidden=(512, 256))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        with checks.values_checked():  # no per-batch value checks, like training.fit
            for _ in range(epochs):
                for (x,) in data.batches(images, batch_size=128, shuffle=True, generator=generator):
                    loss = losses.vae_batch_loss(model, x).loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        return time.perf_counter() - start

    def with_fit() -> float:
        training.seed_everything(0)
        model = models.VAE((1, 28, 28), 20, hidden=(512, 256))
        start = time.perf_counter()
        training.fit(model, losses.vae_batch_loss, images, epochs=epochs, batch_size=128,
                     seed=0, progress=True)
        return time.perf_counter() - start

    rounds = [(bare(), with_fit()) for _ in range(3)]  # interleaved, to share machine noise
    bare_s = min(r[0] for r in rounds)
    fit_s = min(r[1] for r in rounds)
    print(f"| loop | best of 3, {epochs} MNIST epochs (s) |\n|---|---:|")
    print(f"| bare loop | {bare_s:.1f} |\n| `training.fit` | {fit_s:.1f} |")
    print(f"overhead: {100 * (fit_s / bare_s - 1):+.1f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benches = {"book": bench_book, "vae": bench_vae, "overhead": bench_overhead,
               "mnist-recipes": bench_mnist_recipes, "gan-recipes": bench_gan_recipes}
    parser.add_argument("what", choices=list(benches))
    benches[parser.parse_args().what]()
    sys.exit(0)
