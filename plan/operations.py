"""Objects that operate a planned group, as plain dicts: its autoscaler (a KEDA ScaledObject or an
autoscaling/v2 HPA on the LeaderWorkerSet's scale subresource), its Prometheus-operator monitor, and its
inference routing (an InferencePool of the Gateway API Inference Extension, the endpoint picker serving it,
and an HTTPRoute from a Gateway).

Pure functions like plan/manifests.py; tests/e2e/test_operations.py has the local cluster's API server
validate every one against the CRDs of the pinned releases (tools/addons/go.mod).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.model import ScalingBackend, ScalingMetric
from kernel.catalog import Engine
from plan.group import GroupPlan
from plan.manifests import LWS_API_VERSION, Manifest, labels
from plan.scaling import KV_CACHE_METRIC, QUEUE_METRIC, ScalingPlan

KEDA_API_VERSION = "keda.sh/v1alpha1"
MONITORING_API_VERSION = "monitoring.coreos.com/v1"
INFERENCE_POOL_GROUP = "inference.networking.k8s.io"
INFERENCE_POOL_API_VERSION = f"{INFERENCE_POOL_GROUP}/v1"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_GROUP}/v1"
EPP_GRPC_PORT = 9002
EPP_HEALTH_PORT = 9003
EPP_METRICS_PORT = 9090
EPP_CONFIG_FILE = "default-plugins.yaml"
MODEL_HEADER = "X-Gateway-Model-Name"
"""The header the extension's body-based router sets from the request's model: how one Gateway tells the
models apart, since every OpenAI request goes to the same paths."""
POLLING_SECONDS = 15
DEMAND_THRESHOLD = "1000000"
"""Requests per second per group of the demand trigger: high enough that it only ever asks for one group
(activation from zero), leaving the count above that to the queue."""

# The endpoint picker's scheduling: the three scorers of the extension's default profile (queue depth, KV cache
# use, prefix cache hits), as its EndpointPickerConfig format writes them.
EPP_PLUGINS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
"""
LORA_METRIC = {Engine.VLLM: "vllm:lora_requests_info", Engine.SGLANG: ""}
"""SGLang has no LoRA info gauge; an empty name turns the picker's LoRA scraping off."""


def _metadata(group: GroupPlan, namespace: str, name: str | None = None, extra: Mapping[str, str] = {}) -> Manifest:
    return {"name": name or group.name, "namespace": namespace, "labels": {**labels(group), **extra}}


def leader_selector(group: GroupPlan) -> dict[str, str]:
    """The leader pods of every group of a model: the serving endpoints (workers serve no HTTP)."""
    return {"app.kubernetes.io/instance": group.name, "app.kubernetes.io/component": "leader"}


def _scale_target(group: GroupPlan) -> Manifest:
    return {"apiVersion": LWS_API_VERSION, "kind": "LeaderWorkerSet", "name": group.name}


def _behavior(plan: ScalingPlan) -> Manifest:
    """Scale down one group at a time, and only after the metric stayed low for the startup budget."""
    return {
        "scaleDown": {
            "stabilizationWindowSeconds": plan.stabilization_seconds,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        }
    }


def _number(value: float) -> str:
    return f"{value:g}"


# ---- autoscaling -------------------------------------------------------------------------------


def scaled_object(group: GroupPlan, namespace: str, plan: ScalingPlan) -> Manifest:
    """A KEDA ScaledObject: KEDA itself scales 0 <-> 1 (activation) and owns an HPA for 1 <-> max."""
    triggers: list[Manifest]
    if plan.metric is ScalingMetric.CPU:
        triggers = [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": _number(plan.target)}}]
    else:
        assert plan.query is not None
        triggers = [_prometheus_trigger(plan, "queue" if plan.metric is ScalingMetric.QUEUE else "query",
                                        plan.query, _number(plan.target), _number(plan.activation))]  # fmt: skip
    if plan.demand_query:
        triggers.append(_prometheus_trigger(plan, "demand", plan.demand_query, DEMAND_THRESHOLD, "0"))
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": _metadata(group, namespace),
        "spec": {
            "scaleTargetRef": _scale_target(group),
            "minReplicaCount": plan.min_replicas,
            "maxReplicaCount": plan.max_replicas,
            "pollingInterval": POLLING_SECONDS,
            "cooldownPeriod": plan.cooldown_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": group.name, "behavior": _behavior(plan)}},
            "triggers": triggers,
        },
    }


def _prometheus_trigger(plan: ScalingPlan, name: str, query: str, threshold: str, activation: str) -> Manifest:
    metadata = {"serverAddress": plan.prometheus_address, "query": query, "threshold": threshold,
                "activationThreshold": activation}  # fmt: skip
    return {"type": "prometheus", "name": name, "metadata": metadata}


def horizontal_pod_autoscaler(group: GroupPlan, namespace: str, plan: ScalingPlan) -> Manifest:
    """An autoscaling/v2 HPA. The LWS scale subresource's selector picks the leaders, so a Pods metric is
    averaged over groups: the engine's queue per group."""
    per_group = {"type": "AverageValue", "averageValue": _number(plan.target)}
    if plan.metric is ScalingMetric.CPU:
        utilization = {"type": "Utilization", "averageUtilization": int(plan.target)}
        metric: Manifest = {"type": "Resource", "resource": {"name": "cpu", "target": utilization}}
    elif plan.metric is ScalingMetric.QUEUE:
        metric = {"type": "Pods", "pods": {"metric": {"name": plan.metric_name}, "target": per_group}}
    else:
        metric = {"type": "External", "external": {"metric": {"name": plan.query}, "target": per_group}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(group, namespace),
        "spec": {
            "scaleTargetRef": _scale_target(group),
            "minReplicas": plan.min_replicas,
            "maxReplicas": plan.max_replicas,
            "metrics": [metric],
            "behavior": _behavior(plan),
        },
    }


def autoscaler(group: GroupPlan, namespace: str, plan: ScalingPlan) -> Manifest:
    if plan.backend is ScalingBackend.KEDA:
        return scaled_object(group, namespace, plan)
    return horizontal_pod_autoscaler(group, namespace, plan)


def autoscaling_summary(plan: ScalingPlan) -> dict[str, Any]:
    """The bounds of a model's autoscaler, as a stack output."""
    summary: dict[str, Any] = {
        "backend": plan.backend.value,
        "metric": plan.metric.value,
        "minReplicas": plan.min_replicas,
        "maxReplicas": plan.max_replicas,
        "targetPerGroup": plan.target,
        "scaleDownStabilizationSeconds": plan.stabilization_seconds,
    }
    if plan.backend is ScalingBackend.KEDA:
        summary["cooldownSeconds"] = plan.cooldown_seconds
    if plan.query:
        summary["query"] = plan.query
    return summary


# ---- monitoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorSpec:
    kind: str
    """PodMonitor or ServiceMonitor."""
    interval: str
    labels: Mapping[str, str] = field(default_factory=dict)


def monitor(group: GroupPlan, namespace: str, spec: MonitorSpec) -> Manifest:
    """A PodMonitor of the leaders' serving port (both engines serve /metrics there), or a ServiceMonitor
    of the leader Service."""
    endpoint = {"port": "http", "path": "/metrics", "interval": spec.interval}
    body: Manifest
    if spec.kind == "PodMonitor":
        body = {"selector": {"matchLabels": leader_selector(group)}, "podMetricsEndpoints": [endpoint]}
    else:
        body = {"selector": {"matchLabels": labels(group)}, "endpoints": [endpoint]}
    body["namespaceSelector"] = {"matchNames": [namespace]}
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": spec.kind,
        "metadata": _metadata(group, namespace, extra=spec.labels),
        "spec": body,
    }


CONTROLLER_CHART_VALUES = {"enablePrometheus": True}
"""The LWS chart's switch for its metrics Service, ServiceMonitor and Prometheus RBAC."""


# ---- inference routing -------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteSpec:
    gateway: str
    gateway_namespace: str
    section_name: str | None
    hostnames: tuple[str, ...]
    endpoint_picker_image: str
    match_model_header: bool
    """Several models behind one Gateway: route by the model header."""


def epp_name(group: GroupPlan) -> str:
    return f"{group.name}-epp"


def _epp_labels(group: GroupPlan) -> dict[str, str]:
    return {"app.kubernetes.io/component": "endpoint-picker", "inferencepool": epp_name(group)}


def inference_pool(group: GroupPlan, namespace: str) -> Manifest:
    return {
        "apiVersion": INFERENCE_POOL_API_VERSION,
        "kind": "InferencePool",
        "metadata": _metadata(group, namespace),
        "spec": {
            "selector": {"matchLabels": leader_selector(group)},
            "targetPorts": [{"number": group.port}],
            "endpointPickerRef": {"name": epp_name(group), "port": {"number": EPP_GRPC_PORT}},
        },
    }


def endpoint_picker(group: GroupPlan, namespace: str, route: RouteSpec) -> list[Manifest]:
    """The endpoint picker of one pool, as the extension's inferencepool chart of the pinned release lays it
    out: ServiceAccount, RBAC to read its pool and pods, the plugin config, a single-replica Deployment
    (Recreate: the prefix-cache state lives in one replica) and its Service."""
    name = epp_name(group)
    meta = _metadata(group, namespace, name, _epp_labels(group))
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    cluster_role = f"{group.name}-{namespace}-epp"
    reads = ["get", "watch", "list"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferenceobjectives"], "verbs": reads},
                {"apiGroups": [INFERENCE_POOL_GROUP], "resources": ["inferencepools"], "verbs": reads},
                {"apiGroups": [""], "resources": ["pods"], "verbs": reads},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        },
        # Its metrics endpoint authenticates and authorizes each scrape through the API server.
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_role, "labels": meta["labels"]},
            "rules": [
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_role, "labels": meta["labels"]},
            "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {EPP_CONFIG_FILE: EPP_PLUGINS}},
        _epp_deployment(group, namespace, route, meta),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": "ClusterIP",
                "selector": _epp_labels(group),
                "ports": [
                    {"name": "grpc-ext-proc", "port": EPP_GRPC_PORT, "protocol": "TCP"},
                    {"name": "http-metrics", "port": EPP_METRICS_PORT, "protocol": "TCP"},
                ],
            },
        },
    ]


def _epp_deployment(group: GroupPlan, namespace: str, route: RouteSpec, meta: Manifest) -> Manifest:
    args = [
        "--pool-name", group.name,
        "--pool-namespace", namespace,
        "--pool-group", INFERENCE_POOL_GROUP,
        "--zap-encoder", "json",
        "--config-file", f"/config/{EPP_CONFIG_FILE}",
        "--total-queued-requests-metric", QUEUE_METRIC[group.engine],
        "--kv-cache-usage-percentage-metric", KV_CACHE_METRIC[group.engine],
        "--lora-info-metric", LORA_METRIC[group.engine],
    ]  # fmt: skip
    health = {"grpc": {"port": EPP_HEALTH_PORT, "service": "inference-extension"}}
    container = {
        "name": "epp",
        "image": route.endpoint_picker_image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [
            {"name": "grpc", "containerPort": EPP_GRPC_PORT},
            {"name": "grpc-health", "containerPort": EPP_HEALTH_PORT},
            {"name": "metrics", "containerPort": EPP_METRICS_PORT},
        ],
        "livenessProbe": {**health, "initialDelaySeconds": 5, "periodSeconds": 10},
        "readinessProbe": {**health, "periodSeconds": 2},
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "volumeMounts": [{"name": "plugins-config", "mountPath": "/config"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _epp_labels(group)},
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "serviceAccountName": epp_name(group),
                    # As long as the longest request it routes may take to drain.
                    "terminationGracePeriodSeconds": 130,
                    "containers": [container],
                    "volumes": [{"name": "plugins-config", "configMap": {"name": epp_name(group)}}],
                },
            },
        },
    }


def epp_metrics_token_secret(group: GroupPlan, namespace: str) -> Manifest:
    """A service-account token Secret (the token controller fills it in; it holds no value of ours), which
    Prometheus presents to the endpoint picker's authenticated metrics endpoint."""
    meta = _metadata(group, namespace, f"{epp_name(group)}-metrics-reader", _epp_labels(group))
    meta["annotations"] = {"kubernetes.io/service-account.name": epp_name(group)}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "kubernetes.io/service-account-token"}


def epp_monitor(group: GroupPlan, namespace: str, spec: MonitorSpec) -> Manifest:
    """A ServiceMonitor of the endpoint picker: its request counters bring a model back from zero groups."""
    token = {"name": f"{epp_name(group)}-metrics-reader", "key": "token"}
    endpoint = {"port": "http-metrics", "path": "/metrics", "interval": spec.interval,
                "authorization": {"credentials": token}}  # fmt: skip
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _metadata(group, namespace, epp_name(group), {**_epp_labels(group), **spec.labels}),
        "spec": {
            "selector": {"matchLabels": _epp_labels(group)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [endpoint],
        },
    }


def http_route(group: GroupPlan, namespace: str, route: RouteSpec) -> Manifest:
    parent: Manifest = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": route.gateway,
                        "namespace": route.gateway_namespace}  # fmt: skip
    if route.section_name:
        parent["sectionName"] = route.section_name
    match: Manifest = {"path": {"type": "PathPrefix", "value": "/"}}
    if route.match_model_header:
        match["headers"] = [{"type": "Exact", "name": MODEL_HEADER, "value": group.name}]
    spec: Manifest = {
        "parentRefs": [parent],
        "rules": [
            {
                "matches": [match],
                "backendRefs": [{"group": INFERENCE_POOL_GROUP, "kind": "InferencePool", "name": group.name}],
            }
        ],
    }
    if route.hostnames:
        spec["hostnames"] = list(route.hostnames)
    return {"apiVersion": GATEWAY_API_VERSION, "kind": "HTTPRoute", "metadata": _metadata(group, namespace),
            "spec": spec}  # fmt: skip
