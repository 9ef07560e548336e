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


# ---- data parallelism, roles, servers, coordination, other accelerators ---------------------------------------


def sglang_command(extra: str) -> list[str]:
    script = (
        "python3 -m sglang.launch_server --model-path /m/X --dist-init-addr $(LWS_LEADER_ADDRESS):20000 "
        f"--nnodes $(LWS_GROUP_SIZE) --node-rank $(LWS_WORKER_INDEX) {extra}"
    )
    return ["sh", "-c", script]


def eight_gpu_group(command: list[str], worker: list[str] | None = None) -> Obj:
    obj = set_in(one("cce_llama405b"), LEADER_CMD, command)
    return set_in(obj, WORKER_CMD, worker if worker is not None else command)


def test_vllm_data_parallel_counts_towards_the_gpus() -> None:
    script = "vllm serve m -tp 1 -dp $((LWS_GROUP_SIZE * DP_LOCAL)) --data-parallel-address $LWS_LEADER_ADDRESS"
    obj = eight_gpu_group(["bash", "-lc", script])
    obj = set_in(obj, f"{LEADER}.containers.0.env", [{"name": "DP_LOCAL", "value": "8"}])
    obj = set_in(obj, f"{WORKER}.containers.0.env", [{"name": "DP_LOCAL", "value": "8"}])
    assert check(obj) == [] and advice(obj) == []


def test_sglang_dp_attention_does_not_multiply_but_plain_dp_does() -> None:
    assert check(eight_gpu_group(sglang_command("--tp 16 --dp-size 16 --enable-dp-attention"))) == []
    [message] = check(eight_gpu_group(sglang_command("--tp 16 --dp-size 2")))
    assert "--tp=16 x PP=1 x DP=2 = 32 ranks" in message and "wait forever" in message


def test_a_degree_in_an_unknown_variable_is_advice_not_a_denial() -> None:
    obj = eight_gpu_group(["bash", "-lc", "ray start --head; vllm serve m --tensor-parallel-size $TP"])
    assert check(obj) == []
    [message] = advice(obj)
    assert "cannot verify" in message and "'$TP', a variable the pack cannot resolve" in message


def test_a_ray_head_without_gpus_is_fine_but_an_sglang_leader_without_gpus_is_not() -> None:
    """vLLM over Ray places ranks where the GPUs are; SGLang runs tp/nnodes ranks on every pod, the leader too."""
    obj = set_in(one("cce_llama405b"), f"{LEADER}.containers.0.resources.limits", {"memory": "64Gi"})
    obj = set_in(obj, "spec.leaderWorkerTemplate.size", 3)
    assert check(obj) == [] and advice(obj) == []
    sglang = eight_gpu_group(sglang_command("--tp 16"))
    sglang = set_in(sglang, f"{LEADER}.containers.0.resources.limits", {"memory": "64Gi"})
    sglang = set_in(sglang, "spec.leaderWorkerTemplate.size", 3)
    messages = check(sglang)
    assert any("do not split evenly over 3 pods" in m for m in messages)


def test_other_accelerators_count_as_gpus() -> None:
    obj = eight_gpu_group(["bash", "-c", "ray start --head; vllm serve m -tp 8 -pp 4"])
    for role in (LEADER, WORKER):
        obj = set_in(obj, f"{role}.containers.0.resources.limits", {"huawei.com/ascend-1980": "8"})
    [message] = check(obj)
    assert "32 ranks, but the group has 2 pods x 8 GPUs = 16 GPUs" in message


def test_two_servers_in_one_pod_each_on_its_own_gpus() -> None:
    obj = one("ack_qwen3_vllm")
    obj = delete_in(obj, "spec.leaderWorkerTemplate.leaderTemplate")
    obj = set_in(obj, "spec.leaderWorkerTemplate.size", 1)
    server = obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    server["command"] = ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "/models/a", "-tp", "4"]
    server["resources"]["limits"]["nvidia.com/gpu"] = "4"
    second = {**server, "name": "second", "command": [*server["command"][:-1], "4"]}
    obj["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"].append(second)
    assert check(obj) == [] and advice(obj) == []
    second["command"] = [*server["command"][:-1], "8"]
    [message] = check(obj)
    assert "server second (vllm, 4 GPUs): TP=8 x PP=1 = 8 ranks" in message


def test_vllm_pods_that_nothing_joins_are_denied_with_the_evidence() -> None:
    command = ["vllm", "serve", "/models/Meta-Llama-3.1-405B-Instruct", "-tp", "8", "-pp", "2"]
    [message] = check(eight_gpu_group(command))
    assert "the group has 2 pods but no command joins them" in message
    # A worker command the pack cannot read may join in ways it cannot see: advice, not a denial.
    opaque = eight_gpu_group(command, ["/opt/start-worker.sh"])
    assert check(opaque) == []
    assert any("are not ones the pack reads" in m for m in advice(opaque))


def test_sglang_workers_need_node_rank() -> None:
    leader = sglang_command("--tp 16")
    worker = ["sh", "-c", leader[2].replace(" --node-rank $(LWS_WORKER_INDEX)", "")]
    [message] = check(eight_gpu_group(leader, worker))
    assert "worker (worker) passes no --node-rank" in message


def test_disaggregated_set_roles_are_checked_like_leader_worker_sets() -> None:
    broken = eight_gpu_group(["bash", "-c", "ray start --head; vllm serve m -tp 8 -pp 4"])
    good = one("cce_llama405b")
    disaggregated = {
        "apiVersion": "disaggregatedset.x-k8s.io/v1",
        "kind": "DisaggregatedSet",
        "metadata": {"name": "pd", "namespace": "inference"},
        "spec": {"roles": [{"name": "prefill", "spec": good["spec"]}, {"name": "decode", "spec": broken["spec"]}]},
    }
    token = "kubernetes:disaggregatedset.x-k8s.io/v1:DisaggregatedSet"
    [message] = check_parallelism_policy(token, disaggregated, DEFAULT)
    assert message.startswith("DisaggregatedSet inference/pd role decode: TP=8 x PP=4 = 32 ranks")
    # v1alpha1 inlines the LeaderWorkerSet spec in the role
    alpha = {**disaggregated, "apiVersion": "disaggregatedset.x-k8s.io/v1alpha1",
             "spec": {"roles": [{"name": "decode", **broken["spec"]}]}}  # fmt: skip
    assert len(check_parallelism_policy("kubernetes:disaggregatedset.x-k8s.io/v1alpha1:DisaggregatedSet", alpha,
                                         DEFAULT)) == 1  # fmt: skip


def test_a_vllm_module_the_pack_does_not_know_on_the_workers_is_advice() -> None:
    command = ["vllm", "serve", "/models/Meta-Llama-3.1-405B-Instruct", "-tp", "8", "-pp", "2"]
    obj = eight_gpu_group(command, ["python3", "-m", "vllm.entrypoints.custom_worker"])
    assert check(obj) == []
    assert any("cannot verify" in m for m in advice(obj))


def test_vllm_local_data_parallel_ranks_must_fit_the_pod() -> None:
    script = "vllm serve m -tp 2 -dp 16 --data-parallel-size-local 8 --data-parallel-address $LWS_LEADER_ADDRESS"
    messages = check(eight_gpu_group(["bash", "-c", script]))
    assert any("starts --data-parallel-size-local x TP x PP = 16 ranks but has 8 GPUs" in m for m in messages)
    fits = "vllm serve m -tp 2 -dp 8 --data-parallel-size-local 4 --data-parallel-address $LWS_LEADER_ADDRESS"
    assert check(eight_gpu_group(["bash", "-c", fits])) == []
