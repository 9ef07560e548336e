"""parallelism: ranks vs GPUs of the group, SGLang --nnodes, $(LWS_*) expansion."""

from __future__ import annotations

import pytest
from lws_guard.parallelism import check_parallelism_advice, check_parallelism_policy
from lws_guard.settings import Settings

from tests.policies.helpers import LEADER, LWS, WORKER, Obj, delete_in, floats, one, set_in

DEFAULT = Settings()
LEADER_CMD = f"{LEADER}.containers.0.command"
WORKER_CMD = f"{WORKER}.containers.0.command"


def check(obj: Obj) -> list[str]:
    return check_parallelism_policy(LWS, obj, DEFAULT)


def advice(obj: Obj) -> list[str]:
    return check_parallelism_advice(LWS, obj, DEFAULT)


@pytest.mark.parametrize("name", ["cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang"])
def test_seed_documents_pass(name: str) -> None:
    assert check(one(name)) == []
    assert check(floats(one(name))) == []


def test_pipeline_parallel_missing_leaves_gpus_idle_which_is_advice() -> None:
    script = "python3 -m vllm.entrypoints.openai.api_server --model meta-llama/Meta-Llama-3.1-405B-Instruct -tp 8"
    obj = set_in(one("cce_llama405b"), LEADER_CMD, ["sh", "-c", script])
    assert check(obj) == []
    [message] = advice(obj)
    assert message == (
        "LeaderWorkerSet llama-405b: TP=8 x PP=1 = 8 ranks, but the group has 2 pods x 8 GPUs = 16 GPUs; "
        "GPUs would sit idle (recommended: ranks = 16)"
    )


def test_too_many_ranks_wait_forever() -> None:
    script = "python3 -m vllm.entrypoints.openai.api_server --model /models/Qwen3-32B --tensor-parallel-size 4"
    [message] = check(set_in(one("ack_qwen3_vllm"), LEADER_CMD, ["sh", "-c", script]))
    assert "TP=4 x PP=1 = 4 ranks, but the group has 2 pods x 1 GPUs = 2 GPUs" in message
    assert "wait forever" in message


def test_group_size_change_is_caught() -> None:
    obj = set_in(one("ack_qwen3_sglang"), "spec.leaderWorkerTemplate.size", 4.0)
    [message] = check(obj)
    assert "--tp=2 x PP=1 = 2 ranks do not split evenly over 4 pods" in message
    assert any("the group has 4 pods x 1 GPUs = 4 GPUs" in m for m in advice(obj))


def test_leader_and_worker_gpu_counts_must_match() -> None:
    obj = one("cce_llama405b")
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"
    ] = "4"
    [message] = check(obj)
    assert "16 ranks, but the group has 8 GPUs on the leader + 1 workers x 4 = 12 GPUs" in message
    assert any("the leader requests 8 GPUs but each worker 4" in m for m in advice(obj))


def test_without_an_engine_command_the_group_cannot_be_verified() -> None:
    obj = set_in(one("ack_qwen3_vllm"), LEADER_CMD, ["/start.sh"])
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"
    ] = 2.0
    assert check(obj) == []
    [message] = advice(obj)
    assert "cannot verify that the engine's ranks match the group's GPUs: no container runs" in message


def test_sglang_nnodes_must_be_the_group_size() -> None:
    obj = one("ack_qwen3_sglang")
    script = obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["command"][2]
    obj = set_in(obj, LEADER_CMD, ["sh", "-c", script.replace("--nnodes $(LWS_GROUP_SIZE)", "--nnodes 3")])
    [message] = check(obj)
    assert "--nnodes is 3 but the group has 2 pods" in message


@pytest.mark.parametrize("nnodes", ["2", "$LWS_GROUP_SIZE", "${LWS_GROUP_SIZE}"])
def test_sglang_nnodes_in_a_shell(nnodes: str) -> None:
    obj = one("ack_qwen3_sglang")
    script = obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["command"][2]
    obj = set_in(obj, LEADER_CMD, ["sh", "-c", script.replace("$(LWS_GROUP_SIZE)", nnodes)])
    assert check(obj) == []


def test_sglang_worker_disagreeing_with_the_leader() -> None:
    obj = one("ack_qwen3_sglang")
    script = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["command"][2]
    obj = set_in(obj, WORKER_CMD, ["sh", "-c", script.replace("--tp 2", "--tp 4")])
    [message] = check(obj)
    assert message.startswith("LeaderWorkerSet inference/qwen3-sglang: container sglang-worker (worker): --tp=4")


def test_unexpanded_variable_outside_a_shell() -> None:
    command = ["python3", "-m", "sglang.launch_server", "--model-path", "/models/Qwen3-32B", "--tp", "2",
               "--dist-init-addr", "$(LWS_LEADER_ADDRESS):20000", "--nnodes", "$(LWS_GROUP_SIZE)",
               "--node-rank", "$LWS_WORKER_INDEX"]  # fmt: skip
    [message] = check(set_in(one("ack_qwen3_sglang"), WORKER_CMD, command))
    assert "container sglang-worker (worker) passes $LWS_WORKER_INDEX outside a shell" in message
    assert "write $(LWS_WORKER_INDEX)" in message


def test_unexpanded_variable_in_args() -> None:
    obj = set_in(one("ack_qwen3_vllm"), f"{WORKER}.containers.0.command", ["ray"])
    obj = set_in(obj, f"{WORKER}.containers.0.args", ["start", "--address=${LWS_LEADER_ADDRESS}:6379", "--block"])
    [message] = check(obj)
    assert "${LWS_LEADER_ADDRESS}" in message


def test_single_pod_group_by_default() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), "spec.leaderWorkerTemplate.leaderTemplate")
    obj = delete_in(obj, "spec.leaderWorkerTemplate.size")
    script = "python3 -m vllm.entrypoints.openai.api_server --model /models/Qwen3-32B --tensor-parallel-size 2"
    obj = set_in(obj, WORKER_CMD, ["sh", "-c", script])
    [message] = check(obj)
    assert "the group has 1 pods x 1 GPUs = 1 GPUs" in message


def test_cpu_only_group_is_not_judged() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.resources")
    obj = delete_in(obj, f"{WORKER}.containers.0.resources")
    assert check(obj) == []


def test_other_kinds_are_ignored() -> None:
    assert check_parallelism_policy("kubernetes:apps/v1:Deployment", {"kind": "Deployment"}, DEFAULT) == []
