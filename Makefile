# Synchro: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
KUBECTL   := .cluster/bin/kubectl
CACHE     := $(or $(SYNCHRO_CACHE),$(HOME)/.cache/synchro)
export KUBECONFIG ?= $(CURDIR)/.cluster/kubeconfig
export PYTHONPATH := $(CURDIR)/operator
TEST_NODE ?= real

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: $(VENV)/.installed ## Install system packages and the pinned Python virtualenv
$(VENV)/.installed: requirements.txt requirements-runtime.txt hack/deps.sh hack/venv.sh
	bash hack/deps.sh
	bash hack/venv.sh
	touch $@

.PHONY: build
build: ## Build (or reuse from ~/.cache/synchro) etcd, Kubernetes, kwok and helm from the Go module proxy
	python3 hack/build.py

.PHONY: cluster-up
cluster-up: deps build ## Start the local cluster (etcd, apiserver, controller-manager, scheduler, kwok, redis); NODE=real adds a real node
	NODE=$(NODE) python3 hack/cluster.py up

.PHONY: cluster-down
cluster-down: ## Stop every process cluster-up started (by recorded PID)
	NODE=$(NODE) python3 hack/cluster.py down

.PHONY: cluster-clean
cluster-clean: ## Stop the cluster and delete its state (etcd data, certificates)
	python3 hack/cluster.py clean

.PHONY: crds
crds: deps ## Regenerate crds/ from the Python API definition, and the chart's copy from crds/
	$(PY) -m synchro.crd > crds/synchro.dev_syncclusters.yaml
	$(PY) hack/chart_crds.py write

.PHONY: lint
lint: deps ## ruff (lint and format check), mypy --strict, the layer contract, sizes, the chart's CRDs against crds/
	$(VENV)/bin/ruff check operator tests hack bench
	$(VENV)/bin/ruff format --check operator tests hack bench
	$(VENV)/bin/mypy --cache-dir $(CACHE)/mypy operator/synchro  # shared by checkouts: it checks each file's hash
	cd operator && ../$(VENV)/bin/lint-imports ../pyproject.toml
	$(PY) hack/sizes.py
	$(PY) hack/chart_crds.py check

.PHONY: helm-lint
helm-lint: build ## helm lint and helm template for the chart (helm built from the Go module proxy)
	.cluster/bin/helm lint --strict charts/synchro
	.cluster/bin/helm template synchro charts/synchro > /dev/null
	.cluster/bin/helm template synchro charts/synchro --set 'watchNamespaces={apps}' > /dev/null

.PHONY: unit
unit: deps ## Unit tests (no cluster)
	$(PY) -m pytest tests/unit -q

.PHONY: test
test: deps ## Unit and integration tests on the local cluster, with the real node (TEST_NODE=kwok: without)
	bash hack/prefetch.sh
	python3 hack/build.py
	NODE=$(TEST_NODE) python3 hack/cluster.py up
	bash hack/test.sh

.PHONY: test-apps
test-apps: deps ## Only the tests that run real apps (pytest -m apps; their installs are cached under ~/.cache/synchro)
	bash hack/prefetch.sh
	python3 hack/build.py
	python3 hack/cluster.py up
	bash hack/pytest.sh tests/integration -m apps

.PHONY: run
run: deps ## Run the operator against $$KUBECONFIG (on the local cluster: Redis connections stay on loopback)
	$(if $(filter $(CURDIR)/.cluster/kubeconfig,$(KUBECONFIG)),SYNCHRO_REDIS_NETWORKS=$${SYNCHRO_REDIS_NETWORKS:-127.0.0.0/8}) \
	  $(PY) -m synchro run

.PHONY: bench
bench: cluster-up ## Speed and memory against same-run baselines: bench/results.json and .png (QUICK=1: < 5 min)
	python3 hack/build.py reloader
	QUICK=$(QUICK) $(PY) bench/bench.py $(ONLY)

.PHONY: ab
ab: cluster-up ## One change against another, alternated on one cluster: make ab A=<ref> B=<ref> [CLUSTERS=100 ROUNDS=3]
	$(PY) bench/ab.py

.PHONY: kind-e2e
kind-e2e: ## For users with Docker: kind cluster, image, helm install, e2e tests (cannot run on the CI machine)
	bash hack/kind-e2e.sh

.PHONY: demo
demo: cluster-up ## Local cluster + CRDs + operator + samples, then watch SyncClusters go Ready
	bash hack/demo.sh
