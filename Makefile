# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates the virtual environment and installs what it needs first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# test-deep: the engine against the reference model over 100,000 random sequences
# (CI runs the same test with its default example count); long, so niced.
DEEP_EXAMPLES ?= 100000

.PHONY: setup demo test test-deep lint unit faults bench-core bench bench-memory bench-restart clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/rater demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

test-deep: $(STAMP)
	RATER_REFERENCE_EXAMPLES=$(DEEP_EXAMPLES) RATER_REFERENCE_PROGRESS=.hypothesis/deep-progress nice -n 10 $(BIN)/pytest \
		tests/unit/core/test_reference_model.py -q --hypothesis-show-statistics

unit: $(STAMP)
	$(BIN)/pytest tests/unit

faults: $(STAMP)
	$(BIN)/pytest tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rater
	$(BIN)/mypy

bench-core: $(STAMP)
	$(BIN)/python -m load core --write docs/benchmarks.md

bench: $(STAMP)
	$(BIN)/python -m load bench --write docs/benchmarks.md

bench-memory: $(STAMP)
	$(BIN)/python -m load soak --write docs/benchmarks.md

bench-restart: $(STAMP)
	$(BIN)/python -m load restart --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
