# Entry points that do all the set-up on a fresh machine:
#   make train    train LeNet-5 on the default data set (cnnumpy train $(ARGS))
#   make train-mpi  the same on $(RANKS) processes (mpiexec -n $(RANKS) cnnumpy train)
#   make test     lint and run the whole test suite
#   make package  build the wheel, install it alone in a fresh venv and run it
#   make floors   a fast subset on Python 3.10 with NumPy 1.25, and on 3.12 and 3.13
#   make bench    the LeNet-5 and resnet20 benchmarks beside PyTorch, the conv paths, the threads (RECORD=1 files them)
# (The plain route, without make: pip install cnnumpy, or 'cnnumpy[cli]'.)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
RANKS ?= 2

.PHONY: train train-mpi test lint chromium package floors bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.cli: $(BIN)/activate pyproject.toml src/cnnumpy/_version.py
	$(BIN)/pip install --quiet -e '.[cli]'
	touch $@

$(VENV)/.test: $(BIN)/activate pyproject.toml src/cnnumpy/_version.py
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.mpi: $(BIN)/activate pyproject.toml src/cnnumpy/_version.py
	$(BIN)/pip install --quiet -e '.[cli,mpi]'
	touch $@

train: $(VENV)/.cli
	$(BIN)/cnnumpy train $(ARGS)

# The mpi extra brings MPICH's mpiexec into the venv.
train-mpi: $(VENV)/.mpi
	$(BIN)/mpiexec -n $(RANKS) $(BIN)/cnnumpy train $(ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts

# The im2col page's tests run in headless Chromium: installed here when missing
# and apt-get can run as root, else those tests are skipped with a message.
chromium:
	sh scripts/ensure_chromium.sh

test: lint chromium
	$(BIN)/python -m pytest -q

# The wheel as users get it: built, inspected, installed alone in a fresh venv, run.
package: $(VENV)/.test
	$(BIN)/python scripts/check_package.py

# tests/floors on Python 3.10 with NumPy 1.25 (the declared floors), and on
# Python 3.12 and 3.13 with the newest NumPy, each in a fresh venv.
floors:
	bash scripts/check_floors.sh

# Each script prints its run (machine header first); RECORD=1 also files each
# run into its results file as the newest one.
bench: $(VENV)/.test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/lenet.py $(if $(RECORD),--record benchmarks/results-lenet.md)
	$(BIN)/python benchmarks/resnet.py $(if $(RECORD),--record benchmarks/results-resnet.md)
	$(BIN)/python benchmarks/conv_paths.py $(if $(RECORD),--record benchmarks/results-conv-paths.md)
	$(BIN)/python benchmarks/conv_blocks.py $(if $(RECORD),--record benchmarks/results-conv-blocks.md)
	$(BIN)/python benchmarks/threads.py $(if $(RECORD),--record benchmarks/results-threads.md)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist
