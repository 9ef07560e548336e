"""The local cluster: how long its tools take to build when nothing changed, how long a fresh cluster takes to
start, and the time from `pulumi up` of the local stack to both groups Available against `kubectl apply` of the
same objects (rendered by the same program) plus `kubectl wait --for=condition=Available`.

Run: python benchmarks/local_cluster.py. Prints figures only. Stops any local cluster first and leaves none.
The cold build of the cluster tools is not timed here (it needs empty Go caches; see README, Toolchain).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "policies")]

from tests.engine.scratch import scratch_project  # noqa: E402

KUBECTL = [str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(ROOT / ".tools" / "cluster" / "kubeconfig")]


def timed(*command: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def fresh_cluster() -> float:
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "down"], check=True, capture_output=True)
    return timed("env", "LWS=controller", str(ROOT / "scripts" / "cluster.sh"), "up")


def local_stack(target: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    config.pop("encryptionsalt", None)
    if target is not None:
        config["config"]["lws-inference:target"] = target
    return config


def pulumi_up_seconds(work: Path) -> float:
    (work / "up").mkdir()
    project = scratch_project(work / "up", local_stack())
    start = time.perf_counter()
    project.pulumi("up", "--yes", "--skip-preview")
    return time.perf_counter() - start


def until_ok(command: list[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while subprocess.run(command, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            subprocess.run(command, check=True)
        time.sleep(0.5)


def kubectl_apply_seconds(work: Path) -> float:
    (work / "render").mkdir()
    rendered = scratch_project(work / "render", local_stack({"renderDir": "rendered"}))
    rendered.pulumi("up", "--yes", "--skip-preview")
    crds, manifests = rendered.path / "rendered" / "0-crd", rendered.path / "rendered" / "1-manifest"
    start = time.perf_counter()
    subprocess.run([*KUBECTL, "apply", "--server-side", "-f", str(crds)], check=True, capture_output=True)
    # Retried, as a person would: the CRD must be served and the controller's webhooks up (the controller
    # starts once the CRD exists) before LeaderWorkerSets are accepted.
    until_ok([*KUBECTL, "apply", "--server-side", "-f", str(manifests)])
    subprocess.run([*KUBECTL, "wait", "--for=condition=Available", "leaderworkerset", "--all", "-n", "inference",
                    "--timeout=300s"], check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    build = timed(str(ROOT / "tools" / "build-cluster.sh"))
    print(f"tools/build-cluster.sh with nothing to build: {build:.2f} s")
    print(f"fresh cluster (control plane, 4 GPU nodes Ready, LWS controller): {fresh_cluster():.1f} s")
    with tempfile.TemporaryDirectory() as work:
        up = pulumi_up_seconds(Path(work))
        fresh_cluster()
        apply = kubectl_apply_seconds(Path(work))
    subprocess.run([str(ROOT / "scripts" / "cluster.sh"), "down"], check=True, capture_output=True)
    print("to both LeaderWorkerSets Available (same objects, fresh cluster each):")
    print(f"  pulumi up (chart, volume, 2 groups, awaited)        {up:6.1f} s")
    print(f"  kubectl apply --server-side + kubectl wait           {apply:6.1f} s")


if __name__ == "__main__":
    main()
