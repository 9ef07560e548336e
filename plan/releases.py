"""What a group may use on the cluster's LWS release, and how a cluster moves from one release to another.

Pure functions over the feature matrix of kernel.catalog: the plan calls them for the stack's groups, the
policy pack (and the controller's upgrade hook) for objects read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from config.model import Cluster, Serving, StackConfig
from kernel import lws_api
from kernel.catalog import (
    LWS_BUILT_HERE,
    LWS_FEATURE_SINCE,
    LWS_KUBERNETES_RANGE,
    LWS_RELEASES,
    LwsFeature,
    lws_supports,
    release,
)
from kernel.rules import Finding
from kernel.sizing import Parallelism

SLOW_LOAD_SECONDS = 60
"""A multi-pod group whose pods take at least this long to read the weights starts slowly: a pod that
restarts while another still pulls its image or loads makes RecreateGroupOnPodRestart recreate the group,
again and again (kubernetes-sigs/lws#726)."""

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
"""Set by the StatefulSet controller on every pod since Kubernetes 1.28 (PodIndexLabel)."""
STATEFULSET_MINIMUM_KUBERNETES = (1, 28)
RECREATE_AFTER_START_ANNOTATION = lws_api.RECREATE_AFTER_START_ANNOTATION


@dataclass(frozen=True)
class LwsOptions:
    """The LeaderWorkerSet fields the plan sets, each one the cluster's release has."""

    restart_policy: str = lws_api.RECREATE_GROUP_ON_POD_RESTART
    startup_policy: str = lws_api.LEADER_CREATED
    subdomain_policy: str | None = None
    rollout_partition: int | None = None
    rollout_max_surge: int | None = None
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LwsRequest:
    """What a model's serving config asks of LWS (None: the plan decides)."""

    restart_policy: str | None = None
    startup_policy: str | None = None
    subdomain_policy: str | None = None
    rollout_partition: int | None = None
    rollout_max_surge: int | None = None


def first_release(feature: LwsFeature) -> str:
    """The first release with `feature` that this project knows (0.6.1 for what 0.6.0 had)."""
    since = LWS_FEATURE_SINCE[feature]
    return str(next((r for r in LWS_RELEASES if r >= since), since))


def needs(feature: LwsFeature, lws: Version) -> str:
    return f"{feature.value} needs LWS {first_release(feature)} or newer, but the cluster runs {lws}"


def plan_lws_options(
    request: LwsRequest, lws: Version, *, group_size: int, load_seconds: float
) -> tuple[LwsOptions, list[tuple[str, Finding]]]:
    """The fields of one group's LeaderWorkerSet, with findings keyed by the serving key they concern."""
    findings: list[tuple[str, Finding]] = []
    restart, annotations = _restart_policy(request.restart_policy, lws, group_size, load_seconds, findings)
    startup = request.startup_policy or lws_api.LEADER_CREATED
    if startup == lws_api.LEADER_READY and group_size > 1:
        findings.append(
            (
                "serving.startupPolicy",
                Finding(
                    "versions",
                    f"LeaderReady creates the {group_size - 1} worker pod(s) only once the leader is Ready, but the "
                    "leader's readiness probe (/health) passes only after the engine has loaded the model over all "
                    f"{group_size} pods: the group would never start; use LeaderCreated",
                ),
            )
        )
    if request.rollout_partition is not None and not lws_supports(lws, LwsFeature.ROLLOUT_PARTITION):
        findings.append(("serving.rolloutPartition", Finding("versions", needs(LwsFeature.ROLLOUT_PARTITION, lws))))
    if not lws_supports(lws, LwsFeature.FOREGROUND_DELETION):
        # Background: the LeaderWorkerSet goes at once and the garbage collector removes its pods after it.
        annotations += ((lws_api.DELETION_PROPAGATION_ANNOTATION, "background"),)
    options = LwsOptions(
        restart_policy=restart,
        startup_policy=startup,
        subdomain_policy=request.subdomain_policy,
        rollout_partition=request.rollout_partition,
        rollout_max_surge=request.rollout_max_surge,
        annotations=annotations,
    )
    return options, findings


def _restart_policy(
    asked: str | None, lws: Version, group_size: int, load_seconds: float, findings: list[tuple[str, Finding]]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    if asked == lws_api.RECREATE_GROUP_AFTER_START and not lws_supports(lws, LwsFeature.RECREATE_GROUP_AFTER_START):
        findings.append(
            ("serving.restartPolicy", Finding("versions", needs(LwsFeature.RECREATE_GROUP_AFTER_START, lws)))
        )
    if asked is not None:
        return asked, ()
    slow = group_size > 1 and load_seconds >= SLOW_LOAD_SECONDS
    if not slow:
        return lws_api.RECREATE_GROUP_ON_POD_RESTART, ()
    if lws_supports(lws, LwsFeature.RECREATE_GROUP_AFTER_START):
        return lws_api.RECREATE_GROUP_AFTER_START, ()
    if lws_supports(lws, LwsFeature.RECREATE_AFTER_START_ANNOTATION):
        return lws_api.RECREATE_GROUP_ON_POD_RESTART, ((RECREATE_AFTER_START_ANNOTATION, "true"),)
    findings.append(
        (
            "serving.restartPolicy",
            Finding(
                "versions",
                f"the group starts slowly ({load_seconds:.0f} s to read the weights on each of {group_size} pods), "
                f"and LWS {lws} only has RecreateGroupOnPodRestart: a pod that restarts while another still pulls or "
                "loads recreates the whole group, possibly in a loop; LWS "
                f"{first_release(LwsFeature.RECREATE_GROUP_AFTER_START)} has RecreateGroupAfterStart",
                advisory=True,
            ),
        )
    )
    return lws_api.RECREATE_GROUP_ON_POD_RESTART, ()


def lws_spec_fields(options: LwsOptions) -> dict[str, Any]:
    """The spec keys of a LeaderWorkerSet that come from the options (besides leaderWorkerTemplate)."""
    spec: dict[str, Any] = {"startupPolicy": options.startup_policy}
    if options.subdomain_policy:
        spec["networkConfig"] = {"subdomainPolicy": options.subdomain_policy}
    rolling: dict[str, Any] = {}
    if options.rollout_partition is not None:
        rolling["partition"] = options.rollout_partition
    if options.rollout_max_surge is not None:
        rolling["maxSurge"] = options.rollout_max_surge
    if rolling:
        spec["rolloutStrategy"] = {"type": "RollingUpdate", "rollingUpdateConfiguration": rolling}
    return spec


def features_in_spec(spec: Mapping[str, Any]) -> list[LwsFeature]:
    """The release-dependent features a LeaderWorkerSet's spec uses (hand-written ones included)."""
    template = spec.get("leaderWorkerTemplate") or {}
    rolling = (spec.get("rolloutStrategy") or {}).get("rollingUpdateConfiguration") or {}
    used: list[LwsFeature] = []
    if template.get("restartPolicy") == lws_api.RECREATE_GROUP_AFTER_START:
        used.append(LwsFeature.RECREATE_GROUP_AFTER_START)
    if template.get("volumeClaimTemplates"):
        used.append(LwsFeature.VOLUME_CLAIM_TEMPLATES)
    if rolling.get("partition") is not None:
        used.append(LwsFeature.ROLLOUT_PARTITION)
    return used


def check_lws_spec(spec: Mapping[str, Any], lws_version: str) -> list[Finding]:
    """Fields of a LeaderWorkerSet that the cluster's release does not have: the API server prunes or rejects them."""
    lws = release(lws_version)
    if lws is None:
        return []
    return [Finding("versions", needs(f, lws)) for f in features_in_spec(spec) if not lws_supports(lws, f)]


def newer_than_known(lws: Version) -> list[Finding]:
    newest = LWS_RELEASES[-1]
    if lws <= newest:
        return []
    return [
        Finding(
            "versions",
            f"LWS {lws} is newer than the releases this project knows (newest {newest}); the plan assumes the "
            f"features of {newest}",
            advisory=True,
        )
    ]


def check_controller(
    *,
    mode: str,
    workload: str,
    lws: Version,
    kubernetes: Sequence[int],
    gang_scheduling: str | None,
    scheduler_queue: str | None,
    groups: int,
) -> list[tuple[str, Finding]]:
    """The controller settings that cannot work together, keyed by the cluster key they concern."""
    findings: list[tuple[str, Finding]] = [("cluster.lws.version", f) for f in newer_than_known(lws)]
    if workload == "statefulset" and tuple(kubernetes[:2]) < STATEFULSET_MINIMUM_KUBERNETES:
        version = ".".join(str(p) for p in kubernetes[:2])
        message = (
            f"workers read LWS_WORKER_INDEX from the {POD_INDEX_LABEL} label, which Kubernetes sets from 1.28; "
            f"the cluster runs {version}"
        )
        findings.append(("cluster.kubernetesVersion", Finding("versions", message)))
    if mode == "none" and workload == "leaderworkerset" and groups:
        findings.append(
            (
                "cluster.lws.workload",
                Finding(
                    "versions",
                    f"cluster.lws.mode is none, so no controller would run the {groups} LeaderWorkerSet(s); set "
                    "cluster.lws.workload to statefulset (plain StatefulSets) or install the controller",
                ),
            )
        )
    if gang_scheduling:
        if mode != "install":
            findings.append(
                (
                    "cluster.lws.gangScheduling",
                    Finding("versions", "gangScheduling configures the chart, which only mode install installs"),
                )
            )
        if not lws_supports(lws, LwsFeature.GANG_SCHEDULING):
            findings.append(("cluster.lws.gangScheduling", Finding("versions", needs(LwsFeature.GANG_SCHEDULING, lws))))
        if not scheduler_queue:
            findings.append(
                (
                    "cluster.schedulerQueue",
                    Finding("versions", "gang scheduling through Volcano needs the queue of the groups, e.g. default"),
                )
            )
    return findings


def check_statefulset_request(request: LwsRequest) -> list[tuple[str, Finding]]:
    """Serving keys that only a LeaderWorkerSet honours: with plain StatefulSets they would silently do nothing."""
    asked = {
        "serving.restartPolicy": request.restart_policy not in (None, "None"),
        "serving.rolloutPartition": request.rollout_partition is not None,
        "serving.rolloutMaxSurge": request.rollout_max_surge is not None,
        "serving.subdomainPolicy": request.subdomain_policy is not None,
        "serving.startupPolicy": request.startup_policy == lws_api.LEADER_READY,
    }
    return [
        (
            key,
            Finding(
                "versions",
                "a LeaderWorkerSet setting, but cluster.lws.workload is statefulset: plain StatefulSets have no group "
                "restart, no rolling update by group and one Service per group; remove it",
            ),
        )
        for key, set_ in asked.items()
        if set_
    ]


def check_statefulset_group(group_size: int, autoscaled: bool) -> list[tuple[str, Finding]]:
    """What plain StatefulSets cannot do for this group, keyed by the config key that asks for it."""
    findings = []
    if autoscaled:
        findings.append(
            (
                "serving.autoscaling",
                Finding(
                    "versions",
                    f"an autoscaler scales whole groups through the LeaderWorkerSet's scale subresource, but "
                    f"these groups are plain StatefulSets (a leader and {group_size - 1} worker pod(s) each); "
                    "scaling them needs a LeaderWorkerSet (cluster.lws.workload leaderworkerset)",
                ),
            )
        )
    return findings


# ---- from the stack config ---------------------------------------------------------------------


def request_of(serving: Serving) -> LwsRequest:
    return LwsRequest(
        restart_policy=serving.restart_policy,
        startup_policy=serving.startup_policy,
        subdomain_policy=serving.subdomain_policy,
        rollout_partition=serving.rollout_partition,
        rollout_max_surge=serving.rollout_max_surge,
    )


def plan_for_release(
    cluster: Cluster, serving: Serving, parallelism: Parallelism, load_seconds: float
) -> tuple[LwsOptions, list[tuple[str, Finding]]]:
    """One group's LWS fields on the cluster's release; the StatefulSet workload takes none of them."""
    request = request_of(serving)
    if cluster.lws.workload == "statefulset":
        findings = check_statefulset_request(request)
        findings += check_statefulset_group(parallelism.group_size, serving.autoscaling is not None)
        return LwsOptions(restart_policy="None"), findings
    return plan_lws_options(request, cluster.lws.release, group_size=parallelism.group_size, load_seconds=load_seconds)


def stack_findings(config: StackConfig) -> list[tuple[str, Finding]]:
    lws = config.cluster.lws
    return check_controller(
        mode=lws.mode.value,
        workload=lws.workload,
        lws=lws.release,
        kubernetes=config.cluster.kubernetes_version_tuple,
        gang_scheduling=lws.gang_scheduling,
        scheduler_queue=config.cluster.scheduler_queue,
        groups=len(config.models),
    )


# ---- the README's table ------------------------------------------------------------------------

FEATURE_USE: dict[LwsFeature, str] = {
    LwsFeature.STARTUP_POLICY: "`serving.startupPolicy` (LeaderCreated; LeaderReady refused for multi-pod groups)",
    LwsFeature.SUBDOMAIN_POLICY: "`serving.subdomainPolicy`",
    LwsFeature.ROLLOUT_MAX_SURGE: "`serving.rolloutMaxSurge`",
    LwsFeature.ROLLOUT_PARTITION: "`serving.rolloutPartition`",
    LwsFeature.GANG_SCHEDULING: "`cluster.lws.gangScheduling: volcano` + `cluster.schedulerQueue`",
    LwsFeature.RECREATE_AFTER_START_ANNOTATION: "set on slow-loading groups on 0.8",
    LwsFeature.VOLUME_CLAIM_TEMPLATES: "hand-written LeaderWorkerSets (`check_lws_spec`)",
    LwsFeature.CHART_CRDS_DIR: "the offline procedure across 0.8 (lws#880)",
    LwsFeature.RECREATE_GROUP_AFTER_START: "default restart policy of slow-loading multi-pod groups",
    LwsFeature.DISAGGREGATED_SET: "the offline procedure below 0.9",
    LwsFeature.FOREGROUND_DELETION: "destroy waits for the pods; older releases are deleted in the background",
}


def release_table() -> str:
    """Markdown: which release has what, and where the stack uses it (README, "LWS releases")."""
    releases = [str(r) for r in LWS_RELEASES]
    lines = [
        "| feature | " + " | ".join(releases) + " | used by |",
        "|---|" + "---|" * len(releases) + "---|",
    ]
    for feature, use in FEATURE_USE.items():
        marks = ["yes" if lws_supports(r, feature) else "" for r in LWS_RELEASES]
        lines.append(f"| {feature.value} | " + " | ".join(marks) + f" | {use} |")
    ranges = []
    for r in LWS_RELEASES:
        known = LWS_KUBERNETES_RANGE[(r.major, r.minor)]
        ranges.append(f"{known.minimum[0]}.{known.minimum[1]} to {known.maximum[0]}.{known.maximum[1]}")
    lines.append("| Kubernetes | " + " | ".join(ranges) + " | `cluster.kubernetesVersion` is checked |")
    built = ["yes" if str(r) in LWS_BUILT_HERE else "" for r in LWS_RELEASES]
    lines.append(
        "| chart and controller built from the module (`tools/lws/<release>`) | "
        + " | ".join(built)
        + " | local charts, the local cluster |"
    )
    return "\n".join(lines)
