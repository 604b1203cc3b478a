# Synchro: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
KUBECTL   := .cluster/bin/kubectl
export KUBECONFIG ?= $(CURDIR)/.cluster/kubeconfig
export PYTHONPATH := $(CURDIR)/operator

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: $(VENV)/.installed ## Install system packages and the pinned Python virtualenv
$(VENV)/.installed: requirements.txt hack/deps.sh
	bash hack/deps.sh
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

.PHONY: build
build: ## Build (or reuse from ~/.cache/synchro) etcd, Kubernetes, kwok and helm from the Go module proxy
	python3 hack/build.py

.PHONY: cluster-up
cluster-up: deps build ## Start the local cluster (etcd, apiserver, controller-manager, scheduler, kwok, redis)
	python3 hack/cluster.py up

.PHONY: cluster-down
cluster-down: ## Stop every process cluster-up started (by recorded PID)
	python3 hack/cluster.py down

.PHONY: cluster-clean
cluster-clean: ## Stop the cluster and delete its state (etcd data, certificates)
	python3 hack/cluster.py clean

.PHONY: crds
crds: deps ## Regenerate crds/ from the Python API definition
	$(PY) -m synchro.crd > crds/synchro.dev_syncclusters.yaml

.PHONY: lint
lint: deps ## ruff and mypy --strict
	$(VENV)/bin/ruff check operator tests hack
	$(VENV)/bin/ruff format --check operator tests hack
	$(VENV)/bin/mypy operator/synchro

.PHONY: unit
unit: deps ## Unit tests (no cluster)
	$(PY) -m pytest tests/unit -q

.PHONY: test
test: cluster-up ## Unit and integration tests on the local cluster
	bash hack/pytest.sh tests/unit tests/integration

.PHONY: run
run: deps ## Run the operator against $$KUBECONFIG (on the local cluster: Redis connections stay on loopback)
	$(if $(filter $(CURDIR)/.cluster/kubeconfig,$(KUBECONFIG)),SYNCHRO_REDIS_NETWORKS=$${SYNCHRO_REDIS_NETWORKS:-127.0.0.0/8}) \
	  $(PY) -m synchro run

.PHONY: demo
demo: cluster-up ## Local cluster + CRDs + operator + samples, then watch SyncClusters go Ready
	bash hack/demo.sh
