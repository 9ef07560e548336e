#!/usr/bin/env bash
# What a pull request runs (.github/workflows/pull-request.yml), as one local command: the tests, then for
# every environment stack its generated policy config, its manifests as plain YAML, and a preview with the
# policy pack and that stack's policy config. Stacks are previewed against the backend you are logged in to;
# a stale policy config and mandatory policy violations fail the check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh

make --no-print-directory test
failed=()
for stack in $(scripts/stacks.sh); do
	if ! python -m scripts.policy_config --check "$stack" || ! PYTHONPATH=policies python -m lws_guard check --stack "$stack"; then
		failed+=("$stack")
		continue
	fi
	echo "== make check-commands STACK=$stack" >&2
	scripts/check-commands.sh "$stack" || failed+=("$stack")
	echo "== pulumi preview --stack $stack with the policy pack" >&2
	lws_ensure_stack "$stack"
	pulumi preview --stack "$stack" --non-interactive \
		--policy-pack policies --policy-pack-config "policies/config/$stack.json" || failed+=("$stack")
done
if ((${#failed[@]})); then
	echo "policy check failed for: ${failed[*]}" >&2
	exit 1
fi
