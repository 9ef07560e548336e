"""Autoscaling of whole groups: the numbers an autoscaler gets, and the rules that tie them to the cluster.

A group is the unit: KEDA or an HPA changes the LeaderWorkerSet's replicas (its scale subresource), and
every added group costs a full model load. So scale-down waits at least the group's startup budget, and a
group that scales to zero waits as long again before it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.model import Autoscaling, Cluster, ScalingBackend, ScalingMetric
from kernel.catalog import Engine
from kernel.rules import Finding

if TYPE_CHECKING:
    from plan.group import GroupPlan

QUEUE_METRIC = {Engine.VLLM: "vllm:num_requests_waiting", Engine.SGLANG: "sglang:num_queue_reqs"}
"""Requests waiting for a batch slot, as the pinned engine releases name the gauge (vLLM v0.10.0
vllm/v1/metrics/loggers.py, SGLang v0.4.10.post2 python/sglang/srt/metrics/collector.py); both carry the
served model's name in the label model_name."""
KV_CACHE_METRIC = {Engine.VLLM: "vllm:kv_cache_usage_perc", Engine.SGLANG: "sglang:token_usage"}
DEMAND_METRICS = ("inference_model_request_total", "inference_model_request_error_total")
"""The endpoint picker's request counters (by model_name): they count requests while no group runs, when no
engine reports a queue; errors included, since a request with no endpoint to pick fails."""
DEFAULT_CPU_UTILIZATION = 80
KEDA_DEFAULT_COOLDOWN_SECONDS = 300
MAX_STABILIZATION_SECONDS = 3600
"""The HPA API's limit of behavior.scaleDown.stabilizationWindowSeconds."""
DEMAND_WINDOW = "2m"


@dataclass(frozen=True)
class ScalingPlan:
    """What the autoscaler of one group gets, resolved from the config and the group's plan."""

    backend: ScalingBackend
    metric: ScalingMetric
    min_replicas: int
    max_replicas: int
    target: float
    """Per group: waiting requests, CPU percent, or the query's value."""
    activation: float
    query: str | None
    """keda: the PromQL of the trigger; hpa with metric query: the External metric's name."""
    demand_query: str | None
    """keda scale from zero through the gateway: requests per second reaching the endpoint picker."""
    metric_name: str | None
    """hpa with metric queue: the engine's gauge as a Pods metric."""
    prometheus_address: str
    cooldown_seconds: int
    stabilization_seconds: int


def queue_query(group: GroupPlan, namespace: str) -> str:
    """Requests waiting in every group of a model: KEDA divides it by the target per group."""
    return f'sum({QUEUE_METRIC[group.engine]}{{namespace="{namespace}",model_name="{group.name}"}})'


def demand_query(group: GroupPlan, namespace: str) -> str:
    selector = f'{{namespace="{namespace}",model_name="{group.name}"}}'
    return " + ".join(f"sum(rate({m}{selector}[{DEMAND_WINDOW}]))" for m in DEMAND_METRICS)


def resolve(scaling: Autoscaling, group: GroupPlan, namespace: str, gateway: bool) -> ScalingPlan:
    metric = scaling.resolved_metric
    target = {
        ScalingMetric.QUEUE: scaling.target_queue_length,
        ScalingMetric.CPU: float(scaling.target_cpu_utilization or DEFAULT_CPU_UTILIZATION),
        ScalingMetric.QUERY: scaling.target_value or 0.0,
    }[metric]
    query = queue_query(group, namespace) if metric is ScalingMetric.QUEUE else scaling.query
    from_zero = scaling.min_replicas == 0 and metric is ScalingMetric.QUEUE and gateway
    return ScalingPlan(
        backend=scaling.backend,
        metric=metric,
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target=target,
        activation=scaling.activation_value,
        query=query,
        demand_query=demand_query(group, namespace) if from_zero else None,
        metric_name=QUEUE_METRIC[group.engine] if metric is ScalingMetric.QUEUE else None,
        prometheus_address=scaling.prometheus_address,
        cooldown_seconds=scaling.cooldown_seconds
        if scaling.cooldown_seconds is not None
        else max(KEDA_DEFAULT_COOLDOWN_SECONDS, group.startup_seconds),
        stabilization_seconds=scaling.scale_down_stabilization_seconds
        if scaling.scale_down_stabilization_seconds is not None
        else min(MAX_STABILIZATION_SECONDS, group.startup_seconds),
    )


def groups_that_fit(cluster: Cluster, group: GroupPlan) -> int | None:
    """How many groups the cluster's GPU nodes hold at once; None when the profile does not say."""
    nodes = cluster.gpu.nodes
    if nodes is None:
        return None
    pods_per_node = cluster.gpu.per_node // group.parallelism.gpus_per_pod
    return (nodes * pods_per_node) // group.group_size


def check_autoscaling(
    cluster: Cluster, scaling: Autoscaling | None, group: GroupPlan, gateway: bool
) -> list[tuple[str, Finding]]:
    """Findings keyed by the autoscaling key they concern (minReplicas, maxReplicas, ...)."""
    if scaling is None:
        return []
    found: list[tuple[str, Finding]] = []
    gpus = group.group_size * group.parallelism.gpus_per_pod
    fit = groups_that_fit(cluster, group)
    if fit is not None:
        for key, count in (("minReplicas", scaling.min_replicas), ("maxReplicas", scaling.max_replicas)):
            if count > fit:
                found.append((key, Finding("autoscaling", (
                    f"{count} groups of {group.group_size} pods x {group.parallelism.gpus_per_pod} GPUs "
                    f"({count * gpus} GPUs) do not fit in cluster.gpu.nodes = {cluster.gpu.nodes} nodes x "
                    f"{cluster.gpu.per_node} GPUs: at most {fit} groups; the autoscaler would add groups whose pods "
                    "stay Pending while the placed ones hold their GPUs idle"))))  # fmt: skip
                break
    metric = scaling.resolved_metric
    if metric is ScalingMetric.CPU:
        found.append(("metric", Finding("autoscaling", (
            "CPU utilization says nothing about a GPU server's load (the engine's CPU stays busy while idle and "
            "calm while the GPUs are saturated); use metric queue"), advisory=True)))  # fmt: skip
    if scaling.min_replicas == 0 and metric is ScalingMetric.QUEUE and not gateway:
        found.append(("minReplicas", Finding("autoscaling", (
            f"with no group running no engine reports {QUEUE_METRIC[group.engine]}, so the queue can never bring "
            "the first group back; set cluster.gateway (its endpoint picker counts the requests that wait), or "
            "metric query with a demand metric that exists without pods, or minReplicas >= 1"))))  # fmt: skip
    window = scaling.scale_down_stabilization_seconds
    if window is not None and window < min(group.startup_seconds, MAX_STABILIZATION_SECONDS):
        found.append(("scaleDownStabilizationSeconds", Finding("autoscaling", (
            f"{window} s is shorter than the group's startup budget of {group.startup_seconds} s: a group added for "
            "a burst can be removed while it still loads its weights, and the next burst pays the load again; "
            f"use at least {min(group.startup_seconds, MAX_STABILIZATION_SECONDS)}"), advisory=True)))  # fmt: skip
    cooldown = scaling.cooldown_seconds
    if scaling.min_replicas == 0 and cooldown is not None and cooldown < group.startup_seconds:
        found.append(("cooldownSeconds", Finding("autoscaling", (
            f"the last group goes after {cooldown} s without requests, but coming back takes the startup budget of "
            f"{group.startup_seconds} s, during which every request waits; use at least {group.startup_seconds}"),
            advisory=True)))  # fmt: skip
    return found
