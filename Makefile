# AITBC Testnet — every set-up step lives here (CI runs `make test` on a clean clone).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard node_image/proto/aitbc/v1/*.proto)
PROTO_OUT := node_image/aitbc_node/proto

.PHONY: install install-steps system-packages test lint bench soak demo image image-build base-image \
  container-engine wheelhouse chart e2e-kind e2e-devnet proto prometheus clean

# Every set-up step, side by side where that is safe (a sub-make with -j; each step's output is
# printed in one piece when it ends): the venv and the wheelhouse of the node image (PyPI), the
# Debian packages, then the container engine and the local base image (Debian mirror). The
# wheelhouse and the editable install share only the venv's pip, which neither of them changes.
install:
	@$(MAKE) --no-print-directory -j4 --output-sync=target install-steps

install-steps: $(STAMP) proto prometheus container-engine base-image wheelhouse

$(VENV)/.pip:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

$(STAMP): pyproject.toml | $(VENV)/.pip
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

# The Debian packages of every step below in one apt run (scripts/system-packages.sh: prometheus;
# podman and runc unless Docker answers; mmdebstrap while the local base image is missing). It
# waits for another apt holding the dpkg lock, retries, fails loudly naming a package whose
# command is still missing, and stops the service Debian starts with a fresh prometheus.
system-packages:
	@scripts/system-packages.sh $(if $(filter $(LOCAL_BASE),$(BASE_IMAGE)),$(LOCAL_BASE))

# The local platform runs a real Prometheus server.
prometheus: system-packages
	@prometheus --version >/dev/null 2>&1 || { echo "prometheus is installed but does not run: prometheus --version failed"; exit 1; }

# The node image is built in the background while pytest runs (scripts/with-image-build.sh: own
# process group, log in build/image-build.log, printed if the build fails; waited for if pytest
# ends first, stopped on Ctrl-C). The tests that need the image run last and their own `make
# image` waits for that build (the lock of `make image`), then takes the cached path.
# Tests run on TEST_WORKERS pytest-xdist workers (most of the suite waits on real processes and
# clocks, not on the CPU); tests/conftest.py groups them so each module's fixtures are set up once.
TEST_WORKERS ?= 3

test: install
	@MAKE="$(MAKE)" scripts/with-image-build.sh $(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15

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
container-engine: system-packages
	@scripts/install-podman.sh

# The node image (node_image/Dockerfile, context = the repo root), tagged with pyproject's version,
# built with docker or podman (whichever engine answers; docker first) and cached by the engine:
# a second build without a source change reuses every layer. The build needs no network: the
# wheels come from build/wheelhouse, prepared on the host from pyproject.toml. BASE_IMAGE is the
# local Debian 12 base of `make base-image` (made first when missing) unless you pass another,
# e.g. `make image BASE_IMAGE=python:3.11-slim` with a registry. IIDFILE=path writes the image id;
# BUILD_OPTS adds build options (e.g. --no-cache). One build of this checkout at a time: `make
# image` holds IMAGE_LOCK (flock) while it runs image-build, so a second `make image` (the tests'
# while `make test`'s background build runs) waits, then finds the layers cached.
LOCAL_BASE := localhost/aitbc-base:bookworm
BASE_IMAGE ?= $(LOCAL_BASE)
IMAGE_NAME ?= aitbc-testnet-node
WHEELHOUSE := build/wheelhouse
IMAGE_LOCK ?= build/image.lock
IIDFILE ?=
BUILD_OPTS ?=

wheelhouse: $(WHEELHOUSE)/wheels.txt
$(WHEELHOUSE)/wheels.txt: pyproject.toml scripts/wheelhouse.py | $(VENV)/.pip
	$(PY) scripts/wheelhouse.py $(WHEELHOUSE)

image:
	@mkdir -p $(dir $(IMAGE_LOCK))
	@if command -v flock >/dev/null 2>&1; then lock="flock $(IMAGE_LOCK)"; else lock=; fi; \
	  $$lock $(MAKE) --no-print-directory image-build

image-build: VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
image-build: $(WHEELHOUSE)/wheels.txt
	@engine="$$(scripts/container-engine.sh)" || exit 1; \
	if [ "$(BASE_IMAGE)" = "$(LOCAL_BASE)" ]; then scripts/base-image.sh "$$engine" "$(LOCAL_BASE)" || exit 1; fi; \
	format=; if [ "$$engine" = podman ]; then format="--format docker"; fi; \
	set -x; "$$engine" build $$format --network none $(BUILD_OPTS) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  $(if $(IIDFILE),--iidfile $(IIDFILE)) -f node_image/Dockerfile -t $(IMAGE_NAME):$(VERSION) .

# The local base of the node image (Debian 12 + Python 3.11, made with mmdebstrap; skipped when it
# exists), for machines that reach no image registry. Part of `make install` unless BASE_IMAGE
# names another base.
base-image: container-engine
	@if [ "$(BASE_IMAGE)" = "$(LOCAL_BASE)" ]; then \
	  engine="$$(scripts/container-engine.sh)" && scripts/base-image.sh "$$engine" "$(LOCAL_BASE)"; fi

bench: install
	$(PY) bench/run.py

# The consensus property tests at 10x their schedules, on a random seed (a nightly job's
# deeper search; `make test` runs the same 700 schedules each time).
soak: install
	AITBC_SCHEDULE_SCALE=10 $(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) \
	  tests/unit/test_safety_properties.py

# Copy the dashboards (source of truth: dashboards/) into the chart and lint it with the Helm engine.
chart: install
	bash helm/sync-dashboards.sh
	$(PY) -c "from pathlib import Path; from orchestrator.external.helm import lint_chart; \
	  [print(m) for m in lint_chart(Path('helm/aitbc-testnet'), {})]"

# The whole campaign on a real kind cluster (needs Docker and kind): a cluster named
# $(KIND_CLUSTER) (created when missing), the node image loaded into it, then the e2e_kind tests.
# kind pulls its own node image from a registry, so the node image is built on the official
# Python image there (KIND_BASE_IMAGE) rather than on the local base, which `make install` then
# does not make.
KIND_CLUSTER ?= aitbc-e2e
KIND_BASE_IMAGE ?= python:3.11-slim
e2e-kind: export BASE_IMAGE = $(KIND_BASE_IMAGE)
e2e-kind: VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
e2e-kind: install
	@command -v kind >/dev/null 2>&1 || { echo "make e2e-kind needs kind (https://kind.sigs.k8s.io) and a running Docker engine"; exit 1; }
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --wait 180s
	$(MAKE) image BASE_IMAGE=$(KIND_BASE_IMAGE)
	kind load docker-image aitbc-testnet-node:$(VERSION) --name $(KIND_CLUSTER)
	AITBC_E2E_KIND=1 AITBC_KUBE_CONTEXT=kind-$(KIND_CLUSTER) AITBC_IMAGE_TAG=$(VERSION) \
	  $(VENV)/bin/pytest -q -p no:cacheprovider -m e2e_kind tests/e2e

# The 100-validator devnet campaign (docs: README "The devnet on a 2-core host"): it saturates
# two cores for about five minutes, so `make test` skips it.
e2e-devnet: install
	AITBC_E2E_DEVNET=1 $(VENV)/bin/pytest -q -p no:cacheprovider -m devnet tests/e2e

# Files only: the engine's images (the local base, the node image) stay; remove them with
# `podman rmi` / `docker rmi`.
clean:
	rm -rf $(VENV) $(PROTO_OUT) .aitbc build *.egg-info
