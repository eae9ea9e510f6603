# Stable entry points. Each target installs requirements.txt first, so one command works on a
# fresh machine.
PYTHON ?= python3
SMOKE_DIR ?= .smoke
PIP_INSTALL = $(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
# llama-cpp-python builds llama.cpp from source; a native (-march=native) build crashed in its AMX
# matmul, so build for the generic CPU (README: troubleshooting). Only read when it compiles.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install run smoke test bench

install:
	$(PIP_INSTALL)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .

## The main job: NoLA on the default configuration (params.yaml: EuroSAT, CLIP ViT-B/32, DINO ViT-B/16).
run: install
	$(PYTHON) -m pipeline fetch-data
	dvc repro

## The whole pipeline offline on tiny random-weight models and synthetic images, in $(SMOKE_DIR).
smoke: install
	rm -rf $(SMOKE_DIR)
	$(PYTHON) -m pipeline smoke $(SMOKE_DIR)

## What CI runs.
test: install
	$(PYTHON) -m pytest -q

## Speed and memory against same-run baselines (bench/; a few minutes; not part of test).
bench: install
	$(PYTHON) -m bench
