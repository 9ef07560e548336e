"""Per-cluster facts the policies need, from the policy-pack config file of a stack.

Pulumi hands each policy only its own config object (`{"gpu-memory": {...}, "shared-memory": {...}}`),
and the CLI fills in the schema defaults before validating it. So every policy declares, in its
schema, the keys it reads (`POLICY_KEYS`), with the defaults below; `Settings.from_config` applies
the same defaults itself so direct calls (tests, benchmarks, lws-guard check) need no CLI. A key two
policies share (e.g. `defaultGpu` for gpu-memory and gpu-memory-unverified) must then be given to both in
a config file; scripts/policy_config.py writes every file of policies/config from its stack's cluster
profile, giving each policy every key of POLICY_KEYS, so they agree with the stack and with themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel.catalog import (
    DEFAULT_GPU_PRODUCT,
    DEFAULT_LWS_VERSION,
    DEFAULT_SHM_BASE_GIB,
    DEFAULT_SHM_PER_GPU_GIB,
    GPU_MEMORY_MIB,
    parse_version,
)
from kernel.units import GIB, MIB

# The cluster defaults are the stack config's (kernel.catalog); policies/config/<stack>.json is generated from
# the stack (scripts/policy_config.py), so these apply only where no stack stands behind the config.
DEFAULT_GPU = DEFAULT_GPU_PRODUCT
# What an engine holds on each GPU besides the weights when only a parameter count is known: the CUDA
# context, NCCL buffers, the activation peak of a forward pass and a minimum of KV cache to serve with.
DEFAULT_RUNTIME_OVERHEAD_GIB = 4.0

_VERSION_PATTERN = r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$"

# JSON schema of every config key, as PolicyConfigSchema properties (camelCase, as in the file).
PROPERTIES: dict[str, dict[str, Any]] = {
    "gpuMemoryMiB": {
        "type": "object",
        "description": "Memory per GPU in MiB by nvidia.com/gpu.product value; extends and overrides the "
        "built-in table (kernel.catalog.GPU_MEMORY_MIB).",
        "additionalProperties": {"type": "integer", "minimum": 1},
        "default": {},
    },
    "defaultGpu": {
        "type": "string",
        "description": "GPU product of pods that select none with nodeSelector or node affinity.",
        "default": DEFAULT_GPU,
    },
    "runtimeOverheadGiB": {
        "type": "number",
        "minimum": 0,
        "description": "Memory per GPU besides the weights when only the model's parameter count is known.",
        "default": DEFAULT_RUNTIME_OVERHEAD_GIB,
    },
    "shmBaseGiB": {
        "type": "number",
        "minimum": 0,
        "description": "/dev/shm floor of a GPU pod: this much plus shmPerGpuGiB per GPU.",
        "default": DEFAULT_SHM_BASE_GIB,
    },
    "shmPerGpuGiB": {
        "type": "number",
        "minimum": 0,
        "description": "/dev/shm floor added per GPU of the container.",
        "default": DEFAULT_SHM_PER_GPU_GIB,
    },
    "lwsVersion": {
        "type": "string",
        "pattern": _VERSION_PATTERN,
        "description": "The LWS controller release pinned on this cluster, e.g. 0.7.0.",
        "default": DEFAULT_LWS_VERSION,
    },
    "maintenance": {
        "type": "boolean",
        "description": "An offline maintenance window: the controller may change version once no "
        "LeaderWorkerSet remains in the stack.",
        "default": False,
    },
}

_GPU_KEYS = ("gpuMemoryMiB", "defaultGpu", "runtimeOverheadGiB")
_UPGRADE_KEYS = ("lwsVersion", "maintenance")

# The config keys each policy reads (and so declares in its schema).
POLICY_KEYS: dict[str, tuple[str, ...]] = {
    "gpu-memory": _GPU_KEYS,
    "gpu-memory-unverified": _GPU_KEYS,
    "shared-memory": ("shmBaseGiB", "shmPerGpuGiB"),
    "no-online-upgrade": _UPGRADE_KEYS,
    "no-online-upgrade-drained": _UPGRADE_KEYS,
}


def schema_properties(policy: str) -> dict[str, dict[str, Any]]:
    """The JSON schema properties of one policy's config; empty for policies without config."""
    return {key: PROPERTIES[key] for key in POLICY_KEYS.get(policy, ())}


@dataclass(frozen=True)
class Settings:
    """The facts of one cluster, with the defaults of the schema for anything not configured."""

    gpu_memory_mib: Mapping[str, float] = field(default_factory=lambda: dict(GPU_MEMORY_MIB))
    default_gpu: str = DEFAULT_GPU
    runtime_overhead_gib: float = DEFAULT_RUNTIME_OVERHEAD_GIB
    shm_base_gib: float = DEFAULT_SHM_BASE_GIB
    shm_per_gpu_gib: float = DEFAULT_SHM_PER_GPU_GIB
    lws_version: str = DEFAULT_LWS_VERSION
    maintenance: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Settings:
        """Settings from one policy's config (args.get_config()); wrong or missing values fall back to
        the defaults, since the CLI has validated the file against the schema already."""
        config = config if isinstance(config, Mapping) else {}
        memory: dict[str, float] = dict(GPU_MEMORY_MIB)
        overrides = config.get("gpuMemoryMiB")
        if isinstance(overrides, Mapping):
            for product, mib in overrides.items():
                if isinstance(product, str) and _positive(mib):
                    memory[product] = float(mib)
        version = config.get("lwsVersion")
        return cls(
            gpu_memory_mib=memory,
            default_gpu=_text(config.get("defaultGpu"), DEFAULT_GPU),
            runtime_overhead_gib=_number(config.get("runtimeOverheadGiB"), DEFAULT_RUNTIME_OVERHEAD_GIB),
            shm_base_gib=_number(config.get("shmBaseGiB"), DEFAULT_SHM_BASE_GIB),
            shm_per_gpu_gib=_number(config.get("shmPerGpuGiB"), DEFAULT_SHM_PER_GPU_GIB),
            lws_version=version if isinstance(version, str) and parse_version(version) else DEFAULT_LWS_VERSION,
            maintenance=config.get("maintenance") is True,
        )

    def gpu_bytes(self, product: str) -> float | None:
        """Memory of one GPU of this product; None when neither config nor catalog knows it."""
        mib = self.gpu_memory_mib.get(product)
        return mib * MIB if mib else None

    @property
    def runtime_overhead_bytes(self) -> float:
        return self.runtime_overhead_gib * GIB


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _number(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return default


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) and value.strip() else default


# ---- pack helper (issue 18): policies split into a mandatory and an advisory half -------------------
# shared-memory-advice reports the /dev/shm floor and reads the same keys as shared-memory (whose mandatory
# messages recommend the same floor). parallelism-advice reads no config.
POLICY_KEYS["shared-memory-advice"] = POLICY_KEYS["shared-memory"]
