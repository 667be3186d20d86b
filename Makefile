# Setup is this file's job: every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# the oldest torch the `torch` extra claims: the lower bound of its range in pyproject.toml
TORCH_OLDEST := torch==$(shell sed -n 's/^torch = \["torch>=\([0-9.]*\),.*/\1/p' pyproject.toml)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell echo '$(TORCH_SPEC)' | tr -c 'A-Za-z0-9.=\n' '_')

.PHONY: install demo test test-oldest-torch lint format docs bench screenshots chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[plot,fast,data,dev,lightning,transformers]' '$(TORCH_SPEC)'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nndoctor seed

test: $(STAMP)
	@$(BIN)/python -c "import torch; print('tests on torch', torch.__version__)"
	$(BIN)/python -m pytest -q

# the suite on the oldest torch the `torch` extra claims, in a venv of its own. No CPU build of
# it reaches this machine: this installs PyPI's CUDA build (about 3 GB of wheels with its
# nvidia-* dependencies, 5.6 GB installed), which runs on the CPU as the CPU build does
test-oldest-torch:
	$(MAKE) test VENV=.venv-oldest-torch TORCH_SPEC=$(TORCH_OLDEST)

# style, the layers (import-linter's contracts in pyproject.toml), the core's types (mypy)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks tools
	$(BIN)/ruff format src tests benchmarks tools

# the README's table of findings, from the rules' records
docs: $(STAMP)
	$(BIN)/python tools/findings_table.py

# Debian's Chromium and its driver, for the browser test and the screenshots (root, apt only;
# nothing is downloaded at install time)
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	fi

# the README's pictures of the HTML report and the terminal, from the real seed case
screenshots: $(STAMP) chromium
	$(BIN)/python tools/screenshots.py

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .venv-oldest-torch build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
