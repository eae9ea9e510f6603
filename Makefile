# Stable entry points. Each target installs requirements.txt first, so one command works on a
# fresh machine.
PYTHON ?= python3
SMOKE_DIR ?= .smoke
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
# llama-cpp-python builds llama.cpp from source; a native (-march=native) build crashed in its AMX
# matmul, so build for the generic CPU (README: troubleshooting). Only read when it compiles.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install install-dev browser run smoke lint test test-fast bench docs

install:
	$(PIP) -r requirements.txt
	$(PIP) --no-deps --no-build-isolation -e .

## requirements.txt plus the test and lint tools (requirements-dev.txt) and the test browser.
install-dev: install browser
	$(PIP) -r requirements-dev.txt

## Debian's Chromium and ChromeDriver for the report's browser test, when they are missing (apt-get, as root or with sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }

## The main job: NoLA on the default configuration (params.yaml: EuroSAT, CLIP ViT-B/32, DINO ViT-B/16).
run: install
	$(PYTHON) -m pipeline fetch-data
	$(PYTHON) -m pipeline repro

## The whole pipeline offline on tiny random-weight models and synthetic images, in $(SMOKE_DIR).
smoke: install
	rm -rf $(SMOKE_DIR)
	$(PYTHON) -m pipeline smoke $(SMOKE_DIR)

## ruff's lint rules and its formatter (check only; `ruff format .` applies it).
lint: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

## The whole test suite (what CI runs, after lint).
test: install-dev
	$(PYTHON) -m pytest -q --durations=20

## The unit tests only: the contributor's quick loop.
test-fast: install-dev
	$(PYTHON) -m pytest -q -m unit

## Speed and memory against same-run baselines (bench/; a few minutes; not part of test).
bench: install
	$(PYTHON) -m bench

## Regenerate README.md's params and command tables from the params model and the CLI.
docs:
	$(PYTHON) -m pipeline docs --write
