"""Advisory checks: worth a look in review, not worth blocking a deployment.

* image-pinned: every container image has a version tag or a digest (kernel.rules.check_image_pinned);
* leader-probe: a LeaderWorkerSet leader has a readiness or startup probe;
* model-volume-readonly: inference containers mount PVC, NFS and CSI volumes read-only;
* model-pv-reclaim: OSS and NFS model PersistentVolumes are not reclaimed with Delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.rules import check_image_pinned
from lws_guard import manifest
from lws_guard.serving import flags_of
from lws_guard.settings import Settings

SHARED_VOLUME_SOURCES = ("persistentVolumeClaim", "nfs", "csi")
MODEL_PV_DRIVERS = {"ossplugin.csi.alibabacloud.com", "nasplugin.csi.alibabacloud.com", "nfs.csi.k8s.io"}


def check_image_pinned_policy(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    who = manifest.display(manifest.kind_of(resource_type, props), props, name)
    messages = []
    for item in manifest.workload_containers(resource_type, props, init=True):
        image = manifest.text(item.container.get("image"))
        if image is not None:
            messages += [f"{who}: container {item.label}: {finding.message}" for finding in check_image_pinned(image)]
    return messages


def check_leader_probe(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    messages = []
    for view in manifest.lws_views(resource_type, props, name):
        spec = manifest.leader_spec(view.props)
        probes = ("readinessProbe", "startupProbe")
        if any(isinstance(c.get(p), Mapping) for c in manifest.containers(spec) for p in probes):
            continue
        role = "leader template" if manifest.has_leader_template(view.props) else "worker template (the leader's)"
        messages.append(
            f"{view.who}: no container of the {role} has a readiness or startup probe "
            f"({len(manifest.containers(spec))} containers); the leader Service would route requests before the "
            "model is loaded, and Available would not mean serving"
        )
    return messages


def is_inference_container(container: Mapping[str, Any]) -> bool:
    return manifest.gpus(container) > 0 or flags_of(manifest.argv(container)).engine is not None


def check_model_volume_readonly(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    who = manifest.display(manifest.kind_of(resource_type, props), props, name)
    messages = []
    for item in manifest.workload_containers(resource_type, props):
        if not is_inference_container(item.container):
            continue
        volumes = manifest.volumes(item.pod.spec)
        for mount in manifest.mounts(item.container):
            volume_name = manifest.text(mount.get("name")) or ""
            source = _shared_source(volumes.get(volume_name, manifest.EMPTY))
            if source is None or mount.get("readOnly") is True:
                continue
            kind, detail = source
            if detail.get("readOnly") is True:
                continue
            what = kind
            claim = manifest.text(detail.get("claimName")) or manifest.text(detail.get("driver"))
            if claim:
                what += f" {claim}"
            messages.append(
                f"{who}: container {item.label} mounts volume {volume_name} ({what}) at "
                f"{manifest.text(mount.get('mountPath')) or '<no path>'} writable; mount model weights with "
                "readOnly: true so one engine cannot corrupt the copy every group loads"
            )
    return messages


def _shared_source(volume: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    for kind in SHARED_VOLUME_SOURCES:
        detail = volume.get(kind)
        if isinstance(detail, Mapping):
            return kind, detail
    return None


def check_model_pv_reclaim(
    resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
) -> list[str]:
    if manifest.kind_of(resource_type, props) != "PersistentVolume":
        return []
    spec = manifest.mapping(manifest.dig(props, "spec"))
    driver = manifest.text(manifest.dig(spec, "csi", "driver"))
    backend = driver if driver in MODEL_PV_DRIVERS else ("nfs" if isinstance(spec.get("nfs"), Mapping) else None)
    policy = manifest.text(spec.get("persistentVolumeReclaimPolicy"))
    if backend is None or policy != "Delete":
        return []
    return [
        f"{manifest.display('PersistentVolume', props, name)}: the {backend} model volume has "
        "persistentVolumeReclaimPolicy Delete, so releasing its claim may delete the model files; use Retain"
    ]
