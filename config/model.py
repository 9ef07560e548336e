"""Stack configuration: the user's API.

Each class is one object of `Pulumi.<stack>.yaml` under the project's namespace; keys are camelCase
there (`pulumi config set --path 'cluster.gpu.product' NVIDIA-L20`) and snake_case in Python.
Validation here is about one field or one object at a time; the rules that tie a model to a cluster
(memory fit, parallelism, /dev/shm) live in the plan, so the policy pack can apply them too.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from plan.catalog import DEFAULT_LWS_VERSION, Dtype, Engine, parse_version

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
VERSION = r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$"


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_attribute_docstrings=True
    )


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
    shm_base_gib: Annotated[float, Field(ge=0)] = 2.0
    """/dev/shm floor per pod: this many GiB ..."""
    shm_per_gpu_gib: Annotated[float, Field(ge=0)] = 1.0
    """... plus this many GiB per GPU of the pod."""

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
    """The model's architecture, from its config.json."""

    source: ModelSource
    """Where the weights come from."""
    parameters_billion: Annotated[float, Field(gt=0)]
    """Parameter count in billions, e.g. 32.76."""
    dtype: Dtype = Dtype.BF16
    """How the weights are stored: bf16, fp16, fp8, awq-int4, gptq-int4."""
    layers: Annotated[int, Field(ge=1)]
    """num_hidden_layers."""
    attention_heads: Annotated[int, Field(ge=1)]
    """num_attention_heads; must divide by TP."""
    kv_heads: Annotated[int, Field(ge=1)]
    """num_key_value_heads."""
    head_dim: Annotated[int, Field(ge=1)] | None = None
    """Defaults to hiddenSize / attentionHeads."""
    hidden_size: Annotated[int, Field(ge=1)] | None = None
    """hidden_size."""
    vocab_size: Annotated[int, Field(ge=1)] | None = None
    """vocab_size (embeddings stay 16-bit in quantized checkpoints)."""
    tied_embeddings: bool = False
    """tie_word_embeddings."""
    context_length: Annotated[int, Field(ge=1)]
    """max_position_embeddings: the longest context the model takes."""

    @model_validator(mode="after")
    def _heads(self) -> ModelCard:
        if self.head_dim is None and self.hidden_size is None:
            raise ValueError("set headDim or hiddenSize")
        if self.kv_heads > self.attention_heads:
            raise ValueError(f"kvHeads ({self.kv_heads}) exceeds attentionHeads ({self.attention_heads})")
        return self

    @property
    def resolved_head_dim(self) -> int:
        if self.head_dim is not None:
            return self.head_dim
        assert self.hidden_size is not None
        return self.hidden_size // self.attention_heads


class Autoscaling(Model):
    min_replicas: Annotated[int, Field(ge=1)] = 1
    """Fewest groups."""
    max_replicas: Annotated[int, Field(ge=1)]
    """Most groups."""
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] = 80
    """HPA target on the LWS scale subresource."""

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) exceeds maxReplicas ({self.max_replicas})")
        return self


class Serving(Model):
    engine: Engine
    """vllm (multi-node with Ray) or sglang."""
    image: str
    """Engine image with a pinned tag or digest, e.g. vllm/vllm-openai:v0.10.0."""
    replicas: Annotated[int, Field(ge=0)] = 1
    """Number of groups."""
    tensor_parallel: Annotated[int, Field(ge=1)] | None = None
    """TP; derived when unset (inside a node, dividing the heads)."""
    pipeline_parallel: Annotated[int, Field(ge=1)] | None = None
    """PP; derived when unset (across nodes)."""
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
    """An HPA that adds and removes whole groups."""
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


SECRET_KEYS = ("kubeconfig", "hfToken", "ossAccessKeyId", "ossAccessKeySecret")
"""Config keys that must be set with `pulumi config set --secret`."""
