#!/usr/bin/env bash
# The cluster add-ons the stack's operations objects need, from their Go modules at pinned releases
# (tools/addons/go.mod, never vendored), for the local cluster (scripts/addons.sh):
#   CRDs       .tools/addons/crds/*.yaml   KEDA (ScaledObject & co.), the Prometheus operator (PodMonitor,
#                                          ServiceMonitor), Gateway API (Gateway, HTTPRoute) and the Gateway API
#                                          Inference Extension (InferencePool, InferenceObjective), copied out of
#                                          the modules as tools/build.sh copies the LWS chart
#   keda-operator  .tools/bin              built from github.com/kedacore/keda/v2/cmd/operator (tools/addons/keda)
# Idempotent: the CRDs are copied again and the operator rebuilt only when the module files, the versions or this
# script change. The operator's cold build is the long part (minutes on 2 cores); SKIP_KEDA_OPERATOR=1 leaves it.
#
#   tools/build-addons.sh              build what is missing or stale
#   FORCE=1 tools/build-addons.sh      everything again
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.tools/bin"
CRDS="$ROOT/.tools/addons/crds"
STAMPS="$ROOT/.tools/stamps"
mkdir -p "$BIN" "$STAMPS"

# Each must equal what tools/addons/go.mod (and, for KEDA, tools/addons/keda/go.mod) requires.
KEDA_VERSION=v2.21.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
GATEWAY_API_VERSION=v1.3.0
INFERENCE_EXTENSION_VERSION=v1.0.1

export CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=readonly -p=${GO_BUILD_P:-2}"

log() { printf '[addons] %s\n' "$*" >&2; }

stamp_of() {
	cat "$ROOT/tools/$1/go.mod" "$ROOT/tools/$1/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
	echo "$2"
}

fresh() { [[ -z "${FORCE:-}" && -e "$3" && -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$(stamp_of "$2" "$4")" ]]; }

# module_dir MODULE: where the module cache holds MODULE (downloading it first on a cold cache).
module_dir() {
	(cd "$ROOT/tools/addons" && go mod download "$1")
	go list -C "$ROOT/tools/addons" -m -f '{{.Dir}}' "$1"
}

# The CRDs, by module and path inside it: only what the stack renders or the KEDA operator watches.
copy_crds() {
	local versions="$KEDA_VERSION $PROMETHEUS_OPERATOR_VERSION $GATEWAY_API_VERSION $INFERENCE_EXTENSION_VERSION"
	fresh addons-crds addons "$CRDS" "$versions" && return
	log "copying CRDs: KEDA $KEDA_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION, Gateway API $GATEWAY_API_VERSION, inference extension $INFERENCE_EXTENSION_VERSION"
	local keda prom gateway inference file
	keda=$(module_dir github.com/kedacore/keda/v2)/config/crd/bases
	prom=$(module_dir github.com/prometheus-operator/prometheus-operator)/example/prometheus-operator-crd
	gateway=$(module_dir sigs.k8s.io/gateway-api)/config/crd/standard
	inference=$(module_dir sigs.k8s.io/gateway-api-inference-extension)/config/crd/bases
	rm -rf "$CRDS" && mkdir -p "$CRDS"
	for file in \
		"$keda"/keda.sh_scaledobjects.yaml "$keda"/keda.sh_scaledjobs.yaml \
		"$keda"/keda.sh_triggerauthentications.yaml "$keda"/keda.sh_clustertriggerauthentications.yaml \
		"$keda"/eventing.keda.sh_cloudeventsources.yaml "$keda"/eventing.keda.sh_clustercloudeventsources.yaml \
		"$prom"/monitoring.coreos.com_podmonitors.yaml "$prom"/monitoring.coreos.com_servicemonitors.yaml \
		"$gateway"/gateway.networking.k8s.io_gatewayclasses.yaml "$gateway"/gateway.networking.k8s.io_gateways.yaml \
		"$gateway"/gateway.networking.k8s.io_httproutes.yaml \
		"$inference"/inference.networking.k8s.io_inferencepools.yaml \
		"$inference"/inference.networking.x-k8s.io_inferenceobjectives.yaml; do
		install -m 0644 "$file" "$CRDS/"
	done
	stamp_of addons "$versions" >"$STAMPS/addons-crds"
}

build_keda_operator() {
	[[ -n "${SKIP_KEDA_OPERATOR:-}" ]] && return
	fresh keda-operator addons/keda "$BIN/keda-operator" "$KEDA_VERSION" && return
	log "building keda-operator $KEDA_VERSION (tools/addons/keda)"
	local start=$SECONDS
	go build -C "$ROOT/tools/addons/keda" -o "$BIN/keda-operator" \
		-ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION" \
		github.com/kedacore/keda/v2/cmd/operator
	stamp_of addons/keda "$KEDA_VERSION" >"$STAMPS/keda-operator"
	log "built keda-operator in $((SECONDS - start))s"
}

main() {
	command -v go >/dev/null || { log "Go is required to build the add-ons (none on PATH)"; exit 1; }
	copy_crds
	build_keda_operator
}

main "$@"
