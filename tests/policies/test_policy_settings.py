"""Settings from policy config, and the per-stack config files in policies/config."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lws_guard.pack import DRAINED_POLICY, RESOURCE_RULES
from lws_guard.settings import POLICY_KEYS, PROPERTIES, Settings, schema_properties

from kernel.catalog import DEFAULT_LWS_VERSION, GPU_MEMORY_MIB
from kernel.units import GIB, MIB
from tests.policies.helpers import CONFIG_DIR

STACKS = ("dev", "ack", "cce")
POLICY_NAMES = {rule.name for rule in RESOURCE_RULES} | {DRAINED_POLICY}


def test_defaults() -> None:
    settings = Settings.from_config(None)
    assert settings == Settings()
    assert settings.default_gpu == "NVIDIA-H100-80GB-HBM3"
    assert settings.lws_version == DEFAULT_LWS_VERSION
    assert settings.maintenance is False
    assert (settings.shm_base_gib, settings.shm_per_gpu_gib) == (2.0, 1.0)
    assert settings.runtime_overhead_bytes == 4 * GIB
    assert settings.gpu_bytes("NVIDIA-L20") == GPU_MEMORY_MIB["NVIDIA-L20"] * MIB
    assert settings.gpu_bytes("unknown") is None


def test_schema_defaults_match_the_dataclass() -> None:
    from_schema = Settings.from_config({key: spec["default"] for key, spec in PROPERTIES.items()})
    assert from_schema == Settings()


def test_values_as_the_engine_passes_them() -> None:
    settings = Settings.from_config(
        {"gpuMemoryMiB": {"NVIDIA-B300": 275000.0, "NVIDIA-L20": 46000}, "shmBaseGiB": 4.0, "maintenance": True,
         "lwsVersion": "v0.8.0", "defaultGpu": "NVIDIA-B300"}
    )  # fmt: skip
    assert settings.gpu_bytes("NVIDIA-B300") == 275000 * MIB
    assert settings.gpu_bytes("NVIDIA-L20") == 46000 * MIB
    assert settings.gpu_bytes("NVIDIA-H100-80GB-HBM3") is not None
    assert settings.shm_base_gib == 4.0
    assert settings.maintenance is True
    assert settings.lws_version == "v0.8.0"


@pytest.mark.parametrize(
    "config",
    [{"gpuMemoryMiB": "lots"}, {"gpuMemoryMiB": {"x": -1, "y": True}}, {"shmBaseGiB": "2"}, {"lwsVersion": "main"},
     {"maintenance": "yes"}, {"defaultGpu": ""}, {"runtimeOverheadGiB": float("inf")}],
)  # fmt: skip
def test_wrong_values_fall_back_to_defaults(config: dict[str, Any]) -> None:
    settings = Settings.from_config(config)
    assert settings.gpu_memory_mib == Settings().gpu_memory_mib
    assert settings.lws_version == DEFAULT_LWS_VERSION
    assert settings.maintenance is False
    assert settings.default_gpu == "NVIDIA-H100-80GB-HBM3"


def test_every_policy_config_key_is_in_the_schema() -> None:
    for policy, keys in POLICY_KEYS.items():
        assert policy in POLICY_NAMES
        assert set(schema_properties(policy)) == set(keys)
    assert schema_properties("image-pinned") == {}


def load_config(stack: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    return config


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
}


@pytest.mark.parametrize("stack", STACKS)
def test_config_file_matches_the_schemas(stack: str) -> None:
    """What the CLI validates at load time: only known policies, only their keys, of the right types."""
    for policy, values in load_config(stack).items():
        assert policy in POLICY_NAMES or policy == "all", policy
        if isinstance(values, str):
            continue
        properties = schema_properties(policy)
        for key, value in values.items():
            if key == "enforcementLevel":
                continue
            assert key in properties, f"{stack}: {policy}.{key} is not in the policy's schema"
            expected = _JSON_TYPES[properties[key]["type"]]
            assert isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)
            if key == "gpuMemoryMiB":
                assert isinstance(value, dict) and all(isinstance(v, int) and v > 0 for v in value.values())


@pytest.mark.parametrize("stack", STACKS)
def test_shared_keys_agree_across_policies(stack: str) -> None:
    """Pulumi gives each policy only its own config: keys two policies read must say the same."""
    config = load_config(stack)
    seen: dict[str, tuple[str, Any]] = {}
    for policy, values in config.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key in seen:
                assert seen[key][1] == value, f"{stack}: {key} differs between {seen[key][0]} and {policy}"
            seen[key] = (policy, value)
    for policy, keys in POLICY_KEYS.items():
        assert set(keys) <= set(config.get(policy, {})), f"{stack}: {policy} leaves keys to defaults"


@pytest.mark.parametrize(
    ("stack", "gpu", "lws"),
    [
        ("dev", "NVIDIA-H100-80GB-HBM3", "0.9.0"),
        ("ack", "NVIDIA-L20", "0.7.0"),
        ("cce", "NVIDIA-H100-80GB-HBM3", "0.6.1"),
    ],
)
def test_stack_facts(stack: str, gpu: str, lws: str) -> None:
    config = load_config(stack)
    assert Settings.from_config(config["gpu-memory"]).default_gpu == gpu
    assert Settings.from_config(config["no-online-upgrade"]).lws_version == lws
    assert Settings.from_config(config["no-online-upgrade-drained"]).maintenance is False
