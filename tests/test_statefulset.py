"""cluster.lws.mode none with workload statefulset: the groups as plain StatefulSets with the LWS environment."""

from __future__ import annotations

from typing import Any

import pytest

from config.load import ConfigError, parse
from plan.group import GroupPlan, PlanError, plan_stack
from plan.manifests import Placement, leader_worker_set
from plan.statefulset import headless_service, leader_stateful_set, worker_stateful_sets
from tests.factories import cce_llama405b, set_path, tiny_model
from tests.test_components import LWS, Recorder, deploy, recorder  # noqa: F401  (fixture)

PLACEMENT = Placement(namespace="inference", claim_name="models", mount_path="/models")
STS = "kubernetes:apps/v1:StatefulSet"


def without_controller(raw: dict[str, Any]) -> dict[str, Any]:
    return set_path(set_path(raw, "cluster.lws.mode", "none"), "cluster.lws.workload", "statefulset")


def cce_statefulsets() -> dict[str, Any]:
    """The CCE stack (2 groups of 2 pods, TP8 x PP2) on a cluster without LWS (Kubernetes 1.31)."""
    return without_controller(cce_llama405b())


def the_group(raw: dict[str, Any]) -> GroupPlan:
    [group] = plan_stack(parse(raw)).groups
    return group


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_one_leader_set_and_one_worker_set_per_group() -> None:
    group = the_group(cce_statefulsets())
    leader = leader_stateful_set(group, PLACEMENT)
    workers = worker_stateful_sets(group, PLACEMENT)
    assert leader["metadata"]["name"] == "llama-405b" and leader["spec"]["replicas"] == 2
    assert [w["metadata"]["name"] for w in workers] == ["llama-405b-0", "llama-405b-1"]
    for worker in workers:
        assert worker["spec"]["replicas"] == 1 and worker["spec"]["ordinals"] == {"start": 1}
        assert worker["spec"]["serviceName"] == leader["spec"]["serviceName"] == "llama-405b"
        assert worker["spec"]["podManagementPolicy"] == "Parallel"


def test_the_env_is_what_the_lws_controller_injects() -> None:
    """LWS sets LWS_LEADER_ADDRESS to <name>-<group>.<subdomain>.<namespace> (AddLWSVariables in sigs.k8s.io/lws)."""
    group = the_group(cce_statefulsets())
    leader_env = env_of(leader_stateful_set(group, PLACEMENT)["spec"]["template"]["spec"]["containers"][0])
    assert leader_env["LWS_LEADER_ADDRESS"] == "$(LWS_POD_NAME).llama-405b.inference"
    assert leader_env["LWS_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert (leader_env["LWS_GROUP_SIZE"], leader_env["LWS_WORKER_INDEX"]) == ("2", "0")
    worker = worker_stateful_sets(group, PLACEMENT)[1]["spec"]["template"]["spec"]
    worker_env = env_of(worker["containers"][0])
    assert worker_env["LWS_LEADER_ADDRESS"] == "llama-405b-1.llama-405b.inference"
    assert worker_env["LWS_WORKER_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    # The injected names come first, so the engine's own env and commands may refer to them.
    assert [e["name"] for e in worker["containers"][0]["env"][:3]] == [
        "LWS_LEADER_ADDRESS",
        "LWS_GROUP_SIZE",
        "LWS_WORKER_INDEX",
    ]


def test_the_engines_commands_are_those_of_the_leader_worker_set() -> None:
    raw = cce_llama405b()
    lws_template = leader_worker_set(the_group(raw), PLACEMENT)["spec"]["leaderWorkerTemplate"]
    group = the_group(without_controller(raw))
    leader = leader_stateful_set(group, PLACEMENT)["spec"]["template"]["spec"]["containers"][0]
    worker = worker_stateful_sets(group, PLACEMENT)[0]["spec"]["template"]["spec"]["containers"][0]
    assert leader["command"] == lws_template["leaderTemplate"]["spec"]["containers"][0]["command"]
    assert worker["command"] == lws_template["workerTemplate"]["spec"]["containers"][0]["command"]
    assert leader["resources"] == worker["resources"]


def test_workers_wait_for_the_leaders_dns_name_which_is_published_before_ready() -> None:
    group = the_group(cce_statefulsets())
    [wait] = worker_stateful_sets(group, PLACEMENT)[0]["spec"]["template"]["spec"]["initContainers"]
    assert "getent hosts $(LWS_LEADER_ADDRESS)" in wait["command"][-1] and wait["image"] == group.image
    service = headless_service(group, "inference")["spec"]
    assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert service["selector"] == {"leaderworkerset.sigs.k8s.io/name": "llama-405b"}


def test_a_one_pod_group_has_no_worker_set() -> None:
    raw = without_controller(
        set_path(set_path(tiny_model(), "models[0].serving.tensorParallel", 1), "cluster.kubernetesVersion", "1.31")
    )
    assert worker_stateful_sets(the_group(raw), PLACEMENT) == []


def test_lws_only_settings_and_group_autoscaling_are_refused() -> None:
    raw = set_path(cce_statefulsets(), "models[0].serving.restartPolicy", "RecreateGroupOnPodRestart")
    raw = set_path(raw, "models[0].serving.autoscaling", {"minReplicas": 1, "maxReplicas": 3})
    with pytest.raises(PlanError) as caught:
        plan_stack(parse(raw))
    problems = {p.key: p.message for p in caught.value.problems}
    assert "no group restart" in problems["models[0].serving.restartPolicy"]
    assert "scaling them needs a LeaderWorkerSet" in problems["models[0].serving.autoscaling"]


def test_statefulsets_are_only_for_clusters_without_a_controller() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.lws: workload statefulset is for clusters without a controller"):
        parse(set_path(cce_llama405b(), "cluster.lws.workload", "statefulset"))


def test_kubernetes_before_1_28_has_no_pod_index_label() -> None:
    raw = set_path(cce_statefulsets(), "cluster.kubernetesVersion", "1.27")
    with pytest.raises(PlanError, match=r"cluster.kubernetesVersion: workers read LWS_WORKER_INDEX"):
        plan_stack(parse(raw))


def test_the_stack_declares_statefulsets_and_no_leader_worker_set(recorder: Recorder) -> None:  # noqa: F811
    deploy(recorder, cce_statefulsets())
    assert recorder.of_type(LWS) == []
    names = sorted(r.name for r in recorder.of_type(STS))
    assert names == ["llama-405b-leader-set", "llama-405b-workers-0", "llama-405b-workers-1"]
    services = sorted(r.inputs["metadata"]["name"] for r in recorder.of_type("kubernetes:core/v1:Service"))
    assert services == ["llama-405b", "llama-405b-leader"]
    [policy] = recorder.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policy.inputs["spec"]["podSelector"] == {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-405b"}}
