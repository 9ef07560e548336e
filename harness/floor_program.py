"""The engine's floor for the benchmarks: a Pulumi program (copied as __main__.py into a scratch project) that
registers the objects of objects.json, as the real program rendered them, as plain Kubernetes resources: one
provider like the program's, no chart, no components, no dependencies, no planner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi

HERE = Path(__file__).resolve().parent


def type_token(obj: dict[str, Any]) -> str:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def main() -> None:
    # JSON, as the program's chart cache: PyYAML's pure-Python loader took seconds over the CRDs' 1.3 MB.
    objects = json.loads((HERE / "objects.json").read_text())
    config = pulumi.Config("floor")
    provider = pulumi.ProviderResource("kubernetes", "cluster", {"renderYamlToDirectory": config.require("renderDir")})
    for obj in objects:
        metadata = obj["metadata"]
        name = "-".join(filter(None, [obj["kind"], metadata.get("namespace"), metadata["name"]]))
        pulumi.CustomResource(type_token(obj), name, obj, pulumi.ResourceOptions(provider=provider))


main()
