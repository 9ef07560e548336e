"""Groups written as plain StatefulSets (cluster.lws.workload statefulset, or by hand), presented as the
LeaderWorkerSet the group rules read, so gpu-memory, parallelism and leader-probe check them the same way.

A group is the StatefulSets of one namespace and headless Service (spec.serviceName) whose containers set
LWS_GROUP_SIZE: the leader set sets LWS_WORKER_INDEX to "0", the worker sets take it from the pod index.
Only the leader set is needed: the workers' pod template is the leader's when no worker set is present (a
one-pod group, or a resource policy that sees one object at a time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kernel import lws_api
from kernel.lws_api import API_VERSION as LWS_API_VERSION
from lws_guard import manifest

GROUP_SIZE_ENV = lws_api.GROUP_SIZE_ENV
WORKER_INDEX_ENV = lws_api.WORKER_INDEX_ENV


def _env(props: Mapping[str, Any]) -> dict[str, Any]:
    spec = manifest.mapping(manifest.dig(props, "spec", "template", "spec"))
    found: dict[str, Any] = {}
    for container in manifest.containers(spec):
        for entry in manifest.items(container.get("env")):
            name = manifest.text(manifest.dig(entry, "name"))
            if name and name not in found:
                found[name] = manifest.dig(entry, "value")
    return found


def is_group_set(resource_type: str, props: Mapping[str, Any]) -> bool:
    return manifest.kind_of(resource_type, props) == "StatefulSet" and GROUP_SIZE_ENV in _env(props)


def is_leader_set(resource_type: str, props: Mapping[str, Any]) -> bool:
    return is_group_set(resource_type, props) and manifest.text(_env(props).get(WORKER_INDEX_ENV)) == "0"


def as_leader_worker_set(leader: Mapping[str, Any], worker: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The LeaderWorkerSet these StatefulSets stand for: size from LWS_GROUP_SIZE, replicas from the leader set."""
    size = manifest.whole_number(_env(leader).get(GROUP_SIZE_ENV))
    leader_template = manifest.dig(leader, "spec", "template") or {}
    worker_template = manifest.dig(worker, "spec", "template") if worker is not None else None
    template: dict[str, Any] = {"size": size if size is not None else 1, "leaderTemplate": leader_template}
    template["workerTemplate"] = worker_template if worker_template is not None else leader_template
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": manifest.mapping(manifest.dig(leader, "metadata")),
        "spec": {"replicas": manifest.dig(leader, "spec", "replicas"), "leaderWorkerTemplate": template},
    }


def groups_in(resources: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Every StatefulSet group of a stack as a LeaderWorkerSet, leader paired with one of its worker sets."""
    leaders: dict[tuple[str, str], Mapping[str, Any]] = {}
    workers: dict[tuple[str, str], Mapping[str, Any]] = {}
    for resource_type, props in resources:
        if not is_group_set(resource_type, props):
            continue
        key = (
            manifest.text(manifest.dig(props, "metadata", "namespace")) or "",
            manifest.text(manifest.dig(props, "spec", "serviceName")) or "",
        )
        (leaders if is_leader_set(resource_type, props) else workers).setdefault(key, props)
    return [as_leader_worker_set(leader, workers.get(key)) for key, leader in leaders.items()]
