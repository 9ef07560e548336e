"""The policy config of a stack, generated from its cluster profile: a cluster is described once.

    python -m scripts.policy_config dev cce      write policies/config/dev.json and cce.json
    python -m scripts.policy_config --all        every stack: Pulumi.<stack>.yaml and examples/Pulumi.<stack>.yaml
    python -m scripts.policy_config --check      write nothing; exit 1 naming every stale or missing file
    python -m scripts.policy_config --print dev  print the config instead of writing it

Each policy gets every key its schema declares (lws_guard.settings.POLICY_KEYS), because Pulumi hands a policy
only its own object: the cluster's facts where the stack states them (`cluster.gpu`, `cluster.lws`,
`cluster.shm*`), the schema default otherwise. The profile is validated with config.model first, so a typo in
the stack fails here with the key named, as `pulumi preview` would report it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lws_guard.settings import POLICY_KEYS, PROPERTIES

from config.load import ConfigError, parse
from config.model import Cluster

ROOT = Path(__file__).resolve().parents[1]
# Stacks a user copies from (examples/) get a policy config too: the preview of a copy starts from it, and the
# pack's tests use the ACK and CCE profiles.

PolicyConfig = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Stack:
    name: str
    profile: Path
    root: Path = ROOT

    @property
    def config_file(self) -> Path:
        return self.root / "policies" / "config" / f"{self.name}.json"


def stacks(root: Path = ROOT) -> list[Stack]:
    """Every stack file of a project: Pulumi.<stack>.yaml and examples/Pulumi.<stack>.yaml; a name in both
    places is ambiguous."""
    found: dict[str, Stack] = {}
    for directory in (root, root / "examples"):
        for profile in sorted(directory.glob("Pulumi.*.yaml")):
            name = profile.name.removeprefix("Pulumi.").removesuffix(".yaml")
            if name in found:
                raise ConfigError([f"{profile}: stack {name} is also {found[name].profile}; rename one"])
            found[name] = Stack(name, profile, root)
    return sorted(found.values(), key=lambda s: s.name)


def stack(name: str, root: Path = ROOT) -> Stack:
    for candidate in stacks(root):
        if candidate.name == name:
            return candidate
    known = ", ".join(s.name for s in stacks(root))
    raise ConfigError([f"no stack {name}: no Pulumi.{name}.yaml here or in examples/ (stacks: {known})"])


def project_name(root: Path) -> str:
    """The namespace of the stack config keys (Pulumi.yaml `name`)."""
    try:
        project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError([f"{root / 'Pulumi.yaml'}: cannot read the project's name: {error}"]) from None
    name = project.get("name") if isinstance(project, Mapping) else None
    if not isinstance(name, str):
        raise ConfigError([f"{root / 'Pulumi.yaml'}: no project name"])
    return name


def _stack_values(profile: Path) -> Mapping[str, Any]:
    """The `config` object of a stack file."""
    try:
        document = yaml.safe_load(profile.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError([f"{profile}: cannot read it: {error}"]) from None
    values = document.get("config") if isinstance(document, Mapping) else None
    return values if isinstance(values, Mapping) else {}


def read_cluster(profile: Path) -> Cluster:
    """The validated cluster profile of a Pulumi.<stack>.yaml; ConfigError names the key of any problem."""
    values = _stack_values(profile)
    key = f"{project_name(_project_root(profile))}:cluster"
    if key not in values:
        raise ConfigError([f"{profile}: no `{key}` under `config` (the cluster profile)"])
    try:
        # Only the cluster: the pack's facts come from it, and `manifests` paths resolve against the project.
        return parse({"cluster": values[key]}).cluster
    except ConfigError as error:
        raise ConfigError([f"{profile}: {line}" for line in error.lines]) from None


def manifest_files(profile: Path) -> list[Path]:
    """The stack's `manifests`: YAML files applied as they are, relative to the project directory."""
    root = _project_root(profile)
    listed = _stack_values(profile).get(f"{project_name(root)}:manifests") or []
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise ConfigError([f"{profile}: manifests: a list of file paths"])
    return [root / p for p in listed]


def _project_root(profile: Path) -> Path:
    """The directory of Pulumi.yaml for a stack file at the root or in examples/."""
    directory = profile.resolve().parent
    return directory if (directory / "Pulumi.yaml").exists() else directory.parent


def cluster_facts(cluster: Cluster) -> dict[str, Any]:
    """The policy config keys a cluster profile states, by their names in the pack's schema."""
    memory = {cluster.gpu.product: cluster.gpu.memory_mib} if cluster.gpu.memory_mib else {}
    return {
        "defaultGpu": cluster.gpu.product,
        "gpuMemoryMiB": memory,
        "shmBaseGiB": cluster.shm_base_gib,
        "shmPerGpuGiB": cluster.shm_per_gpu_gib,
        "lwsVersion": cluster.lws.version,
        "maintenance": cluster.lws.maintenance_window,
    }


def policy_config(cluster: Cluster) -> PolicyConfig:
    """One object per policy with config, every key it reads: from the cluster or the schema's default."""
    facts = cluster_facts(cluster)
    unknown = sorted(set(facts) - set(PROPERTIES))
    if unknown:
        raise KeyError(f"cluster facts without a policy config key in lws_guard.settings.PROPERTIES: {unknown}")
    return {
        policy: {key: _plain(facts[key] if key in facts else PROPERTIES[key]["default"]) for key in keys}
        for policy, keys in POLICY_KEYS.items()
    }


def render(config: PolicyConfig) -> str:
    return json.dumps(config, indent=2) + "\n"


def _plain(value: Any) -> Any:
    """2.0 -> 2, so the files read as people write them (JSON has one number type)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def stale(selected: Sequence[Stack]) -> list[str]:
    problems = []
    for item in selected:
        expected = render(policy_config(read_cluster(item.profile)))
        if not item.config_file.exists():
            problems.append(f"{_shown(item.config_file)} is missing")
        elif item.config_file.read_text() != expected:
            problems.append(f"{_shown(item.config_file)} differs from {_shown(item.profile)}")
    return problems


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.policy_config", description=__doc__.split("\n")[0])
    parser.add_argument("stacks", nargs="*", help="stack names (default with --all or --check: every stack)")
    parser.add_argument("--all", action="store_true", help="every stack of the repository")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    parser.add_argument("--print", action="store_true", help="print the config instead of writing it")
    args = parser.parse_args(argv)
    if not args.stacks and not (args.all or args.check):
        parser.error("name a stack, or use --all or --check")
    try:
        selected = [stack(name) for name in args.stacks] if args.stacks else stacks()
        if args.check:
            problems = stale(selected)
            for line in problems:
                print(f"{line}: run `python -m scripts.policy_config --all`", file=sys.stderr)
            return 1 if problems else 0
        for item in selected:
            text = render(policy_config(read_cluster(item.profile)))
            if args.print:
                print(text, end="")
            elif not item.config_file.exists() or item.config_file.read_text() != text:
                item.config_file.write_text(text)
                print(f"{_shown(item.config_file)}: written from {_shown(item.profile)}")
    except ConfigError as error:
        print("\n".join(error.lines), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
