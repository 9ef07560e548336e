"""The pack's process as the Pulumi CLI runs it: its stdout, and what reaches the SDK's analyzer.

pulumi_policy (pinned in requirements.txt) deserializes a resource's whole props once per policy for every
Analyze call, and once per stack policy in AnalyzeStack. A CustomResourceDefinition carries its OpenAPI schema:
the LWS chart's two CRDs are 650 KB each, and deserializing them 13 + 3 times per preview cost more time than
every rule of the pack over every other resource. The rules read nothing of a CRD but its metadata (the chart
labels no-online-upgrade looks for), so the analyzer gets CRDs without their spec; every other resource passes
unchanged.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from google.protobuf import struct_pb2

from kernel.type_tokens import CRD_TYPE

READ_OF_A_CRD = ("apiVersion", "kind", "metadata")
"""The only parts of a CustomResourceDefinition any rule reads."""


def unbuffered_stdout() -> None:
    """PolicyPack announces its port on sys.stdout.buffer and never flushes it. Where the CLI's environment
    lacks PYTHONUNBUFFERED (a plain `env -i` shell, some CI runners) the port stayed in the buffer and `pulumi
    preview --policy-pack` waited forever; an unbuffered stdout delivers it at once."""
    sys.stdout = io.TextIOWrapper(io.FileIO(sys.stdout.fileno(), "wb", closefd=False), write_through=True)


def without_crd_spec(resource_type: str, properties: struct_pb2.Struct) -> struct_pb2.Struct | None:
    """The props the rules read of a CRD, or None for any other type (to pass as it is)."""
    if resource_type != CRD_TYPE:
        return None
    kept = struct_pb2.Struct()
    for key in READ_OF_A_CRD:
        if key in properties.fields:
            kept.fields[key].CopyFrom(properties.fields[key])
    return kept


def _trimmed(request: Any) -> Any:
    """An AnalyzeRequest or RemediateRequest with a CRD's props trimmed (a copy; the request is not changed)."""
    kept = without_crd_spec(request.type, request.properties)
    if kept is None:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.properties.CopyFrom(kept)
    return copy


def _trimmed_stack(request: Any) -> Any:
    """An AnalyzeStackRequest with every CRD's props trimmed."""
    if not any(r.type == CRD_TYPE for r in request.resources):
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    for resource in copy.resources:
        kept = without_crd_spec(resource.type, resource.properties)
        if kept is not None:
            resource.properties.CopyFrom(kept)
    return copy


def trimming_servicer(base: type) -> type:
    """A subclass of the SDK's analyzer servicer that hands it CRDs without their spec."""

    class TrimmingServicer(base):  # type: ignore[misc]
        def Analyze(self, request: Any, context: Any) -> Any:  # noqa: N802 (the gRPC method name)
            return super().Analyze(_trimmed(request), context)

        def Remediate(self, request: Any, context: Any) -> Any:  # noqa: N802
            return super().Remediate(_trimmed(request), context)

        def AnalyzeStack(self, request: Any, context: Any) -> Any:  # noqa: N802
            return super().AnalyzeStack(_trimmed_stack(request), context)

    return TrimmingServicer


def install_crd_trimming() -> bool:
    """Makes PolicyPack serve through the trimming servicer; False (the SDK unchanged, only slower) when the SDK
    no longer has the servicer this was written against."""
    from pulumi_policy import policy as sdk

    base = getattr(sdk, "_PolicyAnalyzerServicer", None)
    if not isinstance(base, type) or not all(hasattr(base, m) for m in ("Analyze", "Remediate", "AnalyzeStack")):
        return False
    if not getattr(base, "trims_crds", False):
        servicer = trimming_servicer(base)
        servicer.trims_crds = True  # type: ignore[attr-defined]
        sdk._PolicyAnalyzerServicer = servicer  # type: ignore[misc, assignment]
    return True


def prepare() -> None:
    """What the pack's process needs before PolicyPack() starts serving."""
    unbuffered_stdout()
    install_crd_trimming()
