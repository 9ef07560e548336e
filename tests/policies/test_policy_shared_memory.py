"""shared-memory (mandatory) and shared-memory-advice: /dev/shm of every GPU container of a group."""

from __future__ import annotations

import pytest
from lws_guard.settings import Settings
from lws_guard.shared_memory import check_shared_memory_advice, check_shared_memory_policy

from tests.policies.helpers import LEADER, LWS, WORKER, Obj, delete_in, floats, one, set_in

DEFAULT = Settings()


def advice(obj: Obj, settings: Settings = DEFAULT) -> list[str]:
    return check_shared_memory_advice(LWS, obj, settings)


@pytest.mark.parametrize("name", ["cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang"])
def test_seed_documents_pass(name: str) -> None:
    """15Gi of /dev/shm: above 2 + 8 GiB for 8 GPUs (CCE), within 24Gi of memory (ACK)."""
    assert check_shared_memory_policy(LWS, one(name), DEFAULT) == []
    assert check_shared_memory_policy(LWS, floats(one(name)), DEFAULT) == []
    assert advice(one(name)) == []


def volume_index(obj: Obj, path: str) -> int:
    spec = obj
    for part in path.split("."):
        spec = spec[part]
    return next(i for i, v in enumerate(spec["volumes"]) if v["name"] == "dshm")


def test_missing_mount_is_denied() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{WORKER}.containers.0.volumeMounts.1")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert message.startswith("LeaderWorkerSet inference/qwen3-vllm: container vllm-worker (worker, 1 GPUs)")
    assert "has no /dev/shm volume, so it gets the container runtime's 64 MiB default; NCCL fails" in message
    assert "recommended sizeLimit: 3.0 GiB" in message


def test_missing_mount_on_one_gpu_of_a_one_pod_group_is_advice() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), "spec.leaderWorkerTemplate.leaderTemplate")
    obj = set_in(obj, "spec.leaderWorkerTemplate.size", 1)
    obj = delete_in(obj, f"{WORKER}.containers.0.volumeMounts.1")
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    [message] = advice(obj)
    assert "enough for a single GPU in a single pod" in message


@pytest.mark.parametrize("share", ["hostIPC", "hostPath"])
def test_the_nodes_shared_memory_passes(share: str) -> None:
    obj = delete_in(one("cce_llama405b"), f"{WORKER}.containers.0.volumeMounts")
    if share == "hostIPC":
        obj = set_in(obj, f"{WORKER}.hostIPC", True)
    else:
        obj = set_in(obj, f"{WORKER}.volumes.0", {"name": "dshm", "hostPath": {"path": "/dev/shm"}})
        obj = set_in(obj, f"{WORKER}.containers.0.volumeMounts", [{"name": "dshm", "mountPath": "/dev/shm"}])
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    assert advice(obj) == []


def test_disk_backed_empty_dir_is_advice() -> None:
    obj = one("cce_llama405b")
    obj = delete_in(obj, f"{LEADER}.volumes.0.emptyDir.medium")
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    [message] = advice(obj)
    assert "disk-backed" in message and "Set medium: Memory" in message


def test_missing_size_limit_is_advice_with_the_floor() -> None:
    obj = delete_in(one("cce_llama405b"), f"{WORKER}.volumes.0.emptyDir.sizeLimit")
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    [message] = advice(obj)
    assert "worker (worker, 8 GPUs)" in message and "recommended sizeLimit: 10.0 GiB" in message


def test_size_below_the_floor_is_advice() -> None:
    """2Gi on an 8-GPU pod runs in production (wide-EP decode): the floor is ours, not a limit."""
    obj = set_in(one("cce_llama405b"), f"{LEADER}.volumes.0.emptyDir.sizeLimit", "2Gi")
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    [message] = advice(obj)
    assert "/dev/shm is 2.0 GiB, below the recommended 10.0 GiB" in message


def test_floor_comes_from_config() -> None:
    strict = Settings.from_config({"shmBaseGiB": 8, "shmPerGpuGiB": 1.0})
    messages = advice(one("cce_llama405b"), strict)
    assert len(messages) == 2
    assert all("below the recommended 16.0 GiB" in m for m in messages)


def test_size_above_the_memory_limit_is_denied() -> None:
    obj = one("ack_qwen3_sglang")
    index = volume_index(obj, WORKER)
    obj = set_in(obj, f"{WORKER}.volumes.{index}.emptyDir.sizeLimit", "32Gi")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "/dev/shm of 32.0 GiB exceeds its memory limit of 24.0 GiB" in message


def test_missing_memory_limit_is_advice() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.resources.limits.memory")
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []
    [message] = advice(obj)
    assert "has no memory limit" in message


@pytest.mark.parametrize("resource", ["amd.com/gpu", "huawei.com/Ascend910", "huawei.com/ascend-1980"])
def test_other_accelerators_need_shared_memory_too(resource: str) -> None:
    obj = delete_in(one("cce_llama405b"), f"{WORKER}.containers.0.volumeMounts")
    obj = set_in(obj, f"{WORKER}.containers.0.resources.limits", {resource: "8", "memory": "1124Gi"})
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "container worker (worker, 8 GPUs) has no /dev/shm volume" in message


def test_numeric_size_limit_in_bytes() -> None:
    obj = set_in(one("cce_llama405b"), f"{LEADER}.volumes.0.emptyDir.sizeLimit", float(15 * 1024**3))
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []


def test_containers_without_gpus_need_no_shm() -> None:
    obj = one("ack_qwen3_vllm")
    sidecar = {"name": "metrics", "image": "exporter:v1", "resources": {"limits": {"memory": "64Mi"}}}
    obj["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"].append(sidecar)
    assert check_shared_memory_policy(LWS, obj, DEFAULT) == []


def test_worker_template_alone_is_checked_once() -> None:
    obj = delete_in(one("cce_llama405b"), "spec.leaderWorkerTemplate.leaderTemplate")
    obj = delete_in(obj, f"{WORKER}.containers.0.volumeMounts")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "(leader and worker, 8 GPUs)" in message


def test_other_kinds_are_ignored() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}]},
    }
    assert check_shared_memory_policy("kubernetes:core/v1:Pod", pod, DEFAULT) == []
