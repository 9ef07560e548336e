"""Autoscalers of LeaderWorkerSets: HPAs (autoscaling/v1, v2) and KEDA ScaledObjects whose scaleTargetRef is
a LeaderWorkerSet.

* autoscaler-target (mandatory, one object): the autoscaler names its target, every metric has a target
  value, a Resource metric is one the resource metrics API serves (cpu, memory), and a ScaledObject that may
  scale to zero has a trigger that can bring it back (KEDA's cpu and memory triggers cannot);
* autoscaler-metric (mandatory, the stack): the target LeaderWorkerSet is in the stack, and every engine gauge
  the autoscaler reads can exist there: the engine the group runs (vllm: or sglang:), SGLang started with
  --enable-metrics, the served model's name in model_name, CPU requests for a CPU utilization target;
* lws-autoscaling (advisory, the stack): a LeaderWorkerSet of more than one group has an autoscaler, and
  none scales a GPU group on CPU.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from kernel.catalog import Engine
from lws_guard import manifest
from lws_guard.serving import find_server
from lws_guard.settings import Settings
from lws_guard.upgrade import StackResource

HPA_KIND = "HorizontalPodAutoscaler"
SCALED_OBJECT_KIND = "ScaledObject"
RESOURCE_METRICS = ("cpu", "memory")
"""What the resource metrics API (metrics-server) serves; anything else, nvidia.com/gpu included, never has a
value."""
ENGINE_PREFIX = {Engine.VLLM: "vllm:", Engine.SGLANG: "sglang:"}
_ENGINE_METRIC = re.compile(r"\b(vllm|sglang):[A-Za-z_][A-Za-z0-9_:]*")
_MODEL_LABEL = re.compile(r"\bmodel_name\s*=\s*\"([^\"]*)\"")
METRIC_POLICY = "autoscaler-metric"
ADVICE_POLICY = "lws-autoscaling"


@dataclass(frozen=True)
class Metric:
    """One metric of an autoscaler, as far as these rules care."""

    source: str
    """How the autoscaler names it in messages: `metrics[0] (Pods)`, `triggers[1] (prometheus)`."""
    kind: str
    """resource, cpu (a KEDA cpu trigger or an HPA on cpu), or named (an engine gauge or a query)."""
    text: str
    """The resource's or metric's name, or the PromQL query."""
    target: str | None
    utilization: bool = False


@dataclass(frozen=True)
class Autoscaler:
    kind: str
    who: str
    target_kind: str | None
    target_name: str | None
    namespace: str | None
    min_replicas: int | None
    metrics: tuple[Metric, ...]


def read_autoscaler(resource_type: str, props: Mapping[str, Any], name: str = "") -> Autoscaler | None:
    """The autoscaler of a LeaderWorkerSet, or None for anything else."""
    kind = manifest.kind_of(resource_type, props)
    if kind not in (HPA_KIND, SCALED_OBJECT_KIND):
        return None
    ref = manifest.mapping(manifest.dig(props, "spec", "scaleTargetRef"))
    # A ScaledObject without a kind scales a Deployment; either way, not ours to judge.
    if manifest.text(ref.get("kind")) != "LeaderWorkerSet":
        return None
    spec = manifest.mapping(props.get("spec"))
    if kind == HPA_KIND:
        metrics = _hpa_metrics(spec)
        lowest = manifest.whole_number(spec.get("minReplicas"))
    else:
        metrics = _keda_metrics(spec)
        lowest = manifest.whole_number(spec.get("minReplicaCount"))
    return Autoscaler(
        kind=kind,
        who=manifest.display(kind, props, name),
        target_kind="LeaderWorkerSet",
        target_name=manifest.text(ref.get("name")),
        namespace=manifest.text(manifest.dig(props, "metadata", "namespace")),
        min_replicas=lowest,
        metrics=tuple(metrics),
    )


def _hpa_metrics(spec: Mapping[str, Any]) -> list[Metric]:
    if "targetCPUUtilizationPercentage" in spec or not manifest.items(spec.get("metrics")):
        # autoscaling/v1, or v2 without metrics: the HPA defaults to 80% CPU.
        percent = manifest.text(spec.get("targetCPUUtilizationPercentage")) or "80"
        return [Metric("targetCPUUtilizationPercentage", "cpu", "cpu", percent, utilization=True)]
    found = []
    for index, raw in enumerate(manifest.items(spec.get("metrics"))):
        kind = manifest.text(manifest.dig(raw, "type")) or ""
        source = f"metrics[{index}] ({kind or 'no type'})"
        field = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
                 "External": "external", "Object": "object"}.get(kind)  # fmt: skip
        body = manifest.mapping(manifest.dig(raw, field)) if field else manifest.EMPTY
        target = manifest.mapping(body.get("target"))
        value = next((manifest.text(target.get(k)) for k in ("averageUtilization", "averageValue", "value")
                      if manifest.text(target.get(k)) is not None), None)  # fmt: skip
        if field in ("resource", "containerResource"):
            resource = manifest.text(body.get("name")) or ""
            utilization = "averageUtilization" in target
            found.append(Metric(source, "cpu" if resource == "cpu" else "resource", resource, value, utilization))
        else:
            found.append(Metric(source, "named", manifest.text(manifest.dig(body, "metric", "name")) or "", value))
    return found


def _keda_metrics(spec: Mapping[str, Any]) -> list[Metric]:
    found = []
    for index, raw in enumerate(manifest.items(spec.get("triggers"))):
        kind = manifest.text(manifest.dig(raw, "type")) or ""
        meta = manifest.mapping(manifest.dig(raw, "metadata"))
        source = f"triggers[{index}] ({kind or 'no type'})"
        if kind in RESOURCE_METRICS:
            utilization = (manifest.text(manifest.dig(raw, "metricType")) or "Utilization") == "Utilization"
            found.append(Metric(source, "cpu" if kind == "cpu" else "resource", kind, manifest.text(meta.get("value")),
                                utilization))  # fmt: skip
        elif kind == "prometheus":
            found.append(Metric(source, "named", manifest.text(meta.get("query")) or "",
                                manifest.text(meta.get("threshold"))))  # fmt: skip
        else:
            # Another scaler (metrics-api, kafka, ...): its own keys; only its name matters here.
            found.append(Metric(source, "other", kind, "given"))
    return found


# ---- autoscaler-target: one object -------------------------------------------------------------


def check_autoscaler_target(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    scaler = read_autoscaler(resource_type, props, name)
    if scaler is None:
        return []
    who = f"{scaler.who} (scales a LeaderWorkerSet)"
    if not scaler.target_name:
        return [f"{who}: scaleTargetRef has no name, so it scales nothing and reports FailedGetScale"]
    if not scaler.metrics:
        return [f"{who}: no triggers, so KEDA has nothing to scale on and refuses the ScaledObject"]
    messages = []
    for metric in scaler.metrics:
        if metric.kind == "resource" and metric.text not in RESOURCE_METRICS:
            messages.append(
                f"{who}: {metric.source} reads resource {metric.text or '<none>'}, which the resource metrics API "
                f"never serves (only {' and '.join(RESOURCE_METRICS)}); the HPA would report FailedGetResourceMetric "
                "forever. Scale on the engine's queue instead (vllm:num_requests_waiting, sglang:num_queue_reqs)"
            )
        if metric.target is None:
            messages.append(f"{who}: {metric.source} has no target value, so no replica count can be computed")
        if metric.kind == "named" and not metric.text:
            messages.append(f"{who}: {metric.source} names no metric or query")
    scales_to_zero = scaler.kind == SCALED_OBJECT_KIND and scaler.min_replicas == 0
    if scales_to_zero and all(m.text in RESOURCE_METRICS for m in scaler.metrics):
        messages.append(
            f"{who}: minReplicaCount 0 with only cpu/memory triggers: at zero groups no pod reports CPU or memory, so "
            "nothing can bring the first group back (KEDA refuses it); add a queue or demand trigger"
        )
    return messages


# ---- the stack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """What an autoscaler's metrics must agree with: a LeaderWorkerSet of the stack."""

    who: str
    replicas: int
    engine: Engine | None
    served_name: str | None
    metrics_enabled: bool
    gpus: int
    cpu_requested: bool


def _group(resource: StackResource) -> Group:
    props = resource.props
    server = find_server(props)
    leader = manifest.leader_spec(props)
    containers = manifest.containers(leader)
    served = None
    metrics_enabled = True
    if server is not None:
        tokens = list(server.flags.tokens)
        served = _after(tokens, "--served-model-name") or server.flags.values.get("model")
        metrics_enabled = server.engine is not Engine.SGLANG or "--enable-metrics" in tokens
    return Group(
        who=manifest.display("LeaderWorkerSet", props, resource.name),
        replicas=manifest.whole_number(manifest.dig(props, "spec", "replicas")) or 1,
        engine=server.engine if server else None,
        served_name=served,
        metrics_enabled=metrics_enabled,
        gpus=manifest.pod_gpus(leader),
        cpu_requested=bool(containers)
        and all(manifest.dig(c, "resources", "requests", "cpu") is not None for c in containers),
    )


def _after(tokens: Sequence[str], flag: str) -> str | None:
    for index, token in enumerate(tokens):
        if token == flag and index + 1 < len(tokens):
            return tokens[index + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def _inventory(resources: Sequence[StackResource]) -> tuple[dict[tuple[str | None, str], Group], list[Autoscaler]]:
    groups: dict[tuple[str | None, str], Group] = {}
    scalers: list[Autoscaler] = []
    for resource in resources:
        if manifest.is_lws(resource.resource_type, resource.props):
            metadata = manifest.mapping(resource.props.get("metadata"))
            key = (manifest.text(metadata.get("namespace")), manifest.text(metadata.get("name")) or resource.name)
            groups[key] = _group(resource)
        else:
            scaler = read_autoscaler(resource.resource_type, resource.props, resource.name)
            if scaler is not None and scaler.target_name:
                scalers.append(scaler)
    return groups, scalers


def check_autoscaler_metric(resources: Sequence[StackResource], settings: Settings) -> list[str]:
    groups, scalers = _inventory(resources)
    messages = []
    for scaler in scalers:
        group = groups.get((scaler.namespace, scaler.target_name or ""))
        if group is None:
            messages.append(
                f"{scaler.who}: scales LeaderWorkerSet {scaler.namespace or '<default>'}/{scaler.target_name}, which "
                "this stack does not declare; with no such object it reports FailedGetScale and never scales"
            )
            continue
        messages += [f"{scaler.who}: {m}" for m in _metric_problems(scaler, group)]
    return messages


def _metric_problems(scaler: Autoscaler, group: Group) -> list[str]:
    found = []
    for metric in scaler.metrics:
        if metric.kind == "cpu" and metric.utilization and not group.cpu_requested:
            found.append(f"{metric.source} targets CPU utilization, but the leader containers of {group.who} request "
                         "no CPU, so utilization has no denominator (FailedGetResourceMetric)")  # fmt: skip
        if metric.kind != "named" or group.engine is None:
            continue
        for gauge in sorted({m.group(0) for m in _ENGINE_METRIC.finditer(metric.text)}):
            if not gauge.startswith(ENGINE_PREFIX[group.engine]):
                found.append(f"{metric.source} reads {gauge}, but {group.who} runs {group.engine.value}, which never "
                             f"exports it; its gauges start with {ENGINE_PREFIX[group.engine]}")  # fmt: skip
            elif not group.metrics_enabled:
                found.append(f"{metric.source} reads {gauge}, but the SGLang server of {group.who} runs without "
                             "--enable-metrics, so /metrics serves nothing")  # fmt: skip
        for label in sorted({m.group(1) for m in _MODEL_LABEL.finditer(metric.text)}):
            if group.served_name is not None and label != group.served_name:
                found.append(f'{metric.source} selects model_name="{label}", but {group.who} serves the model as '
                             f'"{group.served_name}", so the series never exists')  # fmt: skip
    return found


def check_lws_autoscaling(resources: Sequence[StackResource], settings: Settings) -> list[str]:
    groups, scalers = _inventory(resources)
    scaled = {(s.namespace, s.target_name or ""): s for s in scalers}
    messages = []
    for key, group in groups.items():
        scaler = scaled.get(key)
        if scaler is None and group.replicas > 1:
            messages.append(
                f"{group.who}: {group.replicas} groups and no autoscaler: every group holds its GPUs whether requests "
                "come or not; add a KEDA ScaledObject or HPA on the engine's queue (serving.autoscaling, metric queue)"
            )
        if scaler is not None and group.gpus > 0 and any(m.kind == "cpu" for m in scaler.metrics):
            messages.append(
                f"{scaler.who}: scales {group.who} ({group.gpus} GPUs per pod) on CPU, which says nothing about a GPU "
                "server's load; scale on the engine's queue (vllm:num_requests_waiting, sglang:num_queue_reqs)"
            )
    return messages


StackCheck = Callable[[Sequence[StackResource], Settings], list[str]]

STACK_RULES: dict[str, str] = {
    METRIC_POLICY: "Mandatory: an autoscaler of a LeaderWorkerSet the stack does not declare, or on a gauge its "
    "engine never exports, never scales: the groups stay where they are under any load.",
    ADVICE_POLICY: "Advice: a fixed group count and CPU-based scaling both run; they waste GPUs or react late, "
    "so the message gives the queue metric to scale on instead.",
}

STACK_CHECKS: dict[str, tuple[str, StackCheck, bool]] = {
    METRIC_POLICY: (
        "An HPA or ScaledObject of a LeaderWorkerSet scales one the stack declares, on engine gauges that group "
        "can export (its engine's, with SGLang's --enable-metrics, for its served model name).",
        check_autoscaler_metric,
        False,
    ),
    ADVICE_POLICY: (
        "A LeaderWorkerSet of more than one group has an autoscaler, and GPU groups are not scaled on CPU.",
        check_lws_autoscaling,
        True,
    ),
}
"""Stack policies: name -> (description, check, advisory)."""


def _validate(check: StackCheck) -> Any:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        settings = Settings.from_config(args.get_config())
        resources = [StackResource(r.resource_type, r.props, r.name) for r in args.resources]
        for message in check(resources, settings):
            report_violation(message, None)

    return validate


def autoscaling_stack_policies() -> list[StackValidationPolicy]:
    return [
        StackValidationPolicy(
            name=name,
            description=description,
            validate=_validate(check),
            enforcement_level=EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY,
        )
        for name, (description, check, advisory) in STACK_CHECKS.items()
    ]
