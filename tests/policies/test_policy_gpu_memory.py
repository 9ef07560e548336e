"""gpu-memory (mandatory) and gpu-memory-unverified (advisory)."""

from __future__ import annotations

import itertools

import pytest
from lws_guard.gpu_memory import assess, check_gpu_memory, check_gpu_memory_unverified
from lws_guard.settings import Settings

from tests.policies.helpers import LEADER, LWS, WORKER, Obj, delete_in, floats, one, set_in

H100 = Settings.from_config({"defaultGpu": "NVIDIA-H100-80GB-HBM3"})
L20 = Settings.from_config({"defaultGpu": "NVIDIA-L20"})
A10 = Settings.from_config({"defaultGpu": "NVIDIA-A10"})

LEADER_CMD = f"{LEADER}.containers.0.command"


def cce() -> Obj:
    return one("cce_llama405b")


def ack(engine: str) -> Obj:
    return one(f"ack_qwen3_{engine}")


def with_leader_command(obj: Obj, script: str) -> Obj:
    return set_in(obj, LEADER_CMD, ["sh", "-c", script])


def vllm_leader(flags: str) -> str:
    return f"python3 -m vllm.entrypoints.openai.api_server --port 8000 {flags}"


# ---- the seed documents ----------------------------------------------------------------------


def test_cce_llama_405b_tp8_pp2_fits_h100() -> None:
    report = assess(LWS, cce(), H100)
    assert report.denials == []
    assert report.unverified == []


def test_cce_llama_405b_on_a10_is_denied_with_numbers() -> None:
    [message] = check_gpu_memory(LWS, cce(), A10)
    assert message.startswith("LeaderWorkerSet llama-405b: needs 52.7 GiB per GPU with TP=8 x PP=2 (47.2 GiB")
    assert "NVIDIA-A10 has 22.5 GiB x 0.90 = 20.2 GiB usable" in message
    assert "model from the built-in catalog (meta-llama/Llama-3.1-405B-Instruct in bf16" in message


def test_name_outside_the_catalog_is_sized_from_the_name() -> None:
    obj = with_leader_command(cce(), vllm_leader("--model /models/Llama-405B-custom -tp 8 -pp 2"))
    [message] = check_gpu_memory(LWS, obj, A10)
    assert message == (
        "LeaderWorkerSet llama-405b: needs 51.1 GiB per GPU with TP=8 x PP=2 (47.1 GiB of weights + 4.0 GiB "
        "runtime overhead and minimum KV cache), but NVIDIA-A10 has 22.5 GiB x 0.90 = 20.2 GiB usable; "
        "use TP x PP >= 64 or a larger GPU. Weights: 405B parameters in bf16, size from the model name "
        "/models/Llama-405B-custom, bf16 by default (no quantization flag or marker in the name); "
        "GPU from the cluster default in the policy config (defaultGpu)"
    )


def test_catalog_context_that_may_not_fit_is_advice_with_the_flag() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B-FP8 --tensor-parallel-size 2"))
    report = assess(LWS, obj, A10)
    assert report.denials == []
    [advice] = report.unverified
    assert "5.0 GiB of KV cache for 40960 tokens" in advice and "set --max-model-len" in advice
    shorter = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B-FP8 -tp 2 --max-model-len 8192"))
    assert assess(LWS, shorter, A10) == assess(LWS, ack("vllm"), H100)


def test_catalog_storage_follows_the_quantization_flag() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B -tp 2 --quantization fp8"))
    [advice] = assess(LWS, obj, A10).unverified
    assert "Qwen/Qwen3-32B in fp8" in advice


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_ack_qwen3_32b_fits_l20(engine: str) -> None:
    report = assess(LWS, ack(engine), L20)
    assert report.denials == []
    assert report.unverified == []


@pytest.mark.parametrize(("engine", "fraction"), [("vllm", "0.90"), ("sglang", "0.88")])
def test_ack_qwen3_32b_tp2_on_a10_is_denied(engine: str, fraction: str) -> None:
    [message] = check_gpu_memory(LWS, ack(engine), A10)
    assert message.startswith(f"LeaderWorkerSet inference/qwen3-{engine}: needs ")
    assert "GiB per GPU with TP=2 x PP=1" in message
    assert f"NVIDIA-A10 has 22.5 GiB x {fraction}" in message
    assert "use TP x PP >= 4" in message
    assert "model from the built-in catalog (Qwen/Qwen3-32B in bf16" in message
    assert check_gpu_memory_unverified(LWS, ack(engine), A10) == []


def test_numbers_as_floats_change_nothing() -> None:
    assert check_gpu_memory(LWS, floats(cce()), H100) == []
    assert len(check_gpu_memory(LWS, floats(cce()), A10)) == 1
    obj = cce()
    obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["resources"]["limits"] = {
        "nvidia.com/gpu": 8.0,
        "memory": "1124Gi",
    }
    assert assess(LWS, obj, H100).denials == []
    assert len(check_gpu_memory(LWS, obj, A10)) == 1


def test_other_resources_are_ignored() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    assert assess("kubernetes:apps/v1:Deployment", deployment, A10).denials == []
    assert assess("kubernetes:apps/v1:Deployment", deployment, A10).unverified == []


# ---- where the GPU comes from ----------------------------------------------------------------


def test_node_selector_product_overrides_the_default() -> None:
    obj = ack("vllm")
    for path in (LEADER, WORKER):
        obj = set_in(obj, f"{path}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-A10"})
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "NVIDIA-A10 has 22.5 GiB" in message
    assert "GPU from the leader nodeSelector" in message


def test_gpu_memory_label_wins_over_product() -> None:
    selector = {"nvidia.com/gpu.product": "NVIDIA-L20", "nvidia.com/gpu.memory": "23028"}
    obj = set_in(ack("vllm"), f"{LEADER}.nodeSelector", selector)
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "NVIDIA-L20 has 22.5 GiB" in message


def test_smallest_gpu_of_leader_and_workers_counts() -> None:
    obj = set_in(ack("vllm"), f"{WORKER}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-A10"})
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "NVIDIA-A10" in message and "worker nodeSelector" in message


def test_required_node_affinity_with_several_products_takes_the_smallest() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In",
                                           "values": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A10"]}]}
                ]
            }
        }
    }  # fmt: skip
    obj = ack("sglang")
    for path in (LEADER, WORKER):
        obj = set_in(obj, f"{path}.affinity", affinity)
    [message] = check_gpu_memory(LWS, obj, H100)
    assert "NVIDIA-A10 has 22.5 GiB" in message and "required node affinity" in message


def test_affinity_on_gpu_memory_gt_is_a_lower_bound() -> None:
    term = {"matchExpressions": [{"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["80000"]}]}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    obj = cce()
    for path in (LEADER, WORKER):
        obj = set_in(obj, f"{path}.affinity", affinity)
    assert assess(LWS, obj, A10).denials == []


def test_unknown_gpu_product_cannot_be_verified() -> None:
    obj = set_in(ack("vllm"), f"{LEADER}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-B300"})
    report = assess(LWS, obj, L20)
    assert report.denials == []
    [reason] = report.unverified
    assert "NVIDIA-B300" in reason and "gpuMemoryMiB" in reason


def test_config_adds_gpu_products() -> None:
    obj = set_in(ack("vllm"), f"{LEADER}.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-B300"})
    settings = Settings.from_config({"defaultGpu": "NVIDIA-L20", "gpuMemoryMiB": {"NVIDIA-B300": 20000.0}})
    [message] = check_gpu_memory(LWS, obj, settings)
    assert "NVIDIA-B300 has 19.5 GiB" in message


def test_unknown_default_gpu_cannot_be_verified() -> None:
    report = assess(LWS, ack("vllm"), Settings.from_config({"defaultGpu": "Some-Future-GPU"}))
    assert report.denials == []
    assert "Some-Future-GPU" in report.unverified[0]


# ---- where the model size comes from ---------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "fits_a10"),
    [
        ("--model /models/Qwen2.5-32B --tensor-parallel-size 2", False),
        ("--model /models/Qwen2.5-32B -tp 4", True),
        ("--model /models/Qwen2.5-32B --tensor-parallel-size=2 --quantization awq", True),
        ("--model /models/Qwen2.5-32B-AWQ --tensor-parallel-size 2", True),
        ("--model /models/Qwen2.5-32B-FP8 --tensor-parallel-size 2", True),
        ("--model Qwen/Qwen2.5-32B-GPTQ-Int4", True),
        ("--model Qwen/Qwen2.5-32B-GPTQ-Int8", False),
        ("--model /models/Qwen2.5-32B --tensor-parallel-size 2 --dtype float16", False),
        ("--model /models/Qwen3-14B --tensor-parallel-size 2", True),
        ("--model /models/Qwen3-0.6B", True),
    ],
)
def test_size_and_storage_from_flags_and_name(flags: str, fits_a10: bool) -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader(flags))
    report = assess(LWS, obj, A10)
    assert report.unverified == []
    assert (report.denials == []) is fits_a10, report.denials


def test_pipeline_parallel_short_flag() -> None:
    obj = with_leader_command(cce(), vllm_leader("--model meta-llama/Meta-Llama-3.1-405B-Instruct -tp 8 -pp 2"))
    assert assess(LWS, obj, H100).denials == []
    obj = with_leader_command(cce(), vllm_leader("--model meta-llama/Meta-Llama-3.1-405B-Instruct -tp 8"))
    [message] = check_gpu_memory(LWS, obj, H100)
    assert "TP=8 x PP=1" in message and "use TP x PP >= 16" in message


def test_vllm_serve_positional_model() -> None:
    obj = set_in(ack("vllm"), LEADER_CMD, ["vllm", "serve", "/models/Qwen3-32B", "--tensor-parallel-size", "2"])
    assert len(check_gpu_memory(LWS, obj, A10)) == 1
    assert check_gpu_memory(LWS, obj, L20) == []


def test_utilization_flag_is_used() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B -tp 2 --gpu-memory-utilization 0.5"))
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "NVIDIA-L20 has 45.0 GiB x 0.50 = 22.5 GiB usable" in message


def test_sglang_mem_fraction_flag_is_used() -> None:
    script = "python3 -m sglang.launch_server --model-path /models/Qwen3-32B --tp 2 --mem-fraction-static 0.6"
    obj = with_leader_command(ack("sglang"), script)
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "x 0.60 =" in message


def test_moe_upper_bound_that_fits_passes() -> None:
    obj = with_leader_command(cce(), vllm_leader("--model mistralai/Mixtral-8x7B-Instruct-v0.1 -tp 8 -pp 2"))
    report = assess(LWS, obj, A10)
    assert report.denials == [] and report.unverified == []


def test_moe_upper_bound_that_does_not_fit_cannot_be_verified() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/MyMoE-8x22B-Instruct -tp 2"))
    report = assess(LWS, obj, L20)
    assert report.denials == []
    [reason] = report.unverified
    assert "at most 176B (8 experts)" in reason and "upper bound" in reason


def test_model_without_size_in_name_cannot_be_verified() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model deepseek-ai/DeepSeek-Coder-V2-Instruct -tp 2"))
    report = assess(LWS, obj, L20)
    assert report.denials == []
    assert "deepseek-ai/DeepSeek-Coder-V2-Instruct" in report.unverified[0]
    assert "inference.lws.dev" in report.unverified[0]


def test_unknown_quantization_cannot_be_verified() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B -tp 2 --quantization bitsandbytes"))
    report = assess(LWS, obj, A10)
    assert report.denials == []
    assert "--quantization bitsandbytes" in report.unverified[0]


def test_no_server_command_cannot_be_verified() -> None:
    obj = set_in(ack("vllm"), LEADER_CMD, ["/entrypoint.sh"])
    report = assess(LWS, obj, A10)
    assert report.denials == []
    assert "no container runs a vLLM or SGLang server" in report.unverified[0]


def test_tp_from_a_variable_cannot_be_verified() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen3-32B -tp $TP"))
    report = assess(LWS, obj, A10)
    assert report.denials == []
    assert "tensor-parallel degree" in report.unverified[0] and "$TP" in report.unverified[0]


def test_no_gpus_cannot_be_verified() -> None:
    obj = delete_in(ack("vllm"), f"{LEADER}.containers.0.resources")
    obj = delete_in(obj, f"{WORKER}.containers.0.resources")
    report = assess(LWS, obj, A10)
    assert report.denials == []
    assert "nvidia.com/gpu" in report.unverified[0]


def test_gpus_from_requests_only() -> None:
    obj = delete_in(ack("vllm"), f"{LEADER}.containers.0.resources.limits")
    obj = delete_in(obj, f"{WORKER}.containers.0.resources.limits")
    assert len(check_gpu_memory(LWS, obj, A10)) == 1


def test_worker_template_alone_serves_as_leader() -> None:
    single = delete_in(ack("vllm"), "spec.leaderWorkerTemplate.leaderTemplate")
    single = set_in(single, "spec.leaderWorkerTemplate.size", 1)
    single = set_in(single, f"{WORKER}.containers.0.command", ["sh", "-c", vllm_leader("--model /models/Qwen3-32B")])
    [message] = check_gpu_memory(LWS, single, L20)
    assert "TP=1 x PP=1" in message


def test_runtime_overhead_comes_from_config() -> None:
    generous = Settings.from_config({"defaultGpu": "NVIDIA-L20", "runtimeOverheadGiB": 12})
    obj = with_leader_command(ack("vllm"), vllm_leader("--model /models/Qwen2.5-32B -tp 2"))
    [message] = check_gpu_memory(LWS, obj, generous)
    assert "12.0 GiB runtime overhead" in message


# ---- the full shape from the annotations -------------------------------------------------------

QWEN3_32B_ANNOTATIONS = {
    "inference.lws.dev/parameters": "32760000000",
    "inference.lws.dev/dtype": "bf16",
    "inference.lws.dev/layers": "64",
    "inference.lws.dev/attention-heads": "64",
    "inference.lws.dev/kv-heads": "8",
    "inference.lws.dev/head-dim": "128",
    "inference.lws.dev/hidden-size": "5120",
    "inference.lws.dev/vocab-size": "151936",
    "inference.lws.dev/max-model-len": "32768",
    "inference.lws.dev/kv-cache-sequences": "1",
}


def test_annotations_give_the_full_estimate() -> None:
    obj = set_in(ack("vllm"), "metadata.annotations", QWEN3_32B_ANNOTATIONS)
    assert assess(LWS, obj, L20).denials == []
    [message] = check_gpu_memory(LWS, obj, A10)
    assert "of KV cache for 32768 tokens" in message
    assert "model from the inference.lws.dev/* annotations" in message


def test_annotations_outrank_the_model_name() -> None:
    tiny = dict(QWEN3_32B_ANNOTATIONS, **{"inference.lws.dev/parameters": "1000000000"})
    obj = set_in(ack("vllm"), "metadata.annotations", tiny)
    assert check_gpu_memory(LWS, obj, A10) == []


def test_annotations_without_context_length_use_the_flag() -> None:
    partial = {k: v for k, v in QWEN3_32B_ANNOTATIONS.items() if not k.endswith("max-model-len")}
    obj = set_in(ack("vllm"), "metadata.annotations", partial)
    obj = with_leader_command(obj, vllm_leader("--model /models/Qwen3-32B -tp 2 --max-model-len 40960"))
    [message] = check_gpu_memory(LWS, obj, A10)
    assert "for 40960 tokens" in message


def test_annotations_without_any_context_length_check_weights_only() -> None:
    partial = {k: v for k, v in QWEN3_32B_ANNOTATIONS.items() if not k.endswith("max-model-len")}
    obj = set_in(ack("vllm"), "metadata.annotations", partial)
    [message] = check_gpu_memory(LWS, obj, A10)
    assert "32.76B parameters in bf16 from the inference.lws.dev/* annotations" in message


def test_malformed_annotations_fall_back_to_the_name() -> None:
    broken = dict(QWEN3_32B_ANNOTATIONS, **{"inference.lws.dev/layers": "many"})
    obj = set_in(ack("vllm"), "metadata.annotations", broken)
    [message] = check_gpu_memory(LWS, obj, A10)
    assert "model from the built-in catalog (Qwen/Qwen3-32B in bf16, served as /models/Qwen3-32B)" in message


# ---- FP4 checkpoints, data and expert parallelism, and numbers no model has ------------------------------------


def one_pod(command: list[str], gpus: str = "1", args: list[str] | None = None) -> Obj:
    obj = delete_in(ack("vllm"), "spec.leaderWorkerTemplate.leaderTemplate")
    obj = set_in(obj, "spec.leaderWorkerTemplate.size", 1)
    obj = set_in(obj, f"{WORKER}.containers.0.command", command)
    if args is not None:
        obj = set_in(obj, f"{WORKER}.containers.0.args", args)
    return set_in(obj, f"{WORKER}.containers.0.resources.limits", {"nvidia.com/gpu": gpus, "memory": "64Gi"})


@pytest.mark.parametrize(
    "command",
    [["vllm", "serve", "openai/gpt-oss-120b"], ["vllm", "serve", "/m/Qwen3-235B-A22B-NVFP4", "-tp", "4"],
     ["vllm", "serve", "/m/Llama-3.1-405B-Instruct-FP4", "-tp", "4", "-pp", "2"],
     ["vllm", "serve", "/m/Qwen3-235B-A22B", "--quantization", "modelopt_fp4", "-tp", "4"],
     ["vllm", "serve", "/m/house-120B", "--quantization", "mxfp4"]],
)  # fmt: skip
def test_fp4_checkpoints_are_sized_as_fp4(command: list[str]) -> None:
    obj = one_pod(command)
    gpus = next((int(w) for f, w in itertools.pairwise(command) if f == "-tp"), 1)
    gpus *= next((int(w) for f, w in itertools.pairwise(command) if f == "-pp"), 1)
    obj = set_in(obj, f"{WORKER}.containers.0.resources.limits", {"nvidia.com/gpu": str(gpus)})
    report = assess(LWS, obj, H100)
    assert report.denials == [] and report.unverified == []


def test_gpt_oss_in_bf16_would_not_fit_so_the_storage_matters() -> None:
    [message] = check_gpu_memory(LWS, one_pod(["vllm", "serve", "/m/house-120B"]), H100)
    assert "120B parameters in bf16" in message


def test_args_only_for_the_image_entrypoint_are_read() -> None:
    obj = one_pod([], args=["/m/Llama-3.1-405B-Instruct", "--tensor-parallel-size", "1"])
    obj = delete_in(obj, f"{WORKER}.containers.0.command")
    assert check_gpu_memory(LWS, obj, H100) == []  # an image whose entrypoint the pack does not know
    obj = set_in(obj, f"{WORKER}.containers.0.image", "vllm/vllm-openai:v0.10.1")
    [message] = check_gpu_memory(LWS, obj, H100)
    assert "needs" in message and "TP=1 x PP=1" in message


def test_expert_parallelism_spreads_the_weights_over_data_parallel_ranks() -> None:
    command = ["vllm", "serve", "/m/Qwen3-235B-A22B-FP8", "-tp", "1", "-dp", "8", "--enable-expert-parallel"]
    obj = set_in(one_pod(command), f"{WORKER}.containers.0.resources.limits", {"nvidia.com/gpu": "8"})
    assert assess(LWS, obj, H100).denials == []
    without_ep = set_in(obj, f"{WORKER}.containers.0.command", command[:-1])
    [message] = check_gpu_memory(LWS, without_ep, H100)
    assert "TP=1 x PP=1" in message  # each DP replica holds all 235B parameters


@pytest.mark.parametrize(
    "command",
    [["vllm", "serve", "/m/Qwen3-32B", "-tp", "9" * 400],
     ["vllm", "serve", "/m/Qwen3-32B", "--max-model-len", "9" * 400],
     ["vllm", "serve", "/m/Qwen3-32B", "--gpu-memory-utilization", "1e400"],
     ["vllm", "serve", "/m/Qwen3-32B", "-dp", "1" + "0" * 5000]],
)  # fmt: skip
def test_numbers_no_model_has_are_unverified_not_a_crash(command: list[str]) -> None:
    report = assess(LWS, one_pod(command), H100)
    assert report.denials == []


@pytest.mark.parametrize("value", ["9" * 400, "9" * 60, "9" * 4000, "1e400"])
def test_huge_annotations_are_unverified_not_a_crash(value: str) -> None:
    obj = ack("vllm")
    obj["metadata"]["annotations"] = {
        f"inference.lws.dev/{key}": value
        for key in ("parameters", "layers", "attention-heads", "kv-heads", "head-dim", "max-model-len")
    } | {"inference.lws.dev/dtype": "bf16"}
    report = assess(LWS, obj, L20)
    assert all(isinstance(m, str) for m in report.denials + report.unverified)


def test_amd_and_ascend_memory_is_unverified() -> None:
    obj = set_in(ack("vllm"), f"{LEADER}.containers.0.resources.limits", {"amd.com/gpu": "1"})
    obj = set_in(obj, f"{WORKER}.containers.0.resources.limits", {"amd.com/gpu": "1"})
    [message] = check_gpu_memory_unverified(LWS, obj, L20)
    assert "request amd.com/gpu" in message


def test_catalog_moe_that_cannot_fit_is_denied_with_its_real_size() -> None:
    obj = with_leader_command(ack("vllm"), vllm_leader("--model deepseek-ai/DeepSeek-V3 -tp 2"))
    [message] = check_gpu_memory(LWS, obj, L20)
    assert "GiB of weights" in message and "deepseek-ai/DeepSeek-V3 in fp8" in message
