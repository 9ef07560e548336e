"""The plan of a stack: every number of every group, derived and checked before any resource exists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from config.model import Cluster, Deployment, StackConfig
from kernel import rules
from kernel.annotations import ModelFacts, model_annotations
from kernel.catalog import GPU_MEMORY_MIB, Engine, LwsFeature
from kernel.commands import QUANTIZATION_FLAG, ServeSpec, leader_command, worker_command
from kernel.images import parse_image
from kernel.rules import Finding
from kernel.sizing import (
    Attention,
    MemoryEstimate,
    ModelShape,
    Parallelism,
    derive_parallelism,
    engine_layout,
    estimate_memory,
    pod_cpus,
    pod_memory_bytes,
    shm_floor_bytes,
    startup_budget_seconds,
    weight_bytes,
)
from kernel.units import MIB
from plan import releases, safety
from plan.releases import LwsOptions
from plan.scaling import check_autoscaling


@dataclass(frozen=True)
class Problem:
    key: str
    """Config path as `pulumi config set --path` takes it, e.g. models[0].serving.tensorParallel."""
    message: str
    advisory: bool = False

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class PlanError(Exception):
    """The stack config cannot work; lists every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class GroupPlan:
    name: str
    engine: Engine
    image: str
    replicas: int
    parallelism: Parallelism
    memory: MemoryEstimate
    gpu_product: str
    max_model_len: int
    shm_bytes: float
    pod_memory_bytes: float
    pod_cpus: int
    startup_seconds: int
    restart_policy: str
    rollout_partition: int | None
    leader_command: tuple[str, ...]
    worker_command: tuple[str, ...]
    model_path: str
    port: int
    annotations: dict[str, str] = field(hash=False)
    shape: ModelShape | None = None
    """The model as sized (total and active parameters, experts, attention)."""
    lws: LwsOptions = field(default_factory=LwsOptions)
    """The LeaderWorkerSet fields the cluster's LWS release allows (plan/releases.py)."""

    @property
    def group_size(self) -> int:
        return self.parallelism.group_size


@dataclass(frozen=True)
class StackPlan:
    groups: tuple[GroupPlan, ...]
    lws_version: str
    advisories: tuple[Problem, ...] = ()


def plan_stack(config: StackConfig) -> StackPlan:
    """Plan every group; raise PlanError listing all mandatory problems of the whole stack."""
    cluster = config.cluster
    problems = [
        Problem("cluster.kubernetesVersion", f.message)
        for f in rules.check_versions(cluster.kubernetes_version_tuple, cluster.lws.version_tuple)
    ]
    problems += [Problem(key, message) for key, message in safety.check_stack(config)]
    problems += [Problem(key, f.message, f.advisory) for key, f in releases.stack_findings(config)]
    gpu_bytes = gpu_memory_bytes(cluster)
    if gpu_bytes is None:
        problems.append(
            Problem(
                "cluster.gpu.memoryMib",
                f"no memory is known for GPU product {cluster.gpu.product}; set it (MiB, as in the "
                "nvidia.com/gpu.memory node label)",
            )
        )
    groups = []
    if gpu_bytes is not None:
        for index, deployment in enumerate(config.models):
            group, found = plan_group(cluster, deployment, gpu_bytes, f"models[{index}]")
            problems += found
            if group:
                groups.append(group)
    mandatory = [p for p in problems if not p.advisory]
    if mandatory:
        raise PlanError(mandatory)
    return StackPlan(tuple(groups), cluster.lws.version, tuple(p for p in problems if p.advisory))


def gpu_memory_bytes(cluster: Cluster) -> float | None:
    """Memory of one GPU: the profile's figure, else the catalog's for the product."""
    mib = cluster.gpu.memory_mib or GPU_MEMORY_MIB.get(cluster.gpu.product)
    return mib * MIB if mib else None


def model_shape(deployment: Deployment) -> ModelShape:
    card = deployment.model
    return ModelShape(
        parameters=card.parameters_billion * 1e9,
        dtype=card.dtype,
        layers=card.layers,
        attention_heads=card.attention_heads,
        kv_heads=card.kv_heads,
        head_dim=card.resolved_head_dim,
        hidden_size=card.hidden_size,
        vocab_size=card.vocab_size,
        tied_embeddings=card.tied_embeddings,
        active_parameters=card.active_parameters_billion * 1e9 if card.active_parameters_billion else None,
        expert_parameters=card.expert_parameters_billion * 1e9,
        routed_experts=card.routed_experts,
        shared_experts=card.shared_experts,
        experts_per_token=card.experts_per_token,
        expert_dtype=card.expert_dtype,
        unquantized_parameters=card.unquantized_parameters_billion * 1e9,
        attention=Attention(card.attention),
        kv_lora_rank=card.kv_lora_rank or 0,
        qk_rope_head_dim=card.qk_rope_head_dim or 0,
        sliding_window=card.sliding_window,
        sliding_window_layers=card.sliding_window_layers,
    )


@dataclass(frozen=True)
class RankLayout:
    """What the stack asks of data and expert parallelism, before TP and PP are derived."""

    data: int
    expert: bool
    dp_attention: bool

    @staticmethod
    def of(deployment: Deployment, shape: ModelShape) -> RankLayout:
        serving = deployment.serving
        data = serving.data_parallel or 1
        expert = serving.expert_parallel if serving.expert_parallel is not None else (shape.is_moe and data > 1)
        # SGLang runs DP across nodes only as dp-attention: the DP ranks split --tp, experts span all of it.
        return RankLayout(data, expert, serving.engine is Engine.SGLANG and data > 1)

    def estimate_args(self, tensor: int) -> tuple[int, bool]:
        """(attention TP, experts sharded over TP x DP) for estimate_memory."""
        return engine_layout(tensor, self.data, self.dp_attention, self.expert)


def plan_group(
    cluster: Cluster, deployment: Deployment, gpu_bytes: float, where: str
) -> tuple[GroupPlan | None, list[Problem]]:
    serving = deployment.serving
    shape = model_shape(deployment)
    context_length = deployment.model.context_length
    max_len = serving.max_model_len or context_length
    layout = RankLayout.of(deployment, shape)
    problems: list[Problem] = []

    def at(key: str, findings: list[Finding]) -> None:
        problems.extend(Problem(f"{where}.{key}", f.message, f.advisory) for f in findings)

    def estimate(tensor: int, pipeline: int) -> MemoryEstimate:
        attention_tp, experts_over_dp = layout.estimate_args(tensor)
        return estimate_memory(
            shape,
            tensor_parallel=attention_tp,
            pipeline_parallel=pipeline,
            data_parallel=layout.data,
            expert_parallel=experts_over_dp,
            gpu_bytes=gpu_bytes,
            utilization=serving.memory_fraction,
            max_model_len=max_len,
            kv_sequences=serving.kv_cache_sequences,
            max_num_seqs=serving.max_num_seqs,
        )

    if max_len > context_length:
        at(
            "serving.maxModelLen",
            [Finding("context", f"{max_len} exceeds the model's context length of {context_length}")],
        )
    if layout.dp_attention and not shape.is_moe:
        at(
            "serving.dataParallel",
            [
                Finding(
                    "parallelism",
                    f"SGLang runs dataParallel {layout.data} as dp-attention, which serves mixture-of-experts "
                    "models (DeepSeek, Qwen3-MoE); for a dense model add groups with serving.replicas instead",
                    advisory=True,
                )
            ],
        )
    if layout.expert and not shape.is_moe:
        at(
            "serving.expertParallel",
            [
                Finding(
                    "parallelism",
                    "the model has no routed experts (model.expertParametersBillion is 0), so expert parallelism "
                    "changes nothing; set the model's experts (model.preset or model.configFile) or drop it",
                    advisory=True,
                )
            ],
        )
    if deployment.model.source.path and not (cluster.storage.oss or cluster.storage.nfs):
        at(
            "model.source.path",
            [
                Finding(
                    "storage",
                    "a path on the model volume needs cluster.storage.oss or "
                    "cluster.storage.nfs; or use model.source.huggingFace",
                )
            ],
        )
    at("serving.image", rules.check_image_pinned(serving.image))
    at("serving.extraArgs", rules.check_env_expansion("extraArgs", serving.extra_args))
    at("serving.extraArgs", rules.check_extra_args(serving.engine, serving.extra_args))
    fraction_key = "gpuMemoryUtilization" if serving.engine is Engine.VLLM else "memFractionStatic"
    at(f"serving.{fraction_key}", rules.check_utilization(serving.memory_fraction, fraction_key))

    parallelism = derive_parallelism(
        shape,
        gpus_per_node=cluster.gpu.per_node,
        fits=lambda t, p: estimate(t, p).fits,
        tensor_parallel=serving.tensor_parallel,
        pipeline_parallel=serving.pipeline_parallel,
        gpus_per_pod=serving.gpus_per_pod,
        data_parallel=layout.data,
        expert_parallel=layout.expert,
        dp_attention=layout.dp_attention,
    ) or _as_given(deployment, cluster.gpu.per_node, layout)

    tp, pp = parallelism.tensor, parallelism.pipeline
    if parallelism.gpus % parallelism.gpus_per_pod:
        at(
            "serving.gpusPerPod",
            [
                Finding(
                    "parallelism",
                    f"{_describe(parallelism)} = {parallelism.gpus} GPUs do not "
                    f"split into pods of {parallelism.gpus_per_pod} GPUs",
                )
            ],
        )
        return None, problems
    layout_problems = _check_data_parallel(serving.engine, parallelism)
    at("serving.dataParallel", layout_problems)
    if layout_problems:
        return None, problems
    attention_tp = parallelism.attention_tensor
    at("serving.tensorParallel", rules.check_heads(attention_tp, shape.attention_heads, shape.kv_heads))
    at(
        "serving.gpusPerPod",
        rules.check_gpus_per_node(parallelism.gpus_per_pod, cluster.gpu.per_node, cluster.gpu.product),
    )
    memory = estimate(tp, pp)
    at(
        "serving.tensorParallel",
        rules.check_memory_fit(
            memory,
            gpu_product=cluster.gpu.product,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            kv_tokens=max_len * serving.kv_cache_sequences,
        ),
    )

    lws = cluster.lws.version_tuple
    sized = not any(not p.advisory for p in problems)  # else the numbers may be unbounded
    load = weight_bytes(shape) / (cluster.storage.throughput_mib_per_second * MIB) if sized else 0.0
    options, lws_findings = releases.plan_for_release(cluster, serving, parallelism, load)
    problems.extend(Problem(f"{where}.{key}", f.message, f.advisory) for key, f in lws_findings)
    restart = options.restart_policy
    # SGLang's --node-rank and vLLM's --data-parallel-start-rank come from LWS_WORKER_INDEX.
    ranked = serving.engine is Engine.SGLANG or (parallelism.data > 1 and parallelism.group_size > 1)
    used = [LwsFeature.WORKER_INDEX_ENV] if ranked else []
    at("serving", rules.check_lws_features(lws, used))

    shm = shm_floor_bytes(parallelism.gpus_per_pod, cluster.shm_base_gib, cluster.shm_per_gpu_gib)
    pod_memory = pod_memory_bytes(parallelism.gpus_per_pod, shm)
    if cluster.gpu.node_memory_gib is not None and pod_memory > cluster.gpu.node_memory_gib * 1024**3:
        at(
            "serving.gpusPerPod",
            [
                Finding(
                    "shared-memory",
                    f"pods need {pod_memory / 1024**3:.0f} GiB of memory "
                    f"(incl. {shm / 1024**3:.0f} GiB /dev/shm), more than a node's "
                    f"{cluster.gpu.node_memory_gib:g} GiB",
                )
            ],
        )

    if any(not p.advisory for p in problems):
        return None, problems
    group = _group(cluster, deployment, parallelism, memory, max_len, shm, pod_memory, restart)
    for key, finding in check_autoscaling(cluster, serving.autoscaling, group, cluster.gateway is not None):
        at(f"serving.autoscaling.{key}", [finding])
    return dataclasses.replace(group, lws=options), problems


def _as_given(deployment: Deployment, gpus_per_node: int, layout: RankLayout) -> Parallelism:
    """When nothing fits, the numbers the user gave (or one full node) so the rules can say why."""
    serving = deployment.serving
    tensor = serving.tensor_parallel or (max(gpus_per_node, layout.data) if layout.dp_attention else gpus_per_node)
    pipeline = serving.pipeline_parallel or 1
    given = Parallelism(tensor, pipeline, 1, layout.data, layout.expert, layout.dp_attention)
    per_pod = serving.gpus_per_pod or min(gpus_per_node, given.gpus)
    return Parallelism(tensor, pipeline, per_pod, layout.data, layout.expert, layout.dp_attention)


def _describe(parallelism: Parallelism) -> str:
    text = f"TP={parallelism.tensor} x PP={parallelism.pipeline}"
    if parallelism.data > 1 and not parallelism.dp_attention:
        text += f" x DP={parallelism.data}"
    return text


def _check_data_parallel(engine: Engine, parallelism: Parallelism) -> list[Finding]:
    """The rank layouts the engines' multi-node data parallelism supports (and GPUs = ranks)."""
    shape = rules.GroupShape(
        engine,
        tensor_parallel=parallelism.tensor,
        pipeline_parallel=parallelism.pipeline,
        group_size=parallelism.group_size,
        leader_gpus=parallelism.gpus_per_pod,
        worker_gpus=parallelism.gpus_per_pod,
        data_parallel=parallelism.data,
        dp_attention=parallelism.dp_attention,
    )
    findings = rules.check_parallelism(shape)
    replica = parallelism.tensor * parallelism.pipeline
    if engine is Engine.VLLM and parallelism.data > 1 and parallelism.gpus_per_pod % replica:
        findings.append(
            Finding(
                "parallelism",
                f"vLLM starts whole DP ranks on each pod (--data-parallel-size-local), but one rank of "
                f"TP={parallelism.tensor} x PP={parallelism.pipeline} = {replica} GPUs does not fit evenly in a "
                f"pod of {parallelism.gpus_per_pod} GPUs; use a TP x PP that divides the GPUs per pod",
            )
        )
    return findings


def _group(
    cluster: Cluster,
    deployment: Deployment,
    parallelism: Parallelism,
    memory: MemoryEstimate,
    max_len: int,
    shm: float,
    pod_memory: float,
    restart: str,
) -> GroupPlan:
    serving = deployment.serving
    source = deployment.model.source
    model_path = (
        f"{cluster.storage.mount_path.rstrip('/')}/{source.path.strip('/')}"
        if source.path
        else str(source.hugging_face)
    )
    spec = ServeSpec(
        engine=serving.engine,
        model_path=model_path,
        served_name=deployment.name,
        port=serving.port,
        tensor_parallel=parallelism.tensor,
        pipeline_parallel=parallelism.pipeline,
        group_size=parallelism.group_size,
        memory_fraction=serving.memory_fraction,
        max_model_len=max_len,
        max_num_seqs=serving.max_num_seqs,
        quantization=QUANTIZATION_FLAG[deployment.model.dtype],
        extra_args=tuple(serving.extra_args),
        data_parallel=parallelism.data,
        data_parallel_local=max(1, parallelism.gpus_per_pod // (parallelism.tensor * parallelism.pipeline)),
        expert_parallel=parallelism.expert,
        dp_attention=parallelism.dp_attention,
    )
    shape = model_shape(deployment)
    startup = startup_seconds(cluster, deployment, parallelism)
    return GroupPlan(
        name=deployment.name,
        engine=serving.engine,
        image=mirror_image(serving.image, cluster.image_registry_mirror),
        replicas=serving.replicas,
        parallelism=parallelism,
        memory=memory,
        gpu_product=cluster.gpu.product,
        max_model_len=max_len,
        shm_bytes=shm,
        pod_memory_bytes=pod_memory,
        pod_cpus=pod_cpus(parallelism.gpus_per_pod),
        startup_seconds=startup,
        restart_policy=restart,
        rollout_partition=serving.rollout_partition,
        leader_command=tuple(leader_command(spec)),
        worker_command=tuple(worker_command(spec)),
        model_path=model_path,
        port=serving.port,
        annotations=model_annotations(ModelFacts(shape, max_len, serving.kv_cache_sequences)),
        shape=shape,
    )


def startup_seconds(cluster: Cluster, deployment: Deployment, parallelism: Parallelism) -> int:
    return startup_budget_seconds(
        weight_bytes(model_shape(deployment)),
        cluster.storage.throughput_mib_per_second * MIB,
        deployment.serving.engine,
        parallelism.group_size,
    )


def mirror_image(image: str, mirror: str | None) -> str:
    """Swap the registry of an image for the mirror (docker.io images have no registry part)."""
    if not mirror:
        return image
    ref = parse_image(image)
    pinned = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
    return f"{mirror.rstrip('/')}/{ref.path}{pinned}"
