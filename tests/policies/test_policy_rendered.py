"""What our components deploy passes the pack: objects rendered by plan.manifests from the example
stacks (tests/factories.py), as plain dicts and with numbers as floats, as the engine sends them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lws_guard.gpu_memory import assess
from lws_guard.pack import RESOURCE_RULES
from lws_guard.settings import Settings
from lws_guard.upgrade import StackResource, check_no_online_upgrade_drained

from config.load import parse
from kernel.units import fmt_gib
from plan.group import GroupPlan, plan_stack
from plan.manifests import OssVolume, Placement, controller_values, leader_worker_set, model_volume
from scripts.policy_config import policy_config
from tests import factories
from tests.policies.helpers import LWS, floats, settings_for

STACKS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "cce-llama-405b": (factories.cce_llama405b, "cce"),
    "ack-qwen3-vllm": (lambda: factories.ack_qwen3_32b("vllm"), "ack"),
    "ack-qwen3-sglang": (lambda: factories.ack_qwen3_32b("sglang"), "ack"),
    "tiny-vllm": (lambda: factories.tiny_model("vllm"), "dev"),
    "tiny-sglang": (lambda: factories.tiny_model("sglang"), "dev"),
}


def rendered(example: str, max_num_seqs: int | None = None) -> tuple[GroupPlan, dict[str, Any]]:
    raw = STACKS[example][0]()
    if max_num_seqs is not None:
        raw["models"][0]["serving"]["maxNumSeqs"] = max_num_seqs
    config = parse(raw)
    [group] = plan_stack(config).groups
    placement = Placement(
        namespace="inference",
        claim_name="models" if config.cluster.storage.oss or config.cluster.storage.nfs else None,
        mount_path=config.cluster.storage.mount_path,
        hf_token_secret="hf-token",
    )
    return group, leader_worker_set(group, placement)


@pytest.mark.parametrize("example", sorted(STACKS))
@pytest.mark.parametrize("as_floats", [False, True])
def test_rendered_groups_pass_every_policy(example: str, as_floats: bool) -> None:
    _, lws = rendered(example)
    obj = floats(lws) if as_floats else lws
    # The policy config generated from the very cluster profile the group was planned for (one source).
    generated = policy_config(parse(STACKS[example][0]()).cluster)
    for rule in RESOURCE_RULES:
        settings = Settings.from_config(generated.get(rule.name, {}))
        assert rule.check(LWS, obj, settings, name=example) == [], rule.name


@pytest.mark.parametrize("example", sorted(STACKS))
def test_rendered_groups_use_the_annotated_shape(example: str) -> None:
    """The annotations carry the full shape: the pack reproduces the plan's own estimate."""
    group, lws = rendered(example)
    cramped = Settings.from_config({"gpuMemoryMiB": {group.gpu_product: 1024}})
    [message] = assess(LWS, lws, cramped).denials
    assert f"with TP={group.parallelism.tensor} x PP={group.parallelism.pipeline}" in message
    assert f"of KV cache for {group.max_model_len} tokens" in message
    assert "model from the inference.lws.dev/* annotations" in message


@pytest.mark.parametrize("example", sorted(STACKS))
@pytest.mark.parametrize("max_num_seqs", [64, 1024])
def test_the_pack_needs_what_the_plan_needs(example: str, max_num_seqs: int) -> None:
    """One estimate, two callers: the sampler peak grows with the sequences the command allows."""
    group, lws = rendered(example, max_num_seqs)
    cramped = Settings.from_config({"gpuMemoryMiB": {group.gpu_product: 1024}})
    [message] = assess(LWS, lws, cramped).denials
    assert f"{fmt_gib(group.memory.overhead)} runtime" in message


def test_controller_chart_values_pass() -> None:
    chart = {
        "chart": "oci://registry.k8s.io/lws/charts/lws",
        "version": "0.7.0",
        "values": controller_values("0.7.0", None),
    }
    for rule in RESOURCE_RULES:
        assert rule.check("kubernetes:helm.sh/v4:Chart", chart, settings_for("ack", rule.name)) == []


def test_model_volume_passes() -> None:
    source = OssVolume("bucket", "oss-cn-hangzhou-internal.aliyuncs.com", "/", "-o allow_other", "oss", "inference")
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", **model_volume("models", 1024, source)}
    for rule in RESOURCE_RULES:
        assert rule.check("kubernetes:core/v1:PersistentVolume", volume, settings_for("ack", rule.name)) == []


def test_rendered_stack_passes_the_stack_policy() -> None:
    resources = [StackResource(LWS, rendered(example)[1], example) for example in STACKS]
    assert check_no_online_upgrade_drained(resources, settings_for("ack", "no-online-upgrade-drained")) == []
