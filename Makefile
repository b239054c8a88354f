# Two commands on a fresh machine:  `make report`  (the notebooks -> reports/*.html)  and  `make test`.
# Both create the virtual environment first when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch, fast to install on CI. For a GPU, see README ("GPU install").
TORCH  ?= torch==2.13.0

.PHONY: setup test test-fast lint format report clean-reports model wheel-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,dev]"
# For JupyterLab started from this venv, which searches the venv's kernels before the user's.
# Inside the venv (--sys-prefix), not per user: another checkout's setup cannot re-point it.
# `hr-lstm report` needs no registered kernel: it runs the notebooks on its own Python.
	$(BIN)/python -m ipykernel install --sys-prefix --name hr-lstm --display-name "Python (hr-lstm)" >/dev/null
	touch $@

test: setup            ## the whole suite (notebooks and training included): a few minutes on 2 cores
	$(BIN)/python -m pytest -q

test-fast: setup       ## no notebooks, no slow training: under a minute
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup            ## ruff (lint + format check) and the import layers (import-linter)
	$(BIN)/ruff check hr_lstm tests benchmarks
	$(BIN)/ruff format --check hr_lstm tests benchmarks
	$(BIN)/lint-imports

format: setup          ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix hr_lstm tests benchmarks
	$(BIN)/ruff format hr_lstm tests benchmarks

report: setup
	$(BIN)/hr-lstm report

# The default model that ships with the package (hr_lstm/models/bundled/, docs/bundled_model.md): the default
# recipe on the default simulated set, about 6 minutes on 2 cores. Its checkpoint records this command.
BUNDLED := hr_lstm/models/bundled/lstm_embeddings_default.pt
model: setup
	rm -rf checkpoints/bundled
	$(BIN)/hr-lstm train --seed 0 --threads 2 --device cpu --out checkpoints/bundled
	cp checkpoints/bundled/lstm_embeddings_best.pt $(BUNDLED)

clean-reports:
	find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
