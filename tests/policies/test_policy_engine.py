"""The pack under the real Pulumi CLI: `pulumi policy analyze --file` runs every resource policy and the
stack policy on a state file, with the stack's policy config validated against the schemas, without a
program, cluster or provider. Only the CLI and the Python language host of tools/build.sh are needed."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from lws_guard.pack import stack_policies

from harness.scratch import BIN, ROOT, offline_env, state_file
from kernel.type_tokens import type_token_of
from tests.policies.helpers import CONFIG_DIR, load, set_in

pytestmark = pytest.mark.engine


def analyze(tmp_path: Path, objs: list[dict[str, Any]], config: Path) -> tuple[int, list[dict[str, Any]], str]:
    if not (BIN / "pulumi").exists() or not (BIN / "pulumi-language-python").exists():
        pytest.fail("the Pulumi CLI is not built: run `make setup` (scripts/setup.sh)")
    env = offline_env(tmp_path / "home")
    state = state_file(tmp_path / "state.json", [(type_token_of(obj), obj) for obj in objs])
    result = subprocess.run(
        ["pulumi", "policy", "analyze", "--file", str(state), "--policy-pack", str(ROOT / "policies"),
         "--policy-pack-config", str(config), "--json", "--non-interactive", "--color", "never"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    events = [json.loads(line)["policyEvent"] for line in result.stdout.splitlines() if '"policyEvent"' in line]
    return result.returncode, events, result.stderr


def counts(events: list[dict[str, Any]], level: str) -> Counter[str]:
    return Counter(e["policyName"] for e in events if e["enforcementLevel"] == level)


def test_ack_stack_passes_with_advisories(tmp_path: Path) -> None:
    objs = load("ack_qwen3_vllm") + load("ack_qwen3_sglang") + load("lws_controller") + load("ack_oss_model_volume")
    code, events, stderr = analyze(tmp_path, objs, CONFIG_DIR / "ack.json")
    assert code == 0, stderr
    assert counts(events, "mandatory") == Counter()
    assert counts(events, "advisory") == Counter({"model-volume-readonly": 4})


def test_cce_seed_on_the_cce_cluster(tmp_path: Path) -> None:
    """The CCE walkthrough's group fits H100s, but its literal token is denied, and a 0.7.0 controller is
    an online upgrade of the add-on's pinned 0.6.1."""
    objs = load("cce_llama405b") + load("lws_controller")
    code, events, _ = analyze(tmp_path, objs, CONFIG_DIR / "cce.json")
    assert code != 0
    assert counts(events, "mandatory") == Counter({"no-plaintext-secrets": 2, "no-online-upgrade": 5})
    assert counts(events, "advisory") == Counter({"image-pinned": 2, "lws-autoscaling": 1})
    upgrade = next(e for e in events if e["policyName"] == "no-online-upgrade")
    assert "the LWS controller runs 0.6.1; changing it to 0.7.0 is an online upgrade" in upgrade["message"]


def test_cce_seed_on_a10_nodes_is_denied(tmp_path: Path) -> None:
    objs = load("cce_llama405b")
    for template in ("leaderTemplate", "workerTemplate"):
        path = f"spec.leaderWorkerTemplate.{template}.spec.nodeSelector"
        objs[0] = set_in(objs[0], path, {"nvidia.com/gpu.product": "NVIDIA-A10"})
    code, events, _ = analyze(tmp_path, objs, CONFIG_DIR / "cce.json")
    assert code != 0
    [gpu] = [e for e in events if e["policyName"] == "gpu-memory"]
    assert "needs 52.7 GiB per GPU with TP=8 x PP=2" in gpu["message"]  # the catalog's 405B, KV cache included


def test_maintenance_window_with_groups_left_is_denied_by_the_stack_policy(tmp_path: Path) -> None:
    config = json.loads((CONFIG_DIR / "cce.json").read_text())
    for policy in ("no-online-upgrade", "no-online-upgrade-drained"):
        config[policy]["maintenance"] = True
    window = tmp_path / "window.json"
    window.write_text(json.dumps(config))
    code, events, _ = analyze(tmp_path, load("ack_qwen3_vllm") + load("lws_controller"), window)
    assert code != 0
    assert counts(events, "mandatory") == Counter({"no-online-upgrade-drained": 1})
    code, events, _ = analyze(tmp_path, load("lws_controller"), window)
    assert code == 0
    assert counts(events, "mandatory") == Counter()


def test_config_is_validated_against_the_schemas(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"no-online-upgrade": {"lwsVersion": "main"}}))
    code, _, stderr = analyze(tmp_path, load("lws_controller"), bad)
    assert code != 0
    assert "lwsVersion" in stderr


def test_the_corpus_under_the_real_cli(tmp_path: Path) -> None:
    """The corpus deployments judged on dev's GPU in one state file: the CLI reports exactly the table's verdicts."""
    from tests.policies.corpus.expected import EXPECTED
    from tests.policies.test_policy_corpus import FILES, documents

    stack_level = {policy.name for policy in stack_policies()}

    # The ones judged on another GPU than dev's (their source's) have a config of their own in the corpus test.
    on_dev = [path for path in FILES if not EXPECTED[path.stem].gpu]
    objs = [doc for path in on_dev for doc in documents(path)]
    code, events, stderr = analyze(tmp_path, objs, CONFIG_DIR / "dev.json")
    assert code != 0, stderr  # the broken ones are denied
    expected: Counter[str] = Counter()
    for path in on_dev:
        expected.update(EXPECTED[path.stem].messages)
    # Stack policies are not in the per-file table: they judge the whole stack (here: multi-group LWS without an
    # autoscaler, advice).
    reported = Counter(e["policyName"] for e in events if e["policyName"] not in stack_level)
    assert reported == expected
