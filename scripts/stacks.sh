#!/usr/bin/env bash
# The environment stacks of this repository: one Pulumi.<stack>.yaml each, and each with its policy config
# policies/config/<stack>.json. Prints the names one a line, or as a JSON list with --json (a CI matrix).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stacks=()
for file in Pulumi.*.yaml; do
	stack=${file#Pulumi.}
	stack=${stack%.yaml}
	# The local cluster (scripts/cluster.sh) exists only on a developer's machine, never in CI.
	[[ "$stack" == local ]] && continue
	if [[ ! -f "policies/config/$stack.json" ]]; then
		echo "stack $stack has no policy config: generate policies/config/$stack.json with \`python -m scripts.policy_config $stack\` (README, Adding a cluster)" >&2
		exit 1
	fi
	stacks+=("$stack")
done

if [[ "${1:-}" == "--json" ]]; then
	printf '%s\n' "${stacks[@]}" | python3 -c 'import json, sys; print(json.dumps(sys.stdin.read().split()))'
else
	printf '%s\n' "${stacks[@]}"
fi
