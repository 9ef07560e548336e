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
from lws_guard.parallelism import check_parallelism_policy
from lws_guard.secrets import check_no_plaintext_secrets
from lws_guard.settings import Settings, schema_properties
from lws_guard.shared_memory import check_shared_memory_policy
from lws_guard.upgrade import StackResource, check_no_online_upgrade, check_no_online_upgrade_drained

PACK_NAME = "lws-inference-guard"


class ResourceCheck(Protocol):
    def __call__(
        self, resource_type: str, props: Mapping[str, Any], settings: Settings, *, name: str = ""
    ) -> list[str]: ...


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    check: ResourceCheck
    advisory: bool = False


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "gpu-memory",
        "A LeaderWorkerSet's model weights, split over TP x PP GPUs, fit in GPU memory x utilization "
        "with room for the KV cache and runtime.",
        check_gpu_memory,
    ),
    ResourceRule(
        "gpu-memory-unverified",
        "Says why gpu-memory could not check a LeaderWorkerSet: no GPU request or no vLLM/SGLang server "
        "command, a TP or PP that is not a number, a memory fraction outside (0, 1], a GPU of unknown memory "
        "(add it to gpuMemoryMiB), or a model whose size or storage type is neither annotated nor readable "
        "from its name and flags (or known only as an upper bound, as for 8x7B).",
        check_gpu_memory_unverified,
        advisory=True,
    ),
    ResourceRule(
        "shared-memory",
        "Every GPU container of a LeaderWorkerSet mounts /dev/shm from a Memory emptyDir at least as "
        "large as the floor for its GPUs and within its memory limit.",
        check_shared_memory_policy,
    ),
    ResourceRule(
        "parallelism",
        "TP x PP equals group size x GPUs per pod, leader and workers request the same GPUs, SGLang "
        "--nnodes is the group size, and $(LWS_*) is written so Kubernetes expands it.",
        check_parallelism_policy,
    ),
    ResourceRule(
        "no-online-upgrade",
        "The LWS controller's chart and image are the cluster's pinned release: no floating tags, no "
        "pull policy Always, and another release only in a maintenance window.",
        check_no_online_upgrade,
    ),
    ResourceRule(
        "no-plaintext-secrets",
        "Credential-like env vars come from Secrets (valueFrom), and OSS volumes take their "
        "AccessKey from nodePublishSecretRef only.",
        check_no_plaintext_secrets,
    ),
    ResourceRule(
        "image-pinned",
        "Container images carry a version tag or a digest, not latest or no tag.",
        check_image_pinned_policy,
        advisory=True,
    ),
    ResourceRule(
        "leader-probe",
        "A LeaderWorkerSet leader has a readiness or startup probe.",
        check_leader_probe,
        advisory=True,
    ),
    ResourceRule(
        "model-volume-readonly",
        "Inference containers mount PVC, NFS and CSI (model) volumes read-only.",
        check_model_volume_readonly,
        advisory=True,
    ),
    ResourceRule(
        "model-pv-reclaim",
        "OSS and NFS model PersistentVolumes are not reclaimed with Delete.",
        check_model_pv_reclaim,
        advisory=True,
    ),
    ResourceRule(
        "autoscaler-target",
        "An HPA or ScaledObject of a LeaderWorkerSet names it, gives every metric a target value, reads only "
        "resource metrics that exist (cpu, memory), and can come back from zero groups.",
        check_autoscaler_target,
    ),
)

DRAINED_POLICY = "no-online-upgrade-drained"


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
