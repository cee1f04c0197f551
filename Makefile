# OPX: `make demo` and `make test` work on a fresh machine (they create .venv and install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test lint bench eval examples clean

$(STAMP): pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,infra]'
	if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; fi
	touch $(STAMP)

demo: $(STAMP)  ## analyse the bundled demo incident with the embedded defaults
	rm -rf .opx/demo
	$(BIN)/opx analyze examples/bad-deployment/event.json --data-dir .opx/demo

test: $(STAMP)  ## lint, type-check and run the whole suite
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy src
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy src

bench: $(STAMP)  ## wall time per execution and orchestration overhead on the examples
	$(BIN)/python benchmarks/bench_examples.py
	$(BIN)/python benchmarks/bench_checkpoints.py

eval: $(STAMP)  ## accuracy on the PetShop and Nezha datasets beside the repository (see the README)
	$(BIN)/opx eval petshop --data ../shared/data/petshop
	$(BIN)/opx eval nezha --data ../shared/data/nezha-trainticket/nezha-trainticket.tar.gz

examples: $(STAMP)  ## regenerate the example incidents (deterministic)
	$(BIN)/python scripts/make_examples.py

clean:
	rm -rf $(VENV) .opx .pytest_cache .mypy_cache .ruff_cache
