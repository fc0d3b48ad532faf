# fraudstream: `make up` runs the pipeline on this machine, `make test` proves it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: up down test lint unit e2e venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

up: venv
	$(BIN)/ansible-playbook site.yml

down: venv
	$(BIN)/ansible-playbook teardown.yml

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ruff check .
	$(BIN)/ansible-lint

# Lint first, then every test: promtool rules, the local platform end to end.
# pytest's exit code 5 (nothing collected) is reported, not failed on, as CI requires.
test: lint
	PATH=$(abspath $(BIN)):$$PATH $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

clean: down
	rm -rf $(VENV)
