"""The pulumi_policy objects, run the way the engine runs them (proxied props, per-policy config)."""

from __future__ import annotations

import ast
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lws_guard.pack import PACK_NAME, resource_policies, stack_policies
from lws_guard.settings import POLICY_KEYS
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from tests.policies.helpers import LEADER, load, one, run_resource_policy, run_stack_policy, set_in

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MANDATORY = {"gpu-memory", "shared-memory", "parallelism", "no-online-upgrade", "no-plaintext-secrets",
             "autoscaler-target"}  # fmt: skip
ADVISORY = {"gpu-memory-unverified", "shared-memory-advice", "parallelism-advice", "image-pinned", "leader-probe",
            "model-volume-readonly", "model-pv-reclaim"}  # fmt: skip


def policy(name: str) -> ResourceValidationPolicy:
    return next(p for p in resource_policies() if p.name == name)


def drained() -> StackValidationPolicy:
    return next(p for p in stack_policies() if p.name == "no-online-upgrade-drained")


def test_policy_names_and_levels() -> None:
    levels = {p.name: p.enforcement_level for p in resource_policies()}
    assert set(levels) == MANDATORY | ADVISORY
    assert all(levels[name] is EnforcementLevel.MANDATORY for name in MANDATORY)
    assert all(levels[name] is EnforcementLevel.ADVISORY for name in ADVISORY)
    assert drained().name == "no-online-upgrade-drained"
    assert drained().enforcement_level is EnforcementLevel.MANDATORY


def test_config_schemas_carry_defaults() -> None:
    for p in [*resource_policies(), *stack_policies()]:
        keys = POLICY_KEYS.get(p.name, ())
        if not keys:
            assert p.config_schema is None
            continue
        assert p.config_schema is not None
        assert set(p.config_schema.properties) == set(keys)
        assert all("default" in spec for spec in p.config_schema.properties.values())


def test_gpu_memory_through_the_sdk_uses_its_own_config() -> None:
    cce = one("cce_llama405b")
    assert run_resource_policy(policy("gpu-memory"), cce, {"defaultGpu": "NVIDIA-H100-80GB-HBM3"}) == []
    [message] = run_resource_policy(policy("gpu-memory"), cce, {"defaultGpu": "NVIDIA-A10"})
    assert "NVIDIA-A10 has 22.5 GiB x 0.90 = 20.2 GiB usable" in message
    # Without config (as in a bare test) the schema defaults apply.
    assert run_resource_policy(policy("gpu-memory"), cce) == []


def test_every_policy_runs_on_every_fixture_through_the_sdk() -> None:
    for name in ("cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang", "ack_oss_model_volume", "lws_controller"):
        for obj in load(name):
            for p in resource_policies():
                messages = run_resource_policy(p, obj)
                assert all(isinstance(m, str) and m for m in messages)


def test_resource_name_is_used_when_metadata_has_none() -> None:
    obj = one("cce_llama405b")
    del obj["metadata"]["name"]
    [message, _] = run_resource_policy(policy("no-plaintext-secrets"), obj, name="llama")
    assert message.startswith("LeaderWorkerSet llama: ")


def test_unknown_values_surface_as_the_sdk_error() -> None:
    """During preview an Output not yet known raises UnknownValueError; the engine turns that into an
    advisory "can't run policy during preview" instead of a pass or a crash."""
    obj = set_in(one("ack_qwen3_vllm"), f"{LEADER}.containers.0.image", UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        run_resource_policy(policy("image-pinned"), obj)
    assert run_resource_policy(policy("gpu-memory"), obj, {"defaultGpu": "NVIDIA-L20"}) == []


def test_stack_policy_through_the_sdk() -> None:
    controller = one("lws_controller", "Deployment")
    groups = [one("ack_qwen3_vllm")]
    window = {"lwsVersion": "0.6.1", "maintenance": True}
    [message] = run_stack_policy(drained(), [controller, *groups], window)
    assert "1 LeaderWorkerSet(s) remain in the stack: LeaderWorkerSet inference/qwen3-vllm" in message
    assert run_stack_policy(drained(), [controller], window) == []
    assert run_stack_policy(drained(), [controller, *groups], {"lwsVersion": "0.6.1"}) == []


def test_main_only_assembles_the_pack() -> None:
    tree = ast.parse((POLICIES / "__main__.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    names = [c.value.func.id for c in calls if isinstance(c.value, ast.Call) and isinstance(c.value.func, ast.Name)]
    assert names == ["PolicyPack"]
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    path_insert = next(i for i, n in enumerate(tree.body) if "sys.path.insert" in ast.unparse(n))
    assert all(tree.body.index(n) < path_insert for n in imports if "lws_guard" not in ast.unparse(n)
               and "pulumi_policy" not in ast.unparse(n))  # fmt: skip
    assert PACK_NAME == "lws-inference-guard"


def test_project_files() -> None:
    project = yaml.safe_load((POLICIES / "PulumiPolicy.yaml").read_text())
    assert project["version"]
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "../.venv"}}
    requirements = (POLICIES / "requirements.txt").read_text().split("\n")
    assert "-r ../requirements.txt" in requirements


def test_the_pack_announces_its_port_to_the_cli_without_pythonunbuffered() -> None:
    """The CLI reads the pack's port from its stdout, a pipe. pulumi_policy never flushes it: without the pack's
    unbuffered stdout, `pulumi preview --policy-pack` waited forever wherever PYTHONUNBUFFERED was unset."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    with subprocess.Popen(
        [sys.executable, str(POLICIES), "127.0.0.1:1"], cwd=POLICIES, env=env, stdout=subprocess.PIPE
    ) as pack:
        assert pack.stdout is not None
        try:
            ready, _, _ = select.select([pack.stdout], [], [], 60)
            line = pack.stdout.readline() if ready else b""
        finally:
            pack.kill()
    assert line.strip().isdigit(), f"no port from the pack within 60 s (got {line!r})"
