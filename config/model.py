"""Stack configuration: the user's API.

Each class is one object of `Pulumi.<stack>.yaml` under the project's namespace; keys are camelCase
there (`pulumi config set --path 'cluster.gpu.product' NVIDIA-L20`) and snake_case in Python.
Validation here is about one field or one object at a time; the rules that tie a model to a cluster
(memory fit, parallelism, /dev/shm) live in the plan, so the policy pack can apply them too.
"""

from __future__ import annotations

import json
import types
import typing
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from kernel.catalog import (
    DEFAULT_LWS_VERSION,
    DEFAULT_SHM_BASE_GIB,
    DEFAULT_SHM_PER_GPU_GIB,
    Dtype,
    Engine,
    parse_version,
)
from kernel.checkpoints import catalog_ids, checkpoint_by_id
from kernel.hf_config import ConfigJsonError, read_config

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
VERSION = r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$"


INT32_MAX = 2**31 - 1
"""Kubernetes counts in int32 (replicas, sizes, ports); no integer of the stack config is larger."""
FLOAT_MAX = 1e15
"""No quantity of the stack config (GiB, MiB/s, billions of parameters) comes near this; larger ones are typos
that would overflow the plan's arithmetic."""


def _number_types(annotation: Any) -> set[type]:
    """int and float inside Optional[...] and Annotated[...] (bool is not a number here)."""
    if annotation in (int, float):
        return {annotation}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        return {t for arg in typing.get_args(annotation) for t in _number_types(arg)}
    return set()


class Model(BaseModel):
    # The fields' docstrings are the config reference's text (config/reference.py reads them from this source);
    # pydantic's use_attribute_docstrings would tokenize this file at every program start, 40 ms of each preview.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads true as 1: `tensorParallel: true` would silently mean TP=1."""
        if isinstance(value, bool) and info.field_name and _number_types(cls.model_fields[info.field_name].annotation):
            raise ValueError("must be a number, not a boolean")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _sane_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        limit, what = (INT32_MAX, "the int32 maximum") if isinstance(value, int) else (FLOAT_MAX, "1e15")
        if abs(value) > limit:
            raise ValueError(f"is out of range: at most {what} ({limit:.0f}) in magnitude")
        return value


# ---- cluster ---------------------------------------------------------------------------------


class LwsMode(StrEnum):
    INSTALL = "install"
    MANAGED = "managed"
    NONE = "none"


class ExternalWebhook(Model):
    """Where the API server reaches an LWS controller that runs outside the cluster."""

    url: Annotated[str, Field(pattern=r"^https://")]
    """Base URL of the controller's webhook server, e.g. https://127.0.0.1:9443."""
    ca_file: str
    """PEM file of the CA that signed the webhook server's certificate (becomes the caBundle)."""


class LwsController(Model):
    """The LeaderWorkerSet controller of the cluster."""

    mode: LwsMode = LwsMode.INSTALL
    """install: this stack installs the Helm chart. managed: a cloud add-on owns it (CCE, ACK catalog);
    nothing is installed and `version` declares what runs. none: the cluster has no controller."""
    version: Annotated[str, Field(pattern=VERSION)] = DEFAULT_LWS_VERSION
    """Chart and controller release, 0.6.1 to 0.10.0. Changing it on an installed controller is refused
    unless `maintenanceWindow` is true (LWS has no online upgrade)."""
    chart: str = "oci://registry.k8s.io/lws/charts/lws"
    """Chart reference: an OCI reference or a local path (air-gapped clusters, render mode)."""
    image_repository: str | None = None
    """Controller image repository for a registry mirror; the tag is always `v<version>`."""
    namespace: Annotated[str, Field(pattern=DNS_LABEL)] = "lws-system"
    """Namespace of the controller (install mode)."""
    maintenance_window: bool = False
    """Declares an offline maintenance window: all LWS workloads are deleted before the upgrade."""
    webhook: ExternalWebhook | None = None
    """Install mode, for a controller that runs outside the cluster (the local cluster of scripts/cluster.sh):
    the chart's admission webhooks call this endpoint instead of the chart's Service."""
    workload: Literal["leaderworkerset", "statefulset"] = "leaderworkerset"
    """What runs a group: a LeaderWorkerSet, or (mode none, where no controller may be installed) a leader
    StatefulSet and worker StatefulSets with the same LWS_* environment."""
    gang_scheduling: Literal["volcano"] | None = None
    """Install mode, LWS >= 0.7: the controller creates one Volcano PodGroup per group (all pods or none);
    the queue is cluster.schedulerQueue."""
    cert_manager: bool = False
    """Install mode: webhook and metrics certificates from cert-manager instead of the controller's own."""
    prometheus: bool = False
    """Install mode: a ServiceMonitor for the controller's metrics (needs the Prometheus Operator CRDs)."""
    priority_class_name: str | None = None
    """Install mode: PriorityClass of the controller pod, e.g. system-cluster-critical."""
    node_selector: dict[str, str] = {}
    """Install mode: node labels the controller pod selects."""
    tolerations: list[Toleration] = []
    """Install mode: tolerations of the controller pod."""
    resources: dict[Literal["requests", "limits"], dict[str, str]] = {}
    """Install mode: the controller's resources, e.g. {requests: {cpu: "1", memory: 1Gi}} (the chart's default)."""

    @model_validator(mode="after")
    def _workload_fits_mode(self) -> LwsController:
        if self.workload == "statefulset" and self.mode is not LwsMode.NONE:
            raise ValueError("workload statefulset is for clusters without a controller: set mode none")
        return self

    @property
    def version_tuple(self) -> tuple[int, ...]:
        parsed = parse_version(self.version)
        assert parsed is not None  # guaranteed by the pattern
        return parsed

    @property
    def release(self) -> Version:
        return Version(self.version)


class Gpu(Model):
    product: str
    """GPU product as GPU feature discovery labels it (nvidia.com/gpu.product), e.g. NVIDIA-H100-80GB-HBM3."""
    memory_mib: Annotated[int, Field(gt=0)] | None = None
    """Memory per GPU in MiB (nvidia.com/gpu.memory); known products need none."""
    per_node: Annotated[int, Field(ge=1, le=16)] = 8
    """GPUs per node; a pod never requests more."""
    node_memory_gib: Annotated[float, Field(gt=0)] | None = None
    """Allocatable memory of a GPU node; when given, pods must fit in it."""
    nodes: Annotated[int, Field(ge=1)] | None = None
    """GPU nodes of the cluster (or its node pool's maximum); when given, autoscaling bounds must fit in them."""


class Rdma(Model):
    """NCCL over RDMA/RoCE: environment of every pod, and the secondary network."""

    nccl_ib_gid_index: int | None = None
    """NCCL_IB_GID_INDEX (RoCE: usually 3)."""
    nccl_socket_ifname: str | None = None
    """NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME, e.g. eth0."""
    nccl_ib_hca: str | None = None
    """NCCL_IB_HCA, e.g. mlx5."""
    nccl_ib_tc: int | None = None
    """NCCL_IB_TC (traffic class)."""
    multus_networks: str | None = None
    """Value of the k8s.v1.cni.cncf.io/networks annotation, e.g. kube-system/rdma-net."""

    def env(self) -> dict[str, str]:
        pairs = {
            "NCCL_IB_GID_INDEX": self.nccl_ib_gid_index,
            "NCCL_SOCKET_IFNAME": self.nccl_socket_ifname,
            "GLOO_SOCKET_IFNAME": self.nccl_socket_ifname,
            "NCCL_IB_HCA": self.nccl_ib_hca,
            "NCCL_IB_TC": self.nccl_ib_tc,
        }
        return {k: str(v) for k, v in pairs.items() if v is not None}


class OssStorage(Model):
    """An OSS bucket through Alibaba Cloud's CSI driver (ossplugin.csi.alibabacloud.com)."""

    bucket: str
    """OSS bucket holding the weights."""
    endpoint: str
    """e.g. oss-cn-hangzhou-internal.aliyuncs.com"""
    path: str = "/"
    """Directory in the bucket mounted at storage.mountPath."""
    mount_options: str = "-o umask=022 -o max_stat_cache_size=0 -o allow_other"
    """ossfs options (otherOpts of the CSI volume)."""
    credentials_secret: str | None = None
    """An existing Secret with akId and akSecret. Without it the stack creates one from the secret
    config keys `ossAccessKeyId` and `ossAccessKeySecret`."""


class NfsStorage(Model):
    server: str
    """NFS server address."""
    path: str
    access_mode: Literal["ReadOnlyMany", "ReadWriteMany"] = "ReadOnlyMany"
    """Access mode of the PV and claim; pods always mount it read-only."""


class Storage(Model):
    """Where model weights are read from: one volume mounted read-only on every pod."""

    oss: OssStorage | None = None
    """Model volume on Alibaba Cloud OSS."""
    nfs: NfsStorage | None = None
    """Model volume on NFS."""
    capacity_gi: Annotated[int, Field(ge=1)] = 1024
    """Size of the PV and claim in GiB."""
    mount_path: str = "/models"
    """Where every pod mounts the model volume (read-only)."""
    throughput_mib_per_second: Annotated[float, Field(ge=1)] = 500
    """Read throughput one pod gets (MiB/s, at least 1); sizes startup probes and the await timeout."""

    @model_validator(mode="after")
    def _one_backend(self) -> Storage:
        if self.oss and self.nfs:
            raise ValueError("set either oss or nfs, not both")
        return self


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Monitoring(Model):
    """Prometheus-operator monitors (monitoring.coreos.com/v1) for the leaders' metrics and the LWS controller's."""

    kind: Literal["PodMonitor", "ServiceMonitor"] = "PodMonitor"
    """PodMonitor: scrapes the leader pods directly; ServiceMonitor: through the leader Service."""
    labels: dict[str, str] = {}
    """Labels your Prometheus selects monitors by (podMonitorSelector/serviceMonitorSelector), e.g.
    release: kube-prometheus-stack."""
    interval: Annotated[str, Field(pattern=r"^[0-9]+(ms|s|m)$")] = "15s"
    """Scrape interval."""
    prometheus_namespace: Annotated[str, Field(pattern=DNS_LABEL)] = "monitoring"
    """Where Prometheus runs: the groups' NetworkPolicy lets it reach the serving port, where /metrics is."""
    controller: bool = False
    """Install mode: also the LWS chart's metrics Service and ServiceMonitor (chart value enablePrometheus); the
    chart can only be rendered where the ServiceMonitor CRD is installed (not in render mode)."""


class Gateway(Model):
    """Inference routing through the Gateway API Inference Extension: per model an InferencePool of its leaders,
    its endpoint picker, and an HTTPRoute from a Gateway you run (Envoy Gateway, Istio, GKE, kgateway)."""

    name: Annotated[str, Field(pattern=DNS_LABEL)]
    """The Gateway the HTTPRoutes attach to."""
    namespace: Annotated[str, Field(pattern=DNS_LABEL)] | None = None
    """The Gateway's namespace; default cluster.namespace."""
    section_name: str | None = None
    """A listener of the Gateway (parentRefs[].sectionName); default all of them."""
    hostnames: list[str] = []
    """Hostnames the routes answer; default the Gateway's."""
    endpoint_picker_image: str = "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.1"
    """The endpoint picker (EPP), the release of the InferencePool API served (inference.networking.k8s.io/v1)."""


class Cluster(Model):
    name: Annotated[str, Field(pattern=DNS_LABEL)]
    """Name of the cluster profile."""
    kubernetes_version: Annotated[str, Field(pattern=VERSION)]
    """Kubernetes minor version of the cluster, e.g. "1.31"; checked against the LWS release."""
    namespace: Annotated[str, Field(pattern=DNS_LABEL)] = "inference"
    """Namespace of the inference groups, their Services and the model claim."""
    lws: LwsController = LwsController()
    """The LWS controller."""
    gpu: Gpu
    """The GPU nodes the groups run on."""
    rdma: Rdma | None = None
    """NCCL over RDMA/RoCE; omit for TCP."""
    storage: Storage = Storage()
    """The model volume."""
    image_registry_mirror: str | None = None
    """Replaces the registry of every image, e.g. registry-vpc.cn-hangzhou.aliyuncs.com/mirror."""
    node_selector: dict[str, str] = {}
    """Extra node labels every pod selects (nvidia.com/gpu.product is always set)."""
    tolerations: list[Toleration] = []
    """Tolerations of every pod, e.g. for tainted GPU nodes."""
    scheduler_queue: str | None = None
    """Volcano queue of the groups (gang scheduling, one PodGroup per group)."""
    exclusive_topology: str | None = None
    """Topology key that a group gets to itself, e.g. kubernetes.io/hostname or a rack label."""
    allowed_namespaces: list[str] = []
    """Namespaces whose pods may call the serving port; empty means the release namespace only."""
    shm_base_gib: Annotated[float, Field(ge=0)] = DEFAULT_SHM_BASE_GIB
    """/dev/shm floor per pod: this many GiB ..."""
    shm_per_gpu_gib: Annotated[float, Field(ge=0)] = DEFAULT_SHM_PER_GPU_GIB
    """... plus this many GiB per GPU of the pod."""
    monitoring: Monitoring | None = None
    """Prometheus-operator monitors of the leaders (and the LWS controller); omit when the cluster has none."""
    gateway: Gateway | None = None
    """Inference routing through the Gateway API Inference Extension; off when omitted."""

    @property
    def kubernetes_version_tuple(self) -> tuple[int, ...]:
        parsed = parse_version(self.kubernetes_version)
        assert parsed is not None
        return parsed


# ---- models ----------------------------------------------------------------------------------


class ModelSource(Model):
    """A path on the model volume, or a Hugging Face id downloaded at start (needs egress)."""

    path: str | None = None
    """Relative to storage.mountPath, e.g. Qwen3-32B."""
    hugging_face: str | None = None
    """e.g. meta-llama/Llama-3.1-405B-Instruct; the token comes from the secret config key hfToken."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        if (self.path is None) == (self.hugging_face is None):
            raise ValueError("set exactly one of path or huggingFace")
        return self


class ModelCard(Model):
    """The model's architecture, from its config.json: typed here, or taken from `preset` or `configFile`."""

    source: ModelSource
    """Where the weights come from."""
    preset: str | None = None
    """A checkpoint of the built-in catalog by Hugging Face id, e.g. deepseek-ai/DeepSeek-R1 (README, Models):
    fills the fields below; any field written here overrides it."""
    config_file: str | None = None
    """A local copy of the checkpoint's config.json (path relative to the project; nothing is downloaded):
    fills the fields below, over the preset; any field written here overrides it."""
    parameters_billion: Annotated[float, Field(gt=0)]
    """Total parameter count in billions, e.g. 32.76 (required unless preset or configFile gives it)."""
    dtype: Dtype = Dtype.BF16
    """How the (dense) weights are stored: bf16, fp16, fp8, awq-int4, gptq-int4, mxfp4, nvfp4."""
    layers: Annotated[int, Field(ge=1)]
    """num_hidden_layers; required unless preset or configFile gives it."""
    attention_heads: Annotated[int, Field(ge=1)]
    """num_attention_heads; must divide by TP. Required unless preset or configFile gives it."""
    kv_heads: Annotated[int, Field(ge=1)]
    """num_key_value_heads; required unless preset or configFile gives it (MLA: equal to attentionHeads)."""
    head_dim: Annotated[int, Field(ge=1)] | None = None
    """Defaults to hiddenSize / attentionHeads."""
    hidden_size: Annotated[int, Field(ge=1)] | None = None
    """hidden_size."""
    vocab_size: Annotated[int, Field(ge=1)] | None = None
    """vocab_size (embeddings stay 16-bit in quantized checkpoints)."""
    tied_embeddings: bool = False
    """tie_word_embeddings."""
    context_length: Annotated[int, Field(ge=1)]
    """max_position_embeddings: the longest context the model takes; required unless preset or configFile gives it."""
    active_parameters_billion: Annotated[float, Field(gt=0)] | None = None
    """Mixture of experts: parameters one token passes through, in billions (e.g. 37 for DeepSeek-V3)."""
    expert_parameters_billion: Annotated[float, Field(ge=0)] = 0
    """Mixture of experts: parameters of the routed experts (all layers), in billions; 0 for a dense model.
    These are sharded over EP ranks with serving.expertParallel."""
    routed_experts: Annotated[int, Field(ge=0)] = 0
    """n_routed_experts / num_experts / num_local_experts."""
    shared_experts: Annotated[int, Field(ge=0)] = 0
    """n_shared_experts (always active, sized with the dense weights)."""
    experts_per_token: Annotated[int, Field(ge=0)] = 0
    """num_experts_per_tok."""
    expert_dtype: Dtype | None = None
    """Storage of the routed experts when it differs from dtype, e.g. mxfp4 for gpt-oss (bf16 attention)."""
    unquantized_parameters_billion: Annotated[float, Field(ge=0)] = 0
    """Parameters besides the embeddings that a quantized checkpoint keeps in 16 bits (routers, gates), in
    billions."""
    attention: Literal["gqa", "mla"] = "gqa"
    """gqa (grouped-query or multi-head) or mla (multi-head latent attention: DeepSeek-V2/V3, Kimi-K2)."""
    kv_lora_rank: Annotated[int, Field(ge=1)] | None = None
    """MLA: kv_lora_rank, the latent each token caches per layer (512 for DeepSeek-V3)."""
    qk_rope_head_dim: Annotated[int, Field(ge=0)] | None = None
    """MLA: qk_rope_head_dim, cached next to the latent (64 for DeepSeek-V3)."""
    sliding_window: Annotated[int, Field(ge=1)] | None = None
    """sliding_window of the sliding-attention layers (gpt-oss: 128)."""
    sliding_window_layers: Annotated[int, Field(ge=0)] = 0
    """How many layers use the sliding window (layer_types); their KV cache stops growing at the window."""

    @model_validator(mode="before")
    @classmethod
    def _fill_from_checkpoint(cls, data: object) -> object:
        """Preset, then configFile, then the fields written in the stack (each overrides the one before)."""
        if not isinstance(data, dict):
            return data
        facts, complete = card_facts(data.get("preset"), data.get("configFile", data.get("config_file")))
        written = set(data) | {to_camel(key) for key in data}
        filled = {key: value for key, value in facts.items() if key not in written} | data
        if not complete:
            # An unknown preset or unreadable configFile is reported at its own key; the fields it would have
            # given get stand-ins, so they are not reported as missing too (validation fails either way).
            filled = {key: 1 for key in REQUIRED_CARD_KEYS if key not in written} | filled
        return filled

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        if preset is not None and checkpoint_by_id(preset) is None:
            raise ValueError(f"{preset} is not in the catalog; known: {', '.join(catalog_ids())}")
        return preset

    @field_validator("config_file")
    @classmethod
    def _readable_config(cls, path: str | None) -> str | None:
        if path is not None:
            read_config_file(path)
        return path

    @model_validator(mode="after")
    def _heads(self) -> ModelCard:
        if self.head_dim is None and self.hidden_size is None:
            raise ValueError("set headDim or hiddenSize")
        if self.kv_heads > self.attention_heads:
            raise ValueError(f"kvHeads ({self.kv_heads}) exceeds attentionHeads ({self.attention_heads})")
        if self.attention == "mla" and (self.kv_lora_rank is None or self.qk_rope_head_dim is None):
            raise ValueError("attention mla needs kvLoraRank and qkRopeHeadDim (the cached latent)")
        if self.expert_parameters_billion >= self.parameters_billion:
            raise ValueError(
                f"expertParametersBillion ({self.expert_parameters_billion:g}) must be below parametersBillion "
                f"({self.parameters_billion:g}): attention and embeddings are not experts"
            )
        return self

    @model_validator(mode="after")
    def _head_dim_resolves(self) -> ModelCard:
        if self.head_dim is None and self.hidden_size is not None and self.hidden_size % self.attention_heads:
            raise ValueError(
                f"hiddenSize ({self.hidden_size}) does not divide by attentionHeads ({self.attention_heads}), so "
                "the head dimension is unknown; set headDim (head_dim in the model's config.json)"
            )
        return self

    @property
    def resolved_head_dim(self) -> int:
        if self.head_dim is not None:
            return self.head_dim
        assert self.hidden_size is not None
        return self.hidden_size // self.attention_heads


REQUIRED_CARD_KEYS = ("parametersBillion", "layers", "attentionHeads", "kvHeads", "contextLength")


def read_config_file(path: str) -> dict[str, object]:
    """The card fields of a local config.json; ValueError says what is wrong with the file."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"no such file: {path} (paths are relative to the project directory)")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; point configFile at the checkpoint's config.json") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    try:
        return read_config(raw).card_fields()
    except ConfigJsonError as error:
        raise ValueError(f"{path}: {error}") from None


def card_facts(preset: object, config_file: object) -> tuple[dict[str, object], bool]:
    """What preset and configFile say (configFile over preset), and whether both could be read."""
    facts: dict[str, object] = {}
    complete = True
    if preset is not None:
        checkpoint = checkpoint_by_id(preset) if isinstance(preset, str) else None
        if checkpoint is None:
            complete = False
        else:
            facts |= checkpoint.card_fields()
    if config_file is not None:
        try:
            facts |= read_config_file(str(config_file))
        except ValueError:
            complete = False
    return facts, complete


class ScalingMetric(StrEnum):
    QUEUE = "queue"
    CPU = "cpu"
    QUERY = "query"


class ScalingBackend(StrEnum):
    KEDA = "keda"
    HPA = "hpa"


class Autoscaling(Model):
    """Adds and removes whole groups (the LeaderWorkerSet's scale subresource) on the engine's queue, CPU or a
    query of your own, through KEDA or an HPA."""

    min_replicas: Annotated[int, Field(ge=0)] = 1
    """Fewest groups; 0 (KEDA only) scales to zero when idle for cooldownSeconds."""
    max_replicas: Annotated[int, Field(ge=1)]
    """Most groups; checked against the GPUs of cluster.gpu.nodes."""
    metric: ScalingMetric | None = None
    """queue: requests waiting in the engine (vllm:num_requests_waiting, sglang:num_queue_reqs); cpu: CPU
    utilization; query: `query` below. Default: queue, or cpu when only targetCpuUtilization is given."""
    backend: ScalingBackend = ScalingBackend.KEDA
    """keda: a ScaledObject with a Prometheus trigger (needs KEDA); hpa: an autoscaling/v2 HPA on Pods or
    External metrics (needs a metrics adapter such as prometheus-adapter)."""
    target_queue_length: Annotated[float, Field(gt=0)] = 8
    """metric queue: waiting requests per group above which another group is added."""
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] | None = None
    """metric cpu: target CPU utilization of the leaders in percent (default 80)."""
    query: str | None = None
    """metric query: keda: a PromQL expression giving one number for the whole model; hpa: the name of an
    External metric your adapter serves."""
    target_value: Annotated[float, Field(gt=0)] | None = None
    """metric query: the value of `query` per group."""
    activation_value: Annotated[float, Field(ge=0)] = 0
    """keda: a group starts from zero once the metric exceeds this (waiting requests for metric queue)."""
    prometheus_address: str = "http://prometheus-operated.monitoring.svc:9090"
    """keda: the Prometheus server the trigger queries."""
    cooldown_seconds: Annotated[int, Field(ge=0)] | None = None
    """keda with minReplicas 0: idle time before the last group goes; default the group's startup budget
    (at least 300 s), since coming back costs a full model load."""
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """How long the metric must stay low before a group is removed; default the group's startup budget
    (at most 3600 s), so a group still loading its weights is not removed."""

    @property
    def resolved_metric(self) -> ScalingMetric:
        if self.metric is not None:
            return self.metric
        return ScalingMetric.CPU if self.target_cpu_utilization is not None else ScalingMetric.QUEUE

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) exceeds maxReplicas ({self.max_replicas})")
        if self.min_replicas == 0 and self.backend is ScalingBackend.HPA:
            raise ValueError(
                "minReplicas 0 needs backend keda: an HPA cannot scale to zero (the HPAScaleToZero feature gate "
                "is alpha); use backend keda or minReplicas >= 1"
            )
        metric = self.resolved_metric
        if self.min_replicas == 0 and metric is ScalingMetric.CPU:
            raise ValueError("minReplicas 0 needs metric queue or query: with no pod running, no CPU is measured")
        if metric is ScalingMetric.QUERY and (self.query is None or self.target_value is None):
            raise ValueError("metric query needs query and targetValue")
        if metric is not ScalingMetric.QUERY and self.query is not None:
            raise ValueError(f"query is only read with metric query (metric is {metric.value})")
        if metric is not ScalingMetric.CPU and self.target_cpu_utilization is not None:
            raise ValueError(f"targetCpuUtilization is only read with metric cpu (metric is {metric.value})")
        return self


class Serving(Model):
    engine: Engine
    """vllm (multi-node with Ray) or sglang."""
    image: str
    """Engine image with a pinned tag or digest, e.g. vllm/vllm-openai:v0.10.0."""
    replicas: Annotated[int, Field(ge=0)] = 1
    """Number of groups."""
    tensor_parallel: Annotated[int, Field(ge=1)] | None = None
    """TP; derived when unset (inside a node, dividing the heads). SGLang with dataParallel: --tp, which spans
    every GPU of the group (each DP rank's attention takes tp / dp of them)."""
    pipeline_parallel: Annotated[int, Field(ge=1)] | None = None
    """PP; derived when unset (across nodes)."""
    data_parallel: Annotated[int, Field(ge=1)] | None = None
    """DP, default 1. vLLM: --data-parallel-size replicas of TP x PP each (GPUs = TP x PP x DP), one or more per
    pod. SGLang: --dp-size with --enable-dp-attention inside --tp (GPUs = TP x PP)."""
    expert_parallel: bool | None = None
    """Place whole experts on the TP x DP ranks (EP = TP x DP; vLLM --enable-expert-parallel, SGLang
    --enable-ep-moe) instead of slicing every expert over TP. Default: on for a mixture-of-experts model with
    dataParallel > 1."""
    gpus_per_pod: Annotated[int, Field(ge=1)] | None = None
    """GPUs per pod; default min(GPUs per node, TP x PP). Group size = TP x PP / this."""
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    """vLLM only; default 0.90."""
    mem_fraction_static: Annotated[float, Field(gt=0, le=1)] | None = None
    """SGLang only; default 0.88."""
    max_num_seqs: Annotated[int, Field(ge=1)] = 256
    """Concurrent sequences (vLLM --max-num-seqs, SGLang --max-running-requests)."""
    max_model_len: Annotated[int, Field(ge=1)] | None = None
    """Defaults to the model's context length."""
    kv_cache_sequences: Annotated[int, Field(ge=1)] = 1
    """How many sequences of maxModelLen tokens the KV cache must hold at once."""
    extra_args: list[str] = []
    """Further engine arguments; flags the plan sets (TP, PP, memory, context) are refused here."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Serving port of the leader and its Service."""
    autoscaling: Autoscaling | None = None
    """Adds and removes whole groups: KEDA or an HPA on the engine's queue (see below)."""
    restart_policy: Literal["RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"] | None = None
    """Default: RecreateGroupAfterStart where the LWS version has it, else RecreateGroupOnPodRestart."""
    rollout_partition: Annotated[int, Field(ge=0)] | None = None
    """Rolling update partition (LWS >= 0.7)."""
    rollout_max_surge: Annotated[int, Field(ge=0)] | None = None
    """Extra groups a rolling update may create above replicas (LWS maxSurge)."""
    startup_policy: Literal["LeaderCreated", "LeaderReady"] | None = None
    """When the workers are created: with the leader pod (LeaderCreated, the default), or once it is Ready."""
    subdomain_policy: Literal["Shared", "UniquePerReplica"] | None = None
    """Headless Service per LeaderWorkerSet (Shared, the controller's default) or per group."""

    @model_validator(mode="after")
    def _engine_fraction(self) -> Serving:
        if self.engine is Engine.VLLM and self.mem_fraction_static is not None:
            raise ValueError("memFractionStatic is an SGLang setting; vLLM uses gpuMemoryUtilization")
        if self.engine is Engine.SGLANG and self.gpu_memory_utilization is not None:
            raise ValueError("gpuMemoryUtilization is a vLLM setting; SGLang uses memFractionStatic")
        return self

    @property
    def memory_fraction(self) -> float:
        if self.engine is Engine.VLLM:
            return self.gpu_memory_utilization or 0.90
        return self.mem_fraction_static or 0.88


class Deployment(Model):
    """One model served by one LeaderWorkerSet."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
    """Name of the LeaderWorkerSet, its Service and the served model."""
    model: ModelCard
    """The model's architecture and source."""
    serving: Serving
    """How it is served."""


class Target(Model):
    """Where the stack applies: a cluster (kubeconfig or context) or a directory of rendered YAML."""

    render_dir: str | None = None
    """Write YAML into this directory instead of applying (no cluster needed)."""
    kubeconfig_file: str | None = None
    """Path of a kubeconfig file, e.g. the local cluster's (.tools/cluster/kubeconfig)."""
    context: str | None = None
    """A context of the ambient kubeconfig; a kubeconfig's content goes in the secret key `kubeconfig`."""

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if self.render_dir and (self.context or self.kubeconfig_file):
            raise ValueError("renderDir writes YAML instead of applying; do not combine it with a cluster")
        return self


class StackConfig(Model):
    target: Target = Target()
    """Where the stack applies."""
    cluster: Cluster
    """The cluster profile."""
    models: list[Deployment] = []
    """One LeaderWorkerSet per model."""
    manifests: list[str] = []
    """YAML files (paths relative to the project) applied as they are, for example LeaderWorkerSets written by
    hand; the policy pack checks them like the stack's own objects."""

    @field_validator("manifests")
    @classmethod
    def _files_exist(cls, paths: list[str]) -> list[str]:
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise ValueError(f"no such file: {', '.join(missing)} (paths are relative to the project directory)")
        return paths

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[Deployment]) -> list[Deployment]:
        names = [m.name for m in models]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"model names must be unique; repeated: {', '.join(repeated)}")
        return models


SECRET_KEYS = ("kubeconfig", "hfToken", "ossAccessKeyId", "ossAccessKeySecret", "apiKey")
"""Config keys that must be set with `pulumi config set --secret`."""
