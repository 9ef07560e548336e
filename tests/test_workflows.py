"""The GitHub workflows of the users' repository: linted offline (actionlint with shellcheck, built and installed
by `make setup`), and checked for what a platform team relies on: every stack previewed with its own policy
config on a pull request, deploys per environment behind GitHub environments, no credential in the files, and a
local command that runs the same check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lws_guard.secrets import is_credential_name

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
SETUP_ACTION = ROOT / ".github" / "actions" / "setup" / "action.yml"


def tool(name: str) -> str:
    for directory in (ROOT / ".tools" / "bin", ROOT / ".venv" / "bin"):
        if (directory / name).exists():
            return str(directory / name)
    pytest.fail(f"{name} is not installed: run `make setup`")


def workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action)]


def test_actionlint_and_shellcheck_find_nothing() -> None:
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}")
    lint = subprocess.run([tool("actionlint"), "-no-color", "-oneline"], cwd=ROOT, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    scripts = [
        *map(str, (ROOT / "scripts").glob("*.sh")),
        str(ROOT / "tools" / "build.sh"),
        str(ROOT / "tools" / "build-cluster.sh"),
        str(ROOT / "tools" / "build-addons.sh"),
        str(ROOT / ".ci" / "run"),
    ]
    check = subprocess.run([tool("shellcheck"), "-x", *scripts], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_a_pull_request_previews_every_stack_with_its_policy_config_and_comments() -> None:
    jobs = workflow("pull-request.yml")["jobs"]
    assert any(step.get("run") == "make test" for step in jobs["test"]["steps"]), "the README's test command"
    policy = jobs["policy"]
    assert policy["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.names) }}"
    (preview,) = steps_using(policy, "pulumi/actions")
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    assert preview["with"]["comment-on-pr"] is True


def test_a_merge_deploys_each_stack_in_its_own_environment_with_the_pack() -> None:
    deploy = workflow("deploy.yml")
    assert deploy[True]["push"]["branches"] == ["main"]  # PyYAML reads the key `on` as True
    up = deploy["jobs"]["up"]
    assert up["environment"] == "${{ matrix.stack }}", "production's approval is its environment's reviewers"
    assert up["concurrency"]["cancel-in-progress"] is False, "an update cancelled half-way leaves pending operations"
    (step,) = steps_using(up, "pulumi/actions")
    assert step["with"]["command"] == "up"
    assert step["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"


def env_blocks(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["env"]] if isinstance(node.get("env"), dict) else []
        return found + [b for value in node.values() for b in env_blocks(value)]
    if isinstance(node, list):
        return [b for value in node for b in env_blocks(value)]
    return []


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_credentials_come_only_from_repository_secrets(name: str) -> None:
    credentials = {k: v for block in env_blocks(workflow(name)) for k, v in block.items() if is_credential_name(k)}
    assert credentials, "the test must see the workflow's credentials to check them"
    for key, value in credentials.items():
        assert re.fullmatch(r"\$\{\{ secrets\.[A-Z0-9_]+ \}\}", str(value)), f"{key} is not a secret reference"


def test_ci_installs_the_cli_version_the_tools_build() -> None:
    action = yaml.safe_load(SETUP_ACTION.read_text())
    (install,) = [s for s in action["runs"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")]
    pinned = re.search(r"^PULUMI_VERSION=v(\S+)$", (ROOT / "tools" / "build.sh").read_text(), re.MULTILINE)
    assert pinned is not None and install["with"]["pulumi-version"] == pinned.group(1)


def test_every_action_is_pinned_to_a_release() -> None:
    files = [*WORKFLOWS.glob("*.yml"), SETUP_ACTION]
    uses = {u for f in files for u in re.findall(r"uses:\s*(\S+)", f.read_text()) if not u.startswith("./")}
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", ref), f"{ref} is not pinned to a release"


def test_the_local_check_previews_like_the_pull_request() -> None:
    script = (ROOT / "scripts" / "pr-check.sh").read_text()
    assert "make --no-print-directory test" in script
    assert '--policy-pack policies --policy-pack-config "policies/config/$stack.json"' in script
    assert "pr-check:" in (ROOT / "Makefile").read_text()


def test_a_stack_without_a_policy_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "stacks.sh", tmp_path / "scripts")
    (tmp_path / "policies" / "config").mkdir(parents=True)
    for stack in ("dev", "prod-ack"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (tmp_path / "policies" / "config" / "dev.json").write_text("{}")
    missing = subprocess.run(["bash", "scripts/stacks.sh", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 1 and "policies/config/prod-ack.json" in missing.stderr
    (tmp_path / "policies" / "config" / "prod-ack.json").write_text("{}")
    listed = subprocess.run(["bash", "scripts/stacks.sh", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert listed.stdout.strip() == '["dev", "prod-ack"]'
