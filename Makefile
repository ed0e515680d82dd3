# Two commands matter: `make demo` and `make test`. Each creates the environment when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out

# torch==2.13.0 must be installed in the same pip command as everything that depends on it, or pip
# pulls a CUDA build of torch with several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[all,dev]"
	touch $(STAMP)

.PHONY: env demo test lint bench extension clean
env: $(STAMP)

demo: $(STAMP)
	$(BIN)/semantify demo --out $(OUT)/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py

clean:
	rm -rf $(OUT) dist build .pytest_cache .ruff_cache
