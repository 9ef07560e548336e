#!/usr/bin/env bash
# The add-ons of the stack's operations objects on the local cluster of scripts/cluster.sh: the CRDs of KEDA,
# the Prometheus operator, Gateway API and the Gateway API Inference Extension (so the API server validates
# every ScaledObject, PodMonitor, ServiceMonitor, InferencePool and HTTPRoute the stack renders), and the real
# KEDA operator as a local process, like the LWS controller, scaling LeaderWorkerSets through their scale
# subresource. Built by tools/build-addons.sh from tools/addons/go.mod.
#
#   scripts/addons.sh up       build what is missing, install the CRDs, start the KEDA operator; wait until ready
#   scripts/addons.sh crds     only the CRDs
#   scripts/addons.sh down     stop the KEDA operator (the CRDs go with the cluster: scripts/cluster.sh down)
#   scripts/addons.sh status
#
# Environment: KEDA_NAMESPACE=keda (where the operator keeps its cluster objects), KEDA_GRPC_PORT=9666 and
# KEDA_HEALTH_PORT=9667 (127.0.0.1; the operator's metrics service and health probes).
# Run it like scripts/cluster.sh, under `flock /tmp/lws-e2e.lock` when tests share the machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.tools/bin"
CRDS="$ROOT/.tools/addons/crds"
STATE="$ROOT/.tools/cluster"
KUBECONFIG_PATH="$STATE/kubeconfig"
RUN="$STATE/keda"
NAMESPACE=${KEDA_NAMESPACE:-keda}
GRPC_PORT=${KEDA_GRPC_PORT:-9666}
HEALTH_PORT=${KEDA_HEALTH_PORT:-9667}
export KUBECACHEDIR="${KUBECACHEDIR:-$STATE/kubectl-cache}"

log() { printf '[addons] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
kubectl() { command "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
# shellcheck source=scripts/supervised.sh
source "$ROOT/scripts/supervised.sh"

wait_for() {
	local deadline=$((SECONDS + $2))
	until eval "$3" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after $2s waiting for $1"
		sleep 0.5
	done
}

install_crds() {
	[[ -f "$KUBECONFIG_PATH" ]] || die "no local cluster: run scripts/cluster.sh up first"
	local start=$SECONDS names
	# Server-side: several CRDs are larger than the last-applied annotation allows.
	kubectl apply --server-side --force-conflicts -f "$CRDS" >/dev/null
	names=$(kubectl get -f "$CRDS" -o name)
	wait_for "the add-on CRDs to be Established" 60 \
		"kubectl wait --for=condition=Established --timeout=5s $(echo "$names" | tr '\n' ' ')"
	log "$(echo "$names" | wc -l) CRDs Established in $((SECONDS - start))s"
}

# The operator's gRPC metrics service (for KEDA's metrics API server, not run here) serves TLS from --cert-dir.
ensure_certs() {
	[[ -f "$RUN/certs/tls.crt" ]] && return
	mkdir -p "$RUN/certs"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$RUN/certs/tls.key" -out "$RUN/certs/tls.crt" 2>/dev/null
	cp "$RUN/certs/tls.crt" "$RUN/certs/ca.crt"
}

start_keda() {
	[[ -x "$BIN/keda-operator" ]] || die "no $BIN/keda-operator: run tools/build-addons.sh"
	mkdir -p "$RUN"
	running "$RUN/pid" && return
	ensure_certs
	kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
	# Supervised like the LWS controller: restarted whenever it exits.
	# shellcheck disable=SC2016  # expanded by the inner shell
	KUBECONFIG="$KUBECONFIG_PATH" KEDA_CLUSTER_OBJECT_NAMESPACE="$NAMESPACE" POD_NAMESPACE="$NAMESPACE" WATCH_NAMESPACE="" \
		setsid bash -c '
		trap "kill \$child 2>/dev/null; exit 0" TERM INT
		while :; do
			"$0" --leader-elect=false --metrics-bind-address=0 --health-probe-bind-address="127.0.0.1:$2" \
				--metrics-service-bind-address="127.0.0.1:$3" --cert-dir="$1" --ca-dir="$1" --enable-cert-rotation=false \
				--enable-webhook-patching=false --enable-apiservice-patching=false --zap-log-level=info &
			child=$!
			wait $child || true
			echo "[addons] keda-operator exited; restarting in 3s" >&2
			sleep 3 & child=$!; wait $child
		done' "$BIN/keda-operator" "$RUN/certs" "$HEALTH_PORT" "$GRPC_PORT" >>"$RUN/keda-operator.log" 2>&1 </dev/null &
	echo $! >"$RUN/pid"
	wait_for "the KEDA operator to be ready (log: $RUN/keda-operator.log)" 120 \
		"curl -fsS http://127.0.0.1:$HEALTH_PORT/readyz"
}

stop_keda() { stop_supervised "$RUN/pid"; }

case "${1:-}" in
up)
	start=$SECONDS
	"$ROOT/tools/build-addons.sh"
	install_crds
	start_keda
	log "add-ons ready in $((SECONDS - start))s (KEDA operator log: $RUN/keda-operator.log)"
	;;
crds) SKIP_KEDA_OPERATOR=1 "$ROOT/tools/build-addons.sh" && install_crds ;;
down) stop_keda && log "KEDA operator stopped" ;;
status) if running "$RUN/pid"; then log "keda-operator running (supervisor pid $(cat "$RUN/pid"))"; else log "keda-operator not running"; fi ;;
*) sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
