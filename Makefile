# fraudstream: `make up` runs the pipeline on this machine, `make test` proves it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Two workers: tests that share the local platform or the Kubernetes control plane stay on one
# worker each (tests/conftest.py groups them); the other files fill the second worker meanwhile.
PYTEST_PARALLEL ?= -n 2 --dist loadscope --no-loadscope-reorder
COLLECTION := collections/ansible_collections/fraudstream/platform
# ansible-test makes its own venvs; keep them and its tools outside the clone, as a cache.
ANSIBLE_TEST_VENV ?= $(HOME)/.cache/fraudstream/ansible-test-venv
K8S_CACHE := $(or $(FRAUDSTREAM_CACHE),$(HOME)/.cache/fraudstream)
ANSIBLE_CORE := $(shell sed -n 's/^ansible-core==//p' requirements.txt)

.PHONY: up down test lint sanity integration venv clean k8s-up k8s-down

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt apps/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -e 'apps[evaluate]'
	touch $@

up: venv
	$(BIN)/ansible-playbook site.yml

down: venv
	$(BIN)/ansible-playbook teardown.yml

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(BIN)/ansible-lint
	$(BIN)/hadolint apps/Dockerfile
	@# pytest's default import mode refuses two test modules with one basename (outside packages).
	@dups=$$(find tests apps/tests -name 'test_*.py' ! -path 'tests/aws/*' -printf '%f\n' | sort | uniq -d); \
	if [ -n "$$dups" ]; then echo "test module basenames used twice: $$dups (rename one)"; exit 1; fi

# Lint first, then every test: promtool rules, the local platform end to end.
# pytest's exit code 5 (nothing collected) is reported, not failed on, as CI requires.
# eksctl (tests/aws) and the Kubernetes control plane (tests/k8s) build from the Go module proxy in
# the background meanwhile, one after the other: cold, they are the longest steps (about 10 and 11 min
# of CPU here); their tests wait on the build's lock, and a warm cache makes both no-ops.
test: venv
	mkdir -p $(K8S_CACHE)
	{ tests/aws/eksctl/build.sh >$(K8S_CACHE)/background-build-eksctl.log 2>&1; \
	  tests/k8s/controlplane/build.sh >$(K8S_CACHE)/background-build.log 2>&1; } &
	$(MAKE) lint
	PATH=$(abspath $(BIN)):$$PATH $(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

# ansible-test sanity in its own venv. It bootstraps pip from a host this network cannot reach,
# so tools/get_pip_offline.py stands in for that download (pip itself still comes from PyPI).
sanity: $(ANSIBLE_TEST_VENV)/.installed
	mkdir -p $(HOME)/.ansible/test/cache
	cp tools/get_pip_offline.py $(HOME)/.ansible/test/cache/get_pip_24_2.py
	cd $(COLLECTION) && $(ANSIBLE_TEST_VENV)/bin/ansible-test sanity --local --requirements --python 3.11

$(ANSIBLE_TEST_VENV)/.installed: requirements.txt
	test -x $(ANSIBLE_TEST_VENV)/bin/python || python3 -m venv $(ANSIBLE_TEST_VENV)
	$(ANSIBLE_TEST_VENV)/bin/pip install -q ansible-core==$(ANSIBLE_CORE)
	touch $@

# Integration targets against the running local platform (`make up` first).
integration: venv
	cd $(COLLECTION) && PATH=$(abspath $(BIN)):$$PATH ansible-test integration --local --python 3.11

# A Kubernetes control plane on 127.0.0.1 to try things by hand (tests/k8s starts its own):
# built from the Go module proxy into ~/.cache/fraudstream on first use. `make k8s-up` prints the
# kubeconfig; tests/k8s/controlplane/cluster.sh env prints KUBECONFIG and PATH for a shell.
k8s-up:
	tests/k8s/controlplane/cluster.sh up

k8s-down:
	tests/k8s/controlplane/cluster.sh down

clean: down
	rm -rf $(VENV)
