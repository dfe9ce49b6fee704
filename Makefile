# Developer entry points. Every target that runs code (test, demo, bench, lint) works from a
# fresh clone: it creates .venv, installs torch (pinned, CPU build where the index has one)
# only when the venv cannot import it, then installs this package editable with [dev] extras.
# The install is recorded in a stamp file, so later runs start at once until pyproject.toml
# or setup.cfg change.
#
#   make test PYTEST_ARGS="tests/test_datasets.py -x"
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

.PHONY: venv install test demo bench lint screenshot clean distclean

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

test: $(STAMP)
	$(PY) -m pytest -q -ra --durations=15 $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) examples/rotated_digits.py $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_liegg.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_liegg.py --only speed --threads 1 $(BENCH_ARGS)
	$(PY) benchmarks/bench_callback.py
	$(PY) benchmarks/bench_architectures.py

# Real TensorBoard screenshots for the README. Installs what is missing, visibly: Debian's
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
	rm -rf build dist .eggs *.egg-info .pytest_cache .ruff_cache lightning_logs
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

# Also removes the virtual environment (the next `make test` rebuilds it).
distclean: clean
	rm -rf $(VENV)
