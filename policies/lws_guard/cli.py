"""`lws-guard check`: the pack's policies on plain YAML, for teams that apply with kubectl or Helm.

    python -m lws_guard check [--stack STACK | --profile Pulumi.<stack>.yaml | --config FILE]
                              [--format text|json|sarif] PATH...

PATH is a YAML file, a directory (its *.yaml and *.yml files, recursively) or `-` for stdin: several documents
per file, `helm template` output and `kind: List` are read. Every object goes through every policy of the pack
(lws_guard.pack.resource_policies and stack_policies: the pulumi_policy objects `pulumi preview --policy-pack`
runs) with the policy config Pulumi would give each policy, as props the engine would send: the type token
`kubernetes:<group>/<version>:<Kind>`, the object's fields as written and every number a float. All objects
of one run form the stack the stack policies see.

Exit codes: 0 no finding or advisory ones only, 1 a mandatory finding, 2 a usage error or input that could not
be read or judged (invalid YAML, a document that is not a Kubernetes object, a policy that failed).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import itertools
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import Policy

from kernel.type_tokens import type_token
from lws_guard import manifest
from lws_guard.pack import PACK_NAME, resource_policies, stack_policies

MANDATORY = "mandatory"
ADVISORY = "advisory"
ERROR = "error"  # the input could not be read or judged: the verdict is incomplete
NOTE = "note"  # said for information; changes nothing

# Findings about the input rather than a policy, with the ids SARIF and JSON name them by.
INVALID_INPUT = "invalid-input"
UNKNOWN_KIND = "unknown-kind"
POLICY_FAILED = "policy-failed"
INPUT_RULES = {
    INVALID_INPUT: (ERROR, "A file that cannot be read, invalid YAML, or a document that is not a Kubernetes object."),
    UNKNOWN_KIND: (
        NOTE,
        "A kind that is neither built into Kubernetes nor a LeaderWorkerSet: only the fields the policies know "
        "(pod templates, LWS chart labels) are checked in it.",
    ),
    POLICY_FAILED: (ERROR, "A policy raised an error on an object instead of judging it."),
}

# API groups served by every Kubernetes cluster ("" is the core group), and the LWS API's one version.
BUILT_IN_GROUPS = frozenset({
    "", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "policy", "rbac.authorization.k8s.io",
    "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
})  # fmt: skip
LWS_API_VERSION = f"{manifest.LWS_GROUP}/v1"
# Built-in kinds that live outside namespaces; every other object without metadata.namespace lands in the
# namespace of the apply (kubectl's context namespace; the Kubernetes provider's "default"), and the policies see
# it there.
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "ComponentStatus",
    "CSIDriver", "CSINode", "CustomResourceDefinition", "DeviceClass", "FlowSchema", "IngressClass",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "Namespace",
    "Node", "PersistentVolume", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "StorageVersionMigration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment", "VolumeAttributesClass",
})  # fmt: skip
DEFAULT_NAMESPACE = "default"
YAML_SUFFIXES = (".yaml", ".yml")
STDIN = "-"

_OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)

Obj = dict[str, Any]


class UsageError(Exception):
    """A mistake on the command line or in the policy config: exit 2 with this message."""


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where an object was read: the file as given, the document and its line, its place in a List (all from 1;
    document 0 is the file itself)."""

    path: str
    document: int
    line: int
    item: int | None = None

    def __str__(self) -> str:
        if not self.document:
            return f"{self.path}:{self.line}"
        where = f"{self.path}:{self.line}: document {self.document}"
        return where if self.item is None else f"{where} item {self.item}"


@dataclass(frozen=True)
class KubernetesObject:
    source: Source
    obj: Obj

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def type_token(self) -> str:
        """kubernetes:<group>/<version>:<Kind>, as the Kubernetes provider types the object (core/v1:Pod)."""
        return type_token(self.api_version, self.kind)

    @property
    def display(self) -> str:
        return manifest.display(self.kind, self.obj)

    @property
    def name(self) -> str:
        """The object's name for the policies, as a ConfigGroup names its resources: namespace/name."""
        metadata = manifest.mapping(self.obj.get("metadata"))
        name = manifest.text(metadata.get("name")) or f"document-{self.source.document}"
        namespace = manifest.text(metadata.get("namespace"))
        return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    message: str
    sources: tuple[Source, ...] = ()
    objects: tuple[str, ...] = ()


@dataclass
class Inputs:
    namespace: str = DEFAULT_NAMESPACE
    objects: list[KubernetesObject] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def yaml_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


def read_inputs(paths: Sequence[str], stdin: TextIO, namespace: str = DEFAULT_NAMESPACE) -> Inputs:
    inputs = Inputs(namespace)
    for given in paths:
        if given == STDIN:
            _read_text(inputs, "<stdin>", stdin.read())
            continue
        path = Path(given)
        if path.is_dir():
            found = yaml_files(path)
            if not found:
                inputs.problems.append(_invalid(Source(given, 0, 1), "no *.yaml or *.yml file in this directory"))
            for file in found:
                _read_file(inputs, file)
        else:
            _read_file(inputs, path)
    return inputs


def _read_file(inputs: Inputs, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        inputs.problems.append(_invalid(Source(str(path), 0, 1), f"cannot read it: {reason}"))
        return
    _read_text(inputs, str(path), text)


def _read_text(inputs: Inputs, path: str, text: str) -> None:
    inputs.files.append(path)
    loader = yaml.SafeLoader(text)
    document = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            document += 1
            if node is None:
                continue
            value = loader.construct_document(node)
            _add_document(inputs, Source(path, document, node.start_mark.line + 1), node, value)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        said = [getattr(error, "context", None), getattr(error, "problem", None)]
        reason = " ".join(str(part) for part in said if part) or " ".join(str(error).split())
        inputs.problems.append(_invalid(Source(path, document + 1, line), f"invalid YAML: {reason}"))
    finally:
        loader.dispose()


def _add_document(inputs: Inputs, source: Source, node: yaml.Node, value: object) -> None:
    if value is None:
        return  # an empty document, as between two `---` of helm template output
    if not isinstance(value, Mapping):
        inputs.problems.append(_invalid(source, f"not a Kubernetes object: a YAML {_yaml_type(value)}"))
        return
    if _is_list(value):
        for index, (item_node, item) in enumerate(zip(_item_nodes(node), value["items"], strict=False), start=1):
            _add_object(inputs, Source(source.path, source.document, item_node.start_mark.line + 1, index), item)
        return
    _add_object(inputs, source, value)


def _add_object(inputs: Inputs, source: Source, value: object) -> None:
    missing = [key for key in ("apiVersion", "kind") if not isinstance(manifest.dig(value, key), str)]
    if not isinstance(value, Mapping) or missing:
        what = f"a YAML {_yaml_type(value)}" if not isinstance(value, Mapping) else f"no {' and no '.join(missing)}"
        inputs.problems.append(_invalid(source, f"not a Kubernetes object: {what}"))
        return
    obj = plain(value)
    metadata = obj.get("metadata")
    if obj["kind"] not in CLUSTER_SCOPED and (not isinstance(metadata, dict) or not metadata.get("namespace")):
        obj["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), "namespace": inputs.namespace}
    inputs.objects.append(KubernetesObject(source, obj))


def _is_list(value: Mapping[str, Any]) -> bool:
    """kind: List (kubectl get -o yaml) and <Kind>List, which hold their objects in items."""
    kind = value.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(value.get("items"), list)


def _item_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, item in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(item, yaml.SequenceNode):
                return list(item.value)
    return []


def _yaml_type(value: object) -> str:
    return "list" if isinstance(value, list) else "string" if isinstance(value, str) else "scalar"


def _invalid(source: Source, message: str) -> Finding:
    return Finding(INVALID_INPUT, ERROR, message, (source,))


def plain(value: Any) -> Any:
    """The YAML value as JSON (what kubectl sends): string keys; timestamps and binary as strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def engine_props(value: Any) -> Any:
    """Props as a policy receives them from the engine: every number a float (8 -> 8.0)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {k: engine_props(v) for k, v in value.items()}
    return [engine_props(v) for v in value]


# ---- policy config ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySetup:
    """One policy as the engine would run it: its level after the config, and its config with defaults."""

    policy: Policy
    level: EnforcementLevel
    config: Mapping[str, Any]


def all_policies() -> list[Policy]:
    return [*resource_policies(), *stack_policies()]


def setups(raw: Mapping[str, Any]) -> list[PolicySetup]:
    """Pulumi's reading of a policy pack config file: `all` and per-policy levels, then each policy's
    properties validated against its schema with the schema's defaults filled in."""
    policies = all_policies()
    names = {p.name for p in policies}
    unknown = sorted(set(raw) - names - {"all"})
    if unknown:
        raise UsageError(f"policy config: no policy {', '.join(unknown)} in {PACK_NAME} (policies: {sorted(names)})")
    every = _level_of("all", raw.get("all"))
    result = []
    for policy in policies:
        value = raw.get(policy.name, {})
        level = _level_of(policy.name, value) or every or policy.enforcement_level or EnforcementLevel.MANDATORY
        properties = {k: v for k, v in value.items() if k != "enforcementLevel"} if isinstance(value, dict) else {}
        result.append(PolicySetup(policy, level, _validated(policy, properties)))
    return result


def _level_of(name: str, value: object) -> EnforcementLevel | None:
    level = value.get("enforcementLevel") if isinstance(value, Mapping) else value
    if level is None or (isinstance(value, Mapping) and "enforcementLevel" not in value):
        return None
    try:
        return EnforcementLevel(level)
    except ValueError:
        levels = ", ".join(e.value for e in EnforcementLevel)
        raise UsageError(f"policy config {name}: enforcement level {level!r} is not one of {levels}") from None


_JSON_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
}


def _validated(policy: Policy, properties: Mapping[str, Any]) -> dict[str, Any]:
    schema = policy.config_schema.properties if policy.config_schema else {}
    extra = sorted(set(properties) - set(schema))
    if extra:
        keys = ", ".join(schema) or "none"
        raise UsageError(f"policy config {policy.name}: unknown key {', '.join(extra)} (its keys: {keys})")
    config = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    for key, value in properties.items():
        problem = _schema_problem(schema[key], value)
        if problem:
            raise UsageError(f"policy config {policy.name}.{key}: {problem} (got {json.dumps(value)})")
        config[key] = value
    # The engine hands the config over as a protobuf Struct: numbers arrive as floats.
    return dict(engine_props(config))


def _schema_problem(spec: Mapping[str, Any], value: object) -> str | None:
    """The keywords the pack's schemas use: type, minimum, pattern, additionalProperties."""
    kind = str(spec.get("type", ""))
    check = _JSON_TYPES.get(kind)
    if check is not None and not check(value):
        return f"must be a {kind}"
    if "minimum" in spec and isinstance(value, int | float) and value < spec["minimum"]:
        return f"must be at least {spec['minimum']}"
    if "pattern" in spec and isinstance(value, str) and not re.search(str(spec["pattern"]), value):
        return f"must match {spec['pattern']}"
    extra = spec.get("additionalProperties")
    if isinstance(extra, Mapping) and isinstance(value, Mapping):
        for key, item in value.items():
            problem = _schema_problem(extra, item)
            if problem:
                return f"{key} {problem}"
    return None


def load_config(args: argparse.Namespace) -> Mapping[str, Any]:
    """The policy config file's content: given, or generated from the stack's cluster profile."""
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"--config {args.config}: cannot read it as JSON: {error}") from None
        if not isinstance(loaded, Mapping):
            raise UsageError(f"--config {args.config}: a policy config is a JSON object of policies")
        return loaded
    if args.stack or args.profile:
        return _config_from_profile(args.stack, args.profile)
    return {}


def _config_from_profile(stack: str | None, profile: str | None) -> Mapping[str, Any]:
    """The policy config `python -m scripts.policy_config` writes for the stack (outside the pack's root)."""
    config: Mapping[str, Any] = _from_stack_file(
        stack, profile, lambda tool, path: tool.policy_config(tool.read_cluster(path))
    )
    return config


def _stack_manifests(stack: str | None, profile: str | None) -> list[str]:
    if not (stack or profile):
        raise UsageError("name a YAML file, a directory or - (stdin); or --stack to check the stack's manifests")
    files = _from_stack_file(stack, profile, lambda tool, path: tool.manifest_files(path))
    if not files:
        print(f"lws-guard: the stack lists no `manifests`: nothing to check ({stack or profile})", file=sys.stderr)
    return [str(f.relative_to(Path.cwd()) if f.is_relative_to(Path.cwd()) else f) for f in files]


def _from_stack_file(stack: str | None, profile: str | None, read: Callable[[Any, Path], Any]) -> Any:
    try:
        from config.load import ConfigError
        from scripts import policy_config
    except ImportError as error:
        raise UsageError(f"--stack and --profile need the project checkout on the path: {error}") from None
    try:
        path = Path(profile) if profile else policy_config.stack(str(stack), root=Path.cwd()).profile
        return read(policy_config, path)
    except ConfigError as error:
        raise UsageError("\n".join(error.lines)) from None


# ---- judging ---------------------------------------------------------------------------------


def check(objects: Sequence[KubernetesObject], config: Mapping[str, Any]) -> list[Finding]:
    """Every enabled policy on every object (resource policies), then on all of them (stack policies)."""
    findings = [_kind_note(o) for o in objects if _is_unknown_kind(o)]
    active = [s for s in setups(config) if s.level is not EnforcementLevel.DISABLED]
    for obj in objects:
        for setup in active:
            if isinstance(setup.policy, ResourceValidationPolicy):
                findings += _run_resource_policy(setup, obj)
    for setup in active:
        if isinstance(setup.policy, StackValidationPolicy):
            findings += _run_stack_policy(setup, objects)
    return findings


def _level_name(level: EnforcementLevel) -> str:
    return ADVISORY if level is EnforcementLevel.ADVISORY else MANDATORY  # remediate reports as mandatory


def _urn(obj: KubernetesObject, index: int) -> str:
    return f"urn:pulumi:yaml::lws-guard::{obj.type_token}::{index}:{obj.name}"


def _run_resource_policy(setup: PolicySetup, obj: KubernetesObject) -> list[Finding]:
    policy = setup.policy
    assert isinstance(policy, ResourceValidationPolicy)
    messages: list[str] = []
    args = ResourceValidationArgs(
        obj.type_token, engine_props(obj.obj), _urn(obj, 0), obj.name, _OPTS, None, setup.config
    )

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    try:
        policy.validate(args, report)
    except Exception as error:  # a policy bug must not hide the other verdicts
        return [_failed(policy.name, error, (obj,))]
    level = _level_name(setup.level)
    return [Finding(policy.name, level, m, (obj.source,), (obj.display,)) for m in messages]


def _run_stack_policy(setup: PolicySetup, objects: Sequence[KubernetesObject]) -> list[Finding]:
    policy = setup.policy
    assert isinstance(policy, StackValidationPolicy)
    by_urn = {_urn(o, i): o for i, o in enumerate(objects)}
    resources = [
        PolicyResource(o.type_token, engine_props(o.obj), urn, o.name, _OPTS, None, None, [], {})
        for urn, o in by_urn.items()
    ]
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    try:
        policy.validate(StackValidationArgs(resources, setup.config), report)
    except Exception as error:
        return [_failed(policy.name, error, tuple(objects))]
    findings = []
    for message, urn in reported:
        # The objects the finding is about: the one the policy names by URN, else those its message names.
        named = [by_urn[urn]] if urn in by_urn else [o for o in objects if o.display in message]
        sources, displays = tuple(o.source for o in named), tuple(o.display for o in named)
        findings.append(Finding(policy.name, _level_name(setup.level), message, sources, displays))
    return findings


def _failed(policy: str, error: Exception, objects: Sequence[KubernetesObject]) -> Finding:
    what = objects[0].display if len(objects) == 1 else f"{len(objects)} objects"
    message = f"{policy} could not judge {what}: {type(error).__name__}: {error}"
    return Finding(POLICY_FAILED, ERROR, message, tuple(o.source for o in objects), tuple(o.display for o in objects))


def _is_unknown_kind(obj: KubernetesObject) -> bool:
    group = obj.api_version.rpartition("/")[0] if "/" in obj.api_version else ""
    if group == manifest.LWS_GROUP:
        return obj.api_version != LWS_API_VERSION or obj.kind != "LeaderWorkerSet"
    return group not in BUILT_IN_GROUPS


def _kind_note(obj: KubernetesObject) -> Finding:
    hint = f" (LeaderWorkerSet is served as {LWS_API_VERSION})" if manifest.LWS_GROUP in obj.api_version else ""
    message = (
        f"{obj.display}: {obj.api_version} {obj.kind} is not a built-in Kubernetes kind nor a LeaderWorkerSet"
        f"{hint}; the policies check only the fields they know in it"
    )
    return Finding(UNKNOWN_KIND, NOTE, message, (obj.source,), (obj.display,))


def in_input_order(findings: Sequence[Finding], files: Sequence[str]) -> list[Finding]:
    """Findings by file, document and item as given; those about the whole input last."""

    def key(finding: Finding) -> tuple[int, int, int]:
        if not finding.sources:
            return (len(files) + 1, 0, 0)
        source = finding.sources[0]
        order = files.index(source.path) if source.path in files else -1
        return (order, source.document, source.item or 0)

    return sorted(findings, key=key)


def exit_code(findings: Sequence[Finding]) -> int:
    levels = {f.level for f in findings}
    return 2 if ERROR in levels else 1 if MANDATORY in levels else 0


# ---- output ----------------------------------------------------------------------------------


def text_lines(findings: Sequence[Finding]) -> Iterator[str]:
    """One line per finding: where, which object, level and policy, and the policy's message."""
    for finding in findings:
        where = str(finding.sources[0]) if finding.sources else "(all inputs)"
        message = finding.message
        if len(finding.objects) == 1:
            message = message.removeprefix(f"{finding.objects[0]}: ")
            where = f"{where}: {finding.objects[0]}"
        yield f"{where}: {finding.level} {finding.policy}: {message}"


def _location(source: Source) -> dict[str, Any]:
    return {"file": source.path, "line": source.line, "document": source.document, "item": source.item}


def as_json(findings: Sequence[Finding], inputs: Inputs) -> dict[str, Any]:
    return {
        "pack": PACK_NAME,
        "files": inputs.files,
        "objects": len(inputs.objects),
        "exitCode": exit_code(findings),
        "findings": [
            {
                "policy": f.policy,
                "level": f.level,
                "message": f.message,
                "objects": list(f.objects),
                "locations": [_location(s) for s in f.sources],
            }
            for f in findings
        ],
    }


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {MANDATORY: "error", ADVISORY: "warning", ERROR: "error", NOTE: "note"}


def as_sarif(findings: Sequence[Finding], config: Mapping[str, Any]) -> dict[str, Any]:
    """A SARIF 2.1.0 log for code-scanning UIs: one rule per policy, one result per finding."""
    rules = [
        {
            "id": s.policy.name,
            "shortDescription": {"text": " ".join(str(s.policy.description).split())},
            "defaultConfiguration": {
                "level": _SARIF_LEVEL[_level_name(s.level)],
                "enabled": s.level is not EnforcementLevel.DISABLED,
            },
        }
        for s in setups(config)
    ]
    rules += [
        {"id": rule, "shortDescription": {"text": text}, "defaultConfiguration": {"level": _SARIF_LEVEL[level]}}
        for rule, (level, text) in INPUT_RULES.items()
    ]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.policy,
            "ruleIndex": index[finding.policy],
            "level": _SARIF_LEVEL[finding.level],
            "message": {"text": finding.message},
            "locations": [_sarif_location(s, o) for s, o in itertools.zip_longest(finding.sources, finding.objects)],
        }
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "lws-guard", "fullName": f"{PACK_NAME} (lws-guard check)", "rules": rules}},
                "invocations": [{"executionSuccessful": exit_code(findings) != 2}],
                "results": results,
            }
        ],
    }


def _sarif_location(source: Source, obj: str | None) -> dict[str, Any]:
    uri = "stdin" if source.path == "<stdin>" else urllib.parse.quote(Path(source.path).as_posix())
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": max(source.line, 1)}}
    }
    if obj:
        location["logicalLocations"] = [{"name": obj, "kind": "object"}]
    return location


def summary(findings: Sequence[Finding], inputs: Inputs) -> str:
    counts = {level: sum(f.level == level for f in findings) for level in (MANDATORY, ADVISORY, ERROR, NOTE)}
    said = ", ".join(f"{n} {level}" for level, n in counts.items() if n) or "no finding"
    return f"{len(inputs.objects)} objects in {len(inputs.files)} files: {said}"


# ---- command line ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lws-guard", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("check", help="check YAML files, directories or stdin (-)")
    run.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="YAML file, directory, or - for stdin (default with --stack or "
        "--profile: the files the stack lists in `manifests`)",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--config", help="a policy pack config file, e.g. policies/config/<stack>.json")
    source.add_argument("--stack", help="the policy config of Pulumi.<stack>.yaml (or examples/), generated")
    source.add_argument("--profile", help="the policy config of this Pulumi.<stack>.yaml file, generated")
    run.add_argument(
        "--namespace",
        "-n",
        default=DEFAULT_NAMESPACE,
        help="namespace of objects that name none, as kubectl "
        "apply -n (default: default, where the Kubernetes provider puts them)",
    )
    run.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    return top


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    args = parser().parse_args(argv)
    try:
        config = load_config(args)
        setups(config)  # a wrong config is a usage error before any file is read
        paths = args.paths or _stack_manifests(args.stack, args.profile)
    except UsageError as error:
        print(f"lws-guard: {error}", file=sys.stderr)
        return 2
    inputs = read_inputs(paths, stdin or sys.stdin, args.namespace)
    findings = in_input_order([*inputs.problems, *check(inputs.objects, config)], inputs.files)
    try:
        write(out, args.format, findings, inputs, config)
    except BrokenPipeError:  # `| head`: the reader has seen enough; the verdict still stands
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
    print(summary(findings, inputs), file=sys.stderr)
    return exit_code(findings)


def write(out: TextIO, form: str, findings: Sequence[Finding], inputs: Inputs, config: Mapping[str, Any]) -> None:
    if form == "json":
        json.dump(as_json(findings, inputs), out, indent=2)
        out.write("\n")
    elif form == "sarif":
        json.dump(as_sarif(findings, config), out, indent=2)
        out.write("\n")
    else:
        for line in text_lines(findings):
            print(line, file=out)
    out.flush()  # the findings before the summary, also when both streams go to one pipe
