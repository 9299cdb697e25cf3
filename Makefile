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

.PHONY: book test install clean

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

book: install
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The website is in _build/html/index.html"

test: install
	$(BIN)/python -m pytest --nbval-lax --nbval-current-env --durations=10 book tests

clean:
	rm -rf _build checkpoints
