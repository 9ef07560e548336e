"""A CCE-like cluster: the LWS 0.6.1 add-on owns the controller (the test installs CRD, webhooks and controller as
the add-on would, scripts/cluster.sh LWS=full), and the stack only declares it (cluster.lws.mode managed). `pulumi up`
returns with both groups Available on the release without partition or RecreateGroupAfterStart, and destroy ends and
keeps the CRD."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from harness.scratch import ROOT, Project, scratch_project
from tests.e2e.test_local_cluster import GROUPS, available, cluster, kubectl, pods

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    cluster("down")
    cluster("up", LWS="full", LWS_VERSION="0.6.1")
    stack_config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack_config.pop("encryptionsalt", None)
    profile = stack_config["config"]["lws-inference:cluster"]
    profile["kubernetesVersion"] = "1.31"  # what CCE runs with the 0.6.1 add-on (kwok serves 1.33)
    profile["lws"] = {"mode": "managed", "version": "0.6.1"}
    project = scratch_project(tmp_path_factory.mktemp("cce"), stack_config)
    project.pulumi("up", "--yes", "--skip-preview")
    yield project
    cluster("down")


def test_up_returns_with_every_group_available_and_nothing_installed(deployed: Project) -> None:
    for group in GROUPS:
        assert available(group), f"{group} is not Available although pulumi up returned"
        assert len(pods(group)) == 2
    assert kubectl("get", "deployments", "-n", "lws-system")["items"] == []  # the add-on's controller runs outside
    lws = kubectl("get", "leaderworkerset", "-n", "inference", GROUPS[0])
    assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"


def test_the_controller_injects_the_lws_env(deployed: Project) -> None:
    for group in GROUPS:
        for pod in pods(group):
            env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
            index = pod["metadata"]["labels"]["leaderworkerset.sigs.k8s.io/worker-index"]
            assert env["LWS_GROUP_SIZE"] == "2" and env["LWS_WORKER_INDEX"] == index
            assert env["LWS_LEADER_ADDRESS"] == f"{group}-0.{group}.inference"


def test_destroy_ends_and_keeps_the_crd(deployed: Project) -> None:
    """0.6.1 recreates a group's StatefulSets while its LeaderWorkerSet waits for them in the foreground: the plan
    deletes its groups in the background there, so destroy ends."""
    lws = kubectl("get", "leaderworkerset", "-n", "inference", GROUPS[0])
    assert lws["metadata"]["annotations"]["pulumi.com/deletionPropagationPolicy"] == "background"
    deployed.pulumi("destroy", "--yes", "--skip-preview")
    assert kubectl("get", "leaderworkersets", "-n", "inference")["items"] == []
    assert kubectl("get", "crd", "leaderworkersets.leaderworkerset.x-k8s.io") is not None
    volumes = [v["metadata"]["name"] for v in kubectl("get", "pv")["items"]]
    assert not [name for name in volumes if name.startswith("models-")], volumes  # its data stays (Retain)
