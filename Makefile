# Developer entry points. Every target that runs code (test, demo, bench, lint) works from a
# fresh clone: it creates .venv, installs torch (pinned, CPU build where the index has one)
# only when the venv cannot import it, then installs this package editable with [dev] extras
# ([dev] includes every optional extra: [datasets] for scikit-learn, [cli] for jsonargparse).
# The install is recorded in a stamp file, so later runs start at once until pyproject.toml
# or setup.cfg change.
#
#   make test PYTEST_ARGS="tests/test_datasets.py -x"
#   make docs            (the documentation site, strict; make docs-serve serves it)
#   make tensorboard     (TensorBoard on runs/, http://localhost:6006)
#   make demo DEMO_ARGS="--max_epochs 2"
#   make install TORCH="torch==2.13.0" TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# torch goes in first and pinned: an unpinned resolve may pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PIP_ARGS ?=

PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv install test demo bench lint screenshot clean distclean tensorboard docs docs-serve \
	results results-check release-check

venv: $(PY)

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

$(STAMP): pyproject.toml setup.cfg | $(PY)
	@if $(PY) -c "import torch" >/dev/null 2>&1; then \
		echo "torch already importable in $(VENV): $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
		echo "Installing $(TORCH) into $(VENV)"; \
		$(PIP) install $(PIP_ARGS) $(TORCH_PIP_ARGS) "$(TORCH)"; \
	fi
	$(PIP) install $(PIP_ARGS) -e ".[dev]"
	@touch $@

# The docs tools (the `docs` extra) on top of the dev install.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PIP) install $(PIP_ARGS) -e ".[dev,docs]"
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q -ra --durations=15 $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) examples/rotated_digits.py $(DEMO_ARGS)

# TensorBoard from the venv (no need to activate it): `make tensorboard TB_LOGDIR=lightning_logs`.
TB_LOGDIR ?= runs
TB_PORT ?= 6006
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir $(TB_LOGDIR) --port $(TB_PORT)

# The documentation site (MkDocs, strict: a broken link, a missing reference or a public name
# without an API entry fails the build) into site/; docs-serve serves it with live reload.
export NO_MKDOCS_2_WARNING = 1
docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict

docs-serve: $(DOCS_STAMP)
	$(PY) -m mkdocs serve --strict

# Runs the demo (deterministic, about a minute) and rewrites the generated block of
# docs/results.md; results-check compares the block with a fresh run instead.
results: $(STAMP)
	$(PY) scripts/results_block.py

results-check: $(STAMP)
	$(PY) scripts/results_block.py --check

# The package as users get it: sdist and wheel, twine's metadata check, then the wheel in a
# clean venv (torch first, then runtime dependencies only) running the README's snippet.
release-check: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*
	$(PY) scripts/release_check.py dist/*.whl --torch "$(TORCH)" --torch-pip-args "$(TORCH_PIP_ARGS)"

# Benchmarks are a package: run from the repository root with -m (no sys.path editing).
bench: $(STAMP)
	$(PY) -m benchmarks.bench_liegg $(BENCH_ARGS)
	$(PY) -m benchmarks.bench_liegg --only speed --threads 1 $(BENCH_ARGS)
	$(PY) -m benchmarks.bench_callback
	$(PY) -m benchmarks.bench_architectures

# Real TensorBoard screenshots for the docs. Installs what is missing, visibly: Debian's
# chromium (apt-get, as root) and the playwright package (pip, without its browser download).
SHOT_LOGDIR ?= runs/rotated_digits
screenshot: $(STAMP)
	command -v chromium >/dev/null || apt-get install -y chromium
	$(PY) -c "import playwright" 2>/dev/null || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install playwright
	$(PY) scripts/screenshot_tensorboard.py --logdir $(SHOT_LOGDIR) --out docs/tensorboard.png \
		--pages scalars,images,customscalars --default-image-size

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf build dist site .eggs *.egg-info .pytest_cache .ruff_cache lightning_logs
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

# Also removes the virtual environment (the next `make test` rebuilds it).
distclean: clean
	rm -rf $(VENV)
