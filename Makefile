# temporal-rollouts: `make demo` shows the seed scenario end to end, `make test` runs every test.
# `make install` is the shared first step: a .venv with the project and its dev tools.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SOURCES := worker.py starter.py workflows activities cli kubesim

.PHONY: install demo test lint typecheck pytest bench down clean distclean

install: $(STAMP)

# Re-install only when pyproject.toml changes; the stamp lives inside the venv.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(PY) -m cli.demo

test: install lint typecheck pytest

lint: install
	$(PY) -m ruff check .

typecheck: install
	$(PY) -m mypy $(SOURCES)

# pytest's own closing line ("N passed in ...") is the last thing `make test` prints.
pytest: install
	$(PY) -m pytest -q

# Small sizes only: a smoke run of every benchmark script (BENCH_SMALL=1 asks each for its small size).
bench: install
	@set -e; found=0; for f in bench/*.py; do \
		[ -e "$$f" ] || continue; found=1; \
		echo "== $$f"; BENCH_SMALL=1 $(PY) "$$f"; \
	done; [ $$found = 1 ] || echo "no benchmarks in bench/"

down:
	@if [ -x $(PY) ]; then $(PY) -m cli.dev down; else echo "no .venv: nothing to stop"; fi

clean: down
	rm -rf .rollout .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
