"""The plan of a stack: every number of every group, derived and checked before any resource exists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from config.model import Cluster, Deployment, StackConfig
from plan import releases, rules
from plan.annotations import ModelFacts, model_annotations
from plan.catalog import GPU_MEMORY_MIB, Engine, LwsFeature
from plan.commands import QUANTIZATION_FLAG, ServeSpec, leader_command, worker_command
from plan.releases import LwsOptions
from plan.rules import Finding
from plan.sizing import (
    MemoryEstimate,
    ModelShape,
    Parallelism,
    derive_parallelism,
    estimate_memory,
    pod_cpus,
    pod_memory_bytes,
    shm_floor_bytes,
    startup_budget_seconds,
    weight_bytes,
)
from plan.units import MIB


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
    )


def plan_group(
    cluster: Cluster, deployment: Deployment, gpu_bytes: float, where: str
) -> tuple[GroupPlan | None, list[Problem]]:
    serving = deployment.serving
    shape = model_shape(deployment)
    max_len = serving.max_model_len or deployment.model.context_length
    problems: list[Problem] = []

    def at(key: str, findings: list[Finding]) -> None:
        problems.extend(Problem(f"{where}.{key}", f.message, f.advisory) for f in findings)

    def estimate(tensor: int, pipeline: int) -> MemoryEstimate:
        return estimate_memory(
            shape,
            tensor_parallel=tensor,
            pipeline_parallel=pipeline,
            gpu_bytes=gpu_bytes,
            utilization=serving.memory_fraction,
            max_model_len=max_len,
            kv_sequences=serving.kv_cache_sequences,
            max_num_seqs=serving.max_num_seqs,
        )

    if max_len > deployment.model.context_length:
        at(
            "serving.maxModelLen",
            [Finding("context", f"{max_len} exceeds the model's context length of {deployment.model.context_length}")],
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
    ) or _as_given(deployment, cluster.gpu.per_node)

    tp, pp = parallelism.tensor, parallelism.pipeline
    if parallelism.gpus % parallelism.gpus_per_pod:
        at(
            "serving.gpusPerPod",
            [
                Finding(
                    "parallelism",
                    f"TP={tp} x PP={pp} = {parallelism.gpus} GPUs do not "
                    f"split into pods of {parallelism.gpus_per_pod} GPUs",
                )
            ],
        )
        return None, problems
    at("serving.tensorParallel", rules.check_heads(tp, shape.attention_heads, shape.kv_heads))
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
    used = [LwsFeature.WORKER_INDEX_ENV] if serving.engine is Engine.SGLANG else []
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
    return dataclasses.replace(group, lws=options), problems


def _as_given(deployment: Deployment, gpus_per_node: int) -> Parallelism:
    """When nothing fits, the numbers the user gave (or one full node) so the rules can say why."""
    serving = deployment.serving
    tensor = serving.tensor_parallel or gpus_per_node
    pipeline = serving.pipeline_parallel or 1
    return Parallelism(tensor, pipeline, serving.gpus_per_pod or min(gpus_per_node, tensor * pipeline))


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
    )
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
        annotations=model_annotations(ModelFacts(model_shape(deployment), max_len, serving.kv_cache_sequences)),
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
    first, _, rest = image.partition("/")
    has_registry = rest and ("." in first or ":" in first or first == "localhost")
    return f"{mirror.rstrip('/')}/{rest if has_registry else image}"
