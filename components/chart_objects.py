"""A Helm chart's objects as plain resources of the program, rendered once per chart, version and values.

The provider's Helm v4 Chart component renders the chart again in every preview (pulling an OCI chart each time),
registers each object from inside the provider (a Construct call), calls back into the program for every object's
transforms, and holds back whatever depends on its objects until all are registered. Here the provider's `helm
template` (the `kubernetes:helm:template` invoke) runs only when no rendering of the same chart, version, values,
release and namespace is cached (.pulumi/charts/<sha256>.json under the project); the objects are then registered
as plain resources under the same names, and, through an alias of their parent, the same URNs as the v4 Chart's
children, so a stack applied with the v4 Chart moves over without a change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from components.objects import secret_data
from kernel.type_tokens import type_token_of

Obj = dict[str, Any]
V4_CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
CACHE_DIR = Path(".pulumi") / "charts"
KEEP_POLICY = "helm.sh/resource-policy"
CLUSTER_SCOPED = frozenset({
    "APIService", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "MutatingWebhookConfiguration",
    "Namespace", "PersistentVolume", "PriorityClass", "StorageClass", "ValidatingWebhookConfiguration",
})  # fmt: skip


@dataclass(frozen=True)
class ChartSource:
    chart: str
    """A local chart directory or an oci:// reference."""
    version: str | None
    release: str
    namespace: str
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return not self.chart.startswith("oci://")


ObjectOptions = Callable[[Obj, pulumi.ResourceOptions], tuple[Obj, pulumi.ResourceOptions]]
"""Changes an object or its options before it is registered (what transforms did for the v4 Chart)."""


def cache_key(source: ChartSource) -> str:
    """Everything the rendering depends on: a local chart by its files' content, an OCI chart by its version, and
    the provider (the pulumi-kubernetes SDK pins its version)."""
    content = _tree_digest(Path(source.chart)) if source.local else None
    described = {
        "chart": source.chart, "version": source.version, "release": source.release,
        "namespace": source.namespace, "values": source.values, "content": content,
        "renderer": importlib.metadata.version("pulumi-kubernetes"),  # the provider's Helm renders it
    }  # fmt: skip
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def rendered(source: ChartSource, provider: pulumi.ProviderResource | None) -> list[Obj]:
    """The chart's objects, from the cache (CACHE_DIR, read when called) or rendered by the provider (and cached)."""
    cache = CACHE_DIR
    cached = cache / f"{cache_key(source)}.json"
    if cached.is_file():
        objects: list[Obj] = json.loads(cached.read_text())
        return objects
    objects = [_with_namespace(obj, source.namespace) for obj in _helm_template(source, provider)]
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(objects))
    partial.replace(cached)  # atomic: a concurrent run reads the old file or the whole new one
    return objects


def _helm_template(source: ChartSource, provider: pulumi.ProviderResource | None) -> list[Obj]:
    options: Obj = {"release_name": source.release, "namespace": source.namespace, "values": dict(source.values)}
    if source.local:
        options["path"] = source.chart
    else:
        options |= {"chart": source.chart, "version": source.version}
    result = pulumi.runtime.invoke(
        "kubernetes:helm:template", {"jsonOpts": json.dumps(options)}, pulumi.InvokeOptions(provider=provider)
    )
    return [obj for obj in (result.value or {}).get("result") or [] if obj]


def _with_namespace(obj: Obj, namespace: str) -> Obj:
    """As the v4 Chart normalises them: namespaced objects without a namespace get the release's."""
    metadata = obj.get("metadata") or {}
    if obj.get("kind") in CLUSTER_SCOPED or metadata.get("namespace"):
        return obj
    return {**obj, "metadata": {**metadata, "namespace": namespace}}


def from_transform(transform: pulumi.ResourceTransform) -> ObjectOptions:
    """A resource transform, as written for the v4 Chart's children, applied to an object before it is registered."""

    def adjust(obj: Obj, options: pulumi.ResourceOptions) -> tuple[Obj, pulumi.ResourceOptions]:
        args = pulumi.ResourceTransformArgs(True, type_token_of(obj), obj["metadata"]["name"], obj, options)
        result = transform(args)
        if result is None:
            return obj, options
        if not isinstance(result, pulumi.ResourceTransformResult):
            raise TypeError(f"transform {transform} must be synchronous")
        return dict(result.props), result.opts

    return adjust


def resource_name(release: str, obj: Obj) -> str:
    """The v4 Chart's name for an object: `<release>:<namespace>/<name>`, or `<release>:<name>` when cluster-scoped."""
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return f"{release}:{namespace}/{metadata['name']}" if namespace else f"{release}:{metadata['name']}"


class ChartObjects(pulumi.ComponentResource):
    """The objects of one chart release. Outputs: `resources`, every registered object, and `objects`, what each
    of them was registered from (same order)."""

    resources: list[pulumi.CustomResource]
    objects: list[Obj]

    def __init__(
        self,
        source: ChartSource,
        adjust: Sequence[ObjectOptions] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # Aliased to the v4 Chart component: its children keep the URNs they had under it.
        aliased = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=V4_CHART_TYPE)])
        super().__init__("lws-inference:helm:ChartObjects", source.release, None, pulumi.ResourceOptions.merge(
            opts, aliased))  # fmt: skip
        provider = opts.provider if opts else None
        self.resources, self.objects = [], []
        for obj in rendered(source, provider if isinstance(provider, pulumi.ProviderResource) else None):
            options = pulumi.ResourceOptions(parent=self)
            if (obj["metadata"].get("annotations") or {}).get(KEEP_POLICY) == "keep":
                options = pulumi.ResourceOptions.merge(options, pulumi.ResourceOptions(retain_on_delete=True))
            for change in adjust:
                obj, options = change(obj, options)
            name = resource_name(source.release, obj)
            self.resources.append(pulumi.CustomResource(type_token_of(obj), name, secret_data(obj), options))
            self.objects.append(obj)
        self.register_outputs({})
