"""A cluster where no LWS controller may be installed (scripts/cluster.sh LWS=none): the local stack with
cluster.lws.mode none and workload statefulset. `pulumi up` returns with every StatefulSet Ready, the pods carry the
LWS_* values the controller would inject (so the engines' commands are unchanged), the leader Service reaches only the
leaders, and destroy keeps the model PV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from harness.scratch import ROOT, Project, scratch_project
from tests.e2e.test_local_cluster import GROUPS, cluster, kubectl, leader_service_addresses, pods

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    cluster("down")
    cluster("up", LWS="none")
    stack_config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack_config.pop("encryptionsalt", None)
    stack_config["config"]["lws-inference:cluster"]["lws"] = {"mode": "none", "workload": "statefulset"}
    project = scratch_project(tmp_path_factory.mktemp("sts"), stack_config)
    project.pulumi("up", "--yes", "--skip-preview")
    yield project
    cluster("down")


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_up_returns_with_every_statefulset_ready(deployed: Project) -> None:
    for group in GROUPS:
        for name in (group, f"{group}-0"):
            sts = kubectl("get", "statefulset", "-n", "inference", name)
            assert sts["status"].get("readyReplicas") == sts["spec"]["replicas"] == 1, name
        members = pods(group)
        assert sorted(p["metadata"]["name"] for p in members) == [f"{group}-0", f"{group}-0-1"]
        assert all(p["status"]["phase"] == "Running" for p in members)
    assert kubectl("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io") is None


def test_pods_carry_the_env_the_controller_would_inject(deployed: Project) -> None:
    for group in GROUPS:
        by_name = {p["metadata"]["name"]: p for p in pods(group)}
        leader, worker = env_of(by_name[f"{group}-0"]), env_of(by_name[f"{group}-0-1"])
        assert leader["LWS_LEADER_ADDRESS"] == f"$(LWS_POD_NAME).{group}.inference"
        assert worker["LWS_LEADER_ADDRESS"] == f"{group}-0.{group}.inference"
        assert leader["LWS_GROUP_SIZE"] == worker["LWS_GROUP_SIZE"] == "2"
        assert leader["LWS_WORKER_INDEX"] == "0"
        assert by_name[f"{group}-0-1"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"


def test_the_leader_service_reaches_exactly_the_leader_pods(deployed: Project) -> None:
    for group in GROUPS:
        leader = next(p for p in pods(group) if p["metadata"]["name"] == f"{group}-0")
        expected = {leader["status"]["podIP"]}
        assert leader_service_addresses(group, expected) == expected


def test_a_second_up_changes_nothing(deployed: Project) -> None:
    deployed.pulumi("preview", "--expect-no-changes")


def test_destroy_removes_the_groups_and_leaves_the_data(deployed: Project) -> None:
    deployed.pulumi("destroy", "--yes", "--skip-preview")
    assert kubectl("get", "statefulsets", "-n", "inference")["items"] == []
    # As with LeaderWorkerSets: the PV object goes with its claim, the data on the export stays (Retain).
    volumes = [v["metadata"]["name"] for v in kubectl("get", "pv")["items"]]
    assert not [name for name in volumes if name.startswith("models-")], volumes
