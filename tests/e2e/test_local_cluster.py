"""The `local` stack on the local cluster (scripts/cluster.sh: a real API server, scheduler and controller
manager, kwok's fake H100 nodes, the real LWS controller with its webhooks): `pulumi up` installs the chart from a
local path, creates the NFS model volume and a vLLM and an SGLang group, and returns only when every group of both
LeaderWorkerSets is Ready. The tests run in order on one deployment; the last one destroys it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from harness.scratch import ROOT, Project, scratch_project
from plan.manifests import NfsVolume, volume_identity

pytestmark = pytest.mark.e2e

GROUPS = ("qwen3-32b-vllm", "qwen3-32b-sglang")
KUBECONFIG = ROOT / ".tools" / "cluster" / "kubeconfig"


LOCAL_LWS = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]["lws-inference:cluster"]["lws"]


def cluster(command: str, **env_vars: str) -> None:
    env = dict(os.environ, LWS="controller", LWS_VERSION=LOCAL_LWS["version"]) | env_vars
    result = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), command], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"scripts/cluster.sh {command} failed:\n{result.stderr}")


def kubectl(*args: str) -> Any:
    result = subprocess.run(
        [str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args, "-o", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return json.loads(result.stdout) if result.returncode == 0 else None


def pods(group: str) -> list[dict[str, Any]]:
    found = kubectl("get", "pods", "-n", "inference", "-l", f"leaderworkerset.sigs.k8s.io/name={group}")
    return list(found["items"]) if found else []


def leader_service_addresses(group: str, expected: set[str], seconds: float = 30) -> set[str]:
    """The pod IPs behind the group's leader Service, once they are `expected` or `seconds` have passed: the
    EndpointSlice controller publishes a pod some time after it is Ready, and `pulumi up` does not await the
    Service (plan/manifests.py leader_service), so right after `up` the slice may still be empty."""
    deadline = time.monotonic() + seconds
    while True:
        found = kubectl("get", "endpointslices", "-n", "inference", "-l", f"kubernetes.io/service-name={group}-leader")
        slices = (found or {}).get("items", [])
        addresses = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]}
        if addresses == expected or time.monotonic() > deadline:
            return addresses
        time.sleep(1)


def available(group: str) -> bool:
    lws = kubectl("get", "leaderworkerset", "-n", "inference", group)
    conditions = (lws or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    cluster("down")  # a cluster left over from an interrupted run
    cluster("up")
    stack_config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack_config.pop("encryptionsalt", None)  # the scratch stack has a passphrase of its own
    project = scratch_project(tmp_path_factory.mktemp("local"), stack_config)
    project.pulumi("up", "--yes", "--skip-preview")
    yield project
    cluster("down")


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_up_returns_with_every_group_ready(deployed: Project) -> None:
    for group in GROUPS:
        assert available(group), f"{group} is not Available although pulumi up returned"
        lws = kubectl("get", "leaderworkerset", "-n", "inference", group)
        assert lws["status"].get("readyReplicas") == lws["spec"]["replicas"]
        members = pods(group)
        assert len(members) == 2 and all(p["status"]["phase"] == "Running" and ready(p) for p in members)


def test_pods_carry_the_lws_labels_and_injected_env(deployed: Project) -> None:
    for group in GROUPS:
        by_index = {p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]: p for p in pods(group)}
        assert set(by_index) == {"0", "1"}
        for pod in by_index.values():
            env = {e["name"] for e in pod["spec"]["containers"][0].get("env", [])}
            assert {"LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX"} <= env


def test_the_leader_service_reaches_exactly_the_leader_pods(deployed: Project) -> None:
    for group in GROUPS:
        leaders = {p["status"]["podIP"] for p in pods(group)
                   if p["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"}  # fmt: skip
        assert len(leaders) == 1
        assert leader_service_addresses(group, leaders) == leaders


def test_a_second_up_changes_nothing(deployed: Project) -> None:
    deployed.pulumi("preview", "--expect-no-changes")


def test_a_controller_version_change_is_refused_and_changes_nothing(deployed: Project) -> None:
    deployed.set("cluster.lws.version", "0.10.0")
    refused = deployed.pulumi("up", "--yes", check=False)
    deployed.set("cluster.lws.version", LOCAL_LWS["version"])
    assert refused.returncode != 0
    assert "online upgrade" in refused.stdout + refused.stderr
    manager = kubectl("get", "deployment", "-n", "lws-system", "lws-controller-manager")
    assert manager["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":v{LOCAL_LWS['version']}")
    deployed.pulumi("preview", "--expect-no-changes")


def test_deleting_a_worker_recreates_its_group(deployed: Project) -> None:
    group = GROUPS[0]
    leader_uid = next(p["metadata"]["uid"] for p in pods(group) if p["metadata"]["name"] == f"{group}-0")
    subprocess.run(
        [str(ROOT / ".tools" / "bin" / "kubectl"), "--kubeconfig", str(KUBECONFIG), "delete", "pod", "-n",
         "inference", f"{group}-0-1", "--wait=false"], check=True, capture_output=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        members = pods(group)
        leader = next((p for p in members if p["metadata"]["name"] == f"{group}-0"), None)
        recreated = leader is not None and leader["metadata"]["uid"] != leader_uid
        if recreated and len(members) == 2 and all(p["status"]["phase"] == "Running" for p in members):
            return
        time.sleep(2)
    pytest.fail("the restart policy did not recreate the leader after its worker was deleted")


def test_destroy_removes_groups_before_the_controller_and_keeps_the_crd(deployed: Project) -> None:
    events = deployed.path / "destroy-events.json"
    deployed.env["PULUMI_DEBUG_COMMANDS"] = "true"  # --event-log is a debug flag
    deployed.pulumi("destroy", "--yes", "--skip-preview", "--event-log", str(events))
    deleted = [e["resOutputsEvent"]["metadata"]["type"] for e in map(json.loads, events.read_text().splitlines())
               if e.get("resOutputsEvent", {}).get("metadata", {}).get("op") == "delete"]  # fmt: skip
    last_group = max(i for i, t in enumerate(deleted) if t.endswith(":LeaderWorkerSet"))
    assert last_group < deleted.index("kubernetes:apps/v1:Deployment"), deleted
    assert kubectl("get", "leaderworkersets", "-n", "inference")["items"] == []
    assert kubectl("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io") is not None
    # The PV object goes with its claim; the data on the export is untouched (Retain) and the next up binds again.
    volumes = [v["metadata"]["name"] for v in kubectl("get", "pv")["items"]]
    assert not [name for name in volumes if name.startswith("models-")], volumes


def test_up_after_destroy_binds_the_same_volume_and_the_groups_run_on_it(deployed: Project) -> None:
    """A PVC replace: destroy deleted the claim; the new claim must bind the same PV (not stay Pending on a PV
    that kept the deleted claim's uid), and the groups must run on it."""
    deployed.pulumi("up", "--yes", "--skip-preview")
    source = NfsVolume("127.0.0.1", "/exports/models", "ReadOnlyMany")
    identity = volume_identity("inference", 512, source)
    claim = kubectl("get", "pvc", "-n", "inference", f"models-{identity}")
    volume = kubectl("get", "pv", f"models-inference-{identity}")
    assert claim["status"]["phase"] == "Bound" and claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert volume["status"]["phase"] == "Bound" and volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    for group in GROUPS:
        assert available(group)
        members = pods(group)
        assert len(members) == 2 and all(p["status"]["phase"] == "Running" for p in members)
        claims = {v["persistentVolumeClaim"]["claimName"] for p in members for v in p["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}  # fmt: skip
        assert claims == {claim["metadata"]["name"]}
    deployed.pulumi("destroy", "--yes", "--skip-preview")


def test_cluster_tools_are_stamped_with_their_release() -> None:
    version = subprocess.run([str(ROOT / ".tools" / "bin" / "kubectl"), "version", "--client", "-o", "json"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(version.stdout)["clientVersion"]["gitVersion"].startswith("v1.33.")
