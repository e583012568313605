# The two entry points: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-deep report-check install clean

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
	$(BIN)/python benchmarks/nrqm_4k.py
	$(BIN)/python benchmarks/heap.py
	$(BIN)/python benchmarks/pyiqa_values.py
	$(BIN)/python benchmarks/piqe_precision.py

bench-deep: $(BIN)/.installed
	$(BIN)/python benchmarks/deep_4k.py
	$(BIN)/python benchmarks/ahiq_kernels.py
	$(BIN)/python benchmarks/subnormals.py
	$(BIN)/python benchmarks/precision.py

# The benchmark page of the CLIVE subset in the fixtures folder, opened in headless Chromium
# (Debian package chromium): broken images and console errors fail it; look at the screenshot.
FIXTURES ?= ../shared/fixtures
report-check: $(BIN)/.installed
	$(BIN)/iqa4k benchmark --dataset csv:$(FIXTURES)/clive_subset -m niqe,brisque,piqe \
		--out report-check --no-progress
	$(BIN)/python tests/browser.py report-check/report.html report-check/screenshot.png

clean:
	rm -rf $(VENV) demo-out report-check build *.egg-info src/*.egg-info
