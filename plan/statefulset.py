"""A group as plain StatefulSets, for clusters where no LWS controller may be installed (cluster.lws.mode none,
cluster.lws.workload statefulset).

The layout is the one the LWS controller builds: a leader StatefulSet `<name>` with one pod per group
(`<name>-<group>`), and per group a worker StatefulSet `<name>-<group>` whose pods are `<name>-<group>-1` ..
`-<size-1>` (start ordinal 1), all under a headless Service `<name>`. Every container gets the LWS_LEADER_ADDRESS,
LWS_GROUP_SIZE and LWS_WORKER_INDEX values the controller would inject (pkg/utils/pod AddLWSVariables in
sigs.k8s.io/lws: `<name>-<group>.<subdomain>.<namespace>`), so the engines' commands are the same. Workers wait
for the leader's DNS name before they start. What this cannot do that LWS does: recreate a group when one of its
pods fails, and roll out an update group by group.
"""

from __future__ import annotations

from kernel import lws_api
from plan.group import GroupPlan
from plan.manifests import LWS_NAME_LABEL, Manifest, Placement, await_timeout_seconds, labels, pod_template
from plan.releases import POD_INDEX_LABEL

GROUP_INDEX_LABEL = lws_api.GROUP_INDEX_LABEL
WORKER_INDEX_LABEL = lws_api.WORKER_INDEX_LABEL

WAIT_CONTAINER = "wait-for-leader"


def headless_service_name(group: GroupPlan) -> str:
    return group.name


def leader_address(group: GroupPlan, namespace: str, group_index: int | str) -> str:
    return f"{group.name}-{group_index}.{headless_service_name(group)}.{namespace}"


def worker_set_name(group: GroupPlan, group_index: int) -> str:
    return f"{group.name}-{group_index}"


def leader_stateful_set(group: GroupPlan, placement: Placement) -> Manifest:
    """One leader pod per group; its ordinal is the group index."""
    template = pod_template(group, placement, leader=True)
    template["metadata"]["labels"][LWS_NAME_LABEL] = group.name
    template["metadata"]["labels"][WORKER_INDEX_LABEL] = "0"
    own_address = f"$(LWS_POD_NAME).{headless_service_name(group)}.{placement.namespace}"
    env: list[Manifest] = [
        {"name": "LWS_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": lws_api.LEADER_ADDRESS_ENV, "value": own_address},
        {"name": lws_api.GROUP_SIZE_ENV, "value": str(group.group_size)},
        {"name": lws_api.WORKER_INDEX_ENV, "value": "0"},
    ]
    _prepend_env(template, env)
    return _stateful_set(group.name, group, placement, template, replicas=group.replicas, component="leader")


def worker_stateful_set(group: GroupPlan, placement: Placement, group_index: int) -> Manifest:
    """The size - 1 workers of group `group_index`, indexed 1.. like LWS workers."""
    template = pod_template(group, placement, leader=False)
    template["metadata"]["labels"] |= {LWS_NAME_LABEL: group.name, GROUP_INDEX_LABEL: str(group_index)}
    address = leader_address(group, placement.namespace, group_index)
    env: list[Manifest] = [
        {"name": lws_api.LEADER_ADDRESS_ENV, "value": address},
        {"name": lws_api.GROUP_SIZE_ENV, "value": str(group.group_size)},
        {
            "name": lws_api.WORKER_INDEX_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}},
        },
    ]
    _prepend_env(template, env)
    # The leader first: the worker's engine connects to the leader at start (Ray head, SGLang dist-init).
    template["spec"]["initContainers"] = [
        {
            "name": WAIT_CONTAINER,
            "image": group.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "until getent hosts $(LWS_LEADER_ADDRESS); do sleep 2; done"],
            "env": env[:1],
        }
    ]
    name = worker_set_name(group, group_index)
    manifest = _stateful_set(name, group, placement, template, replicas=group.group_size - 1, component="worker")
    manifest["spec"]["ordinals"] = {"start": 1}
    manifest["metadata"]["labels"][GROUP_INDEX_LABEL] = str(group_index)
    return manifest


def worker_stateful_sets(group: GroupPlan, placement: Placement) -> list[Manifest]:
    if group.group_size == 1:
        return []
    return [worker_stateful_set(group, placement, index) for index in range(group.replicas)]


def headless_service(group: GroupPlan, namespace: str) -> Manifest:
    """DNS names for every pod of the group, published before they are ready: workers resolve the leader while it
    loads the model."""
    return {
        "metadata": {"name": headless_service_name(group), "namespace": namespace, "labels": labels(group)},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LWS_NAME_LABEL: group.name},
        },
    }


def _stateful_set(
    name: str, group: GroupPlan, placement: Placement, template: Manifest, *, replicas: int, component: str
) -> Manifest:
    selector = {"app.kubernetes.io/instance": group.name, "app.kubernetes.io/component": component}
    if component == "worker":
        selector[GROUP_INDEX_LABEL] = template["metadata"]["labels"][GROUP_INDEX_LABEL]
    timeout = str(await_timeout_seconds(group))
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": placement.namespace,
            "labels": labels(group, component),
            "annotations": {"pulumi.com/timeoutSeconds": timeout, **group.annotations},
        },
        "spec": {
            "replicas": replicas,
            "serviceName": headless_service_name(group),
            # Pods of a group start together, as LWS starts them; ordered start would wait on readiness.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }


def _prepend_env(template: Manifest, env: list[Manifest]) -> None:
    """First, as the controller injects them: later entries may refer to them with $(...)."""
    for container in template["spec"]["containers"]:
        container["env"] = [*env, *container.get("env", [])]
