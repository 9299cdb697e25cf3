"""vae_utils: the small, tested helpers behind the book *Autoencoders, VAEs and GANs*.

Modules, one job each (``ARCHITECTURE.md`` draws how they fit together):

- ``settings`` (every environment variable read, in one place) and ``checks`` (the validation
  layer every public function uses);
- ``faces`` (procedural faces with known factors) and ``data`` (datasets as tensors);
- ``models`` (autoencoders and VAEs, batched encoding and decoding), ``gan`` (the GAN),
  ``classifier`` (the digit classifier that measures samples);
- ``losses``, ``training`` (the fit loops and the training history), ``checkpoints`` (the cache)
  and ``zoo`` (the book's recipes and model kinds: train or load);
- ``metrics`` (likelihood, latents, samples, and the evaluation protocol);
- ``viz`` (figures), ``diagrams`` (architecture diagrams), ``widgets`` (latent sliders) and
  ``web`` (the website's in-browser decoders).

Importing the package touches neither a GPU nor the network.
"""

__version__ = "0.2.0"
