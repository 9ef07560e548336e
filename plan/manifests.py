"""Kubernetes objects of a planned group, as plain dicts in the API's camelCase.

Pure functions: the components turn them into Pulumi resources, and the policy-pack tests check
them directly, so what we deploy and what the policies accept are provably the same objects.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kernel import lws_api
from kernel.annotations import GPU_PRODUCT_LABEL, GPU_RESOURCE, MODEL_VOLUME, SHM_VOLUME
from kernel.catalog import Engine
from kernel.units import gi_quantity, gib
from plan.group import GroupPlan
from plan.releases import lws_spec_fields

Manifest = dict[str, Any]

LWS_API_VERSION = lws_api.API_VERSION
LWS_NAME_LABEL = lws_api.SET_NAME_LABEL
EXCLUSIVE_TOPOLOGY_ANNOTATION = lws_api.EXCLUSIVE_TOPOLOGY_ANNOTATION
MULTUS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
VOLCANO_QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
ENGINE_CONTAINER = "engine"
HF_TOKEN_KEY = "token"
API_KEY_KEY = "apiKey"
API_KEY_ENV = {Engine.VLLM: "VLLM_API_KEY", Engine.SGLANG: "API_KEY"}
"""vLLM's server reads VLLM_API_KEY itself (vllm/entrypoints/openai/api_server.py); SGLang only takes
--api-key, so its leader gets `--api-key $(API_KEY)`, which Kubernetes expands from the env."""
PROBE_PERIOD_SECONDS = 10


@dataclass(frozen=True)
class Placement:
    """Where and how a group's pods run: everything besides the plan's own numbers."""

    namespace: str
    claim_name: str | None
    """The model volume's claim; None when models come from Hugging Face only."""
    mount_path: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    scheduler_queue: str | None = None
    exclusive_topology: str | None = None
    nccl_env: Mapping[str, str] = field(default_factory=dict)
    multus_networks: str | None = None
    hf_token_secret: str | None = None
    """Name of a Secret whose `token` key holds the Hugging Face token."""
    api_key_secret: str | None = None
    """Name of a Secret whose `apiKey` key holds the server API key clients must send."""


def labels(group: GroupPlan, component: str | None = None) -> dict[str, str]:
    found = {
        "app.kubernetes.io/name": group.engine.value,
        "app.kubernetes.io/instance": group.name,
        "app.kubernetes.io/part-of": "lws-inference",
        "app.kubernetes.io/managed-by": "pulumi",
    }
    if component:
        found["app.kubernetes.io/component"] = component
    return found


def leader_worker_set(group: GroupPlan, placement: Placement) -> Manifest:
    annotations = dict(group.annotations)
    annotations[WAIT_FOR_ANNOTATION] = wait_for(group)
    annotations["pulumi.com/timeoutSeconds"] = str(await_timeout_seconds(group))
    if placement.exclusive_topology:
        annotations[EXCLUSIVE_TOPOLOGY_ANNOTATION] = placement.exclusive_topology
    template: Manifest = {
        "size": group.group_size,
        "restartPolicy": group.restart_policy,
        "workerTemplate": _pod_template(group, placement, leader=False),
    }
    if group.group_size > 1:
        template["leaderTemplate"] = _pod_template(group, placement, leader=True)
    else:
        template["workerTemplate"] = _pod_template(group, placement, leader=True)
    # startupPolicy, networkConfig and rolloutStrategy as the cluster's LWS release allows (plan/releases.py).
    spec: Manifest = {"replicas": group.replicas, **lws_spec_fields(group.lws), "leaderWorkerTemplate": template}
    annotations |= dict(group.lws.annotations)
    if placement.scheduler_queue:
        annotations[VOLCANO_QUEUE_ANNOTATION] = placement.scheduler_queue  # the controller's PodGroup queue
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": {
            "name": group.name,
            "namespace": placement.namespace,
            "labels": labels(group),
            "annotations": annotations,
        },
        "spec": spec,
    }


def await_timeout_seconds(group: GroupPlan) -> int:
    """How long `pulumi up` waits for every group Ready: the startup budget plus image pulls and scheduling."""
    return group.startup_seconds + 600


def pod_template(group: GroupPlan, placement: Placement, *, leader: bool) -> Manifest:
    """A leader's or worker's pod template, as a LeaderWorkerSet and the StatefulSet workload share it."""
    return _pod_template(group, placement, leader=leader)


WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
"""On a Service, what the provider would await is no readiness: it returns 10 s after the Service's Endpoints last
changed, ready addresses or none (pulumi-kubernetes provider/v4 pkg/await/service.go, `endpointsSettled`)."""
EVERY_GROUP_READY = "jsonpath={$[?@.readyReplicas==$.spec.replicas].readyReplicas}"
"""status.readyReplicas equal to the live spec.replicas: as many ready groups as the object asks for now, whether
the count is ours or an autoscaler's. LWS counts a group ready when its leader pod is Running and Ready and its
workers' StatefulSet has all its pods; the leader's readiness probe (the engine's /health) passes only once the
workers have joined, so a ready leader stands for a serving group."""


def wait_for(group: GroupPlan) -> str:
    """What `pulumi up` awaits on a LeaderWorkerSet (pulumi-kubernetes waitFor: all of them, the provider showing
    the one it waits for on the group's line). Available comes from the controller's last reconcile and holds no
    count, so right after a scale-up it still reports the old groups; readyReplicas counts groups of any template,
    so during a rolling update it can match while Available is off. A group scaled to zero has no readyReplicas
    (omitempty): only Available then."""
    if group.replicas == 0:
        return json.dumps(["condition=Available"])
    return json.dumps([EVERY_GROUP_READY, "condition=Available"])


def _pod_template(group: GroupPlan, placement: Placement, *, leader: bool) -> Manifest:
    role = "leader" if leader else "worker"
    annotations: dict[str, str] = {}
    if leader:
        annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(group.port),
                        "prometheus.io/path": "/metrics"}  # fmt: skip
    if placement.multus_networks:
        annotations[MULTUS_ANNOTATION] = placement.multus_networks
    if placement.scheduler_queue:
        annotations[VOLCANO_QUEUE_ANNOTATION] = placement.scheduler_queue
    spec: Manifest = {
        "nodeSelector": {**placement.node_selector, GPU_PRODUCT_LABEL: group.gpu_product},
        "containers": [_engine_container(group, placement, leader=leader)],
        "volumes": [
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": gi_quantity(gib(group.shm_bytes))}},
        ],
    }
    if placement.claim_name:
        claim = {"claimName": placement.claim_name, "readOnly": True}
        spec["volumes"].append({"name": MODEL_VOLUME, "persistentVolumeClaim": claim})
    if placement.tolerations:
        spec["tolerations"] = [dict(t) for t in placement.tolerations]
    if placement.scheduler_queue:
        spec["schedulerName"] = "volcano"
    metadata: Manifest = {"labels": labels(group, role)}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec}


def _engine_container(group: GroupPlan, placement: Placement, *, leader: bool) -> Manifest:
    gpus = str(group.parallelism.gpus_per_pod)
    memory = gi_quantity(gib(group.pod_memory_bytes))
    resources = {GPU_RESOURCE: gpus, "memory": memory, "cpu": str(group.pod_cpus)}
    container: Manifest = {
        "name": ENGINE_CONTAINER,
        "image": group.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(group.leader_command if leader else group.worker_command)
        + _api_key_args(group, placement, leader),
        "env": _env(placement) + _api_key_env(group, placement),
        "resources": {"limits": resources, "requests": dict(resources)},
        "volumeMounts": [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}],
    }
    if placement.claim_name:
        container["volumeMounts"].append({"name": MODEL_VOLUME, "mountPath": placement.mount_path, "readOnly": True})
    if leader:
        container["ports"] = [{"name": "http", "containerPort": group.port, "protocol": "TCP"}]
        container |= _probes(group)
    return container


def _env(placement: Placement) -> list[Manifest]:
    env: list[Manifest] = [{"name": k, "value": v} for k, v in sorted(placement.nccl_env.items())]
    if placement.hf_token_secret:
        ref = {"secretKeyRef": {"name": placement.hf_token_secret, "key": HF_TOKEN_KEY}}
        env += [{"name": "HF_TOKEN", "valueFrom": ref}]
    return env


def _api_key_env(group: GroupPlan, placement: Placement) -> list[Manifest]:
    if not placement.api_key_secret:
        return []
    ref = {"secretKeyRef": {"name": placement.api_key_secret, "key": API_KEY_KEY}}
    return [{"name": API_KEY_ENV[group.engine], "valueFrom": ref}]


def _api_key_args(group: GroupPlan, placement: Placement, leader: bool) -> list[str]:
    """SGLang's HTTP server (the leader's) takes the key as a flag: pass the env reference, never the value."""
    if not (placement.api_key_secret and leader and group.engine is Engine.SGLANG):
        return []
    return ["--api-key", f"$({API_KEY_ENV[Engine.SGLANG]})"]


def _probes(group: GroupPlan) -> Manifest:
    health = {"path": "/health", "port": group.port}
    return {
        # The startup probe holds liveness and readiness off until the weights are loaded; its
        # budget comes from the plan, so a slow load is never killed half way.
        "startupProbe": {
            "httpGet": health,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "failureThreshold": startup_failure_threshold(group.startup_seconds),
        },
        "readinessProbe": {"httpGet": health, "periodSeconds": PROBE_PERIOD_SECONDS, "failureThreshold": 3},
    }


def startup_failure_threshold(budget_seconds: int) -> int:
    return max(1, -(-budget_seconds // PROBE_PERIOD_SECONDS))


def leader_service_name(group: GroupPlan) -> str:
    """Not the group's own name: the LWS controller owns a headless Service of that name, which gives the pods
    the DNS names LWS_LEADER_ADDRESS points at; a Service of ours by that name would take it over."""
    return f"{group.name}-leader"


def leader_service(group: GroupPlan, namespace: str) -> Manifest:
    """A ClusterIP Service in front of the leaders only: workers serve no HTTP. Not awaited: the workload's await
    (every group Ready, a Ready leader) is what says the Service has somewhere to send requests, and the Service's
    own await would only add a fixed 10 s to every `up` that creates or changes it."""
    return {
        "metadata": {
            "name": leader_service_name(group),
            "namespace": namespace,
            "labels": labels(group),
            "annotations": {SKIP_AWAIT_ANNOTATION: "true"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/instance": group.name, "app.kubernetes.io/component": "leader"},
            "ports": [{"name": "http", "port": group.port, "targetPort": group.port, "protocol": "TCP"}],
        },
    }


def network_policy(group: GroupPlan, namespace: str, allowed_namespaces: Sequence[str]) -> Manifest:
    """All traffic inside a group (NCCL, Ray, SGLang's dist-init); only the serving port from outside.

    It selects this group's pods only, so the LWS controller's webhooks (in their own namespace) are
    untouched and the API server keeps reaching them.
    """
    namespaces = sorted({namespace, *allowed_namespaces})
    return {
        "metadata": {"name": group.name, "namespace": namespace, "labels": labels(group)},
        "spec": {
            "podSelector": {"matchLabels": {LWS_NAME_LABEL: group.name}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {LWS_NAME_LABEL: group.name}}}]},
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
                                ]
                            }
                        }
                    ],
                    "ports": [{"port": group.port, "protocol": "TCP"}],
                },
            ],
        },
    }


def autoscaler(group: GroupPlan, namespace: str, minimum: int, maximum: int, cpu_percent: int) -> Manifest:
    """An HPA on the LWS scale subresource: it adds and removes whole groups."""
    return {
        "metadata": {"name": group.name, "namespace": namespace, "labels": labels(group)},
        "spec": {
            "scaleTargetRef": {"apiVersion": LWS_API_VERSION, "kind": "LeaderWorkerSet", "name": group.name},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_percent}},
                }
            ],
        },
    }


def service_url(group: GroupPlan, namespace: str) -> str:
    return f"http://{leader_service_name(group)}.{namespace}.svc.cluster.local:{group.port}"


def plan_summary(group: GroupPlan) -> dict[str, Any]:
    """The numbers of a group as a stack output."""
    memory = group.memory
    return {
        "engine": group.engine.value,
        "tensorParallel": group.parallelism.tensor,
        "pipelineParallel": group.parallelism.pipeline,
        "groupSize": group.group_size,
        "gpusPerPod": group.parallelism.gpus_per_pod,
        "gpu": group.gpu_product,
        "gpuMemoryGiB": round(gib(memory.gpu_bytes), 1),
        "neededPerGpuGiB": round(gib(memory.needed), 1),
        "usablePerGpuGiB": round(gib(memory.usable), 1),
        "weightsPerGpuGiB": round(gib(memory.weights), 1),
        "kvCacheTokens": memory.kv_tokens_available,
        **model_summary(group),
        "shmGiB": round(gib(group.shm_bytes), 1),
        "podMemory": gi_quantity(gib(group.pod_memory_bytes)),
        "startupSeconds": group.startup_seconds,
        "restartPolicy": group.restart_policy,
    }


def model_summary(group: GroupPlan) -> dict[str, Any]:
    """Data and expert parallelism, the KV cache per token and the parameter counts of a group."""
    summary: dict[str, Any] = {
        "dataParallel": group.parallelism.data,
        "expertParallel": group.parallelism.expert_parallel_size,
        "kvBytesPerToken": int(group.memory.kv_bytes_per_token),
    }
    if group.shape is not None:
        summary["parametersBillion"] = round(group.shape.parameters / 1e9, 2)
        summary["activeParametersBillion"] = round(group.shape.active / 1e9, 2)
    return summary


# ---- the controller chart ----------------------------------------------------------------------

LWS_IMAGE_REPOSITORY = "registry.k8s.io/lws/lws"


@dataclass(frozen=True)
class ControllerOptions:
    """What a cluster sets on the controller besides its release (config cluster.lws.*)."""

    gang_scheduling: str | None = None
    cert_manager: bool = False
    prometheus: bool = False
    priority_class_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, str]] = ()
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def controller_values(
    version: str, image_repository: str | None, options: ControllerOptions = ControllerOptions()
) -> Manifest:
    """Chart values that pin the controller image to the chart's release, plus the cluster's options.

    The chart defaults to tag `main` with pull policy Always: every node restart would run whatever
    main is that day, which is an online upgrade nobody asked for. The keys are those of charts/lws/values.yaml
    in sigs.k8s.io/lws v0.6.1 to v0.9.0 (gangSchedulingManagement since v0.7.0).
    """
    values: Manifest = {
        "image": {
            "manager": {
                "repository": image_repository or LWS_IMAGE_REPOSITORY,
                "tag": f"v{version.removeprefix('v')}",
                "pullPolicy": "IfNotPresent",
            }
        }
    }
    if options.cert_manager:
        values["enableCertManager"] = True
    if options.prometheus:
        values["enablePrometheus"] = True
    if options.gang_scheduling:
        values["gangSchedulingManagement"] = {"schedulerProvider": options.gang_scheduling}
    if options.node_selector:
        values["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        values["tolerations"] = [dict(t) for t in options.tolerations]
    if options.resources:
        values["resources"] = {k: dict(v) for k, v in options.resources.items()}
    return values


def controller_pod_fields(options: ControllerOptions) -> Manifest:
    """Pod fields the chart has no value for (no release up to 0.9.0 templates priorityClassName)."""
    return {"priorityClassName": options.priority_class_name} if options.priority_class_name else {}


# ---- model storage -----------------------------------------------------------------------------

OSS_CSI_DRIVER = "ossplugin.csi.alibabacloud.com"
PV_LABEL = "alicloud-pvname"
"""The label ACK's examples bind OSS claims by; NFS volumes use it too, so binding works one way."""


@dataclass(frozen=True)
class OssVolume:
    bucket: str
    endpoint: str
    path: str
    mount_options: str
    secret_name: str
    secret_namespace: str


@dataclass(frozen=True)
class NfsVolume:
    server: str
    path: str
    access_mode: str


def volume_identity(namespace: str, capacity_gi: int, source: OssVolume | NfsVolume) -> str:
    """`<backend>-<digest>` of everything a PV or claim cannot change in place: the backend and its source (a
    PV's volume source is immutable), the access mode (immutable on a claim), the size (a claim of a static PV
    cannot be resized) and the claim's namespace. The PV and the claim are named after it, so an edit of any of
    them creates a new pair before the old one is deleted, instead of an update the API server rejects or a
    same-name replace that waits for the claim in use to go away."""
    backend = "oss" if isinstance(source, OssVolume) else "nfs"
    fields = {"namespace": namespace, "capacityGi": capacity_gi, "backend": backend, **dataclasses.asdict(source)}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
    return f"{backend}-{digest}"


def model_volume(
    name: str, capacity_gi: int, source: OssVolume | NfsVolume, claim: tuple[str, str] | None = None
) -> Manifest:
    """A static PV for model weights. Retain: deleting the claim, the PV object or the stack never touches the
    data. `claim` (namespace, name) pre-binds it: only that claim may bind it, and a new claim of that name binds
    it too, because a PV this stack creates carries no uid of an older claim."""
    spec: Manifest = {
        "capacity": {"storage": f"{capacity_gi}Gi"},
        "persistentVolumeReclaimPolicy": "Retain",
        # Empty class: bind only to our claim, never to a dynamically provisioned volume.
        "storageClassName": "",
    }
    if claim:
        namespace, claim_name = claim
        spec["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace,
                            "name": claim_name}  # fmt: skip
    if isinstance(source, OssVolume):
        spec["accessModes"] = ["ReadOnlyMany"]
        spec["csi"] = {
            "driver": OSS_CSI_DRIVER,
            "volumeHandle": name,
            "nodePublishSecretRef": {"name": source.secret_name, "namespace": source.secret_namespace},
            "volumeAttributes": {
                "bucket": source.bucket,
                "url": source.endpoint,
                "path": source.path,
                "otherOpts": source.mount_options,
            },
        }
    else:
        spec["accessModes"] = [source.access_mode]
        spec["nfs"] = {"server": source.server, "path": source.path, "readOnly": True}
    return {"metadata": {"name": name, "labels": {PV_LABEL: name}}, "spec": spec}


def model_claim(name: str, namespace: str, volume: Manifest) -> Manifest:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "accessModes": volume["spec"]["accessModes"],
            "storageClassName": "",
            "resources": {"requests": {"storage": volume["spec"]["capacity"]["storage"]}},
            "selector": {"matchLabels": {PV_LABEL: volume["metadata"]["name"]}},
            "volumeName": volume["metadata"]["name"],
        },
    }
