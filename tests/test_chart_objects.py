"""The chart cache and the names of the chart's objects: a rendering is reused only for the same chart content,
version and values, and objects keep the names (so the URNs) the provider's Helm v4 Chart gave them."""

from __future__ import annotations

from pathlib import Path

from components.chart_objects import ChartSource, cache_key, resource_name
from kernel.type_tokens import CRD_TYPE, type_token_of

VALUES = {"image": {"manager": {"tag": "v0.7.0"}}}


def local_chart(tmp_path: Path, version: str = "0.7.0") -> ChartSource:
    chart = tmp_path / "lws"
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "Chart.yaml").write_text(f"name: lws\nversion: {version}\n")
    return ChartSource(str(chart), None, "lws", "lws-system", VALUES)


def test_a_rendering_is_reused_only_for_the_same_chart_and_values(tmp_path: Path) -> None:
    source = local_chart(tmp_path)
    assert cache_key(source) == cache_key(local_chart(tmp_path))
    assert cache_key(source) != cache_key(local_chart(tmp_path, "0.8.0")), "an edited local chart renders again"
    other_values = ChartSource(source.chart, None, "lws", "lws-system", {"image": {"manager": {"tag": "v0.8.0"}}})
    assert cache_key(source) != cache_key(other_values)
    other_namespace = ChartSource(source.chart, None, "lws", "kube-system", VALUES)
    assert cache_key(source) != cache_key(other_namespace)


def test_an_oci_chart_is_keyed_by_its_version() -> None:
    chart = "oci://registry.k8s.io/lws/charts/lws"
    assert cache_key(ChartSource(chart, "0.7.0", "lws", "lws-system", VALUES)) != cache_key(
        ChartSource(chart, "0.7.1", "lws", "lws-system", VALUES)
    )


def test_objects_are_named_and_typed_as_the_v4_chart_registered_them() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m", "namespace": "lws-system"}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "c"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "lws-system"}}
    assert resource_name("lws", deployment) == "lws:lws-system/m"
    assert resource_name("lws", crd) == "lws:c"
    assert type_token_of(deployment) == "kubernetes:apps/v1:Deployment"
    assert type_token_of(crd) == CRD_TYPE == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    assert type_token_of(secret) == "kubernetes:core/v1:Secret"
