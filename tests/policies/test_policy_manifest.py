"""Reading objects: lws_guard.manifest and the model-name parsing of lws_guard.serving."""

from __future__ import annotations

from typing import Any

import pytest
from lws_guard import manifest
from lws_guard.serving import find_server, parameter_count, storage

from kernel.catalog import Dtype
from kernel.commands import read_flags
from tests.policies.helpers import LWS, one


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"limits": {"nvidia.com/gpu": "8"}}, 8),
        ({"limits": {"nvidia.com/gpu": 8}}, 8),
        ({"limits": {"nvidia.com/gpu": 8.0}}, 8),
        ({"requests": {"nvidia.com/gpu": "2"}}, 2),
        ({"limits": {"cpu": "8"}}, 0),
        ({"limits": {"nvidia.com/gpu": "lots"}}, 0),
        ({"limits": {"nvidia.com/gpu": "1e400"}}, 0),
        ({"limits": {"nvidia.com/gpu": -1}}, 0),
        ("not a mapping", 0),
        (None, 0),
    ],
)
def test_gpus(resources: object, expected: int) -> None:
    assert manifest.gpus({"resources": resources}) == expected


def test_group_size() -> None:
    assert manifest.group_size({"spec": {"leaderWorkerTemplate": {"size": 2.0}}}) == 2
    assert manifest.group_size({"spec": {"leaderWorkerTemplate": {"size": "3"}}}) == 3
    assert manifest.group_size({"spec": {"leaderWorkerTemplate": {}}}) == 1
    assert manifest.group_size({"spec": {"leaderWorkerTemplate": {"size": 1.5}}}) == 1
    assert manifest.group_size({"spec": None}) == 1


def test_text_of_numbers() -> None:
    assert manifest.text(8.0) == "8"
    assert manifest.text(0.9) == "0.9"
    assert manifest.text(True) == "true"
    assert manifest.text(float("nan")) is None
    assert manifest.text({"a": 1}) is None


def test_command_joins_command_and_args_as_text() -> None:
    container = {"command": ["python3", "-m", "vllm.entrypoints.openai.api_server"], "args": ["--port", 8000.0]}
    assert manifest.command(container)[-2:] == ["--port", "8000"]


def test_display_names() -> None:
    assert manifest.display("LeaderWorkerSet", {"metadata": {"name": "a", "namespace": "b"}}) == "LeaderWorkerSet b/a"
    assert manifest.display("LeaderWorkerSet", {"metadata": {}}, "pulumi-name") == "LeaderWorkerSet pulumi-name"
    assert manifest.display("Pod", {}) == "Pod <unnamed>"


def test_lws_detection() -> None:
    lws = one("ack_qwen3_vllm")
    assert manifest.is_lws(LWS, {})
    assert manifest.is_lws("kubernetes:yaml/v2:Unknown", lws) is False
    assert manifest.kind_of("not-a-token", lws) == "LeaderWorkerSet"
    assert manifest.is_lws("", lws)


def test_shm_mount() -> None:
    obj = one("cce_llama405b")
    spec = manifest.leader_spec(obj)
    mount = manifest.shm_mount(spec, manifest.containers(spec)[0])
    assert mount == manifest.ShmMount("Memory", 15 * 1024**3)
    assert manifest.shm_mount(spec, {"volumeMounts": [{"name": "x", "mountPath": "/dev/shm/"}]}).medium is None
    assert manifest.shm_mount(spec, {}).medium is None


def test_gpu_selection_from_node_selector() -> None:
    selection = manifest.gpu_selection({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L20"}})
    assert selection.products == ("NVIDIA-L20",)
    assert selection.memory_mib is None
    assert manifest.gpu_selection({"nodeSelector": {"nvidia.com/gpu.memory": "46068"}}).memory_mib == 46068


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    node_terms = [{"matchExpressions": list(term)} for term in terms]
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": node_terms}}}}  # fmt: skip


def test_gpu_selection_from_affinity() -> None:
    product = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L20", "NVIDIA-A10"]}
    assert manifest.gpu_selection(affinity([product])).products == ("NVIDIA-L20", "NVIDIA-A10")
    # One term without a product: any GPU may be picked, so the product is unknown.
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    assert manifest.gpu_selection(affinity([product], [zone])).products == ()
    memory = {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["40000"]}
    assert manifest.gpu_selection(affinity([memory])).memory_mib == 40000
    assert manifest.gpu_selection(affinity([memory], [zone])).memory_mib is None
    not_in = {"key": "nvidia.com/gpu.product", "operator": "NotIn", "values": ["NVIDIA-A10"]}
    assert manifest.gpu_selection(affinity([not_in])) == manifest.GpuSelection()


def test_parse_image() -> None:
    assert manifest.parse_image("registry.k8s.io/lws/lws:v0.7.0") == manifest.ImageRef(
        "registry.k8s.io/lws/lws", "v0.7.0", None
    )
    assert manifest.parse_image("localhost:5000/lws") == manifest.ImageRef("localhost:5000/lws", None, None)
    ref = manifest.parse_image("lws:v1@sha256:ab")
    assert (ref.repository, ref.tag, ref.digest) == ("lws", "v1", "sha256:ab")


@pytest.mark.parametrize(
    ("model", "billions", "experts"),
    [
        ("meta-llama/Meta-Llama-3.1-405B-Instruct", 405, None),
        ("/models/Qwen3-32B", 32, None),
        ("Qwen/Qwen3-0.6B", 0.6, None),
        ("Qwen/Qwen3-30B-A3B", 30, None),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", 72, None),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 56, 8),
        ("HuggingFaceTB/SmolLM2-135M", 0.135, None),
        ("/mnt/7b/weights/llama-2-13b-chat", 13, None),
        ("openai/gpt-oss-120b", 120, None),
    ],
)
def test_parameter_count(model: str, billions: float, experts: int | None) -> None:
    count = parameter_count(model)
    assert count is not None
    assert count.parameters == pytest.approx(billions * 1e9)
    assert count.experts == experts


@pytest.mark.parametrize("model", ["deepseek-ai/DeepSeek-V3", "/models/current", "Llama-3.1", ""])
def test_parameter_count_unknown(model: str) -> None:
    assert parameter_count(model) is None


@pytest.mark.parametrize(
    ("command", "dtype"),
    [
        ("vllm serve /m/Qwen3-32B", Dtype.BF16),
        ("vllm serve /m/Qwen3-32B --quantization fp8", Dtype.FP8),
        ("vllm serve /m/Qwen3-32B -q awq_marlin", Dtype.INT4_AWQ),
        ("vllm serve /m/Qwen3-32B-FP8", Dtype.FP8),
        ("vllm serve /m/Qwen3-32B-Int4-W4A16", Dtype.INT4_GPTQ),
        ("vllm serve /m/Qwen3-32B --dtype half", Dtype.FP16),
        ("vllm serve /m/Qwen3-32B --dtype float32", None),
        ("python3 -m sglang.launch_server --model-path /m/Qwen3-32B-AWQ", Dtype.INT4_AWQ),
    ],
)
def test_storage(command: str, dtype: Dtype | None) -> None:
    flags = read_flags(command.split())
    assert storage(flags, flags.values["model"]).dtype is dtype


def test_find_server_skips_the_vllm_worker_join_command() -> None:
    obj = one("ack_qwen3_vllm")
    server = find_server(obj)
    assert server is not None and server.container == "vllm-leader" and server.role == "leader"
    del obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    assert find_server(obj) is None
