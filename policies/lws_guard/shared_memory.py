"""shared-memory (mandatory) and shared-memory-advice (advisory): /dev/shm of GPU containers.

One rule, kernel.rules.check_shared_memory (the planner's too), split by severity:
* mandatory, because it fails: a container with several GPUs, or with a GPU in a group of several pods,
  has no /dev/shm volume (the container runtime's 64 MiB default breaks NCCL); or its emptyDir's
  sizeLimit exceeds the container's memory limit (the pod is OOM-killed as shared memory fills);
* advice, because it works: no sizeLimit (bounded by the pod's memory), no memory limit, a size below
  the recommended floor (shmBaseGiB + shmPerGpuGiB per GPU: ours, not a published limit), a disk-backed
  emptyDir, a single-GPU single-pod container without a volume.
hostIPC: true or a hostPath /dev/shm share the node's /dev/shm: fine. Any accelerator counts (NVIDIA,
AMD, Ascend, Gaudi); the groups of DisaggregatedSet roles are checked like LeaderWorkerSets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.rules import Finding, check_shared_memory
from kernel.sizing import shm_floor_bytes
from lws_guard import manifest
from lws_guard.settings import Settings


def check_shared_memory_policy(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    return [message for message, advisory in _assess(resource_type, props, settings, name) if not advisory]


def check_shared_memory_advice(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    return [message for message, advisory in _assess(resource_type, props, settings, name) if advisory]


def _assess(resource_type: str, props: Mapping[str, Any], settings: Settings, name: str) -> list[tuple[str, bool]]:
    found = []
    for view in manifest.lws_views(resource_type, props, name):
        multi_node = manifest.group_size(view.props) > 1
        for item in manifest.containers_of(manifest.lws_pod_specs(view.props)):
            gpus = manifest.gpus(item.container)
            if not gpus:
                continue
            mount = manifest.shm_mount(item.pod.spec, item.container)
            findings: list[Finding] = check_shared_memory(
                container=f"{item.name} ({item.pod.role}, {gpus} GPUs)",
                medium=mount.medium,
                size_bytes=mount.size_bytes,
                memory_limit=manifest.memory_limit(item.container),
                floor=shm_floor_bytes(gpus, settings.shm_base_gib, settings.shm_per_gpu_gib),
                gpus=gpus,
                multi_node=multi_node,
            )
            found += [(f"{view.who}: {f.message}", f.advisory) for f in findings]
    return found
