"""Published checkpoints: a cache miss downloads the website's file of exactly this recipe, and
every way a download can go wrong falls back to training with one clear line, never a crash and
never a damaged cache. The website is a local HTTP server on 127.0.0.1 that produces each fault."""

import functools
import hashlib
import http.server
import json
import threading
import time
from pathlib import Path

import pytest
import torch

from vae_utils import pretrained, zoo


def tiny() -> zoo.Recipe:
    return zoo.Recipe("tiny-published-ae", "autoencoder", "faces", epochs=1, batch_size=16,
                      lr=1e-3, image_shape=(3, 32, 32), latent_dim=2, hidden=(8,), n_faces=32)


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A website folder with the tiny recipe's checkpoint and manifest, as the build publishes it."""
    monkeypatch.setitem(zoo.RECIPES, "tiny-published-ae", tiny())
    monkeypatch.delenv("VAE_UTILS_PRETRAINED_URL", raising=False)
    original = zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "built")
    site = tmp_path / "site"
    manifest = pretrained.publish(tmp_path / "built", site / "checkpoints")
    return site, original, manifest


class Faulty(http.server.SimpleHTTPRequestHandler):
    """Serves the site folder, or produces the fault named by the server's `fault`."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        fault, name = self.server.fault, self.path.rsplit("/", 1)[-1]
        if name == pretrained.MANIFEST and fault == "wrong hash":
            entries = json.loads((Path(self.directory) / "checkpoints" / name).read_text())
            for entry in entries["files"].values():
                entry["sha256"] = hashlib.sha256(b"something else").hexdigest()
            return self._send(json.dumps(entries).encode(), "application/json")
        if name == pretrained.MANIFEST or fault in ("none", "wrong hash"):
            return super().do_GET()
        if fault == "404":
            return self.send_error(404)
        if fault == "html":
            return self._send(b"<!DOCTYPE html><html><body>Not here</body></html>", "text/html")
        if fault == "timeout":
            time.sleep(3)
            return super().do_GET()
        data = (Path(self.directory) / "checkpoints" / name).read_bytes()
        if fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        if fault == "foreign":   # a torch file that is not this model, with a matching manifest
            return self._send(data, "application/octet-stream")
        raise AssertionError(fault)

    def _send(self, body: bytes, kind: str):
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def website(published):
    site, _, _ = published
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Faulty, directory=str(site)))
    server.fault = "none"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_cache_miss_downloads_the_published_model_instead_of_training(published, website,
                                                                        tmp_path, monkeypatch, capsys):
    _, original, manifest = published
    _, url = website
    monkeypatch.setenv("VAE_UTILS_PRETRAINED_URL", url)
    monkeypatch.setitem(zoo.KINDS, "autoencoder", zoo.dataclasses.replace(
        zoo.KINDS["autoencoder"], fit=lambda *a, **k: pytest.fail("trained instead of downloading")))
    fresh = zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "reader")
    out = capsys.readouterr().out
    assert "Downloaded tiny-published-ae from" in out and len(out.strip().splitlines()) == 2
    assert fresh.history == original.history
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(), original.model.parameters()))
    files = [p.name for p in (tmp_path / "reader").iterdir()]
    assert files == list(manifest["files"]), files         # the exact file, and nothing else
    zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "reader")
    assert "Loaded tiny-published-ae" in capsys.readouterr().out   # now from the cache


@pytest.mark.parametrize("fault, says", [
    ("offline", "cannot reach"),
    ("404", "HTTP 404"),
    ("timeout", "timed out"),
    ("truncated", "broke off|truncated"),
    ("wrong hash", "does not match the manifest's sha256"),
    ("html", "is a web page"),
])
def test_every_failed_download_falls_back_to_training_with_one_line(published, website, fault,
                                                                    says, tmp_path, monkeypatch,
                                                                    capsys):
    server, url = website
    server.fault = fault
    if fault == "offline":
        url = "http://127.0.0.1:9/"                         # nothing listens there
    monkeypatch.setattr(pretrained, "TIMEOUT_SECONDS", 1.0)
    monkeypatch.setenv("VAE_UTILS_PRETRAINED_URL", url)
    reader = tmp_path / "reader"
    trained = zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=reader)
    out = capsys.readouterr().out
    failure = [line for line in out.splitlines() if line.startswith("Could not download")]
    assert len(failure) == 1 and "training it here" in failure[0], out
    import re

    assert re.search(says, failure[0]), failure[0]
    assert "Trained tiny-published-ae" in out and trained.history.epochs == 1
    assert [p.suffix for p in reader.iterdir()] == [".pt"]   # no partial download left behind


def test_a_foreign_file_behind_a_valid_manifest_is_set_aside_and_the_model_trained(
        published, website, tmp_path, monkeypatch, capsys):
    site, _, manifest = published
    server, url = website
    server.fault = "foreign"
    (name,) = manifest["files"]
    other = zoo.Recipe("tiny-other-ae", "autoencoder", "faces", epochs=1, batch_size=16, lr=1e-3,
                       image_shape=(3, 32, 32), latent_dim=3, hidden=(8,), n_faces=32)
    monkeypatch.setitem(zoo.RECIPES, "tiny-other-ae", other)
    zoo.trained("tiny-other-ae", progress=False, checkpoint_dir=tmp_path / "other")
    foreign = next((tmp_path / "other").glob("*.pt")).read_bytes()
    (site / "checkpoints" / name).write_bytes(foreign)
    manifest["files"][name] = {"sha256": hashlib.sha256(foreign).hexdigest(), "bytes": len(foreign)}
    (site / "checkpoints" / pretrained.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv("VAE_UTILS_PRETRAINED_URL", url)
    with pytest.warns(UserWarning, match="moved it to"):
        zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "reader")
    out = capsys.readouterr().out
    assert "could not be loaded (set aside); training it here" in out
    assert "Trained tiny-published-ae" in out


def test_unset_empty_or_pretrained_false_train_as_before(published, website, tmp_path,
                                                         monkeypatch, capsys):
    _, url = website
    for setting in (None, "", url):
        if setting is None:
            monkeypatch.delenv("VAE_UTILS_PRETRAINED_URL", raising=False)
        else:
            monkeypatch.setenv("VAE_UTILS_PRETRAINED_URL", setting)
        folder = tmp_path / f"reader-{setting!r}".replace("/", "_").replace(":", "_")
        zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=folder,
                    pretrained=setting != url)
        if setting == url:
            continue
        out = capsys.readouterr().out
        assert "Download" not in out and "Trained tiny-published-ae" in out
    zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "off",
                pretrained=False)
    assert "Download" not in capsys.readouterr().out


def test_the_manifest_names_every_published_file_with_its_hash_and_size(published):
    site, _, manifest = published
    for name, entry in manifest["files"].items():
        data = (site / "checkpoints" / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert manifest["total_bytes"] == sum(e["bytes"] for e in manifest["files"].values())
    with pytest.raises(ValueError, match="is not allowed"):
        pretrained.fetch("../escape.pt", site, "http://127.0.0.1:9/")


def test_only_checkpoints_of_the_current_code_are_published(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.RECIPES, "tiny-published-ae", tiny())
    monkeypatch.delenv("VAE_UTILS_PRETRAINED_URL", raising=False)
    zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "cache")
    monkeypatch.setattr(zoo, "code_fingerprint", lambda: "older code")
    zoo.trained("tiny-published-ae", progress=False, checkpoint_dir=tmp_path / "cache")
    (tmp_path / "cache" / "broken-0123456789abcdef.pt").write_bytes(b"not a checkpoint")
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3
    manifest = pretrained.publish(tmp_path / "cache", tmp_path / "site")
    assert len(manifest["files"]) == 1       # today's code is now "older code": its model only
    name, = manifest["files"]
    assert name.startswith("tiny-published-ae-")
