"""One model served by plain StatefulSets (no LWS controller): leader StatefulSet, a worker StatefulSet per
group, the headless Service of their DNS names, the leader Service and NetworkPolicy. No autoscaler: only a
LeaderWorkerSet scales whole groups (plan/releases.py refuses serving.autoscaling here).
"""

from __future__ import annotations

import pulumi

from components import PACKAGE
from components.inference_group import InferenceGroupArgs, expose
from components.objects import SERVICE, declare
from plan.manifests import Manifest
from plan.statefulset import (
    headless_service,
    leader_stateful_set,
    worker_stateful_sets,
)


class StatefulSetGroup(pulumi.ComponentResource):
    """Outputs: `url` (the leader Service inside the cluster) and `plan` (the derived numbers), as InferenceGroup."""

    url: pulumi.Output[str]
    plan: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: InferenceGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PACKAGE}:workload:StatefulSetGroup", name, None, opts)
        group, namespace = args.plan, args.placement.namespace
        child = pulumi.ResourceOptions(parent=self)
        dns = headless_service(group, namespace)
        declare(f"{name}-pods", dns, child, SERVICE)
        # Leader and workers are created together and awaited together: a leader waits for its workers
        # before it is Ready, so awaiting it first would never end. The workers' init container holds them
        # until the leader's DNS name resolves.
        sets = [self._stateful_set(f"{name}-leader-set", leader_stateful_set(group, args.placement), child)]
        for index, workers in enumerate(worker_stateful_sets(group, args.placement)):
            sets.append(self._stateful_set(f"{name}-workers-{index}", workers, child))
        self.url, self.plan = expose(name, args, child, sets)
        self.register_outputs({"url": self.url, "plan": self.plan})

    @staticmethod
    def _stateful_set(name: str, manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        timeout = f"{manifest['metadata']['annotations']['pulumi.com/timeoutSeconds']}s"
        return declare(
            name,
            manifest,
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout))
            ),
        )
