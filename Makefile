# sessionfleet: the project's verbs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
# kind, helm, kubectl that scripts/kube-tools.sh had to install (none of yours is replaced:
# it installs one only where the PATH has none recent enough).
export PATH := $(CURDIR)/build/tools/bin:$(PATH)
BIN := $(VENV)/bin
# sha1sum (GNU coreutils) or shasum (macOS): the same digest, so the same stamp.
SHA1SUM := $(shell command -v sha1sum >/dev/null 2>&1 && echo sha1sum || echo shasum)
STAMP := $(VENV)/.installed-$(shell $(SHA1SUM) < pyproject.toml | cut -c1-12)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,loadtest,bench]"
	rm -f $(VENV)/.installed-* && touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv with the app and its dev tools

.PHONY: system-deps
system-deps: ## install the Debian packages tests need (redis, sentinel, haproxy, shellcheck, promtool)
	scripts/install-system-deps.sh test

.PHONY: run
run: venv ## serve the app on 127.0.0.1:8000 (in-memory sessions, 5 demo users)
	@password=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))'); \
	echo "log in as user-0001 .. user-0005 with password: $$password"; \
	SESSIONFLEET_COOKIE_SECURE=false SESSIONFLEET_API_DOCS=true SESSIONFLEET_LOADTEST_USERS=5 \
	SESSIONFLEET_LOADTEST_PASSWORD=$$password \
	exec $(BIN)/uvicorn app.main:app --host 127.0.0.1 --port 8000

.PHONY: lint
lint: venv ## ruff, mypy, shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	shellcheck -x -P SCRIPTDIR scripts/*.sh .ci/run helm/sessionfleet/files/*.sh helm/sessionfleet/files/cluster/*.sh
	yamllint .

.PHONY: docker
docker: ## make sure a Docker engine runs (Debian: installs docker.io, mmdebstrap, docker-compose)
	scripts/ensure-docker.sh --local-cluster

.PHONY: test
test: system-deps docker venv lint ## lint, then the whole test suite (slow tests included)
	$(BIN)/pytest

.PHONY: test-fast
test-fast: system-deps venv ## a quick signal (~1 min): unit, chart and single-Redis tests; no fleets, containers
	$(BIN)/pytest -q -m "not slow and not sentinel and not redis_cluster and not cluster and not e2e"

.PHONY: clean
clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench
bench: system-deps venv ## all benchmarks (~25 min), then regenerate docs/benchmarks.md
	scripts/install-system-deps.sh bench
	$(BIN)/python -m benchmarks.sessions_bench --rounds 10 --seconds 3
	taskset -c 0 $(BIN)/python -m benchmarks.cpu_per_request --requests 6400 --rounds 5
	$(BIN)/python -m benchmarks.memory_bench --sessions 100000
	$(BIN)/python -m benchmarks.scaling --seconds 6 --rounds 3
	$(BIN)/python -m benchmarks.failover --rounds 20
	$(BIN)/python -m benchmarks.redis_cluster_bench --ops 4000 --seconds 5 --rounds 3 --kills 5
	$(BIN)/python -m benchmarks.render

.PHONY: bench-cluster
bench-cluster: system-deps venv ## Redis Cluster: cost per session operation, 1 vs 3 shards, shard failover (~6 min)
	scripts/install-system-deps.sh bench
	$(BIN)/python -m benchmarks.redis_cluster_bench --ops 4000 --seconds 5 --rounds 3 --kills 5
	$(BIN)/python -m benchmarks.render

.PHONY: bench-batching
bench-batching: system-deps venv ## the pipelined connection against redis-py batching, paired (~15 s)
	taskset -c 0 $(BIN)/python -m benchmarks.batching_bench --pairs 4000 --rounds 7

.PHONY: bench-failover
bench-failover: system-deps venv ## 20 Redis master kills under load on the loopback fleet (~5 min)
	$(BIN)/python -m benchmarks.failover --rounds 20
	$(BIN)/python -m benchmarks.render

# --- images, local container cluster ------------------------------------------------------
# `make image` needs Docker and a Python with pip, nothing else: no venv, apt or bash 4 (macOS).
IMAGE ?= sessionfleet:dev
BASE_IMAGE ?= python:3.11-slim-bookworm
# linux/amd64 or linux/arm64; empty: the Docker engine's architecture.
PLATFORM ?=
# The local cluster's Redis: sentinel (1 master, 2 replicas, 3 Sentinels) or cluster (Redis
# Cluster, 3 shards x 1 replica). `make local-down` removes either.
MODE ?= sentinel

.PHONY: wheelhouse
wheelhouse: ## the app's wheels for the image's Python and platform (build/wheelhouse)
	PLATFORM=$(PLATFORM) scripts/build-wheelhouse.sh

.PHONY: base-images
base-images: ## Debian base images for Python, Redis, HAProxy built with mmdebstrap (no pulls)
	scripts/ensure-docker.sh --local-cluster
	scripts/images.sh base

.PHONY: image
image: ## the app image (BASE_IMAGE=sessionfleet/python-base:bookworm where nothing can be pulled)
	scripts/ensure-docker.sh
	IMAGE=$(IMAGE) BASE_IMAGE=$(BASE_IMAGE) PLATFORM=$(PLATFORM) scripts/images.sh app

.PHONY: local-up
local-up: venv ## the local container cluster: 3 app + 3 Redis/Sentinel "nodes" + HAProxy on :8080 (MODE=cluster: Redis Cluster)
	REDIS_MODE=$(MODE) scripts/local-cluster.sh up

.PHONY: local-down
local-down: ## stop and remove the local container cluster
	scripts/local-cluster.sh down

# --- kind ----------------------------------------------------------------------------------
# Settings (env or make VAR=...): KIND_CLUSTER, KIND_OFFLINE=1, KIND_NODE_IMAGE, KIND_HTTP_PORT,
# NAMESPACE, RELEASE, IMAGE; see scripts/kind.sh and docs/kind.md.
.PHONY: kind-tools
kind-tools: ## kind, helm, kubectl at pinned versions, only where missing (into build/tools/bin)
	scripts/kube-tools.sh kind helm kubectl

.PHONY: kind-node-image
kind-node-image: ## the offline kind node image (Kubernetes v1.37, from Go modules + Debian; ~25 min cold)
	scripts/install-system-deps.sh kind
	scripts/ensure-docker.sh --local-cluster
	scripts/kind-node-image.sh

# Everything the offline cluster builds (node image, add-on images, kind/helm/kubectl), without
# starting anything: .ci/run builds these while the test suite runs.
.PHONY: kind-images
kind-images: kind-node-image kind-tools ## build the offline kind images and tools (cached by version; ~45 min cold)
	scripts/cluster-images.sh traefik $(if $(filter 0,$(KIND_METRICS_SERVER)),,metrics-server) >/dev/null

.PHONY: kind-up
kind-up: kind-tools ## kind cluster (1 control plane + 3 workers, zones a/b/c) + Traefik as Gateway (KIND_OFFLINE=1: nothing pulled)
	@if [ "$(KIND_OFFLINE)" = 1 ]; then scripts/install-system-deps.sh kind && scripts/ensure-docker.sh --local-cluster; fi
	scripts/kind.sh up

.PHONY: kind-load
kind-load: ## load the app image into the kind nodes (falls back to an image archive)
	scripts/kind.sh load

.PHONY: deploy
deploy: kind-tools ## helm upgrade --install onto the kind cluster, wait, helm test (OTEL=1: send traces)
	scripts/kind.sh deploy

.PHONY: observability-up
observability-up: ## Collector + Jaeger, Prometheus + Grafana (sessionfleet dashboard) on kind (pulls their images)
	scripts/kind.sh observability

.PHONY: undeploy
undeploy: ## helm uninstall and delete the namespace
	scripts/kind.sh undeploy

.PHONY: e2e-kind
e2e-kind: venv kind-tools ## tests/e2e on the kind cluster through its Gateway, every plan (HELM_BIN=helm3: Helm 3) (~15 min)
	scripts/kind.sh e2e

# What .ci/run adds to `make test`: a fresh offline kind cluster, the chart installed with the
# helm CLI, helm test, Locust under chaos through the Gateway, upgrades, rollback, uninstall.
.PHONY: ci-kind
ci-kind: venv kind-tools ## CI's kind job: fresh offline cluster; install, helm test, 60 s of crashes, upgrade, rollback, uninstall (~15 min cached)
	$(MAKE) kind-down
	$(MAKE) kind-up KIND_OFFLINE=1 KIND_METRICS_SERVER=0
	$(MAKE) base-images image BASE_IMAGE=sessionfleet/python-base:bookworm
	E2E_DURATION=60 E2E_PLAN=crashes scripts/kind.sh e2e \
	  -k "not rolling_upgrade and not rolling_restart and not autoscaler and not shard"; \
	  status=$$?; $(MAKE) kind-down; exit $$status

.PHONY: kind-down
kind-down: ## delete the kind cluster
	scripts/kind.sh down

# --- load tests ----------------------------------------------------------------------------
.PHONY: demo
demo: venv ## the main job: local cluster + 3 min of Locust with pod kill, failover, node loss (MODE=cluster: shard-master kills, resharding)
	REDIS_MODE=$(MODE) scripts/demo.sh

.PHONY: e2e
e2e: venv ## the chart end to end on KUBE_CONTEXT=<context>: install, helm test, chaos, upgrade, uninstall (~8 min)
	@test -n "$(KUBE_CONTEXT)" || { echo "make e2e needs KUBE_CONTEXT=<context>"; exit 2; }
	KUBE_CONTEXT=$(KUBE_CONTEXT) E2E_REDIS_MODE=$(or $(E2E_REDIS_MODE),sentinel) \
	  $(BIN)/pytest tests/e2e -m e2e -v -s -p no:cacheprovider

.PHONY: loadtest
loadtest: venv ## Locust against TARGET=http://... with CHAOS=none|local|kubernetes (DURATION, USERS)
	scripts/loadtest.sh
