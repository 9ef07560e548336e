"""One cluster profile: policies/config/<stack>.json is generated from Pulumi.<stack>.yaml (scripts/policy_config.py),
so what the pack enforces for a stack follows its stack file alone."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from lws_guard import cli
from lws_guard.manifest import LWS_TYPE
from lws_guard.settings import POLICY_KEYS, PROPERTIES, Settings
from lws_guard.shared_memory import check_shared_memory_advice

from config.load import ConfigError, parse
from config.model import Cluster, LwsController
from kernel import catalog
from plan.group import plan_stack
from plan.manifests import Placement, leader_worker_set
from scripts import policy_config
from tests import factories

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "policies" / "fixtures"


def test_committed_policy_configs_are_generated_from_their_stacks() -> None:
    assert policy_config.stale(policy_config.stacks()) == [], "run: python -m scripts.policy_config --all"
    generated = {s.config_file.name for s in policy_config.stacks()}
    assert generated == {p.name for p in (ROOT / "policies" / "config").glob("*.json")}, "a config without a stack"


def test_every_policy_gets_every_key_it_reads() -> None:
    cluster = policy_config.read_cluster(ROOT / "examples" / "Pulumi.cce.yaml")
    config = policy_config.policy_config(cluster)
    assert {policy: set(keys) for policy, keys in config.items()} == {p: set(k) for p, k in POLICY_KEYS.items()}
    assert config["shared-memory"] == {"shmBaseGiB": 7, "shmPerGpuGiB": 1}  # cluster.shmBaseGib: 7
    assert config["no-online-upgrade"]["lwsVersion"] == config["no-online-upgrade-drained"]["lwsVersion"] == "0.6.1"


def test_defaults_live_once() -> None:
    """A profile that states nothing but what is required yields the pack's own defaults."""
    cluster = Cluster.model_validate(
        {"name": "c", "kubernetesVersion": "1.31", "gpu": {"product": catalog.DEFAULT_GPU_PRODUCT}}
    )
    generated = policy_config.policy_config(cluster)
    defaults = {policy: {key: PROPERTIES[key]["default"] for key in keys} for policy, keys in POLICY_KEYS.items()}
    assert generated == defaults
    assert Settings.from_config(generated["shared-memory"]) == Settings()
    assert LwsController().version == Settings().lws_version == catalog.DEFAULT_LWS_VERSION


# ---- editing the stack file alone changes the verdicts -------------------------------------------


def project_with(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """A copy of the ACK example stack under tmp_path with cluster keys changed; returns its stack file."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    document = yaml.safe_load((ROOT / "examples" / "Pulumi.ack.yaml").read_text())
    cluster = document["config"]["lws-inference:cluster"]
    for path, value in edit.items():
        node = cluster
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    profile = tmp_path / "Pulumi.edited.yaml"
    profile.write_text(yaml.safe_dump(document))
    return profile


def verdicts(profile: Path, fixture: str) -> set[tuple[str, str]]:
    out = io.StringIO()
    cli.main(["check", "--profile", str(profile), "--format", "json", str(FIXTURES / fixture)], stdout=out)
    return {(f["level"], f["policy"]) for f in json.loads(out.getvalue())["findings"]}


@pytest.mark.parametrize(
    ("fixture", "edit", "finding"),
    [
        ("ack_qwen3_vllm.yaml", {"gpu.product": "NVIDIA-A10"}, ("mandatory", "gpu-memory")),
        # Below the stack's own floor is advice (it works, it is below our recommendation).
        ("ack_qwen3_vllm.yaml", {"shmBaseGib": 16}, ("advisory", "shared-memory-advice")),
        ("lws_controller.yaml", {"lws.version": "0.8.0"}, ("mandatory", "no-online-upgrade")),
    ],
)
def test_a_stack_file_edit_alone_changes_what_the_pack_enforces(
    tmp_path: Path, fixture: str, edit: dict[str, Any], finding: tuple[str, str]
) -> None:
    before = verdicts(project_with(tmp_path, {}), fixture)
    after = verdicts(project_with(tmp_path, edit), fixture)
    assert finding not in before
    assert finding in after


def test_a_gpu_known_only_by_its_memory_in_the_profile_is_known_to_the_pack(tmp_path: Path) -> None:
    """cluster.gpu.memoryMib plans a product the catalog lacks; the pack must know its memory too."""
    unknown = verdicts(project_with(tmp_path, {"gpu.product": "NVIDIA-L20-Custom"}), "ack_qwen3_vllm.yaml")
    assert ("advisory", "gpu-memory-unverified") in unknown
    known = verdicts(
        project_with(tmp_path, {"gpu.product": "NVIDIA-L20-Custom", "gpu.memoryMib": 46068}), "ack_qwen3_vllm.yaml"
    )
    assert not {("advisory", "gpu-memory-unverified"), ("mandatory", "gpu-memory")} & known
    small = verdicts(
        project_with(tmp_path, {"gpu.product": "NVIDIA-L20-Custom", "gpu.memoryMib": 16384}), "ack_qwen3_vllm.yaml"
    )
    assert ("mandatory", "gpu-memory") in small


def test_the_maintenance_window_reaches_the_pack(tmp_path: Path) -> None:
    profile = project_with(tmp_path, {"lws.maintenanceWindow": True})
    config = policy_config.policy_config(policy_config.read_cluster(profile))
    assert config["no-online-upgrade"]["maintenance"] is True


# ---- errors --------------------------------------------------------------------------------------


def test_a_wrong_profile_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = project_with(tmp_path, {"gpu.perNode": 0, "shmBaseGib": -1})
    with pytest.raises(ConfigError) as error:
        policy_config.read_cluster(profile)
    lines = "\n".join(error.value.lines)
    assert "cluster.gpu.perNode" in lines and "cluster.shmBaseGib" in lines
    assert cli.main(["check", "--profile", str(profile), str(FIXTURES)]) == 2
    assert "cluster.gpu.perNode" in capsys.readouterr().err


def test_an_unknown_stack_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert policy_config.main(["no-such-stack"]) == 2
    assert "no stack no-such-stack" in capsys.readouterr().err


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stacks = policy_config.stacks()
    config_file = stacks[0].config_file
    stale = policy_config.Stack(stacks[0].name, stacks[0].profile, tmp_path)
    stale.config_file.parent.mkdir(parents=True)
    stale.config_file.write_text(config_file.read_text().replace('"maintenance": false', '"maintenance": true'))
    assert policy_config.stale([stale]) == [f"{stale.config_file} differs from {_shown(stale.profile)}"]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_workflows_check_the_generated_config_before_using_it() -> None:
    for name, job in (("pull-request.yml", "policy"), ("deploy.yml", "up")):
        steps = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())["jobs"][job]["steps"]
        runs = [str(s.get("run", "")) for s in steps]
        pulumi = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions"))
        checked = next(i for i, r in enumerate(runs) if "python -m scripts.policy_config --check" in r)
        assert checked < pulumi, name
    pull_request = (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    assert 'python -m lws_guard check --stack "$STACK"' in pull_request
    makefile = (ROOT / "Makefile").read_text()
    assert "policy-check: setup policies/config/$(STACK).json" in makefile
    assert "python -m scripts.policy_config $*" in makefile


def test_a_lowered_shm_floor_no_longer_flags_the_stacks_own_group() -> None:
    """shmBaseGib 1 + shmPerGpuGib 0.5 renders 5Gi for 8 GPUs; the hand-typed default floor (10 GiB) flagged it."""
    raw = factories.cce_llama405b()
    raw["cluster"] = {**raw["cluster"], "shmBaseGib": 1, "shmPerGpuGib": 0.5}
    config = parse(raw)
    [group] = plan_stack(config).groups
    lws = leader_worker_set(group, Placement(namespace="inference", claim_name="models", mount_path="/models"))
    generated = policy_config.policy_config(config.cluster)["shared-memory-advice"]
    assert check_shared_memory_advice(LWS_TYPE, lws, Settings.from_config(generated)) == []
    assert check_shared_memory_advice(LWS_TYPE, lws, Settings()) != []
