#!/usr/bin/env bash
# Builds the Pulumi CLI, the Python language host and the Kubernetes provider from their Go modules
# (declared in tools/*/go.mod): the CLI and language host into .tools/bin, the provider into .tools/plugins
# (scripts/setup.sh installs it into PULUMI_HOME: a provider found on PATH makes every run warn). Idempotent: a binary is rebuilt only when its module
# files, version or this script change.
#
#   tools/build.sh            build what is missing or stale
#   FORCE=1 tools/build.sh    rebuild everything
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.tools/bin"
PLUGINS="$ROOT/.tools/plugins"
STAMPS="$ROOT/.tools/stamps"
mkdir -p "$BIN" "$PLUGINS" "$STAMPS"

# Versions built. The Python SDK pins in requirements.txt must not be newer than PULUMI_VERSION,
# and pulumi-kubernetes there must equal K8S_PROVIDER_VERSION.
PULUMI_VERSION=v3.259.0
LANGHOST_VERSION=v3.163.0
K8S_PROVIDER_VERSION=4.25.0
# The workflow linter the tests run on .github/workflows (tools/actionlint/go.mod).
ACTIONLINT_VERSION=v1.7.12
# The LWS releases whose charts stacks install from a local path (render mode, the local cluster), each from
# the module sigs.k8s.io/lws at that tag (tools/lws/<release>/go.mod). v0.10.0 is missing: the module proxy
# refuses its zip, so a 0.10.0 stack installs the published OCI chart.
LWS_CHARTS="0.6.1 0.7.0 0.8.0 0.9.0"

export CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=readonly"
# The pseudo-versioned modules (language host, provider) are not in the checksum database the proxy
# serves; go.sum, committed, pins their hashes instead.
export GONOSUMDB="${GONOSUMDB:-github.com/pulumi}"

log() { printf '[tools] %s\n' "$*" >&2; }

# stamp_of DIR VERSION: a digest of everything that decides what a build produces.
stamp_of() {
	cat "$ROOT/tools/$1/go.mod" "$ROOT/tools/$1/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
	echo "$2"
}

# fresh NAME DIR VERSION: true when .tools/bin/NAME (or .tools/plugins/NAME) was built from the same inputs.
fresh() {
	[[ -z "${FORCE:-}" && ( -x "$BIN/$1" || -x "$PLUGINS/$1" ) && -f "$STAMPS/$1" ]] && [[ "$(cat "$STAMPS/$1")" == "$(stamp_of "$2" "$3")" ]]
}

mark() { stamp_of "$2" "$3" >"$STAMPS/$1"; }

# module_dir TOOL MODULE: where the module cache holds MODULE (downloading it first on a cold cache).
module_dir() {
	(cd "$ROOT/tools/$1" && go mod download "$2")
	go list -C "$ROOT/tools/$1" -m -f '{{.Dir}}' "$2"
}

build_pulumi() {
	fresh pulumi pulumi "$PULUMI_VERSION" && return
	log "building pulumi $PULUMI_VERSION"
	go build -C "$ROOT/tools/pulumi" -o "$BIN/pulumi" \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
		github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	mark pulumi pulumi "$PULUMI_VERSION"
}

build_language_host() {
	fresh pulumi-language-python pulumi-language-python "$LANGHOST_VERSION" && return
	log "building pulumi-language-python $LANGHOST_VERSION"
	local dir=pulumi-language-python
	go build -C "$ROOT/tools/$dir" -o "$BIN/pulumi-language-python" \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_VERSION" \
		github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
	# The host refuses to start without its executor script beside it; the script ships in the
	# sdk module of the same release.
	local sdk
	sdk=$(module_dir "$dir" github.com/pulumi/pulumi/sdk/v3)
	install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$BIN/"
	mark pulumi-language-python "$dir" "$LANGHOST_VERSION"
}

build_k8s_provider() {
	fresh pulumi-resource-kubernetes k8s-provider "$K8S_PROVIDER_VERSION" && return
	log "building pulumi-resource-kubernetes $K8S_PROVIDER_VERSION"
	local dir=k8s-provider cmd="$ROOT/tools/k8s-provider/cmd/pulumi-resource-kubernetes" upstream
	upstream=$(module_dir "$dir" github.com/pulumi/pulumi-kubernetes/provider/v4)/cmd/pulumi-resource-kubernetes
	# What upstream's `go generate` does: the schema with its version set, and the mapping as is.
	python3 - "$upstream/schema.json" "$cmd/schema-embed.json" "$K8S_PROVIDER_VERSION" <<'PY'
import json, sys
source, target, version = sys.argv[1:]
with open(source) as f:
    schema = json.load(f)
schema["version"] = version
with open(target, "w") as f:
    json.dump(schema, f)
PY
	cp "$upstream/terraform-mapping.json" "$cmd/terraform-mapping-embed.json"
	rm -f "$BIN/pulumi-resource-kubernetes"  # where earlier versions of this script put it
	go build -C "$ROOT/tools/$dir" -o "$PLUGINS/pulumi-resource-kubernetes" \
		-ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$K8S_PROVIDER_VERSION" \
		./cmd/pulumi-resource-kubernetes
	mark pulumi-resource-kubernetes "$dir" "$K8S_PROVIDER_VERSION"
}

build_actionlint() {
	fresh actionlint actionlint "$ACTIONLINT_VERSION" && return
	log "building actionlint $ACTIONLINT_VERSION"
	go build -C "$ROOT/tools/actionlint" -o "$BIN/actionlint" \
		-ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
		github.com/rhysd/actionlint/cmd/actionlint
	mark actionlint actionlint "$ACTIONLINT_VERSION"
}

prepare_lws_chart() {
	# The chart ships in the LWS module; its Chart.yaml carries placeholder versions (0.1.0, and an appVersion
	# that lags in v0.6.1) that the release process replaces, so set both as the published OCI chart has them.
	local release=$1 target="$ROOT/.tools/charts/lws-$1" source
	[[ -z "${FORCE:-}" && -f "$target/Chart.yaml" ]] && grep -qx "appVersion: \"v$release\"" "$target/Chart.yaml" && return
	log "preparing the LWS $release chart"
	source=$(module_dir "lws/$release" sigs.k8s.io/lws)/charts/lws
	rm -rf "$target" && mkdir -p "$(dirname "$target")"
	cp -R "$source" "$target" && chmod -R u+w "$target"
	sed -i -e "s/^version: .*/version: $release/" -e "s/^appVersion: .*/appVersion: \"v$release\"/" "$target/Chart.yaml"
}

use_ambient_pulumi() {
	# Users with the official install keep their CLI (it bundles the Python language host) when it is
	# at least PULUMI_VERSION.
	local ambient version
	ambient=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$BIN" | paste -sd:) command -v pulumi) || return 1
	version=$("$ambient" version 2>/dev/null) || return 1
	[[ "$(printf '%s\n%s\n' "${PULUMI_VERSION#v}" "${version#v}" | sort -V | head -n1)" == "${PULUMI_VERSION#v}" ]] || return 1
	[[ -x "$(dirname "$ambient")/pulumi-language-python" ]] || return 1
	log "using $ambient ($version)"
	ln -sf "$ambient" "$BIN/pulumi"
	ln -sf "$(dirname "$ambient")/pulumi-language-python" "$BIN/pulumi-language-python"
	ln -sf "$(dirname "$ambient")/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
}

main() {
	command -v go >/dev/null || { log "Go is required to build the Pulumi tools (none on PATH)"; exit 1; }
	if [[ -n "${FORCE:-}" ]] || ! use_ambient_pulumi; then
		[[ -L "$BIN/pulumi" ]] && rm -f "$BIN/pulumi" "$BIN/pulumi-language-python" "$BIN/pulumi-language-python-exec"
		build_pulumi
		build_language_host
	fi
	# scripts/setup.sh skips the build when the official CLI could install the provider itself.
	[[ -n "${SKIP_K8S_PROVIDER:-}" ]] || build_k8s_provider
	build_actionlint
	local release
	for release in $LWS_CHARTS; do prepare_lws_chart "$release"; done
}

main "$@"
