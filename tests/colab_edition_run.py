"""Open chapters of the Colab edition as a fresh Colab session would: an empty checkpoint cache,
the website's published checkpoints reachable (served here on 127.0.0.1 from the checkpoints of
the last `make book`, as `make publish` lays them out), and each notebook executed top to bottom.
Prints each chapter's time; `--no-pretrained` trains instead (the cold time, for comparison).

    python tests/colab_edition_run.py [--no-pretrained] 01_memorising 04_latent_playground
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import nbformat
    from nbclient import NotebookClient

    parser = argparse.ArgumentParser()
    parser.add_argument("chapters", nargs="+")
    parser.add_argument("--no-pretrained", action="store_true")
    args = parser.parse_args()
    cache = Path(os.environ.get("VAE_UTILS_CHECKPOINTS") or ROOT / "checkpoints")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        site = scratch / "site"
        subprocess.run([sys.executable, "-m", "vae_utils.pretrained", str(cache),
                        str(site / "checkpoints")], check=True)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        subprocess.run([sys.executable, str(ROOT / "_ext" / "colab_notebooks.py"), str(scratch / "colab"),
                        "--site", url, "--commit", "local"], check=True, stdout=subprocess.DEVNULL)
        for name in args.chapters:
            reader_cache = scratch / f"cache-{name}"             # a fresh session: empty cache
            env = {**os.environ, "VAE_UTILS_CHECKPOINTS": str(reader_cache),
                   "TQDM_DISABLE": "1"}
            env.pop("VAE_UTILS_WEB_EXPORT", None)
            if args.no_pretrained:
                env.pop("VAE_UTILS_PRETRAINED_URL", None)
            else:
                env["VAE_UTILS_PRETRAINED_URL"] = url
            path = scratch / "colab" / "book" / f"{name}.ipynb"
            notebook = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            NotebookClient(notebook, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(ROOT / "book")}}).execute(env=env)
            seconds = time.perf_counter() - start
            downloaded = sum("Downloaded " in "".join(o.get("text", "")) for c in notebook.cells
                             for o in c.get("outputs", []))
            trained = sum("Trained " in "".join(o.get("text", "")) for c in notebook.cells
                          for o in c.get("outputs", []))
            print(json.dumps({"chapter": name, "seconds": round(seconds, 1),
                              "pretrained": not args.no_pretrained, "downloaded": downloaded,
                              "trained": trained}), flush=True)
        server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    main()
