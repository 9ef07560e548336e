"""A scratch copy of the project with a stack of its own, run by the real Pulumi CLI and plugins that
tools/build.sh provides: a file backend per copy, so engine tests and benchmarks never touch the developer's
stacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("Pulumi.yaml", "__main__.py", "components", "config", "plan", "policies")
PASSPHRASE = "engine-tests-only"


@dataclass
class Project:
    """A scratch copy of the project with one stack, `test`."""

    path: Path
    env: dict[str, str]

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["pulumi", *args, "--stack", "test", "--non-interactive", "--color", "never"],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def set(self, key: str, value: str, *, secret: bool = False) -> None:
        flags = ["--path"] + (["--secret"] if secret else [])
        self.pulumi("config", "set", *flags, key, value)

    @property
    def rendered(self) -> Path:
        return self.path / "rendered"

    def manifests(self) -> list[dict[str, Any]]:
        """Every object rendered so far."""
        docs = []
        for file in sorted(self.rendered.rglob("*.yaml")):
            docs += [d for d in yaml.safe_load_all(file.read_text()) if d]
        return docs

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.manifests() if d.get("kind") == kind}

    def state(self) -> str:
        """The stack's checkpoint as text (to look for leaked secrets)."""
        return "\n".join(p.read_text() for p in (self.path / ".state").rglob("*.json"))


BIN = ROOT / ".tools" / "bin"
STACK_URN = "urn:pulumi:test::lws::pulumi:pulumi:Stack::lws-test"
PROVIDER_URN = "urn:pulumi:test::lws::pulumi:providers:kubernetes::default"


def offline_env(home: Path) -> dict[str, str]:
    """The environment the CLI of tools/build.sh runs in: this checkout's tools first, nothing downloaded."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}:{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
        PULUMI_HOME=str(home),
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_PYTHON_CMD=str(ROOT / ".venv" / "bin" / "python"),
    )
    return env


def state_file(path: Path, resources: list[tuple[str, dict[str, Any]]]) -> Path:
    """A `pulumi stack export` checkpoint holding (type token, object) pairs as Kubernetes resources, for
    `pulumi policy analyze --file`."""
    entries: list[dict[str, Any]] = [
        {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack"},
        {"urn": PROVIDER_URN, "custom": True, "id": "k8s", "type": "pulumi:providers:kubernetes"},
    ]
    for index, (token, obj) in enumerate(resources):
        name = f"{obj['metadata']['name']}-{index}"
        entries.append({
            "urn": f"urn:pulumi:test::lws::{token}::{name}", "custom": True, "id": name, "type": token,
            "inputs": obj, "outputs": obj, "parent": STACK_URN, "provider": f"{PROVIDER_URN}::k8s",
        })  # fmt: skip
    manifest = {"time": "2025-01-01T00:00:00Z", "magic": "", "version": ""}
    path.write_text(json.dumps({"version": 3, "deployment": {"manifest": manifest, "resources": entries}}))
    return path


def _tools_env() -> dict[str, str]:
    home = Path(os.environ.get("PULUMI_HOME", ROOT / ".pulumi" / "home"))
    if not (BIN / "pulumi").exists() or not any((home / "plugins").glob("resource-kubernetes-v*")):
        pytest.fail("the Pulumi tools are not built: run `make setup` (scripts/setup.sh)")
    return {**offline_env(home), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}


def default_stack_config() -> dict[str, Any]:
    """The default stack's config, rendering into the copy's `rendered` directory."""
    stack_config: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    stack_config.pop("encryptionsalt", None)
    stack_config["config"]["lws-inference:target"] = {"renderDir": "rendered"}
    return stack_config


def scratch_project(path: Path, stack_config: dict[str, Any]) -> Project:
    """Copies the program and the pack into `path` and creates its stack `test` with `stack_config`."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, path / name)
    for name in (".venv", ".tools"):
        (path / name).symlink_to(ROOT / name)
    (path / "Pulumi.test.yaml").write_text(yaml.safe_dump(stack_config))
    env = _tools_env()
    env["PULUMI_BACKEND_URL"] = f"file://{path / '.state'}"
    (path / ".state").mkdir()
    subprocess.run(
        ["pulumi", "stack", "init", "test", "--secrets-provider", "passphrase", "--non-interactive"],
        cwd=path, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return Project(path, env)
