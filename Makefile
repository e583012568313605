# The two entry points: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-deep install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/iqa4k demo --out demo-out

test: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[compare]'
	$(BIN)/python benchmarks/classic_4k.py

bench-deep: $(BIN)/.installed
	$(BIN)/python benchmarks/deep_4k.py
	$(BIN)/python benchmarks/ahiq_kernels.py

clean:
	rm -rf $(VENV) demo-out build *.egg-info src/*.egg-info
