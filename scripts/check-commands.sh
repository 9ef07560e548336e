#!/usr/bin/env bash
# `make check-commands STACK=<stack>`: every command the stack's pods run (leader and each worker, after
# Kubernetes' $(LWS_*) expansion and the shell's split) parsed by the engines' own parsers for the images'
# releases. Fails with the engine's own message for a flag it does not know (a typo in extraArgs, a flag of
# another release), or when the engine would read a number other than the plan's. Outside `pulumi preview`,
# which stays fast: the first run builds the engines' environments (scripts/engines.sh, cached per machine).
# Takes a stack name (Pulumi.<stack>.yaml here or in examples/) or a stack file's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
[[ $# -eq 1 ]] || {
	echo "usage: $0 <stack or Pulumi.<stack>.yaml>" >&2
	exit 2
}
exec python -m engine_parsers.check "$1"
