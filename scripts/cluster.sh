#!/usr/bin/env bash
# A local Kubernetes cluster without Docker: kwokctl --runtime=binary runs etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok as local processes (binaries from
# tools/build-cluster.sh), kwok fakes GPU nodes and marks pods Running, and the real LWS controller runs
# as a local process with its webhooks served on 127.0.0.1 over a self-signed certificate.
#
#   scripts/cluster.sh up           build what is missing, start the cluster, nodes and LWS; wait until ready
#   scripts/cluster.sh down         stop LWS and delete the cluster (its state goes; the webhook CA stays)
#   scripts/cluster.sh kubeconfig   print the kubeconfig path (export KUBECONFIG=$(scripts/cluster.sh kubeconfig))
#   scripts/cluster.sh status       what runs
#   scripts/cluster.sh webhooks [FILE...]
#                                   print the LWS webhook configurations (the chart's, or FILEs rendered from
#                                   it) rewritten to call the local controller: url + caBundle instead of service
#
# Environment:
#   NODES=4                fake GPU nodes (8 x NVIDIA-H100-80GB-HBM3 each)
#   LWS=full               full: CRD, URL-based webhook configurations and the controller, as a cloud add-on
#                          provides them (a stack with cluster.lws.mode managed);
#                          controller: only the controller and its certificate (a stack that installs the
#                          chart itself and rewrites the chart's webhooks to the URL); none: no LWS
#   LWS_VERSION=0.9.0      the LWS controller release (tools/lws/<release>; built by tools/build-cluster.sh)
#   LWS_WEBHOOK_PORT=9443  where the controller serves its webhooks (127.0.0.1)
#   CLUSTER_NAME=inference-lws
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.tools/bin"
STATE="$ROOT/.tools/cluster"
NAME=${CLUSTER_NAME:-inference-lws}
NODES=${NODES:-4}
LWS=${LWS:-full}
LWS_VERSION=${LWS_VERSION:-0.9.0}
WEBHOOK_PORT=${LWS_WEBHOOK_PORT:-9443}
HEALTH_PORT=$((WEBHOOK_PORT - 3))
KUBECONFIG_PATH="$STATE/kubeconfig"
KWOKCTL_CONTEXTS="$STATE/kwokctl-contexts"   # kwokctl adds/removes its context here, not in ~/.kube/config
CERTS="$STATE/lws-webhook"   # kept by `down`: a stable CA keeps caBundle values stable across clusters
LWS_RUN="$STATE/lws"

export KWOK_WORKDIR="$STATE/kwok"   # kwokctl keeps clusters, PKI, pids and logs here, not in ~/.kwok
export PATH="$BIN:$PATH"            # kwokctl runs the kubectl found on PATH
export KUBECACHEDIR="${KUBECACHEDIR:-$STATE/kubectl-cache}"   # kubectl's discovery cache, not ~/.kube/cache

GPU_PRODUCT=NVIDIA-H100-80GB-HBM3
GPU_MEMORY_MIB=81559
GPUS_PER_NODE=8

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
kubectl() { command "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

lws_dir() {
	(cd "$ROOT/tools/lws/$LWS_VERSION" && go mod download sigs.k8s.io/lws)
	go list -C "$ROOT/tools/lws/$LWS_VERSION" -m -f '{{.Dir}}' sigs.k8s.io/lws
}

# The PV binder's periodic resync at 2 s, not 15 s: its claim and volume workers race to mark a PV Bound, and
# the loser's claim ("the object has been modified") waits for the next resync, so a claim took 0.3 s or
# 10-15 s at random (kube-controller-manager 1.33 at -v=5). Real clusters keep the 15 s and the race.
write_kwokctl_config() {
	mkdir -p "$STATE"
	cat >"$STATE/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1   # etcd and the control plane listen on loopback only
  quietPull: true
  cacheDir: $STATE/cache
  etcdBinary: $BIN/etcd
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  kwokControllerBinary: $BIN/kwok
componentsPatches:
  - name: kube-controller-manager
    extraArgs:
      - key: pvclaimbinder-sync-period
        value: 2s
EOF
}

# GPU nodes as GPU feature discovery and the device plugin present them; kwok keeps the status given.
nodes_yaml() {
	local i
	for ((i = 0; i < NODES; i++)); do
		cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: gpu-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: gpu-node-$i
    node.kubernetes.io/instance-type: fake-8xh100
    nvidia.com/gpu.present: "true"
    nvidia.com/gpu.product: $GPU_PRODUCT
    nvidia.com/gpu.memory: "$GPU_MEMORY_MIB"
    nvidia.com/gpu.count: "$GPUS_PER_NODE"
status:
  capacity: &resources
    cpu: "200"
    memory: 2Ti
    ephemeral-storage: 20Ti
    pods: "110"
    nvidia.com/gpu: "$GPUS_PER_NODE"
  allocatable: *resources
EOF
	done
}

# webhooks_yaml [FILE...]: webhook configurations (default: the chart's, from the LWS module) with each
# `service:` client config replaced by a URL on 127.0.0.1 and the local CA: what a kwok cluster needs
# instead of the chart's Service-based ones.
webhooks_yaml() {
	local ca files=("$@")
	((${#files[@]})) || files=("$(lws_dir)/charts/lws/templates/webhook/webhook.yaml")
	ca=$(base64 -w0 "$CERTS/ca.crt")
	# Optional blocks of the chart ({{- if .Values.enableDisaggregatedSet }} in 0.9) are left out, as with
	# the chart's defaults.
	awk -v base="https://127.0.0.1:$WEBHOOK_PORT" -v ca="$ca" '
		/^[[:space:]]*\{\{-?[[:space:]]*if[[:space:]]/ { optional = 1; next }
		/^[[:space:]]*\{\{-?[[:space:]]*end[[:space:]]*-?\}\}/ { optional = 0; next }
		optional { next }
		/^[[:space:]]*service:[[:space:]]*$/ { indent = substr($0, 1, index($0, "s") - 1); inservice = 1; next }
		inservice && /^[[:space:]]*(name|namespace):/ { next }
		inservice && /^[[:space:]]*path:/ {
			sub(/^[[:space:]]*path:[[:space:]]*/, "")
			print indent "url: " base $0
			print indent "caBundle: " ca
			inservice = 0
			next
		}
		{ print }
	' "${files[@]}"
}

ensure_certs() {
	[[ -f "$CERTS/ca.crt" && -f "$CERTS/tls.crt" && -f "$CERTS/tls.key" ]] && return
	command -v openssl >/dev/null || die "openssl is required for the LWS webhook certificate"
	log "creating the LWS webhook CA and serving certificate in $CERTS"
	mkdir -p "$CERTS"
	local tmp
	tmp=$(mktemp -d)
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=local-lws-webhook-ca" \
		-keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tmp/ext"
	openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
		-days 3650 -extfile "$tmp/ext" -out "$tmp/tls.crt" 2>/dev/null
	install -m 0600 "$tmp/tls.key" "$CERTS/"   # the CA key is not kept: nothing else is signed
	install -m 0644 "$tmp/ca.crt" "$tmp/tls.crt" "$CERTS/"
	rm -rf "$tmp"
}

# wait_for WHAT SECONDS COMMAND: polls COMMAND (a shell string) every half second.
wait_for() {
	local deadline=$((SECONDS + $2))
	until eval "$3" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after $2s waiting for $1"
		sleep 0.5
	done
}

# Not grep -q: under pipefail, kwokctl dying of SIGPIPE would make the answer "no".
cluster_exists() { [[ -x "$BIN/kwokctl" ]] && "$BIN/kwokctl" get clusters 2>/dev/null | grep -x "$NAME" >/dev/null; }

# shellcheck source=scripts/supervised.sh
source "$ROOT/scripts/supervised.sh"

start_lws() {
	mkdir -p "$LWS_RUN"
	running "$LWS_RUN/pid" && return
	cat >"$LWS_RUN/config.yaml" <<EOF
apiVersion: config.lws.x-k8s.io/v1alpha1
kind: Configuration
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
webhook:
  host: 127.0.0.1
  port: $WEBHOOK_PORT
  certDir: $CERTS
metrics:
  bindAddress: "0"
health:
  healthProbeBindAddress: 127.0.0.1:$HEALTH_PORT
EOF
	# Supervised. The controller only starts once the LeaderWorkerSet CRD is Established (LWS=controller: when
	# a stack has installed the chart), as it exits when the CRD does not show up within its 2-minute cache
	# sync timeout; it is started again whenever it exits. Established, not merely created: a kind the API
	# server does not serve yet makes controller-runtime retry its watch only every 10 s.
	# shellcheck disable=SC2016  # expanded by the inner shell
	KUBECONFIG="$KUBECONFIG_PATH" setsid bash -c '
		trap "kill \$child 2>/dev/null; exit 0" TERM INT
		while :; do
			until [[ $("$2" get crd leaderworkersets.leaderworkerset.x-k8s.io \
				-o jsonpath="{.status.conditions[?(@.type==\"Established\")].status}" 2>/dev/null) == True ]]; do
				sleep 0.5 & child=$!; wait $child
			done
			"$0" --config "$1" --leader-elect=false &
			child=$!
			wait $child || true
			echo "[cluster] lws-manager exited; restarting in 3s" >&2
			sleep 3 & child=$!; wait $child
		done' "$BIN/lws-manager-$LWS_VERSION" "$LWS_RUN/config.yaml" "$BIN/kubectl" >>"$LWS_RUN/lws-manager.log" 2>&1 </dev/null &
	echo $! >"$LWS_RUN/pid"
}

stop_lws() { stop_supervised "$LWS_RUN/pid"; }

install_lws_resources() {
	local dir
	dir=$(lws_dir)
	# Server-side: the CRD is larger than the last-applied annotation allows.
	kubectl apply --server-side --force-conflicts -f "$dir/config/crd/bases/" >/dev/null
	# Not `kubectl wait`: it fails outright while the new CRD has no status.conditions yet.
	wait_for "the LeaderWorkerSet CRD to be Established" 60 \
		"kubectl get crd leaderworkersets.leaderworkerset.x-k8s.io -o jsonpath='{.status.conditions[?(@.type==\"Established\")].status}' | grep -qx True"
	webhooks_yaml | kubectl apply --server-side --force-conflicts -f - >/dev/null
}

# Ready when a server-side dry run of a LeaderWorkerSet comes back defaulted by the webhook (the CRD schema
# has no default for networkConfig): the API server reached the controller's mutating webhook over TLS.
wait_lws_webhook() {
	local deadline=$((SECONDS + 120)) out
	while ((SECONDS < deadline)); do
		out=$(kubectl create --dry-run=server -o jsonpath='{.spec.networkConfig.subdomainPolicy}' -f - 2>&1 <<'EOF' || true
apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: webhook-probe, namespace: default}
spec:
  leaderWorkerTemplate:
    size: 1
    workerTemplate:
      spec:
        containers: [{name: c, image: none}]
EOF
		)
		[[ "$out" == Shared ]] && return 0
		sleep 1
	done
	die "the LWS webhook is not answering: $out (log: $LWS_RUN/lws-manager.log)"
}

cmd_up() {
	local total=$SECONDS start
	[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "NODES must be a positive number"
	case "$LWS" in full | controller | none) ;; *) die "LWS must be full, controller or none" ;; esac
	[[ -d "$ROOT/tools/lws/$LWS_VERSION" ]] || die "LWS_VERSION=$LWS_VERSION: no tools/lws/$LWS_VERSION/go.mod"
	[[ "$LWS" == none ]] || case " ${LWS_CONTROLLERS:-0.6.1 0.9.0} " in *" $LWS_VERSION "*) ;; *) export LWS_CONTROLLERS="${LWS_CONTROLLERS:-0.6.1 0.9.0} $LWS_VERSION" ;; esac
	"$ROOT/tools/build-cluster.sh"
	write_kwokctl_config

	start=$SECONDS
	if cluster_exists; then
		log "starting the existing cluster $NAME"
		"$BIN/kwokctl" start cluster --name "$NAME" --wait 2m
	else
		log "creating cluster $NAME (kwokctl --runtime=binary)"
		"$BIN/kwokctl" create cluster --name "$NAME" --config "$STATE/kwokctl.yaml" --kubeconfig "$KWOKCTL_CONTEXTS" --wait 2m
	fi
	"$BIN/kwokctl" get kubeconfig --name "$NAME" >"$KUBECONFIG_PATH.tmp"
	mv "$KUBECONFIG_PATH.tmp" "$KUBECONFIG_PATH"
	log "control plane up in $((SECONDS - start))s"

	start=$SECONDS
	nodes_yaml | kubectl apply -f - >/dev/null
	wait_for "$NODES Ready GPU nodes" 120 \
		"[[ \$(kubectl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}' | grep -cx True) -ge $NODES ]]"
	log "$NODES GPU nodes Ready in $((SECONDS - start))s"

	if [[ "$LWS" != none ]]; then
		start=$SECONDS
		ensure_certs
		[[ "$LWS" == full ]] && install_lws_resources
		start_lws
		if [[ "$LWS" == full ]]; then
			wait_lws_webhook
			log "LWS $LWS_VERSION controller and webhooks ready in $((SECONDS - start))s (log: $LWS_RUN/lws-manager.log)"
		else
			log "LWS $LWS_VERSION controller started; its webhooks: https://127.0.0.1:$WEBHOOK_PORT, CA $CERTS/ca.crt"
		fi
	fi
	log "cluster $NAME ready in $((SECONDS - total))s: export KUBECONFIG=$KUBECONFIG_PATH"
}

cmd_down() {
	local start=$SECONDS
	stop_lws
	if cluster_exists; then
		"$BIN/kwokctl" delete cluster --name "$NAME" --kubeconfig "$KWOKCTL_CONTEXTS"
	fi
	rm -f "$KUBECONFIG_PATH" "$KWOKCTL_CONTEXTS"
	log "cluster $NAME down in $((SECONDS - start))s"
}

cmd_status() {
	if cluster_exists; then
		log "cluster $NAME exists; kubeconfig $KUBECONFIG_PATH"
		kubectl get nodes 2>&1 || true
	else
		log "no cluster $NAME"
	fi
	if running "$LWS_RUN/pid"; then log "lws-manager running (supervisor pid $(cat "$LWS_RUN/pid"))"; else log "lws-manager not running"; fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
kubeconfig) echo "$KUBECONFIG_PATH" ;;
status) cmd_status ;;
webhooks) shift; ensure_certs && webhooks_yaml "$@" ;;
*) sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
