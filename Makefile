# Every target runs in the offline Pulumi environment of this checkout (scripts/env.sh).
SHELL := /bin/bash
STACK ?= dev
ENV := source scripts/env.sh &&

.PHONY: setup up preview destroy test lint policy-check pr-check bench

setup:  ## the virtualenv and the Pulumi CLI, language host and Kubernetes provider (idempotent)
	scripts/setup.sh

up: setup  ## `pulumi up` of a stack (default: dev, which renders YAML into rendered/dev)
	$(ENV) pulumi stack select --create $(STACK) && pulumi up --yes --skip-preview --stack $(STACK)

preview: setup
	$(ENV) pulumi stack select --create $(STACK) && pulumi preview --stack $(STACK)

policy-check: setup  ## what a pull request sees: preview with the policy pack and this stack's policy config
	$(ENV) pulumi stack select --create $(STACK) && pulumi preview --stack $(STACK) \
		--policy-pack policies --policy-pack-config policies/config/$(STACK).json

pr-check: setup  ## what a pull request runs: the tests, then every stack's preview with the policy pack
	scripts/pr-check.sh

destroy: setup
	$(ENV) pulumi destroy --yes --stack $(STACK)

lint: setup
	$(ENV) ruff check . && ruff format --check . && mypy

test: setup  ## lint, type-check and every test, the real Pulumi engine included
	$(ENV) ruff check . && ruff format --check . && mypy && pytest

bench: setup
	$(ENV) for script in benchmarks/*.py; do python "$$script" || exit 1; done
