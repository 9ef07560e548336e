"""The local cluster: `pulumi up` of the local stack until every group is Ready, against the floor for the same
objects, `kubectl apply --server-side` plus `kubectl wait` for the same condition; also how long the cluster tools
take to build when nothing changed and how long a fresh cluster takes to start.

Run: python benchmarks/local_cluster.py [--rounds N] [--sources DIR]. Prints figures only. It takes
/tmp/lws-e2e.lock itself (flock(2), as `flock /tmp/lws-e2e.lock` would: one local cluster per machine), stops any
local cluster first and leaves none. Paired: each round runs `pulumi up` then kubectl, each on a fresh cluster;
medians of the rounds. The objects for kubectl are what the program renders for the same stack (target.renderDir).
`pulumi up` runs the program of --sources (another checkout, for a before/after comparison) in the environment of
scripts/env.sh; LWS_PULUMI_LOGS=on lets the CLI write its automatic log. When `up` returns, every pod of every group
is checked Ready, as the README promises. The cold build of the cluster tools is not timed (see README, Toolchain).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from harness.measure import Run, paired  # noqa: E402
from harness.scratch import Project, scratch_project  # noqa: E402

KUBECTL = [str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(ROOT / ".tools" / "cluster" / "kubeconfig")]
CLUSTER = str(ROOT / "scripts" / "cluster.sh")
NAMESPACE = "inference"
LOCK = Path("/tmp/lws-e2e.lock")
# lws-manager-0.9.0: the controller of scripts/cluster.sh's default LWS_VERSION.
CLUSTER_TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kwokctl",
                 "lws-manager-0.9.0")  # fmt: skip


@contextmanager
def local_cluster_lock() -> Iterator[None]:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout's TERM still takes the cluster down
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            subprocess.run([CLUSTER, "down"], check=False, capture_output=True)


def timed(*command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def fresh_cluster() -> float:
    subprocess.run([CLUSTER, "down"], check=True, capture_output=True)
    return timed("env", "LWS=controller", CLUSTER, "up")


def local_stack(target: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    config.pop("encryptionsalt", None)
    if target is not None:
        config["config"]["lws-inference:target"] = target
    return config


def kubectl_json(*args: str) -> Any:
    return json.loads(subprocess.run([*KUBECTL, *args, "-o", "json"], check=True, capture_output=True).stdout)


def unready_pods() -> list[str]:
    """Pods of the groups that are not Ready, and groups whose ready replicas fall short."""
    missing = []
    for lws in kubectl_json("get", "leaderworkersets", "-n", NAMESPACE)["items"]:
        if lws.get("status", {}).get("readyReplicas", 0) != lws["spec"]["replicas"]:
            missing.append(f"LeaderWorkerSet {lws['metadata']['name']}: readyReplicas {lws.get('status')}")
    for pod in kubectl_json("get", "pods", "-n", NAMESPACE)["items"]:
        conditions = pod.get("status", {}).get("conditions") or []
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            missing.append(f"pod {pod['metadata']['name']}")
    return missing


def pulumi_up(work: Path, sources: Path) -> Run:
    fresh_cluster()
    path = Path(tempfile.mkdtemp(dir=work, prefix="up-"))
    project = scratch_project(path, local_stack(), sources)
    run = project.measure("up", "--yes", "--skip-preview")
    if unready := unready_pods():
        print(f"  pulumi up returned before every pod was Ready: {', '.join(unready)}")
    return run


def until_ok(command: list[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while subprocess.run(command, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            subprocess.run(command, check=True)
        time.sleep(0.5)


def rendered(work: Path) -> Project:
    (work / "render").mkdir()
    project = scratch_project(work / "render", local_stack({"renderDir": "rendered"}))
    project.pulumi("up", "--yes", "--skip-preview")
    return project


def kubectl_apply_and_wait(project: Project) -> Run:
    """The same objects and the same condition (every group Available with all its replicas ready), by hand."""
    fresh_cluster()
    crds, manifests = project.rendered / "0-crd", project.rendered / "1-manifest"
    groups = [obj for obj in project.manifests() if obj["kind"] == "LeaderWorkerSet"]
    start = time.perf_counter()
    subprocess.run([*KUBECTL, "apply", "--server-side", "-f", str(crds)], check=True, capture_output=True)
    # Retried, as a person would: the CRD must be served and the controller's webhooks up (the controller
    # starts once the CRD exists) before LeaderWorkerSets are accepted.
    until_ok([*KUBECTL, "apply", "--server-side", "-f", str(manifests)])
    for group in groups:
        name, replicas = group["metadata"]["name"], group["spec"]["replicas"]
        for condition in ("condition=Available", f"jsonpath={{.status.readyReplicas}}={replicas}"):
            subprocess.run([*KUBECTL, "wait", f"--for={condition}", "leaderworkerset", name, "-n", NAMESPACE,
                            "--timeout=300s"], check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - start
    return Run(seconds, 0.0, 0.0, 0, 0, "", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sources", type=Path, default=ROOT, help="checkout whose program `pulumi up` runs")
    args = parser.parse_args()
    missing = [name for name in CLUSTER_TOOLS if not (ROOT / ".tools" / "bin" / name).exists()]
    if missing:  # building them is tools/build-cluster.sh's job (make cluster-tools), not a benchmark's
        print(f"skipped: the cluster tools are not built ({', '.join(missing)}); run `make cluster-tools`")
        return
    with local_cluster_lock(), tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        work = Path(tmp)
        build = timed(str(ROOT / "tools" / "build-cluster.sh"))
        print(f"tools/build-cluster.sh with nothing to build: {build:.2f} s")
        print(f"fresh cluster (control plane, 4 GPU nodes Ready, LWS controller): {fresh_cluster():.1f} s")
        render = rendered(work)
        results = paired(
            {"pulumi up": lambda: pulumi_up(work, args.sources), "kubectl": lambda: kubectl_apply_and_wait(render)},
            args.rounds,
        )
    up, floor = results["pulumi up"], results["kubectl"]
    print(f"to every LeaderWorkerSet Ready (program of {args.sources}; fresh cluster each; medians of {args.rounds})")
    print(
        f"  pulumi up (chart, volume, 2 groups, awaited)   {up.seconds:6.1f} s  {up.seconds / floor.seconds:5.2f}x  "
        f"CLI {up.own_cpu_share:4.0%} of CPU  log {up.log_bytes / 1e6:6.2f} MB"
    )
    print(f"  kubectl apply --server-side + kubectl wait      {floor.seconds:6.1f} s  (target: pulumi up <= 2x)")


if __name__ == "__main__":
    main()
