"""Every command the planner generates is accepted by the parser of the image's engine release, and the engine
reads the plan's numbers from it.

Each pod's command is expanded with that pod's LWS environment as Kubernetes expands it, split as its shell
splits it (`&&`, `exec`), and every program in it parsed: the vLLM server by vLLM's own parser, the Ray start
of multi-node-serving.sh by Ray's own `ray start`, the SGLang server by ServerArgs' parser. Stacks: every
Pulumi.<stack>.yaml and examples/Pulumi.*.yaml, the test factories' seed examples, and a property-based sweep
of the configs tests/test_plan_properties.py draws.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from config.load import parse
from config.model import StackConfig
from engine_parsers.check import (
    ENGINE_FIELDS,
    check_pod,
    check_stack,
    engine_release,
    load_stack,
    pods,
)
from engine_parsers.client import EngineParsers
from kernel.catalog import Engine
from plan.group import PlanError, plan_stack
from tests.factories import SGLANG_IMAGE, VLLM_IMAGE, ack_qwen3_32b, cce_llama405b, set_path, tiny_model
from tests.test_plan_properties import valid_stacks

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = [*sorted(ROOT.glob("Pulumi.*.yaml")), *sorted((ROOT / "examples").glob("Pulumi.*.yaml"))]
VLLM_ONLY_FLAG = "--enable-prefix-caching"
SEEDS = {
    "cce-llama405b": cce_llama405b(),
    "ack-qwen3-vllm": ack_qwen3_32b("vllm"),
    "ack-qwen3-sglang": ack_qwen3_32b("sglang"),
    "tiny-vllm": tiny_model("vllm"),
    "tiny-sglang": tiny_model("sglang"),
    "tiny-vllm-one-pod": set_path(tiny_model("vllm"), "models[0].serving.tensorParallel", 1),
    "tiny-sglang-one-pod": set_path(tiny_model("sglang"), "models[0].serving.tensorParallel", 1),
}


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_pod_of_every_stack_file_runs_what_its_engine_accepts(path: Path, parsers: EngineParsers) -> None:
    assert check_stack(load_stack(path), parsers) == []


@pytest.mark.parametrize("name", SEEDS)
def test_every_pod_of_the_seed_examples_runs_what_its_engine_accepts(name: str, parsers: EngineParsers) -> None:
    assert check_stack(parse(SEEDS[name]), parsers) == []


def test_the_cce_group_starts_ray_on_two_nodes_then_vllm_with_tp8_pp2(parsers: EngineParsers) -> None:
    """What each pod of the CCE example runs, program by program, as the engines read it."""
    config = parse(cce_llama405b())
    (group,) = plan_stack(config).groups
    leader, worker = (check_pod(pod, parsers) for pod in pods(group, config.cluster.namespace))
    assert [(c.invocation.program, c.invocation.entrypoint) for c in leader] == [
        ("ray-script", "leader"),
        ("vllm", "api_server"),
    ]
    assert leader[0].parsed.values["ray_cluster_size"] == "2" and leader[0].parsed.values["head"] is True
    server = leader[1].parsed.values
    assert (server["tensor_parallel_size"], server["pipeline_parallel_size"]) == (8, 2)
    assert server["distributed_executor_backend"] == "ray"
    assert [(c.invocation.program, c.invocation.entrypoint) for c in worker] == [("ray-script", "worker")]
    assert worker[0].parsed.values["address"] == "llama-405b-0.llama-405b.inference:6379"
    assert worker[0].parsed.values["block"] is True


def test_sglang_workers_read_their_own_rank_and_the_leaders_address(parsers: EngineParsers) -> None:
    config = parse(set_path(tiny_model("sglang"), "models[0].serving.tensorParallel", 4))
    (group,) = plan_stack(config).groups
    ranks = []
    for pod in pods(group, config.cluster.namespace):
        (server,) = check_pod(pod, parsers)
        assert server.parsed.accepted, server.parsed.error
        values = server.parsed.values
        ranks.append(values["node_rank"])
        assert (values["tp_size"], values["nnodes"]) == (4, 4)
        assert values["dist_init_addr"] == "tiny-0.tiny.inference:20000"
    assert ranks == [0, 1, 2, 3]


def pinned(raw: dict[str, Any]) -> dict[str, Any]:
    """The drawn stack on the images tools/engines pins, memory fractions at two decimals (see below), and
    without the vLLM-only flag the drawn extraArgs give SGLang too (see the test after the sweep)."""
    raw = copy.deepcopy(raw)
    for model in raw["models"]:
        serving = model["serving"]
        serving["image"] = VLLM_IMAGE if serving["engine"] == "vllm" else SGLANG_IMAGE
        if serving["engine"] == "sglang":
            serving["extraArgs"] = [a for a in serving.get("extraArgs", []) if a != VLLM_ONLY_FLAG]
        for key in ("gpuMemoryUtilization", "memFractionStatic"):
            if key in serving:
                serving[key] = round(serving[key], 2)
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_stacks())
def test_every_command_the_planner_generates_is_accepted_with_the_plans_numbers(
    parsers: EngineParsers, raw: dict[str, Any]
) -> None:
    config: StackConfig = parse(pinned(raw))
    try:
        plan_stack(config)
    except PlanError:
        assume(False)
    assert check_stack(config, parsers) == []


def test_a_vllm_flag_in_sglangs_extra_args_is_refused_by_sglang(parsers: EngineParsers) -> None:
    """SGLang caches prefixes unless --disable-radix-cache; it has no --enable-prefix-caching, and would exit."""
    config = parse(set_path(tiny_model("sglang"), "models[0].serving.extraArgs", [VLLM_ONLY_FLAG]))
    problems = check_stack(config, parsers)
    assert problems == [
        f"models[0] (tiny) {role}: sglang-0.4.10.post2 (sglang launch_server) refuses the command: "
        f"launch_server.py: error: unrecognized arguments: {VLLM_ONLY_FLAG}"
        for role in ("leader", "worker 1")
    ]


def test_the_engine_reads_the_memory_fraction_the_plan_sized_for(parsers: EngineParsers) -> None:
    """Every digit of the fraction the plan sized for reaches the engine (`:g` once rounded 0.8765432)."""
    config = parse(set_path(tiny_model("vllm"), "models[0].serving.gpuMemoryUtilization", 0.8765432))
    (group,) = plan_stack(config).groups
    (pod, _) = pods(group, config.cluster.namespace)
    (_, server) = check_pod(pod, parsers)
    assert server.parsed.values[ENGINE_FIELDS[Engine.VLLM]["fraction"]] == 0.8765432


def test_an_image_whose_release_has_no_parser_is_named(parsers: EngineParsers) -> None:
    config = parse(set_path(tiny_model("vllm"), "models[0].serving.image", "vllm/vllm-openai:v0.11.0"))
    (group,) = plan_stack(config).groups
    with pytest.raises(ValueError, match=r"vllm/vllm-openai:v0\.11\.0 runs vllm 0\.11\.0.*tools/engines/vllm-0\.11\.0"):
        engine_release(group)
    (problem,) = check_stack(config, parsers)
    assert problem.startswith("models[0] (tiny).serving.image: ")
