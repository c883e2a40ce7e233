# Two entry points that do all the set-up on a fresh machine:
#   make train   train LeNet-5 on the default data set
#   make test    lint and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: train test lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.core: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

train: $(VENV)/.core
	$(BIN)/python examples/train_lenet5.py

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

test: lint
	$(BIN)/python -m pytest -q

bench: $(VENV)/.test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/lenet.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
