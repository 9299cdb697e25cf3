"""vae_utils: the small, tested helpers behind the book *Autoencoders, VAEs and GANs*.

Modules, one job each: ``faces`` (procedural faces with known factors), ``data`` (datasets as
tensors), ``models`` (autoencoders and VAEs), ``losses``, ``training`` (fit loop, device,
seeding), ``checkpoints`` (train-or-load cache), ``metrics``, ``viz`` (figures), ``diagrams`` (architecture diagrams) and ``widgets``
(latent sliders). Importing the package touches neither a GPU nor the network.
"""

__version__ = "0.1.0"
