"""The invariants of a multi-node group, as functions of plain facts.

The plan calls them on the numbers it derives from stack config; the policy pack calls them on the
numbers it reads back from rendered LeaderWorkerSets. Each returns findings without a location: the
caller prefixes the config path or the resource it checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kernel.catalog import (
    LWS_FEATURE_SINCE,
    LWS_KUBERNETES_RANGE,
    MINIMUM_KUBERNETES,
    MINIMUM_LWS,
    Engine,
    LwsFeature,
    lws_supports,
)
from kernel.commands import planned_flags_in, unexpanded_lws_references
from kernel.images import parse_image
from kernel.sizing import MemoryEstimate
from kernel.units import fmt_gib
from kernel.upgrades import offline_procedure


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    advisory: bool = False


def _v(version: Sequence[int]) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class GroupShape:
    """The ranks an engine command asks for and the GPUs a group has.

    data_parallel: vLLM --data-parallel-size (DP replicas of TP x PP each); SGLang --dp-size. With SGLang's
    --enable-dp-attention (dp_attention) the DP ranks live inside --tp, so they do not multiply the GPUs.
    """

    engine: Engine
    tensor_parallel: int
    pipeline_parallel: int
    group_size: int
    leader_gpus: int
    worker_gpus: int
    nnodes: str | None = None
    data_parallel: int = 1
    dp_attention: bool = False

    @property
    def ranks(self) -> int:
        """GPUs the engine will use for the whole group."""
        base = self.tensor_parallel * self.pipeline_parallel
        if self.engine is Engine.SGLANG and self.dp_attention:
            return base
        return base * self.data_parallel

    def describe_ranks(self) -> str:
        flag = "--tp" if self.engine is Engine.SGLANG else "TP"
        text = f"{flag}={self.tensor_parallel} x PP={self.pipeline_parallel}"
        if self.data_parallel > 1 and not (self.engine is Engine.SGLANG and self.dp_attention):
            text += f" x DP={self.data_parallel}"
        return f"{text} = {self.ranks} ranks"


def check_parallelism(shape: GroupShape) -> list[Finding]:
    """The engine's ranks (TP x PP [x DP]) against the GPUs of a group (the leader's plus each worker's).

    Mandatory where the group cannot start: more ranks than GPUs (the engine waits for GPUs that never
    come), SGLang ranks that do not split evenly over its nodes or a pod with fewer GPUs than its share,
    --dp-size not dividing --tp under dp-attention, --nnodes other than the group size. Advisory: fewer
    ranks than GPUs (idle GPUs), uneven vLLM pods (Ray places ranks where the GPUs are).
    """
    findings = []
    gpus = shape.leader_gpus + (shape.group_size - 1) * shape.worker_gpus
    ranks = shape.ranks
    layout = (
        f"{shape.group_size} pods x {shape.leader_gpus} GPUs = {gpus} GPUs"
        if shape.leader_gpus == shape.worker_gpus or shape.group_size == 1
        else f"{shape.leader_gpus} GPUs on the leader + {shape.group_size - 1} workers x {shape.worker_gpus} "
        f"= {gpus} GPUs"
    )
    if ranks != gpus:
        findings.append(
            Finding(
                "parallelism",
                f"{shape.describe_ranks()}, but the group has {layout}; "
                + (
                    "the engine would wait forever for missing GPUs"
                    if ranks > gpus
                    else f"GPUs would sit idle (recommended: ranks = {gpus})"
                ),
                advisory=ranks < gpus,
            )
        )
    if shape.engine is Engine.SGLANG and shape.group_size > 1:
        findings += _sglang_pods(shape)
    elif shape.group_size > 1 and shape.leader_gpus != shape.worker_gpus and shape.leader_gpus:
        findings.append(
            Finding(
                "parallelism",
                f"the leader requests {shape.leader_gpus} GPUs but each worker {shape.worker_gpus}; "
                "Ray places ranks where the GPUs are, but uneven pods usually mean a copy-paste slip",
                advisory=True,
            )
        )
    if shape.engine is Engine.SGLANG and shape.dp_attention and shape.tensor_parallel % max(shape.data_parallel, 1):
        findings.append(
            Finding(
                "parallelism",
                f"--dp-size={shape.data_parallel} does not divide --tp={shape.tensor_parallel}; with "
                "--enable-dp-attention each DP rank takes tp/dp GPUs",
            )
        )
    nnodes_ok = shape.nnodes is None or shape.nnodes in ("$(LWS_GROUP_SIZE)", str(shape.group_size))
    if shape.engine is Engine.SGLANG and not nnodes_ok:
        findings.append(
            Finding(
                "parallelism",
                f"--nnodes is {shape.nnodes} but the group has {shape.group_size} pods; "
                "pass --nnodes $(LWS_GROUP_SIZE)",
            )
        )
    return findings


def _sglang_pods(shape: GroupShape) -> list[Finding]:
    """SGLang runs ranks/nnodes ranks on every pod, the leader included."""
    ranks, size = shape.ranks, shape.group_size
    if ranks % size:
        return [
            Finding(
                "parallelism",
                f"{shape.describe_ranks()} do not split evenly over {size} pods; SGLang runs tp/nnodes ranks per node",
            )
        ]
    share = ranks // size
    if shape.leader_gpus == shape.worker_gpus:
        return []  # the group's total says it all
    short = [(role, n) for role, n in (("leader", shape.leader_gpus), ("each worker", shape.worker_gpus)) if n < share]
    return [
        Finding(
            "parallelism",
            f"SGLang runs {ranks} / {size} = {share} ranks on every pod, but the {role} has {n} GPUs; "
            "the missing ranks fail to find a GPU",
        )
        for role, n in short
    ]


def check_local_ranks(container: str, local_ranks: int, gpus: int) -> list[Finding]:
    """vLLM multi-node data parallelism starts --data-parallel-size-local x TP x PP ranks on each pod."""
    if local_ranks <= gpus:
        return []
    return [
        Finding(
            "parallelism",
            f"container {container} starts --data-parallel-size-local x TP x PP = {local_ranks} ranks but has "
            f"{gpus} GPUs; the ranks beyond them find no device",
        )
    ]


def check_coordination(
    engine: Engine, group_size: int, evidence: Sequence[str], missing: Sequence[str]
) -> list[Finding]:
    """A group of several pods needs the pods' ranks to find each other.

    vLLM: Ray (ray start / the multi-node script / --distributed-executor-backend ray) or multi-node
    data parallelism (--data-parallel-address, --headless, ...); SGLang: --dist-init-addr and --nnodes on
    every pod and --node-rank on the workers (`missing` names those a server lacks). Without them each pod
    starts alone and the group never forms.
    """
    if group_size <= 1:
        return []
    if engine is Engine.VLLM and not evidence:
        return [
            Finding(
                "parallelism",
                f"the group has {group_size} pods but no command joins them: no Ray (ray start, the multi-node "
                "serving script, --distributed-executor-backend ray) and no multi-node data-parallel flags "
                "(--data-parallel-address, --headless); each pod would serve alone and the group never forms",
            )
        ]
    if engine is Engine.SGLANG and missing:
        return [
            Finding(
                "parallelism",
                f"the group has {group_size} pods but {', '.join(missing)}; without --dist-init-addr "
                "$(LWS_LEADER_ADDRESS):<port>, --nnodes $(LWS_GROUP_SIZE) and --node-rank $(LWS_WORKER_INDEX) "
                "each pod starts its own server and the group never forms",
            )
        ]
    return []


def check_heads(tensor_parallel: int, attention_heads: int, kv_heads: int) -> list[Finding]:
    findings = []
    if attention_heads % tensor_parallel:
        findings.append(
            Finding(
                "parallelism",
                f"{attention_heads} attention heads do not divide by TP={tensor_parallel}; "
                "use a TP that divides them and add pipeline stages instead",
            )
        )
    split = kv_heads % tensor_parallel if kv_heads >= tensor_parallel else tensor_parallel % kv_heads
    if split:
        findings.append(
            Finding(
                "parallelism",
                f"{kv_heads} KV heads cannot be split or replicated evenly over TP={tensor_parallel}",
            )
        )
    return findings


def check_memory_fit(
    estimate: MemoryEstimate,
    *,
    gpu_product: str,
    tensor_parallel: int,
    pipeline_parallel: int,
    kv_tokens: int,
) -> list[Finding]:
    if estimate.fits:
        return []
    gpus = tensor_parallel * pipeline_parallel
    enough = _gpus_that_fit(estimate, gpus)
    advice = f"use TP x PP >= {enough}" if enough else "use a quantized model"
    return [
        Finding(
            "gpu-memory",
            f"needs {fmt_gib(estimate.needed)} per GPU with TP={tensor_parallel} x PP={pipeline_parallel} "
            f"({fmt_gib(estimate.weights)} of weights, {fmt_gib(estimate.kv_cache)} of KV cache for "
            f"{kv_tokens} tokens, {fmt_gib(estimate.overhead)} runtime), but {gpu_product} has "
            f"{fmt_gib(estimate.gpu_bytes)} x {estimate.utilization:.2f} = {fmt_gib(estimate.usable)} usable; "
            f"{advice} or a larger GPU",
        )
    ]


def _gpus_that_fit(estimate: MemoryEstimate, gpus: int) -> int | None:
    """The GPU count (doubling) at which weights and KV cache, both split further, would fit."""
    sharded = estimate.weights + estimate.kv_cache
    candidate = gpus
    while candidate <= 1024:
        candidate *= 2
        if sharded * gpus / candidate + estimate.overhead <= estimate.usable:
            return candidate
    return None


def check_utilization(fraction: float, flag: str) -> list[Finding]:
    if 0.0 < fraction <= 0.95:
        return []
    return [
        Finding(
            "gpu-memory",
            f"{flag} is {fraction:g}; keep it in (0, 0.95] so CUDA graphs and NCCL have room outside it",
        )
    ]


# /dev/shm. Mandatory only where it fails: the container runtime's 64 MiB /dev/shm makes NCCL fail
# ("No space left on device" / "unhandled system error") as soon as GPUs exchange through shared memory
# (https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html#sharing-data), and a
# Memory emptyDir's pages count against the container's memory limit, so a sizeLimit above it ends in
# an OOM kill (https://kubernetes.io/docs/concepts/storage/volumes/#emptydir). Everything else works and
# gets advice with the recommended size.
SHM_HOST = "host"  # medium of a /dev/shm the pod shares with the node (hostIPC, hostPath /dev/shm)


def check_shared_memory(
    *,
    container: str,
    medium: str | None,
    size_bytes: float | None,
    memory_limit: float | None,
    floor: float,
    gpus: int = 2,
    multi_node: bool = False,
) -> list[Finding]:
    """/dev/shm of a GPU container: medium None = no volume there, "Memory", "" (disk) or SHM_HOST."""
    if medium == SHM_HOST:
        return []
    needs_nccl_shm = gpus > 1 or multi_node
    if medium is None:
        consequence = (
            "NCCL fails with 'No space left on device' once its GPUs exchange through shared memory"
            + (" (several pods: NCCL's proxy and Ray's object store use it too)" if multi_node and gpus <= 1 else "")
            if needs_nccl_shm
            else "enough for a single GPU in a single pod, tight for the engine's own shared-memory queues"
        )
        return [
            Finding(
                "shared-memory",
                f"container {container} has no /dev/shm volume, so it gets the container runtime's 64 MiB "
                f"default; {consequence}. Mount an emptyDir with medium: Memory at /dev/shm (recommended "
                f"sizeLimit: {fmt_gib(floor)})",
                advisory=not needs_nccl_shm,
            )
        ]
    findings = []
    if medium != "Memory":
        findings.append(
            Finding(
                "shared-memory",
                f"container {container}: the /dev/shm emptyDir is disk-backed (no medium: Memory); it works, "
                "but NCCL's shared-memory transport then pages through the node's disk. Set medium: Memory",
                advisory=True,
            )
        )
    if size_bytes is None:
        findings.append(
            Finding(
                "shared-memory",
                f"container {container}: the /dev/shm emptyDir has no sizeLimit, so it may grow up to the pod's "
                f"memory; recommended sizeLimit: {fmt_gib(floor)}",
                advisory=True,
            )
        )
        return findings
    if memory_limit is not None and size_bytes > memory_limit:
        findings.append(
            Finding(
                "shared-memory",
                f"container {container}: /dev/shm of {fmt_gib(size_bytes)} exceeds its memory limit of "
                f"{fmt_gib(memory_limit)}; the pod would be OOM-killed as shared memory fills",
            )
        )
    if size_bytes < floor:
        findings.append(
            Finding(
                "shared-memory",
                f"container {container}: /dev/shm is {fmt_gib(size_bytes)}, below the recommended "
                f"{fmt_gib(floor)} for its GPUs (shmBaseGiB + shmPerGpuGiB per GPU)",
                advisory=True,
            )
        )
    if memory_limit is None:
        findings.append(
            Finding(
                "shared-memory",
                f"container {container} has no memory limit; /dev/shm ({fmt_gib(size_bytes)}) is charged to the "
                "pod's memory, so a limit makes the budget explicit",
                advisory=True,
            )
        )
    return findings


def check_gpus_per_node(gpus_per_pod: int, gpus_per_node: int, gpu_product: str) -> list[Finding]:
    if gpus_per_pod <= gpus_per_node:
        return []
    return [
        Finding(
            "parallelism",
            f"{gpus_per_pod} GPUs per pod, but a {gpu_product} node has {gpus_per_node}; the pod can never schedule",
        )
    ]


def check_versions(kubernetes: Sequence[int], lws: Sequence[int]) -> list[Finding]:
    findings = []
    if tuple(kubernetes[:2]) < MINIMUM_KUBERNETES:
        findings.append(
            Finding(
                "versions",
                f"Kubernetes {_v(kubernetes)} is older than {_v(MINIMUM_KUBERNETES)}, "
                "the first release where LeaderWorkerSet works without feature gates",
            )
        )
    if tuple(lws[:3]) < MINIMUM_LWS:
        findings.append(
            Finding("versions", f"LWS {_v(lws)} is older than {_v(MINIMUM_LWS)}, which injects LWS_WORKER_INDEX")
        )
    supported = LWS_KUBERNETES_RANGE.get((lws[0], lws[1]) if len(lws) > 1 else (lws[0], 0))
    if supported and not supported.minimum <= tuple(kubernetes[:2]) <= supported.maximum:
        findings.append(
            Finding(
                "versions",
                f"LWS {_v(lws)} supports Kubernetes {_v(supported.minimum)} to {_v(supported.maximum)}, "
                f"not {_v(kubernetes)}",
            )
        )
    return findings


def check_lws_features(lws: Sequence[int], used: Iterable[LwsFeature]) -> list[Finding]:
    version = ".".join(str(p) for p in lws)
    return [
        Finding("versions", f"{feature.value} needs LWS {LWS_FEATURE_SINCE[feature]} or newer, not {version}")
        for feature in used
        if not lws_supports(tuple(lws), feature)
    ]


def check_env_expansion(container: str, command: Sequence[str]) -> list[Finding]:
    literal = unexpanded_lws_references(command)
    if not literal:
        return []
    fixed = ", ".join(f"$({name.strip('${}')})" for name in literal)
    return [
        Finding(
            "parallelism",
            f"container {container} passes {', '.join(literal)} outside a shell, where Kubernetes does not "
            f"expand it; write {fixed}",
        )
    ]


FLOATING_TAGS = {"latest", "main", "master", "nightly", "dev"}


def image_tag(image: str) -> str | None:
    """What pins an image reference: '@<digest>', else its tag; None for neither (kernel.images parses)."""
    return parse_image(image).pin


def check_image_pinned(image: str) -> list[Finding]:
    tag = image_tag(image)
    if tag is None or tag in FLOATING_TAGS:
        return [
            Finding(
                "image",
                f"image {image} is not pinned (tag {tag or 'none'}); a restart would pull whatever it "
                "points to then. Pin a version tag or a digest",
            )
        ]
    return []


def check_controller_upgrade(
    old_version: str | None, new_version: str | None, maintenance_window: bool
) -> list[Finding]:
    """LWS has no online upgrade: its CRD, webhooks and running groups would disagree mid-way."""
    if old_version is None or new_version is None or old_version == new_version or maintenance_window:
        return []
    return [
        Finding(
            "no-online-upgrade",
            f"the LWS controller runs {old_version}; changing it to {new_version} is an online upgrade, which "
            f"LWS does not support. Offline procedure: {offline_procedure(old_version, new_version)}. To let one "
            "run do all of it, declare the window: `pulumi config set --path cluster.lws.maintenanceWindow true`",
        )
    ]


def check_extra_args(engine: Engine, extra_args: Sequence[str]) -> list[Finding]:
    overridden = planned_flags_in(engine, extra_args)
    if not overridden:
        return []
    return [
        Finding(
            "parallelism",
            f"{', '.join(overridden)} would override what the plan sized and checked; set the matching "
            "serving key (tensorParallel, pipelineParallel, gpuMemoryUtilization, maxModelLen, ...) instead",
        )
    ]
