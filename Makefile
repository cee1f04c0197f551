# OPX: `make demo` and `make test` work on a fresh machine (they create .venv and install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1
# jsii (CDK) runs on the installed Node 20, past its end of life; silence the banner.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
IAC := .venv-iac
IAC_STAMP := $(IAC)/.installed
ASSET := build/opx-lambda.zip

.PHONY: demo test lint bench eval examples clean synth package iac-lint lambda-pins

$(STAMP): pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,infra]'
	if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; fi
	touch $(STAMP)

demo: $(STAMP)  ## analyse the bundled demo incident with the embedded defaults
	rm -rf .opx/demo
	$(BIN)/opx analyze examples/bad-deployment/event.json --data-dir .opx/demo

test: $(STAMP) $(ASSET)  ## lint, type-check, run the whole suite, lint the synthesised infra
	$(BIN)/ruff check src tests benchmarks scripts infra
	$(BIN)/ruff format --check src tests benchmarks scripts infra
	$(BIN)/mypy src
	MYPYPATH=src:infra $(BIN)/mypy --strict infra/opx_infra infra/app.py
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory iac-lint

$(ASSET): $(STAMP) pyproject.toml infra/lambda-requirements.txt $(shell find src/opx -type f -not -name '*.pyc')
	cd infra && ../$(BIN)/python -m opx_infra.packaging ..

package: $(ASSET)  ## the Lambda asset: opx and its pinned runtime dependencies (prints its size)
	@$(BIN)/python -c "import os; print('$(ASSET):', round(os.path.getsize('$(ASSET)') / 1e6, 1), 'MB')"

lambda-pins: $(STAMP)  ## re-pin the Lambda asset's dependencies after changing [project] dependencies
	$(BIN)/python infra/pin_lambda.py infra/lambda-requirements.txt

synth: $(STAMP) $(ASSET)  ## write the CloudFormation templates to cdk.out/ (no AWS account needed)
	rm -rf cdk.out
	$(BIN)/python infra/app.py

$(IAC_STAMP): infra/requirements-lint.txt
	$(PYTHON) -m venv $(IAC)
	$(IAC)/bin/python -m pip install --quiet --upgrade pip
	$(IAC)/bin/python -m pip install --quiet -r infra/requirements-lint.txt
	touch $(IAC_STAMP)

iac-lint: synth $(IAC_STAMP)  ## cfn-lint (errors fail) and checkov on the synthesised templates
	$(IAC)/bin/cfn-lint --non-zero-exit-code error -- cdk.out/*.template.json
	$(IAC)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		$$(for t in cdk.out/*.template.json; do printf -- '-f %s ' "$$t"; done)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts infra
	$(BIN)/ruff format --check src tests benchmarks scripts infra
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
	rm -rf $(VENV) $(IAC) .opx .pytest_cache .mypy_cache .ruff_cache cdk.out build
