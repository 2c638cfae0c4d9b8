# AITBC Testnet — every set-up step lives here (CI runs `make test` on a clean clone).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard node_image/proto/aitbc/v1/*.proto)
PROTO_OUT := node_image/aitbc_node/proto

.PHONY: install test lint bench demo image base-image container-engine chart e2e-kind proto prometheus clean

install: $(STAMP) proto prometheus container-engine

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# gRPC stubs are generated, not committed.
proto: $(STAMP) $(PROTO_OUT)/.generated
$(PROTO_OUT)/.generated: $(PROTO_SRC) $(STAMP)
	mkdir -p $(PROTO_OUT)
	$(PY) -m grpc_tools.protoc -Inode_image/proto --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
	  --grpc_python_out=$(PROTO_OUT) $(PROTO_SRC)
	$(PY) scripts/fix_proto_imports.py $(PROTO_OUT)
	touch $@

# The local platform runs a real Prometheus server: Debian's package when it is missing. The
# script waits for another apt holding the dpkg lock, retries, and fails loudly (naming the
# package) when the binary is still missing afterwards. Debian starts the packaged service: stop
# it, the platform starts its own servers.
prometheus:
	@if ! command -v prometheus >/dev/null 2>&1; then \
	  scripts/apt-install.sh prometheus=prometheus promtool=prometheus || exit 1; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	  $$SUDO pkill -x prometheus >/dev/null 2>&1 || true; \
	fi
	@prometheus --version >/dev/null 2>&1 || { echo "prometheus is installed but does not run: prometheus --version failed"; exit 1; }

test: install
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The devnet-smoke campaign on local processes (validators, Prometheus, Locust), judged and
# reported; exits like `aitbc-testnet run` (0 passed, 1 criteria failed, 2 bad input, 3 infra).
demo: install
	@$(VENV)/bin/aitbc-testnet run devnet-smoke --out out/demo; status=$$?; \
	  echo "demo report: $(CURDIR)/out/demo/report.html (also report.md, report.json, junit.xml)"; \
	  exit $$status

# A container engine for the node image and its tests: nothing when Docker answers, else podman +
# runc from Debian with the settings that work on hosts without systemd (see the script).
container-engine:
	@scripts/install-podman.sh

# The node image (node_image/Dockerfile, context = the repo root), tagged with pyproject's version,
# built with docker or podman (whichever engine answers; docker first) and cached by the engine:
# a second build without a source change reuses every layer. The build needs no network: the
# wheels come from build/wheelhouse, prepared on the host from pyproject.toml. BASE_IMAGE is the
# local Debian 12 base of `make base-image` (made first when missing) unless you pass another,
# e.g. `make image BASE_IMAGE=python:3.11-slim` with a registry. IIDFILE=path writes the image id;
# BUILD_OPTS adds build options (e.g. --no-cache).
LOCAL_BASE := localhost/aitbc-base:bookworm
BASE_IMAGE ?= $(LOCAL_BASE)
IMAGE_NAME ?= aitbc-testnet-node
WHEELHOUSE := build/wheelhouse
IIDFILE ?=
BUILD_OPTS ?=

$(WHEELHOUSE)/wheels.txt: pyproject.toml scripts/wheelhouse.py | $(STAMP)
	$(PY) scripts/wheelhouse.py $(WHEELHOUSE)

image: VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
image: $(WHEELHOUSE)/wheels.txt
	@engine="$$(scripts/container-engine.sh)" || exit 1; \
	if [ "$(BASE_IMAGE)" = "$(LOCAL_BASE)" ]; then scripts/base-image.sh "$$engine" "$(LOCAL_BASE)" || exit 1; fi; \
	format=; if [ "$$engine" = podman ]; then format="--format docker"; fi; \
	set -x; "$$engine" build $$format --network none $(BUILD_OPTS) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  $(if $(IIDFILE),--iidfile $(IIDFILE)) -f node_image/Dockerfile -t $(IMAGE_NAME):$(VERSION) .

# The local base of the node image (Debian 12 + Python 3.11, made with mmdebstrap; skipped when it
# exists), for machines that reach no image registry.
base-image:
	@engine="$$(scripts/container-engine.sh)" && scripts/base-image.sh "$$engine" "$(LOCAL_BASE)"

bench: install
	$(PY) bench/run.py

# Copy the dashboards (source of truth: dashboards/) into the chart and lint it with the Helm engine.
chart: install
	bash helm/sync-dashboards.sh
	$(PY) -c "from pathlib import Path; from orchestrator.external.helm import lint_chart; \
	  [print(m) for m in lint_chart(Path('helm/aitbc-testnet'), {})]"

# The whole campaign on a real kind cluster (needs Docker and kind): a cluster named
# $(KIND_CLUSTER) (created when missing), the node image loaded into it, then the e2e_kind tests.
# kind pulls its own node image from a registry, so the node image is built on the official
# Python image there (KIND_BASE_IMAGE) rather than on the local base.
KIND_CLUSTER ?= aitbc-e2e
KIND_BASE_IMAGE ?= python:3.11-slim
e2e-kind: VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
e2e-kind: install
	@command -v kind >/dev/null 2>&1 || { echo "make e2e-kind needs kind (https://kind.sigs.k8s.io) and a running Docker engine"; exit 1; }
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --wait 180s
	$(MAKE) image BASE_IMAGE=$(KIND_BASE_IMAGE)
	kind load docker-image aitbc-testnet-node:$(VERSION) --name $(KIND_CLUSTER)
	AITBC_E2E_KIND=1 AITBC_KUBE_CONTEXT=kind-$(KIND_CLUSTER) AITBC_IMAGE_TAG=$(VERSION) \
	  $(VENV)/bin/pytest -q -p no:cacheprovider -m e2e_kind tests/e2e

clean:
	rm -rf $(VENV) $(PROTO_OUT) .aitbc build *.egg-info
