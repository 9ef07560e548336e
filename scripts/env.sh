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
# Local stacks use the passphrase secrets provider. The default only suits the dev stack, whose
# config holds no real secret; real stacks set their own passphrase or a KMS secrets provider.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-dev-stack-not-a-secret}"
mkdir -p "$PULUMI_HOME" "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true
