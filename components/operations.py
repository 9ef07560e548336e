"""What operates one model's groups: its autoscaler, its Prometheus-operator monitor and its inference routing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import PACKAGE
from components.objects import declare
from config.model import Cluster, Deployment
from plan.group import GroupPlan
from plan.operations import (
    CONTROLLER_CHART_VALUES,
    MonitorSpec,
    RouteSpec,
    autoscaler,
    autoscaling_summary,
    endpoint_picker,
    epp_metrics_token_secret,
    epp_monitor,
    http_route,
    inference_pool,
    monitor,
)
from plan.scaling import ScalingPlan, resolve


@dataclass(frozen=True)
class OperationsArgs:
    plan: GroupPlan
    namespace: str
    scaling: ScalingPlan | None = None
    monitor: MonitorSpec | None = None
    route: RouteSpec | None = None


def operations_args(cluster: Cluster, deployment: Deployment, group: GroupPlan, models: int) -> OperationsArgs:
    """From the stack config: `models` is how many models the stack serves (one Gateway routes them by name)."""
    namespace, gateway = cluster.namespace, cluster.gateway
    scaling = deployment.serving.autoscaling
    watch = cluster.monitoring
    route = None
    if gateway:
        route = RouteSpec(gateway.name, gateway.namespace or namespace, gateway.section_name, tuple(gateway.hostnames),
                          gateway.endpoint_picker_image, match_model_header=models > 1)  # fmt: skip
    return OperationsArgs(
        plan=group,
        namespace=namespace,
        scaling=resolve(scaling, group, namespace, gateway is not None) if scaling else None,
        monitor=MonitorSpec(watch.kind, watch.interval, dict(watch.labels)) if watch else None,
        route=route,
    )


def reaching_namespaces(cluster: Cluster) -> tuple[str, ...]:
    """Namespaces that must reach the serving port: Prometheus scrapes /metrics there, the Gateway's proxies
    send the requests there."""
    found = [cluster.monitoring.prometheus_namespace] if cluster.monitoring else []
    if cluster.gateway and cluster.gateway.namespace:
        found.append(cluster.gateway.namespace)
    return tuple(found)


def controller_chart_values(cluster: Cluster) -> dict[str, Any]:
    """LWS chart values: its metrics Service and ServiceMonitor when the stack installs it and monitors."""
    monitoring = cluster.monitoring
    return dict(CONTROLLER_CHART_VALUES) if monitoring and monitoring.controller else {}


class ModelOperations(pulumi.ComponentResource):
    """Output: `autoscaling`, the bounds of the model's autoscaler (`bounds` holds them as plain values)."""

    autoscaling: pulumi.Output[dict[str, Any] | None]
    bounds: dict[str, Any] | None

    def __init__(
        self,
        name: str,
        args: OperationsArgs,
        workload: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`workload`, the model's group: what each operation comes after at `up` and goes before at destroy.
        The operations depend on it, not this component, so a model with none waits for nothing."""
        super().__init__(f"{PACKAGE}:operations:ModelOperations", name, None, opts)
        group, namespace = args.plan, args.namespace
        child = pulumi.ResourceOptions(parent=self, depends_on=[workload])
        if args.scaling:
            declare(f"{name}-autoscaler", autoscaler(group, namespace, args.scaling), child)
        if args.monitor:
            declare(f"{name}-monitor", monitor(group, namespace, args.monitor), child)
        if args.route:
            self._routing(name, group, namespace, args.route, args.monitor, child)
        self.bounds = autoscaling_summary(args.scaling) if args.scaling else None
        self.autoscaling = pulumi.Output.from_input(self.bounds)
        self.register_outputs({"autoscaling": self.autoscaling})

    @staticmethod
    def _routing(
        name: str,
        group: GroupPlan,
        namespace: str,
        route: RouteSpec,
        watch: MonitorSpec | None,
        child: pulumi.ResourceOptions,
    ) -> None:
        objects = endpoint_picker(group, namespace, route)
        picker = [declare(f"{name}-epp-{m['kind'].lower()}", m, child) for m in objects]
        after_picker = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=picker))
        pool = declare(f"{name}-pool", inference_pool(group, namespace), after_picker)
        declare(f"{name}-route", http_route(group, namespace, route),
                pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[pool])))  # fmt: skip
        if watch:
            declare(f"{name}-epp-metrics-reader", epp_metrics_token_secret(group, namespace), after_picker)
            declare(f"{name}-epp-monitor", epp_monitor(group, namespace, watch), after_picker)
