# temporal-rollouts: `make demo` shows the seed scenario end to end, `make test` runs every test.
# `make install` is the shared first step: a .venv with the project and its dev tools.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SOURCES := worker.py starter.py connect.py codec.py watcher.py watcher_decisions.py kube workflows activities cli devstack \
	kruise kubesim declarative realk8s

.PHONY: prometheus chromium system-deps install demo demo-release test lint typecheck pytest bench bench-full mutate down clean \
	distclean realk8s

install: $(STAMP)
	@$(PY) -m kubesim.protogen || echo "(kubesim runs without protobuf until Go is installed)"

# Re-install only when pyproject.toml changes; the stamp lives inside the venv.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the project and its dev tools into $(VENV) (the first time takes about 30 s) ..."
	$(PY) -m pip install -qq --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Debian packages the tests need: prometheus (canary analysis; `rollout dev up` starts it when present) and
# chromium (the Temporal UI browser test). Installed with apt-get only when missing (sudo unless root).
APT_INSTALL = SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq

prometheus:
	@if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then echo "prometheus is installed"; \
	else echo "installing Debian prometheus for the canary analysis tests ..."; $(APT_INSTALL) --no-install-recommends prometheus >/dev/null; fi

chromium:
	@if [ -x /usr/bin/chromium ]; then echo "chromium is installed"; \
	else echo "installing Debian chromium for the Temporal UI browser test ..."; $(APT_INSTALL) chromium >/dev/null; fi

system-deps: prometheus chromium

# Ports busy? `make demo DEMO_ARGS="--temporal-port 17233 --ui-port 18233 --kube-port 16443"`
demo: install
	$(PY) -m devstack.demo $(DEMO_ARGS)

# One release across three local clusters (dev, staging, prod): waves, bakes, an approval; leaves the stack up.
demo-release: install
	$(PY) -m devstack.demo_release $(DEMO_ARGS)

# The real control plane (embedded etcd + kube-apiserver + kube-controller-manager + fake kubelet) used by
# the real-cluster test tier and `rollout dev up --cluster real`. Needs Go; Go caches modules and objects,
# so only the first build is slow (figures in README, "Real Kubernetes").
REALK8S_BIN := realk8s/bin/realk8s
REALK8S_SRC := $(wildcard realk8s/*.go) realk8s/go.mod realk8s/go.sum realk8s/build.sh

realk8s: $(REALK8S_BIN)

$(REALK8S_BIN): $(REALK8S_SRC)
	@bash realk8s/build.sh

# All three always run (one CI run reports every problem); pytest goes last so its summary line closes
# the output, and the exit code is non-zero if any of them failed.
test: install system-deps realk8s helm
	@rc=0; \
	$(MAKE) --no-print-directory lint || rc=1; \
	$(MAKE) --no-print-directory typecheck || rc=1; \
	$(MAKE) --no-print-directory pytest || rc=1; \
	if [ $$rc != 0 ]; then echo "make test: FAILED (see lint / typecheck / pytest output above)"; fi; \
	exit $$rc

# Every check runs (one run reports every problem); docs/layout.md, "Guardrails", says what each one holds.
lint: install
	@rc=0; \
	$(PY) -m ruff check . || rc=1; \
	$(PY) -m ruff format --check --output-format concise . || rc=1; \
	$(VENV)/bin/lint-imports --no-cache || rc=1; \
	$(PY) tools/top_imports.py || rc=1; \
	$(PY) tools/file_size.py || rc=1; \
	$(PY) -m vulture || rc=1; \
	exit $$rc

typecheck: install
	$(PY) -m mypy $(SOURCES)

pytest: install
	$(PY) -m pytest -q --durations=30

# A smoke run of every benchmark script at a small size (BENCH_SMALL=1 shrinks them); `make bench-full`
# is the measured run whose figures go into docs/benchmarks.md.
bench: install
	@set -e; found=0; for f in bench/*.py; do \
		grep -q '__main__' "$$f" || continue; found=1; \
		mod=bench.$$(basename "$$f" .py); echo "== $$mod"; BENCH_SMALL=1 $(PY) -m "$$mod"; \
	done; [ $$found = 1 ] || echo "no benchmarks in bench/"

bench-full: install
	@mkdir -p .bench
	$(PY) -m bench.approve_latency > .bench/approve_latency.json
	$(PY) -m bench.concurrent --rollouts 10 > .bench/concurrent-10.json
	$(PY) -m bench.concurrent --rollouts 100 > .bench/concurrent-100.json
	$(PY) -m bench.concurrent --rollouts 500 > .bench/concurrent-500.json
	$(PY) -m bench.history > .bench/history.json
	$(PY) -m bench.analysis_history > .bench/analysis_history.json
	$(PY) -m bench.kubesim_bench > .bench/kubesim.json
	$(PY) -m bench.release > .bench/release.json

# Mutation testing (not part of `make test`; figures, run time and triage in docs/testing.md): mutmut over
# workflows/plan.py, kubesim's deployment/replicaset controller math, workflows/analysis_math.py, the
# declarative controller's decisions and the watcher's ([tool.mutmut] in pyproject.toml, the scopes in
# tests/mutation_report.py; MUTATE_SCOPES="declarative/decisions.py ..." runs some of them only).
# Reniced and two children at most: the machine may be shared.
MUTATE_JOBS ?= 2
MUTATE_SCOPES ?=
mutate: install
	@rm -rf mutants
	set -f; nice -n 10 $(PY) -m mutmut run --max-children $(MUTATE_JOBS) \
		$$($(PY) -m tests.mutation_report --names $(MUTATE_SCOPES)) > .mutmut.log 2>&1 || (tail -c 2000 .mutmut.log; exit 1)
	$(PY) -m tests.mutation_report

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "no .venv: nothing to stop"; fi

clean: down
	rm -rf .rollout .bench .pytest_cache .mypy_cache .ruff_cache build *.egg-info mutants .mutmut.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# The Argo Rollouts peer (issue 25): the controller, the kubectl plugin and argo/probe (Argo's own condition
# evaluator behind a JSON-lines filter), built from the Go module github.com/argoproj/argo-rollouts at the
# version in argo/VERSION, in a copy of the module's source directory (argo/build.sh). Go caches modules
# and objects: only the first build is slow. Used by tests/conformance/test_argo_oracle_*.py.
.PHONY: argo
ARGO_BINS := argo/bin/argo-probe argo/bin/rollouts-controller argo/bin/kubectl-argo-rollouts
ARGO_SRC := argo/VERSION argo/build.sh argo/probe/main.go argo/probe/index.html

argo: $(ARGO_BINS)

$(ARGO_BINS) &: $(ARGO_SRC)
	@bash argo/build.sh

# `make test` runs the oracle tests, so it builds the peer first (warm: nothing to do).
test: argo

# Argo CD's own health check for Kruise's Rollout (resource_customizations/rollouts.kruise.io/Rollout), run
# with a real Lua interpreter by tests/conformance/test_argocd_health.py: the Go module
# github.com/argoproj/argo-cd/v3 at the version in tools/argocd/VERSION, from the Go module proxy into Go's
# module cache (tools/argocd/source.sh; nothing is copied). Warm: nothing to do.
ARGOCD_DIR := tools/bin/argocd-source-dir

.PHONY: argocd
argocd: $(ARGOCD_DIR)

$(ARGOCD_DIR): tools/argocd/VERSION tools/argocd/source.sh
	@bash tools/argocd/source.sh

test: argocd

# helm for the chart tests (tests/helm): built from the Go module proxy (helm.sh/helm/v4's cmd/helm at the
# version pinned in tools/helm/go.mod), the way realk8s is built; never a downloaded binary. Go caches
# modules and objects, so only the first build is slow.
HELM_BIN := tools/bin/helm
HELM_SRC := tools/helm/go.mod tools/helm/go.sum tools/helm/build.sh

.PHONY: helm
helm: $(HELM_BIN)

$(HELM_BIN): $(HELM_SRC)
	@bash tools/helm/build.sh
