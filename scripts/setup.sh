#!/usr/bin/env bash
# One setup command: the Python virtualenv with pinned dependencies, then the Pulumi CLI, language host
# and Kubernetes provider (tools/build.sh). Idempotent: seconds when nothing changed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
	echo "[setup] creating .venv" >&2
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	echo "$wanted" >"$stamp"
fi

# The program and the pack import this checkout's packages on every preview. Where PYTHONDONTWRITEBYTECODE is set
# (as in many CI images and containers), Python compiled them from source every time: 70 ms of each policy-check.
# Bytecode written here is read all the same, and Python ignores a file's bytecode once the source is newer.
bytecode=.venv/.bytecode-stamp
packages=(components config kernel plan policies/lws_guard)
if [[ ! -f $bytecode || -n $(find "${packages[@]}" -name '*.py' -newer "$bytecode" -print -quit) ]]; then
	touch "$bytecode"
	# A file that does not compile is reported by the import that reads it, with its traceback, not here.
	.venv/bin/python -m compileall -q "${packages[@]}" >/dev/null || true
fi

source scripts/env.sh
provider_version=$(sed -n 's/^K8S_PROVIDER_VERSION=//p' tools/build.sh)
built=.tools/plugins/pulumi-resource-kubernetes
installed="$PULUMI_HOME/plugins/resource-kubernetes-v$provider_version/pulumi-resource-kubernetes"

# Where the official CLI is on PATH (an online machine, CI on GitHub), the provider comes from Pulumi's
# plugin registry; offline, or when that fails, tools/build.sh builds it from its Go module.
official=$(PATH=${PATH//"$ROOT/.tools/bin:"/} command -v pulumi || true)
if [[ ! -x "$built" && ! -x "$installed" && -n "$official" ]]; then
	timeout 300 "$official" plugin install resource kubernetes "v$provider_version" >&2 || true
fi
if [[ ! -x "$built" && -x "$installed" ]]; then
	export SKIP_K8S_PROVIDER=1
fi

tools/build.sh
# A CLI that cannot start fails here, once per build of it (the check costs a CLI start on every make target).
checked=.tools/stamps/cli-runs
if [[ ! $checked -nt .tools/bin/pulumi ]]; then
	pulumi version >/dev/null
	touch "$checked"
fi

# A provider found on PATH makes every run warn, so the built one goes into PULUMI_HOME's plugin cache,
# where the CLI looks for the version the SDK asks for.
# The install is compared by the build's stamp first (kept beside the installed binary): reading both 160 MB
# binaries on every make target cost a tenth of a second.
built_stamp=.tools/stamps/pulumi-resource-kubernetes
if [[ -x "$built" ]] && ! { [[ -f "$built_stamp" ]] && cmp -s "$built_stamp" "$installed.stamp"; }; then
	if ! cmp -s "$built" "$installed"; then
		echo "[setup] installing pulumi-resource-kubernetes $provider_version into $PULUMI_HOME" >&2
		pulumi plugin rm resource kubernetes "$provider_version" --yes >/dev/null 2>&1 || true
		pulumi plugin install resource kubernetes "v$provider_version" --file "$built"
	fi
	if [[ -f "$built_stamp" ]]; then cp "$built_stamp" "$installed.stamp"; fi
fi
