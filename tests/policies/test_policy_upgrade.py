"""no-online-upgrade (resource) and no-online-upgrade-drained (stack)."""

from __future__ import annotations

import pytest
from lws_guard.settings import Settings
from lws_guard.upgrade import (
    StackResource,
    check_no_online_upgrade,
    check_no_online_upgrade_drained,
    inspect_controller,
    normalized,
)

from kernel.type_tokens import type_token_of
from tests.policies.helpers import LWS, Obj, load, one, set_in

PINNED_070 = Settings.from_config({"lwsVersion": "0.7.0"})
PINNED_061 = Settings.from_config({"lwsVersion": "v0.6.1"})
WINDOW_061 = Settings.from_config({"lwsVersion": "0.6.1", "maintenance": True})
IMAGE = "spec.template.spec.containers.0.image"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def controller() -> Obj:
    return one("lws_controller", "Deployment")


def check(obj: Obj, settings: Settings) -> list[str]:
    return check_no_online_upgrade(type_token_of(obj), obj, settings)


def test_chart_objects_at_the_pinned_release_pass() -> None:
    for obj in load("lws_controller"):
        assert check(obj, PINNED_070) == []


def test_a_different_release_is_an_online_upgrade() -> None:
    messages = check(controller(), PINNED_061)
    assert len(messages) == 3  # chart label, version label, image tag
    assert messages[0].startswith("Deployment lws-system/lws-controller-manager: label helm.sh/chart=lws-0.7.0:")
    assert "the LWS controller runs 0.6.1; changing it to 0.7.0 is an online upgrade" in messages[0]
    assert any("image registry.k8s.io/lws/lws:v0.7.0 of container manager" in m for m in messages)
    service_account = one("lws_controller", "ServiceAccount")
    assert len(check(service_account, PINNED_061)) == 2


def test_maintenance_window_lets_the_resource_pass() -> None:
    assert check(controller(), WINDOW_061) == []


@pytest.mark.parametrize(
    "image",
    ["registry.k8s.io/lws/lws:main", "registry.k8s.io/lws/lws:latest", "registry.k8s.io/lws/lws", "lws:nightly"],
)
def test_floating_images_are_denied_even_in_a_window(image: str) -> None:
    obj = set_in(controller(), IMAGE, image)
    for settings in (PINNED_070, Settings.from_config({"lwsVersion": "0.7.0", "maintenance": True})):
        [message] = check(obj, settings)
        assert f"image {image} of container manager does not pin an LWS release" in message
        assert "pin 0.7.0" in message


def test_pull_policy_always_is_denied() -> None:
    obj = set_in(controller(), "spec.template.spec.containers.0.imagePullPolicy", "Always")
    [message] = check(obj, PINNED_070)
    assert "container manager (registry.k8s.io/lws/lws:v0.7.0) of the LWS controller pulls Always" in message


def test_mirror_and_digest_are_read() -> None:
    mirrored = "registry-vpc.cn-hangzhou.aliyuncs.com/mirror/lws:v0.7.0@sha256:" + "0" * 64
    assert check(set_in(controller(), IMAGE, mirrored), PINNED_070) == []
    digest_only = "registry.k8s.io/lws/lws@sha256:" + "0" * 64
    [message] = check(set_in(controller(), IMAGE, digest_only), PINNED_070)
    assert "does not pin an LWS release" in message


def test_raw_release_manifest_without_helm_labels() -> None:
    """yaml.v2.ConfigGroup of the release's manifests.yaml: only the image tells the version."""
    obj = set_in(controller(), "metadata.labels", {"control-plane": "controller-manager"})
    assert check(obj, PINNED_070) == []
    [message] = check(obj, PINNED_061)
    assert "changing it to 0.7.0" in message


def test_controller_named_deployment_with_renamed_image() -> None:
    obj = set_in(controller(), "metadata.labels", {})
    obj = set_in(obj, IMAGE, "mirror.example.com/lws-controller:v0.6.1")
    [message] = check(obj, PINNED_070)
    assert "image mirror.example.com/lws-controller:v0.6.1 of container manager" in message


def test_other_deployments_are_ignored() -> None:
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/version": "main", "helm.sh/chart": "web-1.0.0"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}},
    }
    assert check(other, PINNED_070) == []
    assert inspect_controller(LWS, one("ack_qwen3_vllm")).claims == []


def test_helm_chart_resource() -> None:
    chart = {"chart": "oci://registry.k8s.io/lws/charts/lws", "version": "0.7.0", "namespace": "lws-system"}
    assert check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", chart, PINNED_070) == []
    [message] = check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", chart, PINNED_061)
    assert "chart oci://registry.k8s.io/lws/charts/lws version 0.7.0" in message
    unversioned = {"chart": "oci://registry.k8s.io/lws/charts/lws"}
    [message] = check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", unversioned, PINNED_070)
    assert "does not pin an LWS release" in message


def test_helm_chart_values_and_local_chart() -> None:
    values = {"image": {"manager": {"tag": "main", "pullPolicy": "Always"}}}
    local = {"chart": ".tools/charts/lws-0.7.0", "values": values}
    messages = check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", local, PINNED_070)
    assert len(messages) == 2
    assert "chart value image.manager.tag=main does not pin" in messages[0]
    assert "chart value image.manager.pullPolicy of the LWS controller pulls Always" in messages[1]
    pinned = {"chart": ".tools/charts/lws-0.7.0", "values": {"image": {"manager": {"tag": "v0.7.0"}}}}
    assert check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", pinned, PINNED_070) == []
    release = {"chart": "lws", "version": "0.6.1", "repositoryOpts": {"repo": "https://example.com"}}
    assert len(check_no_online_upgrade("kubernetes:helm.sh/v3:Release", release, PINNED_070)) == 1
    other = {"chart": "oci://example.com/charts/ingress-nginx", "version": "4.0.0"}
    assert check_no_online_upgrade("kubernetes:helm.sh/v4:Chart", other, PINNED_070) == []


def test_normalized_versions() -> None:
    assert normalized("v0.7.0") == "0.7.0"
    assert normalized("0.7") == "0.7.0"
    assert normalized("main") is None
    assert normalized(None) is None


# ---- the stack policy ----------------------------------------------------------------------


def stack(*objs: Obj) -> list[StackResource]:
    return [StackResource(type_token_of(obj), obj, f"r{i}") for i, obj in enumerate(objs)]


def test_window_with_groups_left_is_denied() -> None:
    resources = stack(controller(), one("ack_qwen3_vllm"), one("ack_qwen3_sglang"))
    [message] = check_no_online_upgrade_drained(resources, WINDOW_061)
    assert message.startswith("the LWS controller changes from 0.6.1 to 0.7.0 (Deployment lws-system/")
    assert "2 LeaderWorkerSet(s) remain in the stack: LeaderWorkerSet inference/qwen3-vllm" in message


def test_window_without_groups_passes() -> None:
    assert check_no_online_upgrade_drained(stack(*load("lws_controller")), WINDOW_061) == []


def test_no_window_or_no_change_is_left_to_the_resource_policy() -> None:
    resources = stack(controller(), one("ack_qwen3_vllm"))
    assert check_no_online_upgrade_drained(resources, PINNED_061) == []
    same = Settings.from_config({"lwsVersion": "0.7.0", "maintenance": True})
    assert check_no_online_upgrade_drained(resources, same) == []


def test_many_groups_are_summarised() -> None:
    groups = [set_in(one("ack_qwen3_vllm"), "metadata.name", f"g{i}") for i in range(8)]
    [message] = check_no_online_upgrade_drained(stack(controller(), *groups), WINDOW_061)
    assert "8 LeaderWorkerSet(s)" in message and "and 3 more" in message
