"""Shared test helpers: fixture loading, type tokens, and running the pulumi_policy wrappers."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lws_guard.settings import Settings
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from kernel.type_tokens import type_token

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "policies" / "config"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"

Obj = dict[str, Any]


def load(name: str) -> list[Obj]:
    """All documents of tests/policies/fixtures/<name>.yaml (fresh copies each call)."""
    with (FIXTURES / f"{name}.yaml").open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def one(name: str, kind: str | None = None) -> Obj:
    """The first document of a fixture (of that kind)."""
    docs = [d for d in load(name) if kind is None or d.get("kind") == kind]
    return docs[0]


def floats(value: Any) -> Any:
    """The object with every integer as a float, as numbers reach a policy from the engine."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # An integer beyond a double (10**400) reaches a policy as an infinite number.
        return float(value) if abs(value) < 2**1023 else (math.inf if value > 0 else -math.inf)
    if isinstance(value, Mapping):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    return value


def settings_for(stack: str, policy: str = "gpu-memory") -> Settings:
    """Settings as one policy sees them with policies/config/<stack>.json."""
    config = json.loads((CONFIG_DIR / f"{stack}.json").read_text())
    return Settings.from_config(config.get(policy, {}))


def set_in(obj: Obj, path: str, value: Any) -> Obj:
    """A copy with a dotted path set; numeric parts index lists: spec.x.containers.0.image."""
    result = copy.deepcopy(obj)
    node: Any = result
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return result


def delete_in(obj: Obj, path: str) -> Obj:
    result = copy.deepcopy(obj)
    node: Any = result
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    del node[int(last) if last.isdigit() else last]
    return result


LEADER = "spec.leaderWorkerTemplate.leaderTemplate.spec"
WORKER = "spec.leaderWorkerTemplate.workerTemplate.spec"


def props_type(obj: Mapping[str, Any]) -> str:
    """The type token of props of any shape (the fuzz tests' lack apiVersion or kind): what the engine would pass."""
    return type_token(str(obj.get("apiVersion", "")), str(obj.get("kind")))


_OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def run_resource_policy(
    policy: ResourceValidationPolicy, obj: Mapping[str, Any], config: Mapping[str, Any] | None = None, name: str = "x"
) -> list[str]:
    """Run a policy's validate as the engine does: proxied props, the policy's own config."""
    resource_type = props_type(obj)
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(copy.deepcopy(dict(obj))),
        f"urn:pulumi:test::lws::{resource_type}::{name}",
        name,
        _OPTS,
        None,
        dict(config or {}),
        {},
    )
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    policy.validate(args, report)
    return reported


def run_stack_policy(
    policy: StackValidationPolicy, objs: list[Mapping[str, Any]], config: Mapping[str, Any] | None = None
) -> list[str]:
    resources = [
        PolicyResource(
            props_type(obj),
            unknown_checking_proxy(copy.deepcopy(dict(obj))),
            f"urn:pulumi:test::lws::{props_type(obj)}::r{index}",
            f"r{index}",
            _OPTS,
            None,
            None,
            [],
            {},
        )
        for index, obj in enumerate(objs)
    ]
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    policy.validate(StackValidationArgs(resources, dict(config or {})), report)
    return reported
