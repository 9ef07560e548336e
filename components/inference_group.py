"""One model served by one LeaderWorkerSet, with its leader Service and NetworkPolicy (its autoscaler is in
components/operations.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import PACKAGE
from plan.group import GroupPlan
from plan.manifests import (
    Placement,
    await_timeout_seconds,
    leader_service,
    leader_worker_set,
    network_policy,
    plan_summary,
    service_url,
)


@dataclass(frozen=True)
class InferenceGroupArgs:
    plan: GroupPlan
    placement: Placement
    allowed_namespaces: tuple[str, ...] = ()


class InferenceGroup(pulumi.ComponentResource):
    """Outputs: `url` (the leader Service inside the cluster) and `plan` (the derived numbers)."""

    url: pulumi.Output[str]
    plan: pulumi.Output[dict[str, object]]
    workload: k8s.apiextensions.CustomResource
    """The LeaderWorkerSet: what autoscalers scale."""

    def __init__(self, name: str, args: InferenceGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:workload:InferenceGroup", name, None, opts)
        group, namespace = args.plan, args.placement.namespace
        child = pulumi.ResourceOptions(parent=self)
        lws = leader_worker_set(group, args.placement)
        timeout = f"{await_timeout_seconds(group)}s"
        self.workload = k8s.apiextensions.CustomResource(
            f"{name}-lws",
            api_version=lws["apiVersion"],
            kind=lws["kind"],
            metadata=lws["metadata"],
            spec=lws["spec"],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout))
            ),
        )
        service = leader_service(group, namespace)
        svc = k8s.core.v1.Service(f"{name}-leader", metadata=service["metadata"], spec=service["spec"], opts=child)
        policy = network_policy(group, namespace, args.allowed_namespaces)
        k8s.networking.v1.NetworkPolicy(f"{name}-network", metadata=policy["metadata"], spec=policy["spec"], opts=child)
        url = service_url(group, namespace)
        self.url = svc.id.apply(lambda _: url)
        self.plan = pulumi.Output.from_input(plan_summary(group))
        self.register_outputs({"url": self.url, "plan": self.plan})
