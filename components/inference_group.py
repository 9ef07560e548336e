"""One model served by one LeaderWorkerSet, with its leader Service and NetworkPolicy (its autoscaler is in
components/operations.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import PACKAGE
from components.objects import NETWORK_POLICY, SERVICE, declare
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
from plan.safety import SIZE_PATH


@dataclass(frozen=True)
class InferenceGroupArgs:
    plan: GroupPlan
    placement: Placement
    allowed_namespaces: tuple[str, ...] = ()
    autoscaled: bool = False
    """An autoscaler (components/operations.py) owns the group count through the scale subresource."""
    size_change_notice: str | None = None
    """Set where the LWS release cannot change the group size in place (< 0.7): a size change then replaces
    the LeaderWorkerSet (its webhook would reject the update half way), and this says what that costs."""


class InferenceGroup(pulumi.ComponentResource):
    """Outputs: `url` (the leader Service inside the cluster) and `plan` (the derived numbers)."""

    url: pulumi.Output[str]
    plan: pulumi.Output[dict[str, object]]
    workload: pulumi.CustomResource
    """The LeaderWorkerSet: what autoscalers scale."""

    def __init__(self, name: str, args: InferenceGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:workload:InferenceGroup", name, None, opts)
        group = args.plan
        child = pulumi.ResourceOptions(parent=self)
        lws = leader_worker_set(group, args.placement)
        spec = lws["spec"]
        if args.autoscaled:
            # The HPA owns the group count through the scale subresource; a spec.replicas of ours would reset it
            # on every update.
            spec = {k: v for k, v in spec.items() if k != "replicas"}
        timeout = f"{await_timeout_seconds(group)}s"
        replace_on = [SIZE_PATH] if args.size_change_notice else None
        if args.size_change_notice:
            pulumi.log.info(args.size_change_notice)
        self.workload = declare(
            f"{name}-lws",
            {**lws, "spec": spec},
            pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                    replace_on_changes=replace_on,
                    # The provider asks for delete-first only for its own replacements; this one is ours, and a
                    # create first would apply the new size onto the same-named object, which the webhook rejects.
                    delete_before_replace=bool(replace_on),
                ),
            ),
        )
        self.url, self.plan = expose(name, args, child, [self.workload])
        self.register_outputs({"url": self.url, "plan": self.plan})


def expose(
    name: str, args: InferenceGroupArgs, child: pulumi.ResourceOptions, serving: Sequence[pulumi.CustomResource]
) -> tuple[pulumi.Output[str], pulumi.Output[dict[str, object]]]:
    """The group's leader Service and NetworkPolicy (whatever runs its pods), and its `url` and `plan` outputs.
    `url` is known once the Service exists and the `serving` workloads' await is over: the Service itself is
    not awaited (plan/manifests.py leader_service)."""
    group, namespace = args.plan, args.placement.namespace
    service = leader_service(group, namespace)
    svc = declare(f"{name}-leader", service, child, SERVICE)
    policy = network_policy(group, namespace, args.allowed_namespaces)
    declare(f"{name}-network", policy, child, NETWORK_POLICY)
    url = service_url(group, namespace)
    ready = pulumi.Output.all(svc.id, *(workload.id for workload in serving))
    return ready.apply(lambda _: url), pulumi.Output.from_input(plan_summary(group))
