"""autoscaler-target, autoscaler-metric and lws-autoscaling: on the LWS project's own HPA example, on what this
stack renders, and on one defect at a time."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from lws_guard.pack import resource_policies, stack_policies

from config.load import parse
from plan.group import plan_stack
from plan.manifests import Placement, leader_worker_set
from plan.operations import autoscaler
from plan.scaling import resolve
from tests.factories import set_path, tiny_model
from tests.policies.helpers import run_resource_policy, run_stack_policy

DATA = Path(__file__).resolve().parents[1] / "data" / "operations"
Obj = dict[str, Any]


def policy(name: str) -> Any:
    (found,) = [p for p in [*resource_policies(), *stack_policies()] if p.name == name]
    return found


def target_violations(obj: Obj) -> list[str]:
    return run_resource_policy(policy("autoscaler-target"), obj)


def stack_violations(name: str, objs: list[Obj]) -> list[str]:
    return run_stack_policy(policy(name), list[Mapping[str, Any]](objs))


def lws_docs_example() -> list[Obj]:
    return [d for d in yaml.safe_load_all((DATA / "lws-docs-vllm-cpu-hpa.yaml").read_text()) if d]


def rendered(engine: str = "vllm", **autoscaling: Any) -> list[Obj]:
    """The LeaderWorkerSet and autoscaler this stack renders for a small model."""
    raw = set_path(tiny_model(engine), "models[0].serving.autoscaling", {"maxReplicas": 3, **autoscaling})
    config = parse(raw)
    (group,) = plan_stack(config).groups
    scaling = config.models[0].serving.autoscaling
    assert scaling is not None
    lws = leader_worker_set(group, Placement("inference", "models", "/models"))
    return [lws, autoscaler(group, "inference", resolve(scaling, group, "inference", gateway=False))]


# ---- inputs we did not write -------------------------------------------------------------------


def test_the_lws_docs_cpu_hpa_is_valid_but_advised_against_on_a_gpu_group() -> None:
    objs = lws_docs_example()
    assert target_violations(objs[1]) == []
    assert stack_violations("autoscaler-metric", objs) == []
    (advice,) = stack_violations("lws-autoscaling", objs)
    assert advice.startswith("HorizontalPodAutoscaler default/vllm: scales LeaderWorkerSet default/vllm (8 GPUs")
    assert "on CPU" in advice


def test_two_groups_without_an_autoscaler_are_advised_to_get_one() -> None:
    lws, _ = lws_docs_example()
    (advice,) = stack_violations("lws-autoscaling", [lws])
    assert advice.startswith("LeaderWorkerSet default/vllm: 2 groups and no autoscaler")


# ---- what this stack renders passes --------------------------------------------------------------


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
@pytest.mark.parametrize("backend", ["keda", "hpa"])
def test_the_rendered_queue_autoscaler_passes_every_autoscaling_policy(engine: str, backend: str) -> None:
    objs = rendered(engine, backend=backend)
    assert target_violations(objs[1]) == []
    assert stack_violations("autoscaler-metric", objs) == []
    assert stack_violations("lws-autoscaling", objs) == []


# ---- one defect each -----------------------------------------------------------------------------


def test_a_gpu_resource_metric_cannot_exist() -> None:
    _, hpa = copy.deepcopy(lws_docs_example())
    hpa["spec"]["metrics"][0]["resource"]["name"] = "nvidia.com/gpu"
    (message,) = target_violations(hpa)
    assert "reads resource nvidia.com/gpu, which the resource metrics API never serves" in message


def test_an_autoscaler_without_a_target_name_or_value_is_denied() -> None:
    _, hpa = copy.deepcopy(lws_docs_example())
    del hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
    (message,) = target_violations(hpa)
    assert "metrics[0] (Resource) has no target value" in message
    del hpa["spec"]["scaleTargetRef"]["name"]
    assert "scaleTargetRef has no name" in target_violations(hpa)[0]


def test_a_scaled_object_on_cpu_alone_cannot_come_back_from_zero() -> None:
    _, scaled = rendered(metric="cpu", targetCpuUtilization=80)
    scaled["spec"]["minReplicaCount"] = 0
    (message,) = target_violations(scaled)
    assert "minReplicaCount 0 with only cpu/memory triggers" in message


def test_the_other_engines_gauge_is_denied_with_the_engine_named() -> None:
    lws, scaled = rendered("vllm")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    trigger["query"] = trigger["query"].replace("vllm:num_requests_waiting", "sglang:num_queue_reqs")
    (message,) = stack_violations("autoscaler-metric", [lws, scaled])
    assert "reads sglang:num_queue_reqs, but LeaderWorkerSet inference/tiny runs vllm" in message


def test_sglang_without_enable_metrics_has_no_queue_gauge() -> None:
    lws, scaled = rendered("sglang")
    for template in ("leaderTemplate", "workerTemplate"):
        container = lws["spec"]["leaderWorkerTemplate"][template]["spec"]["containers"][0]
        container["command"] = [a for a in container["command"] if a != "--enable-metrics"]
    (message,) = stack_violations("autoscaler-metric", [lws, scaled])
    assert "runs without --enable-metrics" in message


def test_a_model_name_the_group_does_not_serve_never_has_a_series() -> None:
    lws, scaled = rendered("vllm")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    trigger["query"] = trigger["query"].replace('model_name="tiny"', 'model_name="qwen"')
    (message,) = stack_violations("autoscaler-metric", [lws, scaled])
    assert 'selects model_name="qwen", but LeaderWorkerSet inference/tiny serves the model as "tiny"' in message


def test_an_autoscaler_of_a_group_missing_from_the_stack_is_denied() -> None:
    _, scaled = rendered()
    (message,) = stack_violations("autoscaler-metric", [scaled])
    assert "scales LeaderWorkerSet inference/tiny, which this stack does not declare" in message


def test_odd_objects_never_raise() -> None:
    for obj in ({"kind": "ScaledObject", "spec": {"scaleTargetRef": {"kind": "LeaderWorkerSet"}, "triggers": "x"}},
                {"kind": "HorizontalPodAutoscaler", "spec": {"scaleTargetRef": {"kind": "LeaderWorkerSet", "name": 3},
                 "metrics": [None, {"type": "Pods"}]}}):  # fmt: skip
        target_violations({"apiVersion": "keda.sh/v1alpha1", **obj})
        stack_violations("autoscaler-metric", [{"apiVersion": "keda.sh/v1alpha1", **obj}])
