# Every target runs in the offline Pulumi environment of this checkout (scripts/env.sh).
SHELL := /bin/bash
STACK ?= dev
ENV := source scripts/env.sh &&

.PHONY: setup up preview destroy test lint policy-check pr-check bench cluster-tools cluster-up cluster-down e2e engines check-commands

setup:  ## the virtualenv and the Pulumi CLI, language host and Kubernetes provider (idempotent)
	scripts/setup.sh

up: setup  ## `pulumi up` of a stack (default: dev, which renders YAML into rendered/dev)
	$(ENV) pulumi stack select --create $(STACK) && pulumi up --yes --skip-preview --stack $(STACK)

preview: setup
	$(ENV) lws_ensure_stack $(STACK) && pulumi preview --stack $(STACK)

policy-check: setup policies/config/$(STACK).json  ## what a pull request sees: the stack's preview with the pack and the policy config of its stack file
	$(ENV) lws_ensure_stack $(STACK) && pulumi preview --stack $(STACK) \
		--policy-pack policies --policy-pack-config policies/config/$(STACK).json

# A stack's policy config is generated from its stack file (scripts/policy_config.py), again only when the stack
# file or the code that generates it changed: a Python start and the config model cost half a second.
.SECONDEXPANSION:
POLICY_CONFIG_CODE = scripts/policy_config.py $(wildcard config/*.py kernel/*.py) policies/lws_guard/settings.py
policies/config/%.json: $$(wildcard Pulumi.$$*.yaml examples/Pulumi.$$*.yaml) $(POLICY_CONFIG_CODE) | setup
	$(ENV) python -m scripts.policy_config $*

pr-check: setup  ## what a pull request runs: the tests, then every stack's preview with the policy pack
	scripts/pr-check.sh

cluster-up: setup cluster-tools  ## the local cluster (fake GPU nodes, the real LWS controller) for STACK=local
	LWS=controller scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

e2e: setup cluster-tools  ## only the end-to-end tests of the local stack on the local cluster
	$(ENV) pytest -m e2e tests/e2e

destroy: setup
	$(ENV) pulumi destroy --yes --stack $(STACK)

lint: setup
	$(ENV) ruff check . && ruff format --check . && mypy

cluster-tools:  ## etcd, kube-apiserver & co., kwok and the LWS controller for the local cluster (idempotent)
	tools/build-cluster.sh

# Workers of `make test` (pytest-xdist; 0: none, in this process). A module goes to one worker whole; the cluster
# tests share one worker, and the engine-parser tests another (tests/conftest.py).
TEST_WORKERS ?= 3

test: setup cluster-tools engines  ## lint, type-check and every test: the real Pulumi engine and the local cluster included
	$(ENV) ruff check . && ruff format --check . && mypy && pytest -n $(TEST_WORKERS) --dist loadgroup

engines:  ## the engines' own parsers: a virtualenv per release in tools/engines (idempotent; minutes and GBs once)
	scripts/engines.sh all

check-commands: setup  ## a stack's generated commands parsed by its engines' own parsers (STACK=...)
	scripts/check-commands.sh $(STACK)

bench: setup
	$(ENV) for script in benchmarks/*.py; do python "$$script" || exit 1; done
