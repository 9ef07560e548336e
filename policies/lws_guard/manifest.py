"""Reading Kubernetes objects as the policies receive them: pure functions over nested mappings.

Props arrive as Pulumi passes them to a policy: camelCase keys, numbers as floats (8.0), quantities
as strings or numbers, and mappings/sequences that may be read-only proxies rather than dict/list.
Every function here accepts anything at any level and returns an empty or None answer for odd input
instead of raising, so a policy never crashes on a resource it does not understand. (Values that are
unknown during preview still raise the SDK's UnknownValueError when read: the engine reports that as
"can't run policy during preview".)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernel import lws_api
from kernel.annotations import GPU_MEMORY_LABEL, GPU_PRODUCT_LABEL, GPU_RESOURCE
from kernel.commands import image_entrypoint
from kernel.images import ImageRef as ImageRef
from kernel.images import parse_image as parse_image
from kernel.rules import SHM_HOST
from kernel.shell import kubernetes_expand
from kernel.type_tokens import type_token
from kernel.units import parse_quantity

LWS_TYPE = type_token(lws_api.API_VERSION, lws_api.KIND)
LWS_GROUP = lws_api.GROUP
# LWS 0.9+: prefill/decode roles, each a LeaderWorkerSet template (api/disaggregatedset/v1 of
# kubernetes-sigs/lws: roles[].spec.leaderWorkerTemplate; v1alpha1 inlines the spec: roles[].leaderWorkerTemplate).
DISAGGREGATED_GROUP = lws_api.DISAGGREGATED_GROUP
# Accelerator resources of the device plugins: NVIDIA, AMD, Google TPU, Huawei Ascend (huawei.com/Ascend910,
# huawei.com/ascend-1980, ...), Intel Gaudi.
ACCELERATOR_RESOURCES = (GPU_RESOURCE, "amd.com/gpu", "google.com/tpu")
ACCELERATOR_PREFIXES = ("huawei.com/ascend", "huawei.com/Ascend", "habana.ai/gaudi")
# More accelerators than this in one container is no request anyone means: read as none.
MAX_ACCELERATORS = 4096
SHM_PATH = "/dev/shm"

EMPTY: Mapping[str, Any] = {}


# ---- generic access --------------------------------------------------------------------------


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else EMPTY


def items(value: object) -> list[Any]:
    """The elements of a list (or list proxy); [] for anything else, strings included."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return []


def dig(value: object, *keys: str) -> Any:
    """value[k1][k2]... or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def text(value: object) -> str | None:
    """A scalar as the string Kubernetes would see: 8.0 -> "8", True -> "true"; None for the rest."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def whole_number(value: object) -> int | None:
    """An integer field (size: 2.0, "2"); None when absent, fractional or not a number."""
    number = parse_quantity(value)
    if number is None or not math.isfinite(number) or not number.is_integer():
        return None
    return int(number)


# ---- resource identity -----------------------------------------------------------------------


def kind_of(resource_type: str, props: Mapping[str, Any]) -> str:
    """The Kubernetes kind: the last part of the type token, else props.kind."""
    parts = resource_type.split(":") if isinstance(resource_type, str) else []
    if len(parts) == 3 and parts[0] == "kubernetes" and parts[2]:
        return parts[2]
    return text(dig(props, "kind")) or ""


def is_lws(resource_type: str, props: Mapping[str, Any]) -> bool:
    if resource_type == LWS_TYPE:
        return True
    api_version = text(dig(props, "apiVersion")) or ""
    return kind_of(resource_type, props) == "LeaderWorkerSet" and api_version.startswith(LWS_GROUP + "/")


def is_disaggregated_set(resource_type: str, props: Mapping[str, Any]) -> bool:
    group = resource_type.split(":")[1].split("/")[0] if resource_type.count(":") == 2 else ""
    api_version = text(dig(props, "apiVersion")) or ""
    return kind_of(resource_type, props) == "DisaggregatedSet" and (
        group == DISAGGREGATED_GROUP or api_version.startswith(DISAGGREGATED_GROUP + "/")
    )


@dataclass(frozen=True)
class LwsView:
    """One LeaderWorkerSet to check: the object itself, or one role of a DisaggregatedSet.

    who: how messages name it; props: LeaderWorkerSet-shaped (metadata with annotations, spec with
    leaderWorkerTemplate), so every LWS rule reads a role exactly as it reads a LeaderWorkerSet.
    """

    who: str
    props: Mapping[str, Any]


def lws_views(resource_type: str, props: Mapping[str, Any], name: str = "") -> list[LwsView]:
    """The LeaderWorkerSets a resource declares: itself, or each role of a DisaggregatedSet; else []."""
    if is_lws(resource_type, props):
        return [LwsView(display("LeaderWorkerSet", props, name), props)]
    if not is_disaggregated_set(resource_type, props):
        return []
    who = display("DisaggregatedSet", props, name)
    views = []
    for index, role in enumerate(items(dig(props, "spec", "roles"))):
        role = mapping(role)
        nested = mapping(role.get("spec"))
        spec = nested if isinstance(nested.get("leaderWorkerTemplate"), Mapping) else role
        role_name = text(role.get("name")) or f"roles[{index}]"
        metadata = {
            "name": role_name,
            "annotations": {**annotations_of(props), **mapping(dig(role, "metadata", "annotations"))},
        }
        views.append(LwsView(f"{who} role {role_name}", {"metadata": metadata, "spec": spec}))
    return views


def display(kind: str, props: Mapping[str, Any], fallback: str = "") -> str:
    """'LeaderWorkerSet inference/qwen3-32b', or the Pulumi name when the object has no name yet."""
    metadata = mapping(dig(props, "metadata"))
    name = text(metadata.get("name")) or fallback or "<unnamed>"
    namespace = text(metadata.get("namespace"))
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def labels(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "metadata", "labels"))


def annotations_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "metadata", "annotations"))


# ---- pod templates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodSpec:
    """One pod spec of a workload, and what to call it in messages."""

    role: str
    spec: Mapping[str, Any]


_TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}


def group_size(props: Mapping[str, Any]) -> int:
    """spec.leaderWorkerTemplate.size, 1 when absent (the API default) or not a positive integer."""
    size = whole_number(dig(props, "spec", "leaderWorkerTemplate", "size"))
    return size if size is not None and size >= 1 else 1


def leader_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The leader's pod spec: leaderTemplate, or the workerTemplate when there is none."""
    template = mapping(dig(props, "spec", "leaderWorkerTemplate"))
    if isinstance(template.get("leaderTemplate"), Mapping):
        return mapping(dig(template, "leaderTemplate", "spec"))
    return mapping(dig(template, "workerTemplate", "spec"))


def worker_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(dig(props, "spec", "leaderWorkerTemplate", "workerTemplate", "spec"))


def has_leader_template(props: Mapping[str, Any]) -> bool:
    return isinstance(dig(props, "spec", "leaderWorkerTemplate", "leaderTemplate"), Mapping)


def lws_pod_specs(props: Mapping[str, Any]) -> list[PodSpec]:
    """Leader and worker pod specs, each once (one spec serves both without a leaderTemplate)."""
    if has_leader_template(props):
        return [PodSpec("leader", leader_spec(props)), PodSpec("worker", worker_spec(props))]
    return [PodSpec("leader and worker", worker_spec(props))]


def pod_specs(resource_type: str, props: Mapping[str, Any]) -> list[PodSpec]:
    """The pod specs a workload creates pods from; [] for kinds that create none."""
    kind = kind_of(resource_type, props)
    if is_lws(resource_type, props):
        return lws_pod_specs(props)
    if is_disaggregated_set(resource_type, props):
        return [
            PodSpec(f"{view.props['metadata']['name']} {pod.role}", pod.spec)
            for view in lws_views(resource_type, props)
            for pod in lws_pod_specs(view.props)
        ]
    if kind == "Pod":
        return [PodSpec("pod", mapping(dig(props, "spec")))]
    if kind in _TEMPLATED:
        return [PodSpec("pod template", mapping(dig(props, "spec", "template", "spec")))]
    if kind == "CronJob":
        return [PodSpec("pod template", mapping(dig(props, "spec", "jobTemplate", "spec", "template", "spec")))]
    return []


def containers(spec: Mapping[str, Any], *, init: bool = False) -> list[Mapping[str, Any]]:
    """The containers of a pod spec (with init and ephemeral containers when init=True)."""
    keys = ("containers", "initContainers", "ephemeralContainers") if init else ("containers",)
    return [c for key in keys for c in items(spec.get(key)) if isinstance(c, Mapping)]


def container_name(container: Mapping[str, Any]) -> str:
    return text(container.get("name")) or "<unnamed>"


@dataclass(frozen=True)
class WorkloadContainer:
    """A container of a workload with the pod spec it belongs to (its volumes, hostIPC, ...)."""

    pod: PodSpec
    container: Mapping[str, Any]

    @property
    def name(self) -> str:
        return container_name(self.container)

    @property
    def label(self) -> str:
        """'vllm-leader (leader)', as messages name a container."""
        return f"{self.name} ({self.pod.role})"


def containers_of(pods: Sequence[PodSpec], *, init: bool = False) -> list[WorkloadContainer]:
    return [WorkloadContainer(pod, c) for pod in pods for c in containers(pod.spec, init=init)]


def workload_containers(resource_type: str, props: Mapping[str, Any], *, init: bool = False) -> list[WorkloadContainer]:
    """Every container of every pod template a workload creates pods from (the one iterator the policies use)."""
    return containers_of(pod_specs(resource_type, props), init=init)


def command(container: Mapping[str, Any]) -> list[str]:
    """command + args as the kubelet joins them (non-strings as Kubernetes would print them)."""
    words = items(container.get("command")) + items(container.get("args"))
    return [word for word in (text(w) for w in words) if word is not None]


def argv(container: Mapping[str, Any]) -> list[str]:
    """What the container runs: command + args, or the image's server entrypoint + args when the
    container gives only args to an engine image (vllm/vllm-openai, lmsysorg/sglang)."""
    words = command(container)
    if items(container.get("command")):
        return words
    entrypoint = image_entrypoint(text(container.get("image")), words)
    return [*entrypoint, *words] if entrypoint else words


def _resource(container: Mapping[str, Any], name: str) -> float | None:
    """A resource of a container from its limits, else its requests."""
    resources = mapping(container.get("resources"))
    for section in ("limits", "requests"):
        value = parse_quantity(dig(resources, section, name))
        if value is not None and math.isfinite(value):
            return value
    return None


def accelerator_resource(container: Mapping[str, Any]) -> str | None:
    """The accelerator resource a container requests (nvidia.com/gpu, amd.com/gpu, huawei.com/Ascend910, ...)."""
    resources = mapping(container.get("resources"))
    names = [str(k) for section in ("limits", "requests") for k in mapping(resources.get(section))]
    for name in names:
        if name in ACCELERATOR_RESOURCES or name.startswith(ACCELERATOR_PREFIXES):
            value = _resource(container, name)
            if value is not None and value > 0:
                return name
    return None


def gpus(container: Mapping[str, Any]) -> int:
    """Accelerators of a container (limits, else requests): "8", 8 and 8.0 are all 8, of any vendor."""
    resource = accelerator_resource(container)
    value = _resource(container, resource) if resource else None
    return int(value) if value is not None and 0 < value <= MAX_ACCELERATORS else 0


def nvidia_gpus(container: Mapping[str, Any]) -> int:
    value = _resource(container, GPU_RESOURCE)
    return int(value) if value is not None and 0 < value <= MAX_ACCELERATORS else 0


def pod_gpus(spec: Mapping[str, Any]) -> int:
    return sum(gpus(c) for c in containers(spec))


def memory_limit(container: Mapping[str, Any]) -> float | None:
    value = parse_quantity(dig(container, "resources", "limits", "memory"))
    return value if value is not None and math.isfinite(value) else None


def volumes(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for volume in items(spec.get("volumes")):
        name = text(dig(volume, "name"))
        if name is not None and isinstance(volume, Mapping):
            found[name] = volume
    return found


def mounts(container: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in items(container.get("volumeMounts")) if isinstance(m, Mapping)]


@dataclass(frozen=True)
class ShmMount:
    """What backs a container's /dev/shm: medium None means nothing (the runtime's 64 MiB), "Memory" or
    "" (disk) an emptyDir, kernel.rules.SHM_HOST the node's own /dev/shm (hostIPC or a hostPath)."""

    medium: str | None
    size_bytes: float | None


def shm_mount(spec: Mapping[str, Any], container: Mapping[str, Any]) -> ShmMount:
    by_name = volumes(spec)
    for mount in mounts(container):
        path = text(mount.get("mountPath")) or ""
        if path.rstrip("/") != SHM_PATH:
            continue
        volume = by_name.get(text(mount.get("name")) or "")
        if text(dig(volume, "hostPath", "path")) is not None:
            return ShmMount(SHM_HOST, None)
        empty_dir = dig(volume, "emptyDir")
        if not isinstance(empty_dir, Mapping):
            return ShmMount(None, None)
        size = parse_quantity(empty_dir.get("sizeLimit"))
        return ShmMount(text(empty_dir.get("medium")) or "", size if size is not None and math.isfinite(size) else None)
    if spec.get("hostIPC") is True:
        return ShmMount(SHM_HOST, None)
    return ShmMount(None, None)


def env_values(container: Mapping[str, Any], injected: Mapping[str, str] | None = None) -> dict[str, str]:
    """The container's literal env as the kubelet resolves it ($(VAR) of earlier variables expanded),
    over what the controller injects (LWS_GROUP_SIZE, ...): the variables its command can use."""
    values = dict(injected or {})
    for name, value in env_literals(container):
        values[name] = kubernetes_expand(value, values)
    return values


def env_literals(container: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, value) of every env var given as a literal value (not valueFrom)."""
    found = []
    for var in items(container.get("env")):
        name = text(dig(var, "name"))
        value = dig(var, "value")
        if name is not None and value is not None and text(value) is not None:
            found.append((name, text(value) or ""))
    return found


# ---- images ----------------------------------------------------------------------------------
# One parser for the plan and the pack: kernel.images (ImageRef and parse_image are re-exported here).

# ---- GPU selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSelection:
    """What a pod spec says about the GPU it lands on.

    products: the nvidia.com/gpu.product values it may land on (empty: not constrained);
    memory_mib: the least nvidia.com/gpu.memory it may get (None: not constrained);
    source: where that came from, for messages.
    """

    products: tuple[str, ...] = ()
    memory_mib: float | None = None
    source: str = ""


def gpu_selection(spec: Mapping[str, Any]) -> GpuSelection:
    """GPU feature discovery labels a pod requires, from nodeSelector and required node affinity.

    nodeSelector and the affinity terms must all hold; the terms are alternatives, so a product is
    only known when every term names one, and memory takes the smallest any term allows.
    """
    selector = mapping(spec.get("nodeSelector"))
    product = text(selector.get(GPU_PRODUCT_LABEL))
    memory = _mib(selector.get(GPU_MEMORY_LABEL))
    if product:
        return GpuSelection((product,), memory, "nodeSelector")
    terms = items(
        dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
    )
    products: list[str] = []
    term_memory: list[float] = []
    every_term_names_product = bool(terms)
    every_term_bounds_memory = bool(terms)
    for term in terms:
        named, least = _term_gpu(term)
        every_term_names_product &= bool(named)
        every_term_bounds_memory &= least is not None
        products += [p for p in named if p not in products]
        if least is not None:
            term_memory.append(least)
    if memory is None and every_term_bounds_memory and term_memory:
        memory = min(term_memory)
    if every_term_names_product and products:
        return GpuSelection(tuple(products), memory, "required node affinity")
    if memory is not None:
        source = "nodeSelector" if GPU_MEMORY_LABEL in selector else "required node affinity"
        return GpuSelection((), memory, source)
    return GpuSelection()


def _term_gpu(term: object) -> tuple[list[str], float | None]:
    """Products (operator In) and the least memory (In or Gt) one node selector term allows."""
    products: list[str] = []
    least: float | None = None
    for expression in items(dig(term, "matchExpressions")):
        key = text(dig(expression, "key"))
        operator = text(dig(expression, "operator"))
        values = [v for v in (text(x) for x in items(dig(expression, "values"))) if v]
        if key == GPU_PRODUCT_LABEL and operator == "In":
            products += values
        elif key == GPU_MEMORY_LABEL and operator in ("In", "Gt"):
            numbers = [n for n in (_mib(v) for v in values) if n is not None]
            if numbers:
                # Gt n admits n + 1 MiB and up: n is a safe lower bound.
                bound = min(numbers)
                least = bound if least is None else max(least, bound)
    return products, least


def _mib(value: object) -> float | None:
    """A nvidia.com/gpu.memory label value (MiB); None unless a positive finite number."""
    number = parse_quantity(value)
    return number if number is not None and math.isfinite(number) and number > 0 else None
