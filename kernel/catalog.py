"""Facts the plan relies on: GPU memory by product, bytes per parameter, what each LWS release supports.

Each table says where its numbers come from; a cluster profile or the policy config can override the
GPU memory, so a product missing here is never a dead end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.version import InvalidVersion, Version


class Engine(StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"


class Dtype(StrEnum):
    """How the weights are stored on the GPU."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    INT4_AWQ = "awq-int4"
    INT4_GPTQ = "gptq-int4"
    MXFP4 = "mxfp4"
    NVFP4 = "nvfp4"


# Bytes per parameter of the quantized linear layers. int4 packs two weights per byte and adds one
# fp16 scale and one packed 4-bit zero point per group of 128 weights: (0.5 + 2.5/128). fp8 checkpoints
# add one fp32 scale per tensor or channel, which is negligible. MXFP4 (OCP microscaling, gpt-oss) adds
# one 8-bit E8M0 scale per block of 32 weights; NVFP4 one fp8 E4M3 scale per block of 16.
BYTES_PER_PARAMETER: dict[Dtype, float] = {
    Dtype.BF16: 2.0,
    Dtype.FP16: 2.0,
    Dtype.FP8: 1.0,
    Dtype.INT4_AWQ: 0.5 + 2.5 / 128,
    Dtype.INT4_GPTQ: 0.5 + 2.5 / 128,
    Dtype.MXFP4: 0.5 + 1 / 32,
    Dtype.NVFP4: 0.5 + 1 / 16,
}

# Embeddings and the LM head stay in 16 bits in AWQ, GPTQ and fp8 checkpoints.
UNQUANTIZED_BYTES = 2.0

# Memory per GPU in MiB, as GPU feature discovery reports it in the nvidia.com/gpu.memory label for
# the nvidia.com/gpu.product label value.
GPU_MEMORY_MIB: dict[str, int] = {
    "NVIDIA-H100-80GB-HBM3": 81559,
    "NVIDIA-H100-SXM5-80GB": 81559,
    "NVIDIA-H800": 81559,
    "NVIDIA-H200": 143771,
    "NVIDIA-H20": 97871,
    "NVIDIA-A100-SXM4-80GB": 81920,
    "NVIDIA-A100-SXM4-40GB": 40960,
    "NVIDIA-A800-SXM4-80GB": 81920,
    "NVIDIA-L40S": 46068,
    "NVIDIA-L20": 46068,
    "NVIDIA-A10": 23028,
    "NVIDIA-L4": 23034,
    "Tesla-V100-SXM2-32GB": 32768,
}


class LwsFeature(StrEnum):
    WORKER_INDEX_ENV = "the LWS_WORKER_INDEX variable"
    STARTUP_POLICY = "spec.startupPolicy"
    SUBDOMAIN_POLICY = "spec.networkConfig.subdomainPolicy"
    ROLLOUT_MAX_SURGE = "rolloutStrategy.rollingUpdateConfiguration.maxSurge"
    ROLLOUT_PARTITION = "rolloutStrategy.rollingUpdateConfiguration.partition"
    MUTABLE_SIZE = "changing leaderWorkerTemplate.size in place"
    GANG_SCHEDULING = "gang scheduling through Volcano (chart value gangSchedulingManagement)"
    RECREATE_AFTER_START_ANNOTATION = "annotation leaderworkerset.sigs.k8s.io/experimental-recreate-group-after-start"
    VOLUME_CLAIM_TEMPLATES = "leaderWorkerTemplate.volumeClaimTemplates"
    CHART_CRDS_DIR = "the chart's CRDs in crds/ (outside the Helm release)"
    RECREATE_GROUP_AFTER_START = "restartPolicy RecreateGroupAfterStart"
    DISAGGREGATED_SET = "the DisaggregatedSet API"
    FOREGROUND_DELETION = "deleting a LeaderWorkerSet in the foreground"


# The LWS releases this project knows, oldest first; the CCE add-on runs 0.6.1, ACK's catalog the latest.
LWS_RELEASES: tuple[Version, ...] = tuple(Version(v) for v in ("0.6.1", "0.7.0", "0.8.0", "0.9.0", "0.10.0"))
DEFAULT_LWS_VERSION = "0.10.0"
# Releases whose chart and controller tools/build.sh and tools/build-cluster.sh build from the module
# sigs.k8s.io/lws at the tag (tools/lws/<release>/go.mod); the module proxy refuses the zip of v0.10.0.
LWS_BUILT_HERE = ("0.6.1", "0.7.0", "0.8.0", "0.9.0")

# First LWS release with each feature. Read from the API types and the chart of sigs.k8s.io/lws at each tag
# (api/leaderworkerset/v1/leaderworkerset_types.go, charts/lws/) and the kubernetes-sigs/lws release notes:
# - startupPolicy, networkConfig.subdomainPolicy, maxSurge and the LWS_* env are in v0.6.1's types already.
# - partition: v0.7.0 (RollingUpdateConfiguration.Partition); gangSchedulingManagement: v0.7.0's values.yaml
#   (Volcano PodGroups, pkg/schedulerprovider/volcano_provider.go).
# - v0.8.0: volumeClaimTemplates and PersistentVolumeClaimRetentionPolicy; the experimental annotation
#   leaderworkerset.sigs.k8s.io/experimental-recreate-group-after-start; the chart's CRDs moved from
#   templates/crds/ to crds/ (kubernetes-sigs/lws#880: a `helm upgrade` from 0.7 deletes the CRD).
# - v0.9.0: restartPolicy RecreateGroupAfterStart as an enum value (lws#726: groups stuck recreating while
#   an image pulls) and the DisaggregatedSet API (api/disaggregatedset, chart value enableDisaggregatedSet).
LWS_FEATURE_SINCE: dict[LwsFeature, Version] = {
    LwsFeature.WORKER_INDEX_ENV: Version("0.6.0"),
    LwsFeature.STARTUP_POLICY: Version("0.6.0"),
    LwsFeature.SUBDOMAIN_POLICY: Version("0.6.0"),
    LwsFeature.ROLLOUT_MAX_SURGE: Version("0.6.0"),
    LwsFeature.ROLLOUT_PARTITION: Version("0.7.0"),
    LwsFeature.MUTABLE_SIZE: Version("0.7.0"),
    LwsFeature.GANG_SCHEDULING: Version("0.7.0"),
    LwsFeature.RECREATE_AFTER_START_ANNOTATION: Version("0.8.0"),
    LwsFeature.VOLUME_CLAIM_TEMPLATES: Version("0.8.0"),
    LwsFeature.CHART_CRDS_DIR: Version("0.8.0"),
    LwsFeature.RECREATE_GROUP_AFTER_START: Version("0.9.0"),
    LwsFeature.DISAGGREGATED_SET: Version("0.9.0"),
    # Observed on the local cluster: 0.6.1 recreates a group's StatefulSets while its LeaderWorkerSet waits for
    # them to go (foregroundDeletion), so the delete never ends; 0.9.0 lets them go. 0.7 and 0.8 are untested,
    # so they are treated as 0.6.1 (tests/e2e/test_managed_0_6_1.py, tests/e2e/test_local_cluster.py).
    LwsFeature.FOREGROUND_DELETION: Version("0.9.0"),
}


@dataclass(frozen=True)
class KubernetesRange:
    minimum: tuple[int, int]
    maximum: tuple[int, int]


# Kubernetes minors each LWS minor is known to work with. The floor is 1.27 (StatefulSet start
# ordinals on by default); 0.6.x stops at 1.31 as the CCE add-on documents it; later releases reach
# the Kubernetes minor of the client libraries in their go.mod (k8s.io/api v0.33.3 in v0.7.0, v0.34.3 in
# v0.8.0, v0.36.2 in v0.9.0, v0.36.3 in v0.10.0).
LWS_KUBERNETES_RANGE: dict[tuple[int, int], KubernetesRange] = {
    (0, 6): KubernetesRange((1, 27), (1, 31)),
    (0, 7): KubernetesRange((1, 27), (1, 33)),
    (0, 8): KubernetesRange((1, 27), (1, 34)),
    (0, 9): KubernetesRange((1, 27), (1, 36)),
    (0, 10): KubernetesRange((1, 27), (1, 36)),
}

# Defaults of a cluster profile, used by the stack config (config.model), the planner (kernel.sizing) and the
# policy pack (lws_guard.settings), so the three agree when a stack or a policy config leaves them out.
DEFAULT_GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
DEFAULT_SHM_BASE_GIB = 2.0
DEFAULT_SHM_PER_GPU_GIB = 1.0

MINIMUM_KUBERNETES = (1, 27)
MINIMUM_LWS = (0, 6, 0)


def release(text: str) -> Version | None:
    """'v0.7.0' or '1.31' as a Version; None for anything that is not a plain release (main, latest, 0.7.0rc1)."""
    try:
        parsed = Version(text.strip())
    except InvalidVersion:
        return None
    if parsed.is_prerelease or parsed.is_postrelease or parsed.local or parsed.epoch:
        return None
    return parsed


def parse_version(text: str) -> tuple[int, ...] | None:
    """'v0.7.0' or '1.31' as a tuple of ints; None for anything else (main, latest, ...)."""
    parsed = release(text)
    return parsed.release if parsed else None


def lws_supports(lws_version: Sequence[int] | Version, feature: LwsFeature) -> bool:
    return _as_version(lws_version) >= LWS_FEATURE_SINCE[feature]


def _as_version(version: Sequence[int] | Version) -> Version:
    return version if isinstance(version, Version) else Version(".".join(str(p) for p in version))
