"""What `pulumi up` waits for on a LeaderWorkerSet: every group Ready, not merely Available.

The annotation is read by the pinned provider (pulumi-kubernetes provider/v4 pkg/metadata/overrides.go
ReadyCondition): a JSON array whose entries all must hold, each `condition=<type>` or `jsonpath={<RFC 9535
path>}[=<value>]`, split on a single `=` (`==` inside a filter is kept). The e2e tests (tests/e2e) check on the
local cluster that `up` returns with every pod Ready."""

from __future__ import annotations

import json

import pytest

from config.load import parse
from plan.group import plan_stack
from plan.manifests import EVERY_GROUP_READY, WAIT_FOR_ANNOTATION, Placement, leader_worker_set
from tests.factories import ack_qwen3_32b, set_path

PLACEMENT = Placement(namespace="inference", claim_name="models", mount_path="/models")


def awaited(replicas: int) -> list[str]:
    [group] = plan_stack(parse(set_path(ack_qwen3_32b("vllm"), "models[0].serving.replicas", replicas))).groups
    annotations = leader_worker_set(group, PLACEMENT)["metadata"]["annotations"]
    conditions: list[str] = json.loads(annotations[WAIT_FOR_ANNOTATION])
    return conditions


def provider_parse(expression: str) -> tuple[str, str | None]:
    """The provider's split of a jsonpath= entry into path and expected value (pkg/jsonpath Parse)."""
    parts = expression.removeprefix("jsonpath=").replace("==", "\0").split("=")
    assert len(parts) <= 2, "the provider refuses more than one '=' outside '=='"
    path = parts[0].replace("\0", "==")
    assert path.startswith("{") and path.endswith("}"), "the provider wants the path in braces"
    return path, parts[1] if len(parts) == 2 else None


@pytest.mark.parametrize("replicas", [1, 3])
def test_up_waits_for_every_group_ready_and_the_rollout_done(replicas: int) -> None:
    conditions = awaited(replicas)
    assert conditions == [EVERY_GROUP_READY, "condition=Available"]
    path, value = provider_parse(EVERY_GROUP_READY)
    # Compared with the live spec.replicas, not a number of ours: right for a group an autoscaler resizes.
    assert "readyReplicas==$.spec.replicas" in path and value is None
    assert str(replicas) not in path


def test_a_group_scaled_to_zero_waits_only_for_available() -> None:
    """With no group, LWS omits readyReplicas, so the ready-count path would never match."""
    assert awaited(0) == ["condition=Available"]
