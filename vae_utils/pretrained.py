"""The models the website published, for a reader who would rather not train them again.

The book build publishes its checkpoint cache as the website's ``checkpoints/`` folder, with a
``manifest.json`` that gives every file's sha256 and size (:func:`publish`). On a cache miss,
``zoo.trained`` asks :func:`fetch` for the exact file its cache key names from the base URL in
``$VAE_UTILS_PRETRAINED_URL`` (the Colab notebooks set it to the website). The download goes to
a temporary file in the cache folder, is checked against the manifest (size and sha256) and
renamed into place only then; the zoo then loads it with ``weights_only=True`` like any cached
file. Anything that goes wrong (no network, an HTTP error, a timeout, a truncated body, a wrong
hash, a web page instead of a checkpoint) raises :class:`PretrainedError` with one line that says
what, and the zoo trains the model instead: never a crash, never a damaged cache.

    python -m vae_utils.pretrained CACHE_FOLDER SITE_FOLDER/checkpoints   (the book build's step)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checks, settings

MANIFEST = "manifest.json"
TIMEOUT_SECONDS = 30.0
"""The longest a download may take, connection and body together."""
CHUNK = 1 << 16


class PretrainedError(RuntimeError):
    """A published checkpoint could not be used; the message says why, in one line."""


def _get(url: str, deadline: float):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PretrainedError(f"timed out after {TIMEOUT_SECONDS:.0f} s")
    try:
        return urllib.request.urlopen(url, timeout=remaining)
    except urllib.error.HTTPError as err:
        raise PretrainedError(f"HTTP {err.code} for {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise PretrainedError(f"cannot reach {url} ({reason})") from None


def manifest(base_url: str, deadline: float | None = None) -> dict[str, dict]:
    """The published manifest: {file name: {"sha256": ..., "bytes": ...}}."""
    deadline = deadline or time.monotonic() + TIMEOUT_SECONDS
    url = base_url.rstrip("/") + "/checkpoints/" + MANIFEST
    with contextlib.closing(_get(url, deadline)) as response:
        try:
            text = response.read(1 << 20).decode()
            entries = json.loads(text)["files"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError):
            raise PretrainedError(f"{url} is not a checkpoint manifest") from None
    if not isinstance(entries, dict):
        raise PretrainedError(f"{url} is not a checkpoint manifest")
    return entries


def fetch(file_name: str, folder: str | os.PathLike, base_url: str,
          progress: bool = True) -> Path:
    """Download the published ``file_name`` into ``folder`` (the checkpoint cache), checked
    against the manifest; returns its path. Raises PretrainedError, leaving nothing behind."""
    checks.file_stem(file_name, "checkpoint file name")
    deadline = time.monotonic() + TIMEOUT_SECONDS
    entry = manifest(base_url, deadline).get(file_name)
    if not isinstance(entry, dict) or not {"sha256", "bytes"} <= set(entry):
        raise PretrainedError(f"the website has not published {file_name}")
    url = base_url.rstrip("/") + "/checkpoints/" + file_name
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{file_name}.", suffix=".download")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, contextlib.closing(_get(url, deadline)) as response:
            kind = response.headers.get("Content-Type", "")
            if kind.startswith("text/"):
                raise PretrainedError(f"{url} is a web page ({kind}), not a checkpoint")
            bar = tqdm(total=int(entry["bytes"]), unit="B", unit_scale=True, desc=file_name,
                       disable=not progress or settings.progress_bars_disabled(), leave=False)
            with bar:
                while True:
                    if time.monotonic() > deadline:
                        raise PretrainedError(f"timed out after {TIMEOUT_SECONDS:.0f} s")
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, ValueError) as err:
                        raise PretrainedError(f"the download broke off ({err})") from None
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > int(entry["bytes"]):
                        raise PretrainedError(f"{url} is longer than the manifest says")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        if size != int(entry["bytes"]):
            raise PretrainedError(f"{url} is truncated: {size:,} of {int(entry['bytes']):,} bytes")
        if digest.hexdigest() != entry["sha256"]:
            raise PretrainedError(f"{url} does not match the manifest's sha256")
        path = folder / file_name
        os.replace(partial, path)
        return path
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


def current(path: Path) -> bool:
    """Whether the checkpoint at ``path`` was written by this version of the training code (its
    key holds the code fingerprint that ``zoo.trained`` would look for today)."""
    from . import checkpoints, zoo    # here: zoo imports this module
    try:
        config = json.loads(torch.load(path, map_location="cpu", weights_only=True)["config_json"])
        return (config["format"] == checkpoints.FORMAT_VERSION
                and config["train"]["code_fingerprint"] == zoo.code_fingerprint())
    except Exception:    # damaged or foreign: not ours to publish
        return False


def publish(cache: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Copy the cache folder's checkpoints of the current code (:func:`current`; files left by
    older code and set-aside ``.damaged`` files stay behind) into ``out``, with a manifest of
    their sha256 and sizes. Returns the manifest."""
    cache, out = Path(cache), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for path in sorted(cache.glob("*.pt")):
        if not current(path):
            continue
        data = path.read_bytes()
        (out / path.name).write_bytes(data)
        files[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    result = {"files": files, "total_bytes": sum(f["bytes"] for f in files.values())}
    (out / MANIFEST).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    published = publish(sys.argv[1], sys.argv[2])
    print(f"published {len(published['files'])} checkpoints, "
          f"{published['total_bytes'] / 1e6:.1f} MB, in {sys.argv[2]}")
