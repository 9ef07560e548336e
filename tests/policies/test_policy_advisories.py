"""The advisory policies: image-pinned, leader-probe, model-volume-readonly, model-pv-reclaim."""

from __future__ import annotations

from lws_guard.advisories import (
    check_image_pinned_policy,
    check_leader_probe,
    check_model_pv_reclaim,
    check_model_volume_readonly,
)
from lws_guard.settings import Settings

from kernel.type_tokens import type_token_of
from tests.policies.helpers import LEADER, LWS, WORKER, Obj, delete_in, one, set_in

DEFAULT = Settings()


def test_cce_seed_latest_image_is_flagged() -> None:
    messages = check_image_pinned_policy(LWS, one("cce_llama405b"), DEFAULT)
    assert len(messages) == 2
    assert messages[0].startswith(
        "LeaderWorkerSet llama-405b: container leader (leader): "
        "image vllm/vllm-openai:latest is not pinned (tag latest)"
    )


def test_pinned_images_pass() -> None:
    for name in ("ack_qwen3_vllm", "ack_qwen3_sglang"):
        assert check_image_pinned_policy(LWS, one(name), DEFAULT) == []
    assert check_image_pinned_policy(type_token_of(dep := one("lws_controller", "Deployment")), dep, DEFAULT) == []
    digest = set_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.image", "vllm/vllm-openai@sha256:" + "a" * 64)
    assert check_image_pinned_policy(LWS, digest, DEFAULT) == []


def test_untagged_image_in_a_deployment() -> None:
    obj = set_in(one("lws_controller", "Deployment"), "spec.template.spec.containers.0.image", "busybox")
    [message] = check_image_pinned_policy(type_token_of(obj), obj, DEFAULT)
    assert "image busybox is not pinned (tag none)" in message


def test_leader_probe_present_in_seeds() -> None:
    for name in ("cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang"):
        assert check_leader_probe(LWS, one(name), DEFAULT) == []


def test_leader_without_probe_is_flagged() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.readinessProbe")
    [message] = check_leader_probe(LWS, obj, DEFAULT)
    assert message.startswith("LeaderWorkerSet inference/qwen3-vllm: no container of the leader template")


def test_startup_probe_counts() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.readinessProbe")
    obj = set_in(obj, f"{LEADER}.containers.0.startupProbe", {"httpGet": {"path": "/health", "port": 8000}})
    assert check_leader_probe(LWS, obj, DEFAULT) == []


def test_worker_probe_does_not_count_for_the_leader() -> None:
    obj = delete_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.readinessProbe")
    obj = set_in(obj, f"{WORKER}.containers.0.readinessProbe", {"tcpSocket": {"port": 8000}})
    assert len(check_leader_probe(LWS, obj, DEFAULT)) == 1


def test_ack_seed_model_claim_mounted_writable_is_flagged() -> None:
    messages = check_model_volume_readonly(LWS, one("ack_qwen3_vllm"), DEFAULT)
    assert len(messages) == 2
    assert messages[0].startswith(
        "LeaderWorkerSet inference/qwen3-vllm: container vllm-leader (leader) mounts volume model "
        "(persistentVolumeClaim llm-model) at /models/Qwen3-32B writable"
    )


def read_only(obj: Obj) -> Obj:
    for path in (LEADER, WORKER):
        obj = set_in(obj, f"{path}.containers.0.volumeMounts.0.readOnly", True)
    return obj


def test_read_only_mounts_pass() -> None:
    assert check_model_volume_readonly(LWS, read_only(one("ack_qwen3_vllm")), DEFAULT) == []
    obj = one("ack_qwen3_vllm")
    for path in (LEADER, WORKER):
        obj = set_in(obj, f"{path}.volumes.0.persistentVolumeClaim.readOnly", True)
    assert check_model_volume_readonly(LWS, obj, DEFAULT) == []


def test_shm_and_non_inference_containers_are_not_model_volumes() -> None:
    assert check_model_volume_readonly(LWS, one("cce_llama405b"), DEFAULT) == []
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        "containers": [{"name": "db", "image": "postgres:16", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
    }}  # fmt: skip
    assert check_model_volume_readonly("kubernetes:core/v1:Pod", pod, DEFAULT) == []


def test_nfs_volume_in_a_deployment_is_flagged() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vllm", "namespace": "x"},
                  "spec": {"template": {"spec": {
                      "volumes": [{"name": "weights", "nfs": {"server": "10.0.0.2", "path": "/models"}}],
                      "containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.10.0",
                                      "command": ["vllm", "serve", "/models/Qwen3-8B"],
                                      "volumeMounts": [{"name": "weights", "mountPath": "/models"}]}]}}}}  # fmt: skip
    [message] = check_model_volume_readonly("kubernetes:apps/v1:Deployment", deployment, DEFAULT)
    assert "mounts volume weights (nfs) at /models writable" in message


def test_model_pv_reclaim_delete_is_flagged() -> None:
    pv = set_in(one("ack_oss_model_volume", "PersistentVolume"), "spec.persistentVolumeReclaimPolicy", "Delete")
    [message] = check_model_pv_reclaim(type_token_of(pv), pv, DEFAULT)
    assert message.startswith(
        "PersistentVolume llm-model: the ossplugin.csi.alibabacloud.com model volume has "
        "persistentVolumeReclaimPolicy Delete"
    )


def test_model_pv_retain_or_unset_passes() -> None:
    pv = one("ack_oss_model_volume", "PersistentVolume")
    assert check_model_pv_reclaim(type_token_of(pv), pv, DEFAULT) == []
    unset = delete_in(pv, "spec.persistentVolumeReclaimPolicy")
    assert check_model_pv_reclaim(type_token_of(unset), unset, DEFAULT) == []


def test_nfs_pv_delete_flagged_and_other_pvs_ignored() -> None:
    nfs = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "models"},
           "spec": {"nfs": {"server": "s", "path": "/p"}, "persistentVolumeReclaimPolicy": "Delete"}}  # fmt: skip
    assert "the nfs model volume" in check_model_pv_reclaim(type_token_of(nfs), nfs, DEFAULT)[0]
    disk_spec = {"csi": {"driver": "diskplugin.csi.alibabacloud.com"}, "persistentVolumeReclaimPolicy": "Delete"}
    disk = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "disk"}, "spec": disk_spec}
    assert check_model_pv_reclaim(type_token_of(disk), disk, DEFAULT) == []
