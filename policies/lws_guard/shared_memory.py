"""shared-memory: every GPU container of a LeaderWorkerSet gets a memory-backed /dev/shm.

NCCL and Ray keep their buffers in /dev/shm; the container runtime's 64 MiB default breaks NCCL.
The floor grows with the container's GPUs (plan.sizing.shm_floor_bytes with the configured base and
per-GPU GiB), and the emptyDir counts against the container's memory limit
(plan.rules.check_shared_memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lws_guard import manifest
from lws_guard.settings import Settings
from plan.rules import check_shared_memory
from plan.sizing import shm_floor_bytes


def check_shared_memory_policy(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    if not manifest.is_lws(resource_type, props):
        return []
    who = manifest.display("LeaderWorkerSet", props, name)
    messages = []
    for pod in manifest.lws_pod_specs(props):
        for container in manifest.containers(pod.spec):
            gpus = manifest.gpus(container)
            if not gpus:
                continue
            mount = manifest.shm_mount(pod.spec, container)
            floor = shm_floor_bytes(gpus, settings.shm_base_gib, settings.shm_per_gpu_gib)
            findings = check_shared_memory(
                container=f"{manifest.container_name(container)} ({pod.role}, {gpus} GPUs)",
                medium=mount.medium,
                size_bytes=mount.size_bytes,
                memory_limit=manifest.memory_limit(container),
                floor=floor,
            )
            messages += [f"{who}: {finding.message}" for finding in findings]
    return messages
