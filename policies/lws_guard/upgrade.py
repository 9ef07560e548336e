"""no-online-upgrade and no-online-upgrade-drained: the LWS controller stays at the cluster's release.

LWS has no online upgrade (the CCE add-on says so, and the CRD, webhooks and running groups would
disagree half way), so every object that states the controller's version must state the pinned one
(config lwsVersion):

* objects of the LWS chart: labels helm.sh/chart `lws-<version>` and app.kubernetes.io/version;
* the controller Deployment (an image whose repository ends in /lws, or named *lws-controller-manager):
  its image tag, and no imagePullPolicy Always;
* a Helm chart resource (kubernetes:helm.sh/v4:Chart, helm.sh/v3:Release) of the lws chart: its
  version and values.image.manager.{tag,pullPolicy}.

Floating versions (main, latest, no tag) are denied always. A different release passes only in a
maintenance window (config maintenance: true), and then only once no LeaderWorkerSet remains in the
stack, which only a stack policy can see. The message carries the offline procedure for the pair of
releases (kernel/upgrades.py): across 0.8 it includes the CRD step, since the 0.8 chart moved its CRDs out of
the Helm release and a `helm upgrade` from before deletes the CRD and every LeaderWorkerSet (lws#880).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernel.catalog import release
from kernel.rules import check_controller_upgrade
from lws_guard import manifest
from lws_guard.settings import Settings

CHART_LABEL = "helm.sh/chart"
VERSION_LABEL = "app.kubernetes.io/version"
NAME_LABEL = "app.kubernetes.io/name"
CONTROLLER_NAME = "lws-controller-manager"
HELM_TYPES = ("kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart")
_CHART_LABEL_VALUE = re.compile(r"^lws-(\d.*)$")
_CHART_DIR = re.compile(r"^lws(-\d[^/]*)?(\.tgz)?$")
CONFIG_HINT = "policy config: lwsVersion and maintenance of no-online-upgrade in policies/config/<stack>.json"


@dataclass(frozen=True)
class VersionClaim:
    """One place that states the controller's version; version None means it states none."""

    what: str
    version: str | None


@dataclass(frozen=True)
class ControllerView:
    claims: list[VersionClaim]
    always_pulled: list[str]


@dataclass(frozen=True)
class StackResource:
    resource_type: str
    props: Mapping[str, Any]
    name: str = ""


def normalized(version: str | None) -> str | None:
    """'v0.7' -> '0.7.0'; None for anything that is not a release number (main, latest, 0.7.0-rc.1)."""
    parsed = release(version) if version else None
    if parsed is None:
        return None
    parts = parsed.release
    return ".".join(str(p) for p in (*parts, 0, 0)[: max(3, len(parts))])


def inspect_controller(resource_type: str, props: Mapping[str, Any]) -> ControllerView:
    claims: list[VersionClaim] = []
    always: list[str] = []
    found_labels = manifest.labels(props)
    chart_label = manifest.text(found_labels.get(CHART_LABEL)) or ""
    chart_match = _CHART_LABEL_VALUE.match(chart_label)
    if chart_match:
        claims.append(VersionClaim(f"label {CHART_LABEL}={chart_label}", chart_match.group(1)))
    if chart_match or manifest.text(found_labels.get(NAME_LABEL)) == "lws":
        app_version = manifest.text(found_labels.get(VERSION_LABEL))
        if app_version is not None:
            claims.append(VersionClaim(f"label {VERSION_LABEL}={app_version}", app_version))

    if manifest.kind_of(resource_type, props) == "Deployment":
        deployment = manifest.text(manifest.dig(props, "metadata", "name")) or ""
        spec = manifest.mapping(manifest.dig(props, "spec", "template", "spec"))
        for container in _controller_containers(spec, by_name=CONTROLLER_NAME in deployment):
            image = manifest.text(container.get("image")) or ""
            name = manifest.container_name(container)
            ref = manifest.parse_image(image)
            claims.append(VersionClaim(f"image {image or '<none>'} of container {name}", ref.tag))
            if manifest.text(container.get("imagePullPolicy")) == "Always":
                always.append(f"container {name} ({image})")

    if resource_type in HELM_TYPES and _is_lws_chart(manifest.text(manifest.dig(props, "chart")) or ""):
        chart = manifest.text(manifest.dig(props, "chart")) or ""
        version = manifest.text(manifest.dig(props, "version"))
        if version is not None or chart.startswith(("oci://", "http://", "https://")):
            claims.append(VersionClaim(f"chart {chart} version {version or '<none>'}", version))
        values = manifest.mapping(manifest.dig(props, "values", "image", "manager"))
        tag = manifest.text(values.get("tag"))
        if tag is not None:
            claims.append(VersionClaim(f"chart value image.manager.tag={tag}", tag))
        if manifest.text(values.get("pullPolicy")) == "Always":
            always.append("chart value image.manager.pullPolicy")
    return ControllerView(claims, always)


def _controller_containers(spec: Mapping[str, Any], *, by_name: bool) -> list[Mapping[str, Any]]:
    """Containers running the LWS image; in a deployment named like the controller, else its manager."""
    all_containers = manifest.containers(spec)
    found = [c for c in all_containers if _is_lws_image(manifest.text(c.get("image")) or "")]
    if found or not by_name:
        return found
    managers = [c for c in all_containers if manifest.container_name(c) == "manager"]
    return managers or all_containers[:1]


def _is_lws_image(image: str) -> bool:
    repository = manifest.parse_image(image).repository if image else ""
    return repository == "lws" or repository.endswith("/lws")


def _is_lws_chart(chart: str) -> bool:
    return bool(chart) and bool(_CHART_DIR.match(chart.rstrip("/").rsplit("/", 1)[-1]))


def check_no_online_upgrade(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    view = inspect_controller(resource_type, props)
    if not view.claims and not view.always_pulled:
        return []
    who = manifest.display(manifest.kind_of(resource_type, props) or resource_type, props, name)
    pinned = normalized(settings.lws_version) or settings.lws_version
    messages = []
    for claim in view.claims:
        version = normalized(claim.version)
        if version is None:
            messages.append(
                f"{who}: {claim.what} does not pin an LWS release ({claim.version or 'no version'} floats); "
                f"pin {pinned}, the cluster's release: a floating version upgrades the controller online "
                "whenever it restarts"
            )
            continue
        for finding in check_controller_upgrade(pinned, version, settings.maintenance):
            messages.append(f"{who}: {claim.what}: {finding.message} ({CONFIG_HINT})")
    for what in view.always_pulled:
        messages.append(
            f"{who}: {what} of the LWS controller pulls Always, so a restart may run another build; "
            "use IfNotPresent with a pinned tag"
        )
    return messages


def check_no_online_upgrade_drained(resources: Sequence[StackResource], settings: Settings) -> list[str]:
    """In a maintenance window the controller may change release, but only with no LWS left."""
    if not settings.maintenance:
        return []
    pinned = normalized(settings.lws_version) or settings.lws_version
    changes: list[str] = []
    groups: list[str] = []
    for resource in resources:
        if manifest.is_lws(resource.resource_type, resource.props):
            groups.append(manifest.display("LeaderWorkerSet", resource.props, resource.name))
        for claim in inspect_controller(resource.resource_type, resource.props).claims:
            version = normalized(claim.version)
            if version is not None and version != pinned:
                kind = manifest.kind_of(resource.resource_type, resource.props) or resource.resource_type
                changes.append(f"{version} ({manifest.display(kind, resource.props, resource.name)}: {claim.what})")
    if not changes or not groups:
        return []
    shown = ", ".join(groups[:5]) + (f" and {len(groups) - 5} more" if len(groups) > 5 else "")
    return [
        f"the LWS controller changes from {pinned} to {changes[0]}"
        + (f" and {len(changes) - 1} more" if len(changes) > 1 else "")
        + f" in a maintenance window, but {len(groups)} LeaderWorkerSet(s) remain in the stack: {shown}. "
        "LWS has no online upgrade: remove them first (a `pulumi up` without them), then change the controller"
    ]
