"""The stack files users copy plan as the source documents' examples do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config.load import parse
from plan.group import plan_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = [ROOT / "Pulumi.dev.yaml", *sorted((ROOT / "examples").glob("Pulumi.*.yaml"))]


def stack_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("lws-inference:")}


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_every_stack_file_plans(path: Path) -> None:
    assert plan_stack(parse(stack_config(path))).groups


def test_ack_example_is_tp2_over_two_l20_pods() -> None:
    (group,) = plan_stack(parse(stack_config(ROOT / "examples" / "Pulumi.ack.yaml"))).groups
    assert (group.parallelism.tensor, group.group_size, group.parallelism.gpus_per_pod) == (2, 2, 1)


def test_cce_example_is_two_groups_of_two_pods_tp8_pp2() -> None:
    (group,) = plan_stack(parse(stack_config(ROOT / "examples" / "Pulumi.cce.yaml"))).groups
    assert (group.replicas, group.group_size, group.parallelism.gpus_per_pod) == (2, 2, 8)
    assert (group.parallelism.tensor, group.parallelism.pipeline) == (8, 2)
    assert group.restart_policy == "RecreateGroupOnPodRestart"  # LWS 0.6.1 has no RecreateGroupAfterStart


@pytest.mark.parametrize("path", STACKS, ids=lambda p: p.name)
def test_every_stack_file_has_a_policy_config(path: Path) -> None:
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    assert (ROOT / "policies" / "config" / f"{stack}.json").exists()
