"""The default stack's models on a cluster without a controller (mode none, workload statefulset), through the
real engine in render mode, and through the policy pack: StatefulSets instead of LeaderWorkerSets, no chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scratch import Project, default_stack_config, scratch_project

pytestmark = pytest.mark.engine


@pytest.fixture
def statefulsets(tmp_path: Path) -> Project:
    config = default_stack_config()
    config["config"]["lws-inference:cluster"]["lws"] = {"mode": "none", "workload": "statefulset"}
    # Plain StatefulSets cannot scale whole groups (refused at serving.autoscaling): fixed counts here.
    models = [m for m in config["config"]["lws-inference:models"] if m["name"] in ("llama-3-1-405b", "qwen3-32b")]
    for model in models:
        if model["serving"].pop("autoscaling", None) is not None:
            model["serving"]["replicas"] = 2
    config["config"]["lws-inference:models"] = models
    return scratch_project(tmp_path, config)


def test_up_renders_statefulsets_with_the_lws_env_and_no_controller(statefulsets: Project) -> None:
    statefulsets.pulumi("up", "--yes", "--skip-preview")
    assert statefulsets.objects("LeaderWorkerSet") == {} and statefulsets.objects("Deployment") == {}
    sets = statefulsets.objects("StatefulSet")
    # llama: 2 groups of 2 pods (a leader set of 2, a worker set per group); qwen3: 1 group of 2 pods.
    assert set(sets) == {"llama-3-1-405b", "llama-3-1-405b-0", "llama-3-1-405b-1", "qwen3-32b", "qwen3-32b-0"}
    worker = sets["llama-3-1-405b-1"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["LWS_LEADER_ADDRESS"] == "llama-3-1-405b-1.llama-3-1-405b.inference"
    assert "--ray_address=$(LWS_LEADER_ADDRESS)" in worker["command"][-1]
    assert statefulsets.objects("Service")["llama-3-1-405b"]["spec"]["clusterIP"] == "None"
    statefulsets.pulumi("preview", "--expect-no-changes")
