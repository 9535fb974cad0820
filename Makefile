# The two quick-start commands are `make sample` and `make test-all` (what CI runs); all set
# up .venv first. `make test` is the fast suite: the tests marked slow are left out.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned for the install only (a CPU build; any torch>=2.2 works for users).
TORCH_PIN ?= torch==2.13.0

.PHONY: setup sample test test-all lint bench

$(BIN)/narratives: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/narratives

sample: setup
	$(BIN)/narratives score samples/posts.jsonl -o out/sample --force --report

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

test-all: lint
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: setup
	$(BIN)/python benchmarks/bench_score.py
