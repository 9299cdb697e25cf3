# Two commands for a fresh machine (see README.md):
#   make book   install into .venv, execute every chapter, write the website to _build/html
#   make test   install into .venv, run every test (unit tests, notebooks, book build)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# MNIST: an explicit VAE_UTILS_DATA wins; else ../shared/data when it holds MNIST (offline
# machines); else ./data, where torchvision downloads it.
VAE_UTILS_DATA ?= $(if $(wildcard ../shared/data/MNIST/raw),$(abspath ../shared/data),$(CURDIR)/data)
VAE_UTILS_CHECKPOINTS ?= $(CURDIR)/checkpoints
export VAE_UTILS_DATA VAE_UTILS_CHECKPOINTS
export TQDM_DISABLE ?= 1

.PHONY: book test install clean install-widgets7 test-widgets7 site-assets

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

# Everything a page needs is served by the site itself (a workshop room without internet still
# sees formulas and sliders). _site_assets/ (made here, not committed) and web/ (committed:
# the sliders' script) are copied to the site's root by _config.yml's html_extra_path:
#   mathjax/  the npm package's combined TeX/MathML component, its fonts and on-demand parts;
#   ort/      onnxruntime-web's WebAssembly build, which runs the sliders' decoders;
#   models/   the decoders, exported to ONNX by the chapters while the book build executes them
#             (VAE_UTILS_WEB_EXPORT; in Jupyter and Colab nothing is exported).
MATHJAX_VERSION := 3.2.2
ORT_VERSION := 1.30.0
NPM := .cache/npm/node_modules
SITE_ASSETS := _site_assets
export VAE_UTILS_WEB_EXPORT := $(CURDIR)/$(SITE_ASSETS)/models

$(SITE_ASSETS)/mathjax/tex-mml-chtml.js:
	rm -rf $(SITE_ASSETS)/mathjax
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm mathjax@$(MATHJAX_VERSION)
	mkdir -p $(SITE_ASSETS)/mathjax/output
	cp -r $(NPM)/mathjax/es5/tex-mml-chtml.js $(NPM)/mathjax/es5/a11y $(NPM)/mathjax/es5/adaptors \
		$(NPM)/mathjax/es5/input $(NPM)/mathjax/es5/ui $(SITE_ASSETS)/mathjax/
	cp -r $(NPM)/mathjax/es5/output/chtml $(SITE_ASSETS)/mathjax/output/

$(SITE_ASSETS)/ort/ort.wasm.min.mjs:
	rm -rf $(SITE_ASSETS)/ort
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm onnxruntime-web@$(ORT_VERSION)
	mkdir -p $(SITE_ASSETS)/ort $(SITE_ASSETS)/models
	cp $(NPM)/onnxruntime-web/dist/ort.wasm.min.mjs $(NPM)/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs \
		$(NPM)/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm $(SITE_ASSETS)/ort/

site-assets: $(SITE_ASSETS)/mathjax/tex-mml-chtml.js $(SITE_ASSETS)/ort/ort.wasm.min.mjs

# The website leaves out the checkpoint cache's "Loaded ... / Trained ..." lines (Jupyter and
# Colab keep them).
book: install site-assets
	VAE_UTILS_CACHE_MESSAGES=0 $(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The website is in _build/html/index.html"

# The latent sliders must also work with Colab's ipywidgets 7.7.1: a second, small venv holds
# ipywidgets 7.7.1 and its stack (tests/requirements-widgets7.txt) and borrows torch, numpy,
# pytest and vae_utils from .venv through a .pth file written after pip has finished, so that pip
# never sees .venv's ipywidgets 8 stack. `make test` runs the main suite, then
# tests/test_widgets.py in that venv; both always run, and it fails if either fails.
IPYWIDGETS7 := 7.7.1
VENV7 := .venv-widgets7
BIN7 := $(VENV7)/bin
PURELIB := import sysconfig; print(sysconfig.get_path("purelib"))
# PYTEST_DISABLE_PLUGIN_AUTOLOAD: .venv's pytest plugins (nbval) would otherwise load against this
# venv's older Jupyter packages; test_widgets.py needs none. -v shows the ipywidgets version in
# a test id. No -W filter is needed: with these pins nothing warns (see the requirements file).
TEST_WIDGETS7 := VAE_UTILS_EXPECT_IPYWIDGETS=$(IPYWIDGETS7) PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
	$(BIN7)/python -m pytest -v tests/test_widgets.py

$(BIN7)/.installed: tests/requirements-widgets7.txt $(BIN)/.installed
	rm -rf $(VENV7)
	$(BIN)/python -m venv $(VENV7)
	$(BIN7)/pip install --quiet --disable-pip-version-check --no-deps \
		-r tests/requirements-widgets7.txt
	! $(BIN7)/pip check | grep -v -e 'requires notebook, which is not installed' \
		-e 'No broken requirements found'
	echo "import site; site.addsitedir('$$($(BIN)/python -c '$(PURELIB)')')" \
		> "$$($(BIN7)/python -c '$(PURELIB)')/main-venv.pth"
	cd / && $(abspath $(BIN7))/python -c 'import ipywidgets, torch, vae_utils; \
		assert ipywidgets.__version__ == "$(IPYWIDGETS7)", ipywidgets.__version__'
	touch $@

install-widgets7: $(BIN7)/.installed

test-widgets7: install install-widgets7
	$(TEST_WIDGETS7)

test: install install-widgets7 site-assets
	status=0; \
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --durations=10 book tests || status=1; \
	$(TEST_WIDGETS7) || status=1; \
	exit $$status

clean:
	rm -rf _build checkpoints $(SITE_ASSETS)
