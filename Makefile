# Two commands on a fresh machine:  `make demo` (main job)  and  `make test` (test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch; override for your own build, e.g. TORCH='torch>=2.1'.
TORCH  ?= torch==2.13.0

.PHONY: setup demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/tatumflow demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/tokenizer_speed.py
	$(BIN)/python benchmarks/prepare_speed.py
	$(BIN)/python benchmarks/roundtrip.py

clean:
	rm -rf out .pytest_cache
