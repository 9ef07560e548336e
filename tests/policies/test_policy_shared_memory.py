"""shared-memory: /dev/shm of every GPU container of leader and worker templates."""

from __future__ import annotations

import pytest
from lws_guard.settings import Settings
from lws_guard.shared_memory import check_shared_memory_policy

from tests.policies.helpers import LEADER, LWS, WORKER, Obj, delete_in, floats, one, set_in

DEFAULT = Settings()


@pytest.mark.parametrize("name", ["cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang"])
def test_seed_documents_pass(name: str) -> None:
    """15Gi of /dev/shm: above 2 + 8 GiB for 8 GPUs (CCE), within 24Gi of memory (ACK)."""
    assert check_shared_memory_policy(LWS, one(name), DEFAULT) == []
    assert check_shared_memory_policy(LWS, floats(one(name)), DEFAULT) == []


def volume_index(obj: Obj, path: str) -> int:
    spec = obj
    for part in path.split("."):
        spec = spec[part]
    return next(i for i, v in enumerate(spec["volumes"]) if v["name"] == "dshm")


def test_missing_mount_is_denied() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{WORKER}.containers.0.volumeMounts.1")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert message.startswith("LeaderWorkerSet inference/qwen3-vllm: container vllm-worker (worker, 1 GPUs)")
    assert "does not mount /dev/shm from an emptyDir" in message


def test_host_path_is_not_an_empty_dir() -> None:
    obj = one("ack_qwen3_vllm")
    index = volume_index(obj, LEADER)
    obj = set_in(obj, f"{LEADER}.volumes.{index}", {"name": "dshm", "hostPath": {"path": "/dev/shm"}})
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "vllm-leader (leader, 1 GPUs)" in message and "emptyDir" in message


def test_disk_backed_empty_dir_is_denied() -> None:
    obj = one("cce_llama405b")
    obj = delete_in(obj, f"{LEADER}.volumes.0.emptyDir.medium")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "must have medium Memory" in message


def test_missing_size_limit_is_denied_with_the_floor() -> None:
    obj = delete_in(one("cce_llama405b"), f"{WORKER}.volumes.0.emptyDir.sizeLimit")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "worker (worker, 8 GPUs)" in message and "set at least 10.0 GiB" in message


def test_size_below_the_floor_is_denied() -> None:
    obj = set_in(one("cce_llama405b"), f"{LEADER}.volumes.0.emptyDir.sizeLimit", "8Gi")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "/dev/shm is 8.0 GiB, below the floor of 10.0 GiB" in message


def test_floor_comes_from_config() -> None:
    strict = Settings.from_config({"shmBaseGiB": 8, "shmPerGpuGiB": 1.0})
    messages = check_shared_memory_policy(LWS, one("cce_llama405b"), strict)
    assert len(messages) == 2
    assert all("below the floor of 16.0 GiB" in m for m in messages)


def test_size_above_the_memory_limit_is_denied() -> None:
    obj = one("ack_qwen3_sglang")
    index = volume_index(obj, WORKER)
    obj = set_in(obj, f"{WORKER}.volumes.{index}.emptyDir.sizeLimit", "32Gi")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "/dev/shm of 32.0 GiB exceeds its memory limit of 24.0 GiB" in message


def test_missing_memory_limit_is_denied() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.resources.limits.memory")
    [message] = check_shared_memory_policy(LWS, obj, DEFAULT)
    assert "has no memory limit" in message


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
