#!/usr/bin/env bash
# Builds a local Kubernetes control plane and the LWS controller from their Go modules (declared in
# tools/{kube,etcd,kwok,lws}/go.mod) into .tools/bin, for scripts/cluster.sh:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl   tools/kube  (k8s.io/kubernetes)
#   etcd                                                               tools/etcd  (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                      tools/kwok  (sigs.k8s.io/kwok)
#   lws-manager-<release>                                              tools/lws/<release> (sigs.k8s.io/lws/cmd)
# Idempotent like tools/build.sh: a binary is rebuilt only when its module files, version or this
# script change. A cold build takes long (kube-apiserver and friends: tens of minutes on 2 cores).
#
#   tools/build-cluster.sh              build what is missing or stale
#   FORCE=1 tools/build-cluster.sh      rebuild everything
#   GO_BUILD_P=4 tools/build-cluster.sh more parallel compiles (default 2: peak memory stays ~3-5 GB)
#   LWS_CONTROLLERS="0.6.1 0.7.0 0.8.0 0.9.0" tools/build-cluster.sh   LWS controller releases to build
#                                       (default: those the e2e tests run, 0.6.1 and 0.9.0)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/.tools/bin"
STAMPS="$ROOT/.tools/stamps"
mkdir -p "$BIN" "$STAMPS"

# Versions built; each must equal the version its tools/<dir>/go.mod requires. kubernetes 1.33 pairs
# with etcd 3.5 and with kwok 0.7's client libraries (v0.33.0); the LWS controllers of 0.6.1 to 0.9.0 use
# client libraries v0.32 to v0.36 against it. sigs.k8s.io/lws v0.10.0 cannot be built: the module proxy
# serves its go.mod but refuses its zip.
KUBE_VERSION=v1.33.13
ETCD_VERSION=v3.5.21
KWOK_VERSION=v0.7.0
# One directory per release under tools/lws/ (go.mod requiring sigs.k8s.io/lws at that tag).
LWS_CONTROLLERS=${LWS_CONTROLLERS:-0.6.1 0.9.0}

export CGO_ENABLED=0
export GOFLAGS="-trimpath -mod=readonly -p=${GO_BUILD_P:-2}"
export GONOSUMDB="${GONOSUMDB:-github.com/pulumi}"

log() { printf '[cluster-tools] %s\n' "$*" >&2; }

# stamp_of DIR VERSION: a digest of everything that decides what a build produces.
stamp_of() {
	cat "$ROOT/tools/$1/go.mod" "$ROOT/tools/$1/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16
	echo "$2"
}

# fresh DIR VERSION NAME...: true when every .tools/bin/NAME was built from the same inputs.
fresh() {
	local dir=$1 version=$2 name
	shift 2
	[[ -z "${FORCE:-}" ]] || return 1
	for name; do
		[[ -x "$BIN/$name" && -f "$STAMPS/$name" && "$(cat "$STAMPS/$name")" == "$(stamp_of "$dir" "$version")" ]] || return 1
	done
}

mark() {
	local dir=$1 version=$2 name
	shift 2
	for name; do stamp_of "$dir" "$version" >"$STAMPS/$name"; done
}

# build DIR VERSION LDFLAGS PACKAGE=NAME...: one `go build` per package (they share the build cache),
# timed per module.
build() {
	local dir=$1 version=$2 ldflags=$3 start pair names=()
	shift 3
	for pair; do names+=("${pair#*=}"); done
	fresh "$dir" "$version" "${names[@]}" && return
	log "building ${names[*]} $version (tools/$dir)"
	start=$SECONDS
	for pair; do
		go build -C "$ROOT/tools/$dir" -o "$BIN/${pair#*=}" -ldflags "$ldflags" "${pair%%=*}"
	done
	mark "$dir" "$version" "${names[@]}"
	log "built ${names[*]} in $((SECONDS - start))s"
}

kube_ldflags() {
	# What hack/lib/version.sh stamps. Without it /version reports v0.0.0-master: kwokctl picks
	# component flags from `<binary> --version` and pulumi-kubernetes rejects the cluster version.
	local v=${KUBE_VERSION#v} flags="-s -w" pkg
	local major=${v%%.*} minor=${v#*.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000"
		flags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

main() {
	command -v go >/dev/null || { log "Go is required to build the cluster tools (none on PATH)"; exit 1; }
	local total=$SECONDS
	build etcd "$ETCD_VERSION" "-s -w" \
		go.etcd.io/etcd/server/v3=etcd
	build kwok "$KWOK_VERSION" \
		"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
		sigs.k8s.io/kwok/cmd/kwok=kwok sigs.k8s.io/kwok/cmd/kwokctl=kwokctl
	local release
	for release in $LWS_CONTROLLERS; do
		[[ -f "$ROOT/tools/lws/$release/go.mod" ]] || { log "no tools/lws/$release/go.mod (LWS_CONTROLLERS=$LWS_CONTROLLERS)"; exit 1; }
		build "lws/$release" "v$release" "-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=v$release" \
			sigs.k8s.io/lws/cmd="lws-manager-$release"
	done
	build kube "$KUBE_VERSION" "$(kube_ldflags)" \
		k8s.io/kubernetes/cmd/kubectl=kubectl \
		k8s.io/kubernetes/cmd/kube-scheduler=kube-scheduler \
		k8s.io/kubernetes/cmd/kube-controller-manager=kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-apiserver=kube-apiserver
	log "cluster tools ready in $((SECONDS - total))s"
}

main "$@"
