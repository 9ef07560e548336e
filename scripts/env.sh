# shellcheck shell=bash
# Sourced by the Makefile and the tests: the offline Pulumi environment of this checkout.
# Everything Pulumi writes (plugins, credentials, local state) stays under .pulumi/.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PATH="$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH"
export PULUMI_HOME="${PULUMI_HOME:-$ROOT/.pulumi/home}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$ROOT/.pulumi/state}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_PYTHON_CMD="$ROOT/.venv/bin/python"
# The Python language host runs `python -m pip list` before every preview and up (to find plugins); without this,
# pip may first ask PyPI whether it is itself out of date.
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Local stacks use the passphrase secrets provider. The default only suits the dev stack, whose
# config holds no real secret; real stacks set their own passphrase or a KMS secrets provider.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-dev-stack-not-a-secret}"
mkdir -p "$PULUMI_HOME" "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true

# Pulumi 3.259 writes an automatic log of every command (the engine at debug level, gzipped or encrypted) into
# $PULUMI_HOME/logs: about half the CLI's CPU in a preview, and hundreds of MB per test run. The CLI has no switch
# for it, but runs without it when it cannot create that directory, so here `logs` is a symlink to /dev/null.
# LWS_PULUMI_LOGS=on (a support case, see README) turns it back on, bounded by the CLI's own rotation.
LWS_LOGS_BOUND_MB=64
lws_prune_logs() { # keeps the newest *.log files of directory $1 within LWS_LOGS_BOUND_MB
	local total=0 size file
	while read -r size file; do
		total=$((total + size))
		if ((total > LWS_LOGS_BOUND_MB * 1024 * 1024)); then rm -f "$file"; fi
	done < <(find "$1" -maxdepth 1 -name '*.log' -printf '%T@ %s %p\n' 2>/dev/null | sort -rn | cut -d' ' -f2-)
}
if [[ ${LWS_PULUMI_LOGS:-off} == on ]]; then
	if [[ -L "$PULUMI_HOME/logs" ]]; then rm -f "$PULUMI_HOME/logs"; fi
	export PULUMI_LOG_ROTATION_MAX_TOTAL_MB="${PULUMI_LOG_ROTATION_MAX_TOTAL_MB:-$LWS_LOGS_BOUND_MB}"
	export PULUMI_LOG_ROTATION_MAX_AGE_DAYS="${PULUMI_LOG_ROTATION_MAX_AGE_DAYS:-3}"
elif [[ ! -L "$PULUMI_HOME/logs" ]]; then
	# Logs written before (an older checkout, a support case) are kept aside, within the bound.
	if [[ -d "$PULUMI_HOME/logs" ]]; then
		rm -rf "$PULUMI_HOME/logs.off" && mv "$PULUMI_HOME/logs" "$PULUMI_HOME/logs.off"
		lws_prune_logs "$PULUMI_HOME/logs.off"
	fi
	ln -sfn /dev/null "$PULUMI_HOME/logs" 2>/dev/null || true
fi

# lws_ensure_stack STACK: creates the stack on first use. A stack already in the file backend needs no CLI call
# (`pulumi stack select` alone costs a fifth of a second); previews name their stack with --stack, so the
# workspace's selected stack stays as it was. Other backends, and a stack not found, go through the CLI.
lws_ensure_stack() {
	local state=${PULUMI_BACKEND_URL#file://} project
	project=$(sed -n 's/^name: *//p' Pulumi.yaml 2>/dev/null)
	if [[ $PULUMI_BACKEND_URL == file://* && -n $project ]]; then
		local stacks="$state/.pulumi/stacks/$project/$1"
		if [[ -f "$stacks.json" || -f "$stacks.json.gz" ]]; then return 0; fi
	fi
	pulumi stack select --create "$1" >/dev/null
}
