"""The pack's gRPC servicer as the CLI talks to it: CRDs reach the SDK without their spec, and the verdicts over
every resource are the SDK's own, request for request."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import struct_pb2
from lws_guard import runtime
from lws_guard.pack import PACK_NAME, resource_policies, stack_policies
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as sdk

from kernel.type_tokens import type_token_of
from tests.policies.helpers import CONFIG_DIR, FIXTURES

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / ".tools" / "charts"
CORPUS = Path(__file__).parent / "corpus"


def chart_crds() -> list[dict[str, Any]]:
    return copy.deepcopy(_chart_crds())


@functools.cache
def _chart_crds() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of the dev stack's LWS chart (tools/build.sh copies it into .tools/charts)."""
    version = json.loads((CONFIG_DIR / "dev.json").read_text())["no-online-upgrade"]["lwsVersion"]
    files = sorted(CHARTS.glob(f"lws-{version}/crds/*.yaml"))
    if not files:
        pytest.skip("no LWS chart in .tools/charts: run `make setup`")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 650 KB each: libyaml where PyYAML has it
    return [doc for f in files for doc in yaml.load_all(f.read_text(), Loader=loader) if doc]


def labelled_crd(chart_version: str) -> dict[str, Any]:
    """The LWS CRD as a Helm release of `chart_version` labels it."""
    crd = next(c for c in chart_crds() if c["metadata"]["name"].startswith("leaderworkersets."))
    crd["metadata"]["labels"] = {"helm.sh/chart": f"lws-{chart_version}", "app.kubernetes.io/name": "lws"}
    return crd


def other_objects() -> list[dict[str, Any]]:
    files = [*sorted(FIXTURES.glob("*.yaml")), *sorted(CORPUS.glob("*.yaml"))]
    return [doc for f in files for doc in yaml.safe_load_all(f.read_text()) if isinstance(doc, dict) and "kind" in doc]


def servicer(cls: type) -> Any:
    """A servicer of class `cls` configured with the dev stack's policy config, as the CLI configures it."""
    instance = cls(PACK_NAME, "0.1.0", [*resource_policies(), *stack_policies()], EnforcementLevel.MANDATORY)
    config = json.loads((CONFIG_DIR / "dev.json").read_text())
    request = proto.ConfigureAnalyzerRequest()
    for policy, values in config.items():
        request.policyConfig[policy].properties.update(values)
    instance.Configure(request, None)
    return instance


@pytest.fixture(scope="module")
def servicers() -> Iterator[tuple[Any, Any]]:
    """The SDK's servicer and the pack's trimming one."""
    base = sdk._PolicyAnalyzerServicer
    yield servicer(base), servicer(runtime.trimming_servicer(base))


def request(obj: dict[str, Any], index: int = 0) -> proto.AnalyzeRequest:
    props = struct_pb2.Struct()
    props.update(obj)
    name = obj["metadata"].get("name", "x")
    urn = f"urn:pulumi:dev::lws-inference::{type_token_of(obj)}::{index}-{name}"
    return proto.AnalyzeRequest(type=type_token_of(obj), properties=props, urn=urn, name=name)


def test_a_crd_reaches_the_sdk_with_its_metadata_only() -> None:
    crd = next(iter(chart_crds()))
    full = request(crd)
    trimmed = runtime._trimmed(full)
    assert full.properties.ByteSize() > 100_000, "the LWS CRD carries its OpenAPI schema"
    assert set(trimmed.properties.fields) == {"apiVersion", "kind", "metadata"}
    assert trimmed.properties.fields["metadata"] == full.properties.fields["metadata"]
    assert trimmed.urn == full.urn and trimmed.type == full.type
    assert full.properties.ByteSize() > 100_000, "the CLI's request itself is left alone"


def test_other_resources_pass_unchanged() -> None:
    for obj in other_objects():
        assert runtime._trimmed(request(obj)) == request(obj), obj["kind"]


def test_every_verdict_is_the_sdks_own(servicers: tuple[Any, Any]) -> None:
    base, trimming = servicers
    objects = [*chart_crds(), labelled_crd("0.8.0"), *other_objects()]
    for index, obj in enumerate(objects):
        one = request(obj, index)
        assert trimming.Analyze(one, None) == base.Analyze(one, None), obj["metadata"].get("name")
    requests = [request(obj, index) for index, obj in enumerate(objects)]
    resources = [proto.AnalyzerResource(type=r.type, properties=r.properties, urn=r.urn, name=r.name) for r in requests]
    stack = proto.AnalyzeStackRequest(resources=resources)
    assert trimming.AnalyzeStack(stack, None) == base.AnalyzeStack(stack, None)


def test_a_crd_labelled_by_another_chart_release_is_still_refused(servicers: tuple[Any, Any]) -> None:
    _, trimming = servicers
    response = trimming.Analyze(request(labelled_crd("0.8.0")), None)
    upgrade = [d for d in response.diagnostics if d.policyName == "no-online-upgrade"]
    assert upgrade and "0.8.0" in upgrade[0].message, response


def test_the_pack_serves_through_the_trimming_servicer(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sdk._PolicyAnalyzerServicer
    monkeypatch.setattr(sdk, "_PolicyAnalyzerServicer", original)
    assert runtime.install_crd_trimming() and runtime.install_crd_trimming(), "installing twice is harmless"
    installed: Any = sdk._PolicyAnalyzerServicer
    assert installed.trims_crds and installed.__bases__ == (original,), "one subclass of the SDK's servicer"
    main = (ROOT / "policies" / "__main__.py").read_text()
    assert main.index("\nruntime.prepare()") < main.index("\nPolicyPack("), "installed before the pack serves"


def test_without_the_servicer_the_sdk_runs_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sdk, "_PolicyAnalyzerServicer")
    assert runtime.install_crd_trimming() is False
