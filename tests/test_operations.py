"""Serving operations: what a user's autoscaling, monitoring and gateway config turns into, and what the plan
refuses. The objects themselves are validated by a real API server against the add-ons' CRDs in
tests/e2e/test_operations.py."""

from __future__ import annotations

from typing import Any

import pytest

from config.load import parse
from plan.group import PlanError, plan_stack
from plan.operations import autoscaler, endpoint_picker, http_route, inference_pool, monitor
from plan.scaling import queue_query, resolve
from tests.factories import cce_llama405b, set_path, tiny_model
from tests.test_components import Recorder, deploy, recorder, reveal  # noqa: F401 (the fixture)

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def scaled(raw: dict[str, Any], **autoscaling: Any) -> dict[str, Any]:
    return set_path(raw, "models[0].serving.autoscaling", autoscaling)


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(PlanError) as error:
        plan_stack(parse(raw))
    return [str(p) for p in error.value.problems]


def advisories(raw: dict[str, Any]) -> list[str]:
    return [str(p) for p in plan_stack(parse(raw)).advisories]


def only_group(raw: dict[str, Any]) -> Any:
    (group,) = plan_stack(parse(raw)).groups
    return group


# ---- the queue metric and the KEDA ScaledObject -------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "gauge"), [("vllm", "vllm:num_requests_waiting"), ("sglang", "sglang:num_queue_reqs")]
)
def test_queue_scaling_reads_the_engines_own_gauge_for_this_model(engine: str, gauge: str) -> None:
    raw = scaled(tiny_model(engine), maxReplicas=4)
    config = parse(raw)
    group = only_group(raw)
    plan = resolve(config.models[0].serving.autoscaling, group, "inference", gateway=False)  # type: ignore[arg-type]
    obj = autoscaler(group, "inference", plan)
    assert obj["kind"] == "ScaledObject"
    (trigger,) = obj["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    # The served model name is the deployment's name, which the engines put in the label model_name.
    assert trigger["metadata"]["query"] == f'sum({gauge}{{namespace="inference",model_name="tiny"}})'
    assert trigger["metadata"]["threshold"] == "8"
    assert obj["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "tiny",
    }


def test_scale_down_waits_the_startup_budget_so_a_long_load_is_not_flapped() -> None:
    raw = scaled(cce_llama405b(), maxReplicas=2)
    group = only_group(raw)
    assert group.startup_seconds > 600  # 405B over NFS: a long load
    plan = resolve(parse(raw).models[0].serving.autoscaling, group, "inference", gateway=False)  # type: ignore[arg-type]
    behavior = autoscaler(group, "inference", plan)["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == min(3600, group.startup_seconds)
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_scale_to_zero_waits_at_least_the_startup_budget_and_is_activated_by_gateway_demand() -> None:
    raw = scaled(tiny_model(), minReplicas=0, maxReplicas=2)
    raw["cluster"]["gateway"] = {"name": "inference-gateway"}
    group = only_group(raw)
    plan = resolve(parse(raw).models[0].serving.autoscaling, group, "inference", gateway=True)  # type: ignore[arg-type]
    spec = autoscaler(group, "inference", plan)["spec"]
    assert spec["minReplicaCount"] == 0
    assert spec["cooldownPeriod"] == max(300, group.startup_seconds)
    queue, demand = spec["triggers"]
    assert queue["metadata"]["activationThreshold"] == "0"
    assert "inference_model_request_error_total" in demand["metadata"]["query"]


def test_scale_to_zero_on_the_queue_alone_is_refused_since_no_engine_reports_one() -> None:
    (problem,) = problems(scaled(tiny_model(), minReplicas=0, maxReplicas=2))
    assert problem.startswith("models[0].serving.autoscaling.minReplicas: ")
    assert "vllm:num_requests_waiting" in problem and "cluster.gateway" in problem


def test_a_short_stabilization_window_or_cooldown_is_advice_with_the_recommended_value() -> None:
    raw = scaled(cce_llama405b(), maxReplicas=2, scaleDownStabilizationSeconds=60)
    group = only_group(raw)
    (advice,) = [a for a in advisories(raw) if ".serving.autoscaling." in a]
    assert advice.startswith("models[0].serving.autoscaling.scaleDownStabilizationSeconds: 60 s is shorter")
    assert f"use at least {min(3600, group.startup_seconds)}" in advice


# ---- bounds against the cluster's GPUs ---------------------------------------------------------


def test_max_replicas_beyond_the_gpu_nodes_is_refused_with_the_numbers() -> None:
    raw = scaled(cce_llama405b(), maxReplicas=3)
    raw["cluster"]["gpu"]["nodes"] = 4  # 4 nodes x 8 GPUs hold 2 groups of 2 pods x 8 GPUs
    (problem,) = problems(raw)
    assert problem == (
        "models[0].serving.autoscaling.maxReplicas: 3 groups of 2 pods x 8 GPUs (48 GPUs) do not fit in "
        "cluster.gpu.nodes = 4 nodes x 8 GPUs: at most 2 groups; the autoscaler would add groups whose pods stay "
        "Pending while the placed ones hold their GPUs idle"
    )
    raw["cluster"]["gpu"]["nodes"] = 6
    plan_stack(parse(raw))


def test_cpu_scaling_of_a_gpu_group_is_advice_and_keeps_todays_hpa() -> None:
    raw = scaled(tiny_model(), maxReplicas=3, backend="hpa", targetCpuUtilization=70)
    (advice,) = advisories(raw)
    assert advice.startswith("models[0].serving.autoscaling.metric: CPU utilization says nothing")
    group = only_group(raw)
    plan = resolve(parse(raw).models[0].serving.autoscaling, group, "inference", gateway=False)  # type: ignore[arg-type]
    (metric,) = autoscaler(group, "inference", plan)["spec"]["metrics"]
    utilization = {"type": "Utilization", "averageUtilization": 70}
    assert metric == {"type": "Resource", "resource": {"name": "cpu", "target": utilization}}


@pytest.mark.parametrize(
    ("autoscaling", "message"),
    [
        ({"minReplicas": 0, "maxReplicas": 2, "backend": "hpa"}, "minReplicas 0 needs backend keda"),
        ({"minReplicas": 0, "maxReplicas": 2, "metric": "cpu"}, "minReplicas 0 needs metric queue or query"),
        ({"maxReplicas": 2, "metric": "query"}, "metric query needs query and targetValue"),
        ({"maxReplicas": 2, "query": "up"}, "query is only read with metric query"),
    ],
)
def test_autoscaling_that_cannot_work_names_the_key(autoscaling: dict[str, Any], message: str) -> None:
    from config.load import ConfigError

    with pytest.raises(ConfigError) as error:
        parse(scaled(tiny_model(), **autoscaling))
    assert "models[0].serving.autoscaling" in str(error.value) and message in str(error.value)


def test_hpa_on_the_queue_is_a_pods_metric_averaged_over_the_leaders() -> None:
    raw = scaled(tiny_model("sglang"), maxReplicas=3, backend="hpa", targetQueueLength=4)
    group = only_group(raw)
    plan = resolve(parse(raw).models[0].serving.autoscaling, group, "inference", gateway=False)  # type: ignore[arg-type]
    hpa = autoscaler(group, "inference", plan)
    assert hpa["spec"]["metrics"] == [
        {"type": "Pods", "pods": {"metric": {"name": "sglang:num_queue_reqs"},
                                  "target": {"type": "AverageValue", "averageValue": "4"}}}
    ]  # fmt: skip
    assert queue_query(group, "inference").startswith("sum(sglang:num_queue_reqs{")


# ---- monitoring and routing --------------------------------------------------------------------


def test_pod_monitor_scrapes_only_the_leaders_serving_port() -> None:
    from plan.operations import MonitorSpec

    group = only_group(tiny_model())
    found = monitor(group, "inference", MonitorSpec("PodMonitor", "15s", {"release": "kube-prometheus-stack"}))
    assert found["apiVersion"] == "monitoring.coreos.com/v1"
    assert found["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert found["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "leader"
    assert found["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]


def test_inference_pool_selects_the_leaders_and_names_its_endpoint_picker() -> None:
    from plan.operations import RouteSpec

    group = only_group(tiny_model("sglang"))
    route = RouteSpec("gw", "gateways", None, (), "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.1", True)
    pool = inference_pool(group, "inference")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "tiny",
                                                       "app.kubernetes.io/component": "leader"}  # fmt: skip
    assert pool["spec"]["endpointPickerRef"] == {"name": "tiny-epp", "port": {"number": 9002}}
    kinds = [o["kind"] for o in endpoint_picker(group, "inference", route)]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                     "Deployment", "Service"]  # fmt: skip
    deployment = next(o for o in endpoint_picker(group, "inference", route) if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    # The picker reads SGLang's queue and KV cache gauges, not vLLM's defaults.
    assert args[args.index("--total-queued-requests-metric") + 1] == "sglang:num_queue_reqs"
    assert args[args.index("--kv-cache-usage-percentage-metric") + 1] == "sglang:token_usage"
    rule = http_route(group, "inference", route)["spec"]["rules"][0]
    assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "tiny"}]
    assert rule["matches"][0]["headers"] == [{"type": "Exact", "name": "X-Gateway-Model-Name", "value": "tiny"}]


# ---- the component under mocks -----------------------------------------------------------------


def test_the_stack_declares_scaled_object_monitor_and_routing_per_model(recorder: Recorder) -> None:  # noqa: F811
    raw = scaled(tiny_model(), minReplicas=0, maxReplicas=2)
    raw["cluster"]["monitoring"] = {"labels": {"release": "prom"}, "controller": True}
    raw["cluster"]["gateway"] = {"name": "inference-gateway", "namespace": "gateways"}
    deploy(recorder, raw)
    assert recorder.of_type("lws-inference:operations:ModelOperations")
    assert recorder.one(SCALED_OBJECT)["spec"]["minReplicaCount"] == 0
    assert not recorder.of_type(HPA)
    assert recorder.one("kubernetes:monitoring.coreos.com/v1:PodMonitor")["metadata"]["labels"]["release"] == "prom"
    assert recorder.one("kubernetes:inference.networking.k8s.io/v1:InferencePool")
    assert recorder.one("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
    [picker] = recorder.stacks_own("kubernetes:apps/v1:Deployment")
    assert reveal(picker.inputs)["metadata"]["name"] == "tiny-epp"
    # Prometheus and the Gateway's proxies reach the serving port through the group's NetworkPolicy.
    policies = recorder.stacks_own("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    [group_policy] = [r for r in policies if "tiny" in r.name]
    policy = reveal(group_policy.inputs)
    allowed = policy["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert {"monitoring", "gateways"} <= set(allowed)
    [values] = [t["values"] for t in recorder.templates]  # the chart rendered once, with these values
    assert values["enablePrometheus"] is True


def test_without_operations_config_nothing_extra_is_declared(recorder: Recorder) -> None:  # noqa: F811
    deploy(recorder, tiny_model())
    assert not recorder.of_type(SCALED_OBJECT) and not recorder.of_type(HPA)
    assert not [r for r in recorder.resources if "monitoring.coreos.com" in r.typ or "inference.networking" in r.typ]
