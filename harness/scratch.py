"""A scratch copy of the project with a stack of its own, run by the real Pulumi CLI and plugins that
tools/build.sh provides, in the environment of the README's commands (scripts/env.sh): a file backend per copy,
so engine tests and benchmarks never touch the developer's stacks. No pytest here: the benchmarks use it too."""

from __future__ import annotations

import atexit
import compileall
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.measure import Run, measured

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("Pulumi.yaml", "__main__.py", "components", "config", "kernel", "plan", "policies")
PASSPHRASE = "engine-tests-only"


class PulumiCommandError(AssertionError):
    """A pulumi command that had to succeed did not (an AssertionError, so pytest reports it as a failure)."""


@dataclass
class Project:
    """A scratch copy of the project with one stack, `test`."""

    path: Path
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return ["pulumi", *args, "--stack", "test", "--non-interactive", "--color", "never"]

    def measure(self, *args: str) -> Run:
        """A pulumi command, timed with its CPU and log bytes (harness.measure), that must succeed."""
        run = measured(self.command(*args), self.path, self.env, Path(self.env["PULUMI_HOME"]) / "logs")
        if run.returncode != 0:
            raise PulumiCommandError(f"pulumi {' '.join(args)} failed ({run.returncode}):\n{run.output}")
        return run

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = run_group(self.command(*args), self.path, self.env)
        if check and result.returncode != 0:
            output = f"{result.stdout}\n{result.stderr}"
            raise PulumiCommandError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{output}")
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


COMMAND_TIMEOUT = 420
"""Seconds a pulumi command may take (the slowest, an `up` on the local cluster, takes about one minute)."""


def run_group(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs `command` in a process group of its own. On a hang, the whole group (the CLI and the plugins and
    policy packs it started) is killed: a plugin left behind would hold the output pipes open."""
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise PulumiCommandError(
                f"{' '.join(command)} did not finish in {COMMAND_TIMEOUT} s:\n{stdout}\n{stderr}"
            ) from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


BIN = ROOT / ".tools" / "bin"
STACK_URN = "urn:pulumi:test::lws::pulumi:pulumi:Stack::lws-test"
PROVIDER_URN = "urn:pulumi:test::lws::pulumi:providers:kubernetes::default"


def offline_env(home: Path) -> dict[str, str]:
    """The environment of the README's commands (scripts/env.sh sourced in bash), with PULUMI_HOME at `home`:
    this checkout's tools first, nothing downloaded, the CLI's automatic log off unless LWS_PULUMI_LOGS=on."""
    return dict(_env_sh(str(home)))


@functools.cache
def _env_sh(home: str) -> tuple[tuple[str, str], ...]:
    source = f'source "{ROOT / "scripts" / "env.sh"}" && env -0'
    # Python's buffering as a user's shell has it: PYTHONUNBUFFERED hid a pack that never flushed its port.
    ambient = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    env = {**ambient, "ROOT": str(ROOT), "PULUMI_HOME": home}
    dump = subprocess.run(["bash", "-c", source], env=env, capture_output=True, check=True).stdout.decode()
    pairs = (item.split("=", 1) for item in dump.split("\0") if "=" in item)
    return tuple((name, value) for name, value in pairs)


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


def default_home() -> Path:
    """The PULUMI_HOME of the README's commands, where scripts/setup.sh installs the provider."""
    return Path(os.environ.get("PULUMI_HOME", ROOT / ".pulumi" / "home"))


def _tools_env(home: Path | None = None) -> dict[str, str]:
    home = home or default_home()
    if not (BIN / "pulumi").exists() or not any((home / "plugins").glob("resource-kubernetes-v*")):
        raise PulumiCommandError("the Pulumi tools are not built: run `make setup` (scripts/setup.sh)")
    return {**offline_env(home), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}


def default_stack_config() -> dict[str, Any]:
    """The default stack's config, rendering into the copy's `rendered` directory."""
    stack_config: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    stack_config.pop("encryptionsalt", None)
    stack_config["config"]["lws-inference:target"] = {"renderDir": "rendered"}
    return stack_config


def scratch_project(
    path: Path, stack_config: dict[str, Any], sources: Path = ROOT, home: Path | None = None
) -> Project:
    """Copies the program and the pack (of `sources`, another checkout for a before/after benchmark) into `path`
    and creates its stack `test` with `stack_config`; `home` is a PULUMI_HOME other than the environment's."""
    for name in SOURCES:
        source = sources / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
            # Bytecode, as scripts/setup.sh writes it for a checkout: where PYTHONDONTWRITEBYTECODE is set, the
            # program and the pack would compile every module from source at every command.
            compileall.compile_dir(path / name, quiet=2)
        else:
            shutil.copy(source, path / name)
    for name in (".venv", ".tools"):
        (path / name).symlink_to(ROOT / name)
    # One chart cache for every copy (entries are keyed by the chart's content and values, so sharing is safe).
    charts = ROOT / ".pulumi" / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    (path / ".pulumi").mkdir()
    (path / ".pulumi" / "charts").symlink_to(charts)
    return stack_project(path, stack_config, home)


def stack_project(path: Path, stack_config: dict[str, Any], home: Path | None = None) -> Project:
    """Creates the stack `test` of the project in `path`, with its own file backend: a copy of one that
    `pulumi stack init` made for this project name before (the same passphrase, so the same salt works)."""
    env = _tools_env(home)
    env["PULUMI_BACKEND_URL"] = f"file://{path / '.state'}"
    template = _initialized_stack((path / "Pulumi.yaml").read_text(), env)
    shutil.copytree(template / ".state", path / ".state")
    salt = yaml.safe_load((template / "Pulumi.test.yaml").read_text())["encryptionsalt"]
    (path / "Pulumi.test.yaml").write_text(yaml.safe_dump({**stack_config, "encryptionsalt": salt}))
    return Project(path, env)


_TEMPLATES: dict[str, Path] = {}


def _initialized_stack(project_file: str, env: dict[str, str]) -> Path:
    """An empty stack `test` of the project in a directory of its own, initialized once per process."""
    if project_file not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="stack-template-"))
        atexit.register(shutil.rmtree, template, ignore_errors=True)
        (template / "Pulumi.yaml").write_text(project_file)
        (template / ".state").mkdir()
        subprocess.run(
            ["pulumi", "stack", "init", "test", "--secrets-provider", "passphrase", "--non-interactive"],
            cwd=template, env={**env, "PULUMI_BACKEND_URL": f"file://{template / '.state'}"},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        _TEMPLATES[project_file] = template
    return _TEMPLATES[project_file]
