"""The policy pack on the real program, as a pull request runs it: `pulumi up` with the pack and the stack's
policy config. The default stack passes; a stack that breaks a mandatory policy (here through a hand-written
LeaderWorkerSet in `manifests`, which the planner never sees, or a controller version the cluster does not pin)
fails with that policy's message, and nothing is rendered. That the default stack passes is checked on the first
preview of test_default_stack.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from harness.scratch import Project
from tests.policies.helpers import CONFIG_DIR, LEADER, WORKER, load, set_in

pytestmark = pytest.mark.engine

Obj = dict[str, Any]


def with_policy_pack(project: Project, *args: str) -> Any:
    return project.pulumi(
        *args, "--policy-pack", "policies", "--policy-pack-config", str(CONFIG_DIR / "dev.json"), check=False
    )


def on_a10(lws: Obj) -> Obj:
    for spec in (LEADER, WORKER):
        lws = set_in(lws, f"{spec}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-A10"})
    return lws


def shm_over_the_memory_limit(lws: Obj) -> Obj:
    """A /dev/shm below the recommended floor is advice; one beyond the 24Gi memory limit is an OOM kill."""
    for spec in (LEADER, WORKER):
        lws = set_in(lws, f"{spec}.volumes.1.emptyDir.sizeLimit", "64Gi")
    return lws


def tp_four(lws: Obj) -> Obj:
    script = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["command"][-1]
    return set_in(lws, f"{LEADER}.containers.0.command.2", script.replace("--tensor-parallel-size 2", "-tp 4"))


def literal_token(lws: Obj) -> Obj:
    return set_in(lws, f"{LEADER}.containers.0.env", [{"name": "HF_TOKEN", "value": "hf_literal"}])


@pytest.mark.parametrize(
    ("policy", "break_it"),
    [("gpu-memory", on_a10), ("shared-memory", shm_over_the_memory_limit), ("parallelism", tp_four),
     ("no-plaintext-secrets", literal_token)],
)  # fmt: skip
def test_a_hand_written_group_that_breaks_a_policy_is_refused(
    project: Project, policy: str, break_it: Callable[[Obj], Obj]
) -> None:
    (lws,) = load("ack_qwen3_vllm")
    assert break_it(lws) != lws
    (project.path / "group.yaml").write_text(yaml.safe_dump(break_it(lws)))
    project.set("manifests[0]", "group.yaml")
    refused(project, policy)


def test_a_controller_version_the_cluster_does_not_pin_is_refused(project: Project) -> None:
    project.set("cluster.lws.version", "0.8.0")
    refused(project, "no-online-upgrade")


def refused(project: Project, policy: str) -> None:
    result = with_policy_pack(project, "up", "--yes")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"[mandatory]  {policy}" in output or f"mandatory] {policy}" in output, output
    assert project.manifests() == [], "a refused stack must apply nothing"
