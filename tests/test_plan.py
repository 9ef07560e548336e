"""The plan: the numbers of every group, derived from stack config and checked before any resource exists.

The two seed examples (Huawei Cloud CCE: Llama-3.1-405B; Alibaba Cloud ACK: Qwen3-32B) must plan as
the vendors deploy them; the failure modes of docs/peers (section D) must be refused with a message
that names the config key and says what to do.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from config.load import parse
from kernel.annotations import read_model_annotations
from kernel.catalog import BYTES_PER_PARAMETER, Dtype, Engine
from kernel.commands import SGLANG_DIST_PORT, VLLM_MULTINODE_SCRIPT, read_flags
from kernel.rules import GroupShape, check_env_expansion, check_parallelism, check_shared_memory
from kernel.sizing import (
    ModelShape,
    estimate_memory,
    pod_memory_bytes,
    shm_floor_bytes,
    startup_budget_seconds,
    weight_bytes,
)
from kernel.units import GIB, MIB
from plan.group import GroupPlan, PlanError, Problem, StackPlan, mirror_image, plan_stack
from tests.factories import (
    ack_qwen3_32b,
    cce_llama405b,
    delete_path,
    deployment,
    set_path,
    stack,
    tiny_card,
    tiny_model,
)

ENGINES = ["vllm", "sglang"]


def plan(raw: dict[str, Any]) -> StackPlan:
    return plan_stack(parse(raw))


def only_group(raw: dict[str, Any]) -> GroupPlan:
    [group] = plan(raw).groups
    return group


def refusal(raw: dict[str, Any]) -> list[Problem]:
    config = parse(raw)  # the config itself is valid: only the plan can tell it cannot work
    with pytest.raises(PlanError) as caught:
        plan_stack(config)
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    assert caught.value.problems, "a PlanError without problems tells the user nothing"
    return caught.value.problems


def messages_at(problems: list[Problem], key: str) -> list[str]:
    return [p.message for p in problems if p.key == key]


def unset(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        raw = delete_path(raw, key)
    return raw


# ---- the seed examples -----------------------------------------------------------------------------


def test_cce_llama405b_plans_as_the_cce_example() -> None:
    # The full 128K context fits: with kvCacheSequences 1 the KV cache of one 131072-token sequence is
    # 126/2 layers x 1 KV head x 128 x 2 (K, V) x 2 bytes x 131072 = 3.9 GiB per GPU, next to 47 GiB of
    # weights, so no smaller maxModelLen is needed (test_kv_cache_... shows where it would be).
    stack_plan = plan(cce_llama405b())

    [group] = stack_plan.groups
    assert stack_plan.lws_version == "0.6.1"
    assert group.replicas == 2
    assert (group.parallelism.tensor, group.parallelism.pipeline) == (8, 2)
    assert group.parallelism.gpus_per_pod == 8
    assert group.group_size == 2
    assert group.gpu_product == "NVIDIA-H100-80GB-HBM3"
    assert group.max_model_len == 131072
    assert group.memory.fits
    # 405.85e9 parameters x 2 bytes over 16 GPUs
    assert group.memory.weights == pytest.approx(405.85e9 * 2 / 16)
    assert group.memory.gpu_bytes == 81559 * MIB
    # LWS 0.6.1 has no RecreateGroupAfterStart; the CCE example uses RecreateGroupOnPodRestart
    assert group.restart_policy == "RecreateGroupOnPodRestart"


def test_cce_example_resources_satisfy_the_plans_floors() -> None:
    """The vendor's 15Gi /dev/shm and 1124Gi limit pass our rules, and our own sizing stays under them."""
    group = only_group(cce_llama405b())

    seed_shm, seed_limit = 15 * GIB, 1124 * GIB
    floor = shm_floor_bytes(8)
    assert (
        check_shared_memory(
            container="vllm-leader", medium="Memory", size_bytes=seed_shm, memory_limit=seed_limit, floor=floor
        )
        == []
    )
    assert floor <= group.shm_bytes <= seed_shm
    assert group.shm_bytes < group.pod_memory_bytes <= seed_limit
    seed_shape = GroupShape(Engine.VLLM, tensor_parallel=8, pipeline_parallel=2, group_size=2,
                            leader_gpus=8, worker_gpus=8)  # fmt: skip
    assert check_parallelism(seed_shape) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_ack_qwen3_32b_plans_as_the_ack_example(engine: str) -> None:
    group = only_group(ack_qwen3_32b(engine))

    assert group.engine is Engine(engine)
    assert (group.parallelism.tensor, group.parallelism.pipeline) == (2, 1)
    assert group.parallelism.gpus_per_pod == 1
    assert group.group_size == 2
    assert group.replicas == 1
    assert group.gpu_product == "NVIDIA-L20"
    assert group.max_model_len == 40960
    assert group.memory.fits
    # 32.76e9 x 2 bytes over 2 GPUs = 30.5 GiB of the L20's 45 GiB
    assert group.memory.weights == pytest.approx(32.76e9)
    assert group.model_path == "/models/Qwen3-32B"
    assert group.port == 8000


def test_ack_example_resources_satisfy_the_plans_floors() -> None:
    group = only_group(ack_qwen3_32b())

    # The ACK example gives each 1-GPU pod 15Gi of /dev/shm inside a 24Gi limit.
    assert (
        check_shared_memory(
            container="vllm-leader", medium="Memory", size_bytes=15 * GIB, memory_limit=24 * GIB, floor=group.shm_bytes
        )
        == []
    )
    seed_shape = GroupShape(Engine.SGLANG, tensor_parallel=2, pipeline_parallel=1, group_size=2,
                            leader_gpus=1, worker_gpus=1, nnodes="$(LWS_GROUP_SIZE)")  # fmt: skip
    assert check_parallelism(seed_shape) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_qwen3_32b_with_tp2_on_a10_is_refused_with_numbers_and_advice(engine: str) -> None:
    raw = set_path(ack_qwen3_32b(engine, product="NVIDIA-A10"), "models[0].serving.pipelineParallel", 1)

    problems = refusal(raw)

    [message] = messages_at(problems, "models[0].serving.tensorParallel")
    assert len(problems) == 1, problems
    assert "NVIDIA-A10" in message
    assert "TP=2 x PP=1" in message
    assert "30.5 GiB of weights" in message  # 32.76e9 x 2 bytes / 2 GPUs
    assert "22.5 GiB" in message  # 23028 MiB
    needed = float(re.search(r"needs ([0-9.]+) GiB", message).group(1))  # type: ignore[union-attr]
    usable = float(re.search(r"= ([0-9.]+) GiB usable", message).group(1))  # type: ignore[union-attr]
    assert needed > usable
    assert "TP x PP >= 4" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_following_the_a10_advice_plans(engine: str) -> None:
    raw = set_path(ack_qwen3_32b(engine, product="NVIDIA-A10"), "models[0].serving.pipelineParallel", 2)

    group = only_group(raw)
    assert (group.parallelism.tensor, group.parallelism.pipeline, group.group_size) == (2, 2, 4)


def test_kv_cache_for_many_long_sequences_is_refused_and_a_shorter_max_model_len_fits() -> None:
    many = set_path(cce_llama405b(), "models[0].serving.kvCacheSequences", 32)

    [message] = messages_at(refusal(many), "models[0].serving.tensorParallel")
    assert "KV cache for 4194304 tokens" in message  # 32 x 131072
    group = only_group(set_path(many, "models[0].serving.maxModelLen", 8192))
    assert group.max_model_len == 8192
    assert group.memory.fits


# ---- deriving what the user left out --------------------------------------------------------------


def test_tp_and_pp_are_derived_for_405b_on_h100_nodes() -> None:
    raw = unset(cce_llama405b(), "models[0].serving.tensorParallel", "models[0].serving.pipelineParallel",
                "models[0].serving.gpusPerPod")  # fmt: skip

    group = only_group(raw)
    # 812 GB of bf16 weights do not fit on one 8-GPU node: TP stays inside the node, PP spans two.
    assert (group.parallelism.tensor, group.parallelism.pipeline, group.parallelism.gpus_per_pod) == (8, 2, 8)


def test_fp8_405b_fits_one_node_when_parallelism_is_derived() -> None:
    raw = unset(cce_llama405b(), "models[0].serving.tensorParallel", "models[0].serving.pipelineParallel",
                "models[0].serving.gpusPerPod")  # fmt: skip

    group = only_group(set_path(raw, "models[0].model.dtype", "fp8"))
    assert (group.parallelism.tensor, group.parallelism.pipeline, group.group_size) == (8, 1, 1)
    assert "--quantization" in " ".join(group.leader_command)


def test_pp_is_derived_when_only_tp_is_given() -> None:
    group = only_group(ack_qwen3_32b(product="NVIDIA-A10"))  # TP=2 given, PP left out

    assert (group.parallelism.tensor, group.parallelism.pipeline) == (2, 2)
    assert group.group_size == 4


def test_derived_parallelism_uses_the_fewest_gpus() -> None:
    raw = unset(tiny_model(), "models[0].serving.tensorParallel", "models[0].serving.gpusPerPod")
    raw = set_path(raw, "cluster.gpu.perNode", 8)

    group = only_group(raw)
    assert (group.parallelism.tensor, group.parallelism.pipeline, group.group_size) == (1, 1, 1)
    # One pod: vLLM is started directly, without a Ray cluster
    assert group.leader_command[:3] == ("python3", "-m", "vllm.entrypoints.openai.api_server")


def test_derived_tp_divides_the_heads() -> None:
    card = {**tiny_card(), "parametersBillion": 14.0, "attentionHeads": 40, "kvHeads": 8, "hiddenSize": 5120}
    raw = stack(
        {
            "name": "c",
            "kubernetesVersion": "1.31",
            "gpu": {"product": "NVIDIA-L4", "perNode": 8},
            "storage": {"nfs": {"server": "10.0.0.2", "path": "/export/models"}},
        },
        deployment("m", card, maxModelLen=4096),
    )

    group = only_group(raw)
    assert 40 % group.parallelism.tensor == 0
    assert 8 % group.parallelism.tensor == 0


# ---- refusals -----------------------------------------------------------------------------------


def test_tp_that_does_not_divide_the_heads_is_refused() -> None:
    problems = refusal(set_path(ack_qwen3_32b(), "models[0].serving.tensorParallel", 3))

    messages = messages_at(problems, "models[0].serving.tensorParallel")
    assert any("64 attention heads do not divide by TP=3" in m for m in messages)
    assert any("8 KV heads" in m for m in messages)
    assert any("pipeline" in m for m in messages)  # advises PP instead


def test_more_gpus_per_pod_than_a_node_has_is_refused() -> None:
    problems = refusal(set_path(cce_llama405b(), "models[0].serving.gpusPerPod", 16))

    [message] = messages_at(problems, "models[0].serving.gpusPerPod")
    assert "16 GPUs per pod" in message
    assert "NVIDIA-H100-80GB-HBM3 node has 8" in message


def test_gpus_that_do_not_split_into_pods_are_refused() -> None:
    problems = refusal(set_path(cce_llama405b(), "models[0].serving.gpusPerPod", 6))

    [message] = messages_at(problems, "models[0].serving.gpusPerPod")
    assert "16 GPUs" in message
    assert "pods of 6" in message


def test_kubernetes_1_26_is_refused() -> None:
    problems = refusal(set_path(tiny_model(), "cluster.kubernetesVersion", "1.26"))

    messages = messages_at(problems, "cluster.kubernetesVersion")
    assert any("Kubernetes 1.26 is older than 1.27" in m for m in messages)
    assert {p.key for p in problems} == {"cluster.kubernetesVersion"}


def test_lws_0_6_1_on_kubernetes_1_33_is_refused() -> None:
    problems = refusal(set_path(cce_llama405b(), "cluster.kubernetesVersion", "1.33"))

    assert messages_at(problems, "cluster.kubernetesVersion") == [
        "LWS 0.6.1 supports Kubernetes 1.27 to 1.31, not 1.33"
    ]


def test_lws_0_7_on_kubernetes_1_33_is_fine() -> None:
    raw = set_path(set_path(cce_llama405b(), "cluster.kubernetesVersion", "1.33"), "cluster.lws.version", "0.7.0")

    assert only_group(raw).parallelism.gpus == 16


def test_rollout_partition_on_lws_0_6_1_is_refused() -> None:
    problems = refusal(set_path(cce_llama405b(), "models[0].serving.rolloutPartition", 1))

    [message] = messages_at(problems, "models[0].serving.rolloutPartition")
    assert "partition needs LWS 0.7.0 or newer, but the cluster runs 0.6.1" in message


def test_rollout_partition_on_lws_0_7_plans() -> None:
    raw = set_path(set_path(cce_llama405b(), "cluster.lws.version", "0.7.0"), "models[0].serving.rolloutPartition", 1)

    assert only_group(raw).rollout_partition == 1


def test_restart_policy_follows_the_lws_version() -> None:
    """A quick group keeps RecreateGroupOnPodRestart; a slow one gets RecreateGroupAfterStart where it exists
    (tests/test_releases.py); asking for it on an older release is refused naming the release that has it."""
    assert only_group(tiny_model()).restart_policy == "RecreateGroupOnPodRestart"  # LWS 0.7.0
    asked = set_path(tiny_model(), "models[0].serving.restartPolicy", "RecreateGroupAfterStart")
    [message] = messages_at(refusal(asked), "models[0].serving.restartPolicy")
    assert "RecreateGroupAfterStart needs LWS 0.9.0 or newer, but the cluster runs 0.7.0" in message


@pytest.mark.parametrize(
    "image",
    ["vllm/vllm-openai:latest", "vllm/vllm-openai", "registry.local:5000/vllm/vllm-openai", "lmsysorg/sglang:main"],
)
def test_unpinned_image_is_refused(image: str) -> None:
    problems = refusal(set_path(cce_llama405b(), "models[0].serving.image", image))

    [message] = messages_at(problems, "models[0].serving.image")
    assert image in message
    assert "Pin a version tag or a digest" in message


@pytest.mark.parametrize(
    "image",
    ["vllm/vllm-openai:v0.10.0", "registry.local:5000/vllm/vllm-openai:v0.10.0", "vllm/vllm-openai@sha256:" + "a" * 64],
)
def test_pinned_image_plans(image: str) -> None:
    assert only_group(set_path(cce_llama405b(), "models[0].serving.image", image)).image == image


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("written", ["$LWS_LEADER_ADDRESS", "${LWS_LEADER_ADDRESS}"])
def test_shell_style_lws_reference_in_extra_args_is_refused_with_the_fix(engine: str, written: str) -> None:
    raw = set_path(ack_qwen3_32b(engine), "models[0].serving.extraArgs", ["--host-ip", written])

    [message] = messages_at(refusal(raw), "models[0].serving.extraArgs")
    assert written in message
    assert "$(LWS_LEADER_ADDRESS)" in message


def test_kubernetes_style_lws_reference_in_extra_args_plans() -> None:
    raw = set_path(ack_qwen3_32b("sglang"), "models[0].serving.extraArgs", ["--host-ip", "$(LWS_LEADER_ADDRESS)"])

    group = only_group(raw)
    assert group.leader_command[-2:] == ("--host-ip", "$(LWS_LEADER_ADDRESS)")


def test_max_model_len_beyond_the_context_is_refused() -> None:
    problems = refusal(set_path(ack_qwen3_32b(), "models[0].serving.maxModelLen", 131072))

    [message] = messages_at(problems, "models[0].serving.maxModelLen")
    assert "40960" in message


def test_memory_fraction_above_the_cap_is_refused() -> None:
    problems = refusal(set_path(ack_qwen3_32b("sglang"), "models[0].serving.memFractionStatic", 0.98))

    assert messages_at(problems, "models[0].serving.memFractionStatic")


def test_unknown_gpu_needs_its_memory() -> None:
    unknown = set_path(cce_llama405b(), "cluster.gpu.product", "NVIDIA-B200")

    [message] = messages_at(refusal(unknown), "cluster.gpu.memoryMib")
    assert "NVIDIA-B200" in message
    group = only_group(set_path(unknown, "cluster.gpu.memoryMib", 183359))
    assert group.memory.gpu_bytes == 183359 * MIB


def test_pods_larger_than_a_node_are_refused() -> None:
    problems = refusal(set_path(cce_llama405b(), "cluster.gpu.nodeMemoryGib", 32))

    [message] = messages_at(problems, "models[0].serving.gpusPerPod")
    assert "32 GiB" in message
    assert "/dev/shm" in message


def test_many_problems_in_one_stack_are_all_reported() -> None:
    raw = cce_llama405b()
    second = deployment("tiny", tiny_card(), "sglang", tensorParallel=16, gpusPerPod=16)
    raw["models"].append(second)
    raw = set_path(raw, "cluster.kubernetesVersion", "1.26")
    raw = set_path(raw, "models[0].serving.image", "vllm/vllm-openai:latest")
    raw = set_path(raw, "models[0].serving.extraArgs", ["--foo", "$LWS_GROUP_SIZE"])

    problems = refusal(raw)

    keys = {p.key for p in problems}
    assert {
        "cluster.kubernetesVersion",
        "models[0].serving.image",
        "models[0].serving.extraArgs",
        "models[1].serving.tensorParallel",  # 12 heads do not divide by 16
        "models[1].serving.gpusPerPod",  # 16 GPUs on an 8-GPU node
    } <= keys
    assert all(not p.advisory for p in problems)


# ---- sizing -------------------------------------------------------------------------------------

LLAMA_405B = ModelShape(
    parameters=405.85e9, dtype=Dtype.BF16, layers=126, attention_heads=128, kv_heads=8, head_dim=128,
    hidden_size=16384, vocab_size=128256,
)  # fmt: skip

# Bits per weight of each format: int4 adds an fp16 scale and a 4-bit zero point per group of 128.
NOMINAL_BITS = {
    Dtype.BF16: 16,
    Dtype.FP16: 16,
    Dtype.FP8: 8,
    Dtype.INT4_AWQ: 4 + 20 / 128,
    Dtype.INT4_GPTQ: 4 + 20 / 128,
    Dtype.MXFP4: 4 + 8 / 32,  # an 8-bit shared exponent per 32 weights (OCP MX)
    Dtype.NVFP4: 4 + 8 / 16,  # an fp8 scale per 16 weights
}


@pytest.mark.parametrize("dtype", list(Dtype))
def test_weights_are_within_3_percent_of_parameters_times_bytes(dtype: Dtype) -> None:
    shape = ModelShape(**{**LLAMA_405B.__dict__, "dtype": dtype})

    expected = shape.parameters * NOMINAL_BITS[dtype] / 8
    assert weight_bytes(shape) == pytest.approx(expected, rel=0.03)


def test_quantized_weights_keep_embeddings_in_16_bits() -> None:
    qwen = ModelShape(parameters=32.76e9, dtype=Dtype.FP8, layers=64, attention_heads=64, kv_heads=8,
                      head_dim=128, hidden_size=5120, vocab_size=151936)  # fmt: skip
    embeddings = 151936 * 5120 * 2  # untied input embeddings and LM head

    assert weight_bytes(qwen) == pytest.approx((32.76e9 - embeddings) * 1 + embeddings * 2)
    tied = ModelShape(**{**qwen.__dict__, "tied_embeddings": True})
    assert weight_bytes(tied) < weight_bytes(qwen)


def test_bytes_per_parameter_order() -> None:
    assert BYTES_PER_PARAMETER[Dtype.BF16] > BYTES_PER_PARAMETER[Dtype.FP8] > BYTES_PER_PARAMETER[Dtype.INT4_AWQ] > 0.5


def test_more_gpus_need_less_memory_each() -> None:
    def needed(tensor: int, pipeline: int) -> float:
        return estimate_memory(LLAMA_405B, tensor_parallel=tensor, pipeline_parallel=pipeline, gpu_bytes=80 * GIB,
                               utilization=0.9, max_model_len=8192, kv_sequences=4).needed  # fmt: skip

    assert needed(8, 1) > needed(8, 2) > needed(8, 4)
    assert needed(2, 1) > needed(4, 1) > needed(8, 1)


@pytest.mark.parametrize("gpus", range(1, 16))
def test_shm_floor_grows_with_gpus_and_fits_in_pod_memory(gpus: int) -> None:
    assert shm_floor_bytes(gpus + 1) > shm_floor_bytes(gpus)
    assert shm_floor_bytes(gpus) < pod_memory_bytes(gpus, shm_floor_bytes(gpus))
    assert pod_memory_bytes(gpus + 1, shm_floor_bytes(gpus + 1)) > pod_memory_bytes(gpus, shm_floor_bytes(gpus))


def test_plan_sizes_shm_by_gpus_per_pod_and_inside_pod_memory() -> None:
    eight = only_group(cce_llama405b())
    one = only_group(ack_qwen3_32b())

    assert eight.shm_bytes > one.shm_bytes >= 64 * MIB
    for group in (eight, one):
        assert group.shm_bytes == shm_floor_bytes(group.parallelism.gpus_per_pod)
        assert group.shm_bytes < group.pod_memory_bytes


def test_shm_follows_the_cluster_profile() -> None:
    raw = set_path(set_path(ack_qwen3_32b(), "cluster.shmBaseGib", 8), "cluster.shmPerGpuGib", 4)

    group = only_group(raw)
    assert group.shm_bytes == 12 * GIB
    assert group.pod_memory_bytes > group.shm_bytes


def test_startup_budget_grows_with_model_size() -> None:
    big = only_group(cce_llama405b())
    small = only_group(set_path(ack_qwen3_32b(), "cluster.kubernetesVersion", "1.31"))

    assert big.startup_seconds > small.startup_seconds


def test_startup_budget_shrinks_with_throughput() -> None:
    slow = only_group(set_path(cce_llama405b(), "cluster.storage.throughputMibPerSecond", 200))
    fast = only_group(set_path(cce_llama405b(), "cluster.storage.throughputMibPerSecond", 2000))

    assert slow.startup_seconds > fast.startup_seconds


def test_startup_budget_covers_reading_the_weights() -> None:
    throughput = 500 * MIB  # the default storage.throughputMibPerSecond
    group = only_group(cce_llama405b())

    assert group.startup_seconds >= 405.85e9 * 2 / throughput
    for engine in Engine:
        assert startup_budget_seconds(100 * GIB, throughput, engine, 2) >= 100 * GIB / throughput
        assert startup_budget_seconds(100 * GIB, throughput, engine, 2) % 60 == 0


def test_startup_budget_adds_group_formation_for_multi_pod_groups() -> None:
    single = startup_budget_seconds(10 * GIB, 500 * MIB, Engine.VLLM, 1)

    assert startup_budget_seconds(10 * GIB, 500 * MIB, Engine.VLLM, 2) > single


# ---- commands -----------------------------------------------------------------------------------


def shell_script(command: tuple[str, ...]) -> str:
    assert command[0] in ("/bin/sh", "sh", "/bin/bash", "bash")
    assert command[1] == "-c"
    return command[2]


def test_vllm_leader_starts_ray_for_the_group_then_the_openai_server() -> None:
    group = only_group(cce_llama405b())

    script = shell_script(group.leader_command)
    ray = script.index(f"{VLLM_MULTINODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE)")
    server = script.index("python3 -m vllm.entrypoints.openai.api_server")
    assert ray < server
    assert "--tensor-parallel-size 8" in script
    assert "--pipeline-parallel-size 2" in script
    assert "--distributed-executor-backend ray" in script
    assert "--model meta-llama/Llama-3.1-405B-Instruct" in script
    assert check_env_expansion("leader", group.leader_command) == []


def test_vllm_worker_joins_the_leaders_ray_head() -> None:
    group = only_group(cce_llama405b())

    script = shell_script(group.worker_command)
    assert f"{VLLM_MULTINODE_SCRIPT} worker --ray_address=$(LWS_LEADER_ADDRESS)" in script
    assert "api_server" not in script  # only the leader serves
    assert check_env_expansion("worker", group.worker_command) == []


@pytest.mark.parametrize("role", ["leader", "worker"])
def test_sglang_commands_carry_the_lws_group_flags(role: str) -> None:
    group = only_group(ack_qwen3_32b("sglang"))
    command = list(group.leader_command if role == "leader" else group.worker_command)

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert command[:3] == ["python3", "-m", "sglang.launch_server"]
    assert value("--tp") == "2"
    assert value("--dist-init-addr") == f"$(LWS_LEADER_ADDRESS):{SGLANG_DIST_PORT}" == "$(LWS_LEADER_ADDRESS):20000"
    assert value("--nnodes") == "$(LWS_GROUP_SIZE)"
    assert value("--node-rank") == "$(LWS_WORKER_INDEX)"
    assert value("--model-path") == "/models/Qwen3-32B"
    assert "--pp-size" not in command
    assert check_env_expansion(role, command) == []
    # Kubernetes expands $(VAR) in exec form; $VAR would reach SGLang literally
    assert not any(re.search(r"\$LWS_|\$\{LWS_", arg) for arg in command)


def test_only_the_sglang_leader_serves_http() -> None:
    group = only_group(ack_qwen3_32b("sglang"))

    assert "--port" in group.leader_command
    assert group.leader_command[group.leader_command.index("--port") + 1] == "8000"
    assert "--port" not in group.worker_command


def test_sglang_pipeline_stages_are_passed() -> None:
    group = only_group(ack_qwen3_32b("sglang", product="NVIDIA-A10"))  # derives PP=2

    flags = read_flags(group.leader_command)
    assert flags.integer("tensor") == 2
    assert flags.integer("pipeline") == 2


def test_image_registry_mirror_replaces_the_registry() -> None:
    mirror = "registry-vpc.cn-hangzhou.aliyuncs.com/mirror"
    group = only_group(set_path(ack_qwen3_32b(), "cluster.imageRegistryMirror", mirror))

    assert group.image == f"{mirror}/vllm/vllm-openai:v0.10.0"
    assert mirror_image("kube-ai-registry.cn-shanghai.cr.aliyuncs.com/kube-ai/vllm:v0.10.0", mirror) == (
        f"{mirror}/kube-ai/vllm:v0.10.0"
    )
    assert mirror_image("vllm/vllm-openai:v0.10.0", None) == "vllm/vllm-openai:v0.10.0"
    digest = "sha256:" + "a" * 64
    assert mirror_image(f"localhost:5000/lmsysorg/sglang:v0.4.10@{digest}", mirror) == (
        f"{mirror}/lmsysorg/sglang:v0.4.10@{digest}"
    )


# ---- reading commands back -----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("example", ["cce", "ack", "a10"])
def test_read_flags_round_trips_the_planned_commands(engine: str, example: str) -> None:
    raw = {
        "cce": lambda: set_path(cce_llama405b(), "models[0].serving.engine", engine),
        "ack": lambda: ack_qwen3_32b(engine),
        "a10": lambda: ack_qwen3_32b(engine, product="NVIDIA-A10"),
    }[example]()
    raw = set_path(raw, "models[0].serving.maxModelLen", 8192)
    fraction_key = "gpuMemoryUtilization" if engine == "vllm" else "memFractionStatic"
    raw = set_path(raw, f"models[0].serving.{fraction_key}", 0.85)
    group = only_group(raw)

    flags = read_flags(group.leader_command)
    assert flags.engine is Engine(engine)
    assert flags.integer("tensor") == group.parallelism.tensor
    assert (flags.integer("pipeline") or 1) == group.parallelism.pipeline
    assert flags.number("fraction") == 0.85
    assert flags.integer("context") == 8192
    assert flags.values["model"] == group.model_path
    if engine == "sglang":
        assert read_flags(group.worker_command).values == flags.values


def test_read_flags_parses_the_cce_seed_leader() -> None:
    command = [
        "sh",
        "-c",
        f"bash {VLLM_MULTINODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE); \n"
        "python3 -m vllm.entrypoints.openai.api_server --port 8080 "
        "--model meta-llama/Meta-Llama-3.1-405B-Instruct --tensor-parallel-size 8 --pipeline_parallel_size 2",
    ]

    flags = read_flags(command)
    assert flags.engine is Engine.VLLM
    assert flags.in_shell
    assert flags.integer("tensor") == 8
    assert flags.integer("pipeline") == 2
    assert flags.values["model"] == "meta-llama/Meta-Llama-3.1-405B-Instruct"


def test_read_flags_parses_the_ack_seed_commands() -> None:
    vllm = [
        "sh",
        "-c",
        f"bash {VLLM_MULTINODE_SCRIPT} leader --ray_cluster_size=$(LWS_GROUP_SIZE); "
        "python3 -m vllm.entrypoints.openai.api_server --port 8000 --model /models/Qwen3-32B --tensor-parallel-size 2",
    ]
    sglang = [
        "sh",
        "-c",
        "python3 -m sglang.launch_server --model-path /models/Qwen3-32B --tp 2 "
        "--dist-init-addr $(LWS_LEADER_ADDRESS):20000 --nnodes $(LWS_GROUP_SIZE) --node-rank $(LWS_WORKER_INDEX) "
        "--trust-remote-code --host 0.0.0.0 --port 8000 --enable-metrics",
    ]

    vllm_flags, sglang_flags = read_flags(vllm), read_flags(sglang)
    assert (vllm_flags.engine, vllm_flags.integer("tensor"), vllm_flags.integer("pipeline")) == (Engine.VLLM, 2, None)
    assert vllm_flags.values["model"] == "/models/Qwen3-32B"
    assert (sglang_flags.engine, sglang_flags.integer("tensor")) == (Engine.SGLANG, 2)
    assert sglang_flags.values["model"] == "/models/Qwen3-32B"
    assert sglang_flags.values["nnodes"] == "$(LWS_GROUP_SIZE)"


@pytest.mark.parametrize(
    ("command", "tensor", "pipeline"),
    [
        (["vllm", "serve", "/models/m", "--tensor-parallel-size=4", "--pipeline-parallel-size=2"], 4, 2),
        (["vllm", "serve", "/models/m", "-tp", "4", "-pp", "2"], 4, 2),
        (["python3", "-m", "sglang.launch_server", "--tp-size", "8", "--pp-size", "2"], 8, 2),
    ],
)
def test_read_flags_accepts_each_spelling(command: list[str], tensor: int, pipeline: int) -> None:
    flags = read_flags(command)

    assert (flags.integer("tensor"), flags.integer("pipeline")) == (tensor, pipeline)


def test_read_flags_takes_vllm_serves_positional_model() -> None:
    assert read_flags(["vllm", "serve", "/models/Qwen3-32B", "--tp", "2"]).values["model"] == "/models/Qwen3-32B"


def test_read_flags_ignores_commands_of_other_programs() -> None:
    flags = read_flags(["nginx", "-g", "daemon off;"])

    assert flags.engine is None
    assert flags.values == {}


def test_read_flags_never_fails_on_odd_numbers() -> None:
    flags = read_flags(["vllm", "serve", "m", "--tensor-parallel-size", "²", "--gpu-memory-utilization", "high"])

    assert flags.integer("tensor") is None
    assert flags.number("fraction") is None


def test_model_annotations_round_trip_and_reject_odd_numbers() -> None:
    group = only_group(ack_qwen3_32b())

    facts = read_model_annotations(group.annotations)
    assert facts is not None
    assert (facts.shape.layers, facts.shape.attention_heads, facts.shape.kv_heads) == (64, 64, 8)
    assert facts.shape.head_dim == 128
    assert facts.max_model_len == 40960
    odd = {**group.annotations, "inference.lws.dev/layers": "²"}
    assert read_model_annotations(odd) is None


# ---- model source ---------------------------------------------------------------------------------


def test_a_model_path_needs_a_model_volume() -> None:
    raw = delete_path(ack_qwen3_32b(), "cluster.storage.oss")

    assert messages_at(refusal(raw), "models[0].model.source.path")


def test_a_hugging_face_model_needs_no_volume() -> None:
    raw = set_path(delete_path(ack_qwen3_32b(), "cluster.storage.oss"), "models[0].model.source",
                   {"huggingFace": "Qwen/Qwen3-32B"})  # fmt: skip

    assert only_group(raw).model_path == "Qwen/Qwen3-32B"


@pytest.mark.parametrize(("engine", "flag"), [("vllm", "--tensor-parallel-size=4"), ("sglang", "--tp")])
def test_extra_args_may_not_override_the_planned_parallelism(engine: str, flag: str) -> None:
    raw = set_path(ack_qwen3_32b(engine), "models[0].serving.extraArgs", [flag, "4"] if "=" not in flag else [flag])
    problems = refusal(raw)
    found = messages_at(problems, "models[0].serving.extraArgs")
    assert found and flag.split("=")[0] in found[0]


def test_vllm_data_parallel_multiplies_the_ranks_and_sglang_dp_attention_does_not() -> None:
    vllm_dp = GroupShape(Engine.VLLM, 1, 1, 2, 8, 8, data_parallel=16)
    sglang_dp_attention = GroupShape(Engine.SGLANG, 16, 1, 2, 8, 8, data_parallel=16, dp_attention=True)
    sglang_dp_replicas = GroupShape(Engine.SGLANG, 16, 1, 2, 8, 8, data_parallel=2)

    assert check_parallelism(vllm_dp) == []
    assert check_parallelism(sglang_dp_attention) == []
    (finding,) = check_parallelism(sglang_dp_replicas)
    assert "x DP=2 = 32 ranks" in finding.message and "missing GPUs" in finding.message
