"""The pulumi_policy objects: thin wrappers around the check functions of the other modules.

The checks are testable without a Pulumi engine; here each becomes a ResourceValidationPolicy (or
the StackValidationPolicy) whose config schema lists the keys it reads, with their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from lws_guard.advisories import (
    check_image_pinned_policy,
    check_leader_probe,
    check_model_pv_reclaim,
    check_model_volume_readonly,
)
from lws_guard.autoscaling import autoscaling_stack_policies, check_autoscaler_target
from lws_guard.gpu_memory import check_gpu_memory, check_gpu_memory_unverified
from lws_guard.parallelism import check_parallelism_advice, check_parallelism_policy
from lws_guard.secrets import check_no_plaintext_secrets
from lws_guard.settings import Settings, schema_properties
from lws_guard.shared_memory import check_shared_memory_advice, check_shared_memory_policy
from lws_guard.upgrade import StackResource, check_no_online_upgrade, check_no_online_upgrade_drained

PACK_NAME = "lws-inference-guard"


class ResourceCheck(Protocol):
    def __call__(
        self, resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
    ) -> list[str]: ...


@dataclass(frozen=True)
class ResourceRule:
    """One resource policy. `rule` says what makes it mandatory or advice and why, with the sources
    (rendered into the README's policy reference)."""

    name: str
    description: str
    check: ResourceCheck
    advisory: bool = False
    rule: str = ""


# Sources the rules cite.
NCCL_SHM = "https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html#sharing-data"
EMPTY_DIR = "https://kubernetes.io/docs/concepts/storage/volumes/#emptydir"
VLLM_PARALLELISM = "https://docs.vllm.ai/en/latest/serving/parallelism_scaling/"
SGLANG_MULTI_NODE = "https://docs.sglang.io/references/multi_node_deployment/multi_node.html"
KUBE_EXPANSION = "https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/"
VLLM_MEMORY = "https://docs.vllm.ai/en/latest/configuration/conserving_memory/"
SECRETS_PRACTICE = "https://kubernetes.io/docs/concepts/security/secrets-good-practices/"
IMAGE_NAMES = "https://kubernetes.io/docs/concepts/containers/images/#updating-images"


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "gpu-memory",
        "A LeaderWorkerSet's model weights, split over TP x PP GPUs, fit in GPU memory x utilization "
        "with room for the KV cache and runtime.",
        check_gpu_memory,
        rule="Mandatory only for what cannot fit even by a lower bound: the weights per GPU (split over TP x PP, "
        "and over DP too with expert parallelism) plus the runtime overhead exceed GPU memory x the engine's "
        "memory fraction, or the full estimate from the inference.lws.dev/* annotations does, or a checkpoint "
        "of the built-in catalog's weights and runtime do. The engine then fails at load with CUDA out of "
        f"memory or no room for KV cache blocks ({VLLM_MEMORY}). What the pack cannot size, and a catalog "
        "model whose weights fit but whose KV cache for the whole context may not, goes to "
        "gpu-memory-unverified.",
    ),
    ResourceRule(
        "gpu-memory-unverified",
        "Says why gpu-memory could not check a LeaderWorkerSet: no GPU request or no vLLM/SGLang server "
        "command, a TP or PP that is not a number, a memory fraction outside (0, 1], a GPU of unknown memory "
        "(add it to gpuMemoryMiB), or a model whose size or storage type is neither annotated nor readable "
        "from its name and flags (or known only as an upper bound, as for 8x7B), or a catalog model whose "
        "weights fit but whose KV cache for the whole context may not (set --max-model-len).",
        check_gpu_memory_unverified,
        advisory=True,
        rule="Advice: a check that could not run is no evidence of failure, so it never blocks; it says what to "
        "add (annotations, gpuMemoryMiB) so gpu-memory can judge. The context that may not fit is advice too: "
        "the engine's own memory profile decides it, within our estimate's margin.",
    ),
    ResourceRule(
        "shared-memory",
        "A GPU container that needs NCCL's shared memory (several GPUs, or a group of several pods) has a "
        "/dev/shm volume, and a /dev/shm emptyDir fits in the container's memory limit.",
        check_shared_memory_policy,
        rule="Mandatory where it fails: a container with several GPUs, or with a GPU in a multi-node group, "
        "without any /dev/shm volume gets the container runtime's 64 MiB and NCCL fails with 'No space left on "
        f"device' ({NCCL_SHM}); a Memory emptyDir whose sizeLimit exceeds the container's memory limit is charged "
        f"to that limit, so the pod is OOM-killed as it fills ({EMPTY_DIR}). hostIPC: true and a hostPath "
        "/dev/shm share the node's and pass. Everything else works and goes to shared-memory-advice.",
    ),
    ResourceRule(
        "shared-memory-advice",
        "Recommendations for /dev/shm of GPU containers: a Memory emptyDir with a sizeLimit of at least "
        "shmBaseGiB + shmPerGpuGiB per GPU, within a memory limit.",
        check_shared_memory_advice,
        advisory=True,
        rule="Advice, because these work: an emptyDir without sizeLimit is bounded by the pod's memory; a "
        "container without memory limit is bounded by the node; the floor (2 GiB + 1 GiB per GPU by default) is "
        "this project's recommendation, not a published limit (8-GPU decode pods run on 2Gi); a disk-backed "
        "emptyDir is slower, not broken; one GPU in a one-pod group rarely needs more than 64 MiB.",
    ),
    ResourceRule(
        "parallelism",
        "The engine's ranks fit the group's GPUs (vLLM TP x PP x DP, SGLang --tp x --pp-size), the pods of a "
        "multi-node group are joined (Ray, multi-node flags), SGLang --nnodes is the group size, and $(LWS_*) "
        "is written so Kubernetes expands it.",
        check_parallelism_policy,
        rule="Mandatory where the group cannot start: more ranks than GPUs (the engine waits for GPUs that never "
        f"come; {VLLM_PARALLELISM}); SGLang ranks that do not split over its nodes, a pod with fewer GPUs than its "
        f"share, --nnodes other than the group size, or a multi-node group without --dist-init-addr/--nnodes/"
        f"--node-rank ({SGLANG_MULTI_NODE}); vLLM with several pods and neither Ray nor multi-node data-parallel "
        f"flags (each pod serves alone); `$LWS_*` outside a shell, left literal by Kubernetes ({KUBE_EXPANSION}). "
        "Idle GPUs, uneven vLLM pods and what the pack cannot resolve go to parallelism-advice.",
    ),
    ResourceRule(
        "parallelism-advice",
        "Idle GPUs, uneven vLLM pods, and groups whose parallelism the pack cannot verify (a degree in a variable "
        "it cannot resolve, no readable server command).",
        check_parallelism_advice,
        advisory=True,
        rule="Advice: idle GPUs waste money but serve; Ray places ranks where the GPUs are, so uneven pods work; "
        "an unresolved variable is no evidence of a failure.",
    ),
    ResourceRule(
        "no-online-upgrade",
        "The LWS controller's chart and image are the cluster's pinned release: no floating tags, no "
        "pull policy Always, and another release only in a maintenance window.",
        check_no_online_upgrade,
        rule="Mandatory: LWS has no online upgrade; a controller of another release than the CRD, webhooks and "
        "running groups were made by is a half-upgraded cluster (see No online upgrade above).",
    ),
    ResourceRule(
        "no-plaintext-secrets",
        "Credentials come from Secrets: no literal credential in env, command flags, ConfigMap data or CSI "
        "volume attributes (OSS volumes take their AccessKey from nodePublishSecretRef only).",
        check_no_plaintext_secrets,
        rule="Mandatory: a literal is readable by everyone who may read the object, the rendered YAML and the "
        f"stack's state, so it has leaked once applied ({SECRETS_PRACTICE}). Matching (lws_guard.secrets): a "
        "credential name (a word TOKEN, SECRET, PASSWORD, KEY, APIKEY, AK, SK, CREDENTIAL(S), ...; not when the "
        "last word is PATH, FILE, DIR, NAME, REF, ENDPOINT, URL, FORMAT, TYPE, MODE, SIZE, LENGTH, ALGORITHM, nor "
        "with a toggle word DISABLE, ENABLE, USE, SKIP, REQUIRE) with a value that could be one (not empty, not "
        "$(VAR)/$VAR, not a path, not a boolean or number), or any value shaped like a known token (hf_, sk-, "
        "ghp_, AKIA, LTAI).",
    ),
    ResourceRule(
        "image-pinned",
        "Container images carry a version tag or a digest, not latest or no tag.",
        check_image_pinned_policy,
        advisory=True,
        rule=f"Advice: a floating tag runs today; it is a risk at the next pull, not a failure ({IMAGE_NAMES}).",
    ),
    ResourceRule(
        "leader-probe",
        "A LeaderWorkerSet leader has a readiness or startup probe.",
        check_leader_probe,
        advisory=True,
        rule="Advice: without a probe the group still serves once loaded; requests during loading fail.",
    ),
    ResourceRule(
        "model-volume-readonly",
        "Inference containers mount PVC, NFS and CSI (model) volumes read-only.",
        check_model_volume_readonly,
        advisory=True,
        rule="Advice: engines only read weights; a writable mount is a risk, not a failure.",
    ),
    ResourceRule(
        "model-pv-reclaim",
        "OSS and NFS model PersistentVolumes are not reclaimed with Delete.",
        check_model_pv_reclaim,
        advisory=True,
        rule="Advice: whether Delete removes the files depends on the driver and provisioner, so it is a risk "
        "to review, not a certain loss.",
    ),
    ResourceRule(
        "autoscaler-target",
        "An HPA or ScaledObject of a LeaderWorkerSet names it, gives every metric a target value, reads only "
        "resource metrics that exist (cpu, memory), and can come back from zero groups.",
        check_autoscaler_target,
        rule="Mandatory: each finding is an autoscaler that never acts on the LeaderWorkerSet (no target, a metric "
        "without a target value, a resource metric no metrics server serves) or that leaves it at zero groups "
        "for good.",
    ),
)

DRAINED_POLICY = "no-online-upgrade-drained"
DRAINED_RULE = (
    "Mandatory: in a maintenance window the controller may change release only once no LeaderWorkerSet remains, "
    "since LWS has no online upgrade."
)


def _schema(policy: str) -> PolicyConfigSchema | None:
    properties = schema_properties(policy)
    return PolicyConfigSchema(properties=properties) if properties else None


def _level(advisory: bool) -> EnforcementLevel:
    return EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY


def resource_validation(check: ResourceCheck) -> Any:
    """The validate callback of a resource policy: run the check, report each message."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        settings = Settings.from_config(args.get_config())
        for message in check(args.resource_type, args.props, settings, name=args.name):
            report_violation(message, None)

    return validate


def stack_validation(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    settings = Settings.from_config(args.get_config())
    resources = [StackResource(r.resource_type, r.props, r.name) for r in args.resources]
    for message in check_no_online_upgrade_drained(resources, settings):
        report_violation(message, None)


def resource_policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=resource_validation(rule.check),
            enforcement_level=_level(rule.advisory),
            config_schema=_schema(rule.name),
        )
        for rule in RESOURCE_RULES
    ]


def stack_policies() -> list[StackValidationPolicy]:
    return [
        StackValidationPolicy(
            name=DRAINED_POLICY,
            description="The LWS controller changes release (in a maintenance window) only when no "
            "LeaderWorkerSet remains in the stack.",
            validate=stack_validation,
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=_schema(DRAINED_POLICY),
        ),
        *autoscaling_stack_policies(),
    ]
