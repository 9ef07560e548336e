"""How a cluster moves from one LWS release to another: LWS has no online upgrade, and the chart moved its
CRDs in 0.8, so the offline steps depend on the pair of releases."""

from __future__ import annotations

from packaging.version import Version

from kernel import lws_api
from kernel.catalog import LWS_FEATURE_SINCE, LwsFeature, release

LWS_CRD = lws_api.CRD_NAME


def offline_procedure(old: str, new: str) -> str:
    """The steps from controller release `old` to `new` with no online upgrade, for this stack's pair."""
    before, after = release(old), release(new)
    steps = [
        "delete the LeaderWorkerSets (set models to [] and run `pulumi up`)",
        "uninstall the controller (set cluster.lws.mode to none and run `pulumi up`; the CRD is kept)",
    ]
    if before is not None and after is not None:
        steps[1:1] = _crossing_steps(before, after)
    steps.append(f"set cluster.lws.version to {new}, cluster.lws.mode back to install, and run `pulumi up`")
    return "; ".join(f"{i}. {step}" for i, step in enumerate(steps, 1))


def _crossing_steps(before: Version, after: Version) -> list[str]:
    crds_dir = LWS_FEATURE_SINCE[LwsFeature.CHART_CRDS_DIR]
    disaggregated = LWS_FEATURE_SINCE[LwsFeature.DISAGGREGATED_SET]
    steps = []
    if before < crds_dir <= after:
        steps.append(
            f"the {after} chart ships the CRD in crds/ instead of templates/ (kubernetes-sigs/lws#880): this "
            "stack applies and keeps it, but if the controller was ever installed with the helm CLI, first run "
            f"`kubectl annotate crd {LWS_CRD} helm.sh/resource-policy=keep --overwrite`, because a "
            f"`helm upgrade` from {before} deletes the CRD and with it every LeaderWorkerSet in the cluster"
        )
    if after < crds_dir <= before:
        steps.append(
            f"the {after} chart renders the CRD from templates/ again: after a helm CLI install of it, "
            "`helm uninstall` deletes the CRD and every LeaderWorkerSet, so keep the annotation "
            "helm.sh/resource-policy=keep on the CRD"
        )
    if after < disaggregated <= before:
        steps.append(
            f"delete every DisaggregatedSet and drop restartPolicy RecreateGroupAfterStart: {after} has neither"
        )
    return steps
