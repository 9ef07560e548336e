"""The engine's floor for the benchmarks: a Pulumi program (copied as __main__.py into a scratch project) that
registers the objects of objects.yaml, as the real program rendered them, as plain Kubernetes resources: one
provider like the program's, no chart, no components, no dependencies, no planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import yaml

HERE = Path(__file__).resolve().parent


def type_token(obj: dict[str, Any]) -> str:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def main() -> None:
    objects = [obj for obj in yaml.safe_load_all((HERE / "objects.yaml").read_text()) if obj]
    config = pulumi.Config("floor")
    provider = pulumi.ProviderResource("kubernetes", "cluster", {"renderYamlToDirectory": config.require("renderDir")})
    for obj in objects:
        metadata = obj["metadata"]
        name = "-".join(filter(None, [obj["kind"], metadata.get("namespace"), metadata["name"]]))
        pulumi.CustomResource(type_token(obj), name, obj, pulumi.ResourceOptions(provider=provider))


main()
