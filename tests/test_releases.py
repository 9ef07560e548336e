"""What each LWS release allows, as the plan, the manifests and the upgrade rule apply it (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config.load import parse
from kernel.catalog import (
    DEFAULT_LWS_VERSION,
    LWS_BUILT_HERE,
    LWS_RELEASES,
    LwsFeature,
    lws_supports,
    parse_version,
    release,
)
from kernel.rules import check_controller_upgrade
from plan.group import GroupPlan, PlanError, Problem, plan_stack
from plan.manifests import ControllerOptions, Placement, controller_pod_fields, controller_values, leader_worker_set
from plan.releases import RECREATE_AFTER_START_ANNOTATION, check_lws_spec, first_release, release_table
from tests.factories import cce_llama405b, set_path, tiny_model

ROOT = Path(__file__).resolve().parents[1]
PLACEMENT = Placement(namespace="inference", claim_name="models", mount_path="/models")


def planned(raw: dict[str, Any]) -> tuple[GroupPlan, tuple[Problem, ...]]:
    stack = plan_stack(parse(raw))
    [group] = stack.groups
    return group, stack.advisories


def refused(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlanError) as caught:
        plan_stack(parse(raw))
    return {p.key: p.message for p in caught.value.problems}


def on_release(raw: dict[str, Any], version: str, kubernetes: str = "1.31") -> dict[str, Any]:
    return set_path(set_path(raw, "cluster.lws.version", version), "cluster.kubernetesVersion", kubernetes)


# ---- the matrix --------------------------------------------------------------------------------


def test_versions_are_parsed_by_packaging_and_floating_tags_are_not_releases() -> None:
    assert parse_version("v0.10.0") == (0, 10, 0) and parse_version("1.31") == (1, 31)
    assert release("0.10.0") > release("0.9.0")  # type: ignore[operator]  # a string compare would say no
    for floating in ("main", "latest", "", "v0.9.0-rc.1", "0.9.0.post1"):
        assert parse_version(floating) is None


def test_default_release_is_the_newest_known() -> None:
    assert str(LWS_RELEASES[-1]) == DEFAULT_LWS_VERSION == "0.10.0"
    assert (
        parse(
            {"cluster": {"name": "c", "kubernetesVersion": "1.33", "gpu": {"product": "NVIDIA-L4"}}}
        ).cluster.lws.version
        == "0.10.0"
    )


@pytest.mark.parametrize(
    ("feature", "first", "last_without"),
    [
        (LwsFeature.ROLLOUT_PARTITION, "0.7.0", "0.6.1"),
        (LwsFeature.GANG_SCHEDULING, "0.7.0", "0.6.1"),
        (LwsFeature.VOLUME_CLAIM_TEMPLATES, "0.8.0", "0.7.0"),
        (LwsFeature.CHART_CRDS_DIR, "0.8.0", "0.7.0"),
        (LwsFeature.RECREATE_GROUP_AFTER_START, "0.9.0", "0.8.0"),
        (LwsFeature.DISAGGREGATED_SET, "0.9.0", "0.8.0"),
    ],
)
def test_feature_matrix_by_release(feature: LwsFeature, first: str, last_without: str) -> None:
    assert first_release(feature) == first
    assert lws_supports((0, 10, 0), feature) and lws_supports(release(first), feature)  # type: ignore[arg-type]
    assert not lws_supports(release(last_without), feature)  # type: ignore[arg-type]


def test_startup_and_subdomain_policy_and_max_surge_are_in_every_release() -> None:
    for feature in (LwsFeature.STARTUP_POLICY, LwsFeature.SUBDOMAIN_POLICY, LwsFeature.ROLLOUT_MAX_SURGE):
        assert first_release(feature) == "0.6.1"


# ---- restart policy by release -----------------------------------------------------------------


def test_a_slow_group_gets_recreate_group_after_start_on_0_9_and_newer() -> None:
    for version in ("0.9.0", "0.10.0"):
        group, _ = planned(on_release(cce_llama405b(), version))
        assert group.lws.restart_policy == "RecreateGroupAfterStart"
        lws = leader_worker_set(group, PLACEMENT)
        assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupAfterStart"


def test_a_slow_group_on_0_8_gets_the_experimental_annotation_instead() -> None:
    group, _ = planned(on_release(cce_llama405b(), "0.8.0"))
    lws = leader_worker_set(group, PLACEMENT)
    assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert lws["metadata"]["annotations"][RECREATE_AFTER_START_ANNOTATION] == "true"


def test_a_slow_group_on_0_6_1_is_warned_about_restart_loops() -> None:
    group, advisories = planned(cce_llama405b())
    assert group.lws.restart_policy == "RecreateGroupOnPodRestart"
    [warning] = [a for a in advisories if a.key == "models[0].serving.restartPolicy"]
    assert "LWS 0.9.0 has RecreateGroupAfterStart" in warning.message and "0.6.1" in warning.message


def test_a_quick_group_keeps_recreate_group_on_pod_restart() -> None:
    group, _ = planned(on_release(tiny_model(), "0.10.0"))
    assert group.lws.restart_policy == "RecreateGroupOnPodRestart" and not group.lws.annotations


# ---- fields by release -------------------------------------------------------------------------


def test_startup_subdomain_and_rollout_fields_reach_the_leader_worker_set() -> None:
    raw = on_release(tiny_model(), "0.10.0")
    for key, value in (("subdomainPolicy", "UniquePerReplica"), ("rolloutPartition", 1), ("rolloutMaxSurge", 1)):
        raw = set_path(raw, f"models[0].serving.{key}", value)
    spec = leader_worker_set(planned(raw)[0], PLACEMENT)["spec"]
    assert spec["startupPolicy"] == "LeaderCreated"
    assert spec["networkConfig"] == {"subdomainPolicy": "UniquePerReplica"}
    assert spec["rolloutStrategy"]["rollingUpdateConfiguration"] == {"partition": 1, "maxSurge": 1}


def test_leader_ready_is_refused_for_a_multi_pod_group() -> None:
    problems = refused(set_path(tiny_model(), "models[0].serving.startupPolicy", "LeaderReady"))
    message = problems["models[0].serving.startupPolicy"]
    assert "would never start" in message and "1 worker pod(s)" in message


def test_a_release_newer_than_the_catalog_plans_with_an_advisory() -> None:
    _, advisories = planned(on_release(tiny_model(), "0.11.0"))
    assert any(a.key == "cluster.lws.version" and "newest 0.10.0" in a.message for a in advisories)


def test_hand_written_fields_the_release_lacks_are_named_with_the_release_that_has_them() -> None:
    spec = {
        "leaderWorkerTemplate": {
            "restartPolicy": "RecreateGroupAfterStart",
            "volumeClaimTemplates": [{"metadata": {"name": "cache"}}],
        }
    }
    messages = [f.message for f in check_lws_spec(spec, "0.7.0")]
    assert messages == [
        "restartPolicy RecreateGroupAfterStart needs LWS 0.9.0 or newer, but the cluster runs 0.7.0",
        "leaderWorkerTemplate.volumeClaimTemplates needs LWS 0.8.0 or newer, but the cluster runs 0.7.0",
    ]
    assert check_lws_spec(spec, "0.10.0") == []


# ---- the controller's chart values -------------------------------------------------------------


def test_controller_values_carry_the_clusters_options() -> None:
    options = ControllerOptions(
        gang_scheduling="volcano",
        cert_manager=True,
        prometheus=True,
        priority_class_name="system-cluster-critical",
        node_selector={"node-role": "system"},
        tolerations=[{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
        resources={"requests": {"cpu": "500m", "memory": "512Mi"}},
    )
    values = controller_values("0.10.0", None, options)
    assert values["gangSchedulingManagement"] == {"schedulerProvider": "volcano"}
    assert values["enableCertManager"] is True and values["enablePrometheus"] is True
    assert values["nodeSelector"] == {"node-role": "system"}
    assert values["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}}
    assert values["image"]["manager"]["tag"] == "v0.10.0"
    assert controller_pod_fields(options) == {"priorityClassName": "system-cluster-critical"}
    assert controller_values("0.10.0", None) == {"image": values["image"]}


CHARTS = sorted((ROOT / ".tools" / "charts").glob("lws-*/values.yaml"))


@pytest.mark.skipif(not CHARTS, reason="no chart built (tools/build.sh)")
@pytest.mark.parametrize("values_file", CHARTS, ids=lambda p: p.parent.name)
def test_every_value_we_set_is_a_value_of_that_releases_chart(values_file: Path) -> None:
    version = values_file.parent.name.removeprefix("lws-")
    gang = "volcano" if lws_supports(release(version), LwsFeature.GANG_SCHEDULING) else None  # type: ignore[arg-type]
    options = ControllerOptions(gang, True, True, None, {"a": "b"}, [{"key": "k"}], {"limits": {"cpu": "1"}})
    chart_values = yaml.safe_load(values_file.read_text())
    ours = controller_values(version, None, options)
    assert set(ours) <= set(chart_values), set(ours) - set(chart_values)
    assert set(ours["image"]["manager"]) <= set(chart_values["image"]["manager"])


# ---- no online upgrade, by pair of releases ----------------------------------------------------


def test_the_offline_procedure_from_before_0_8_warns_about_the_crd_move() -> None:
    [finding] = check_controller_upgrade("0.7.0", "0.8.0", False)
    assert "helm.sh/resource-policy=keep" in finding.message and "kubernetes-sigs/lws#880" in finding.message
    assert finding.message.index("annotate") < finding.message.index("uninstall the controller")
    [from_cce] = check_controller_upgrade("0.6.1", "0.10.0", False)
    assert "helm upgrade` from 0.6.1 deletes the CRD" in from_cce.message


def test_the_offline_procedure_on_one_side_of_the_crd_move_has_no_crd_step() -> None:
    for old, new in (("0.8.0", "0.9.0"), ("0.9.0", "0.10.0"), ("0.6.1", "0.7.0")):
        [finding] = check_controller_upgrade(old, new, False)
        assert "resource-policy" not in finding.message and "DisaggregatedSet" not in finding.message
        assert f"set cluster.lws.version to {new}" in finding.message


def test_a_downgrade_below_0_9_deletes_disaggregated_sets_first() -> None:
    [finding] = check_controller_upgrade("0.10.0", "0.7.0", False)
    assert "delete every DisaggregatedSet" in finding.message and "templates/ again" in finding.message


# ---- controller settings -----------------------------------------------------------------------


def test_gang_scheduling_needs_0_7_install_mode_and_a_queue() -> None:
    raw = set_path(cce_llama405b(), "cluster.lws.gangScheduling", "volcano")
    problems = refused(raw)
    assert "needs LWS 0.7.0 or newer, but the cluster runs 0.6.1" in problems["cluster.lws.gangScheduling"]
    assert "queue" in problems["cluster.schedulerQueue"]


def test_mode_none_without_the_statefulset_workload_cannot_run_groups() -> None:
    raw = set_path(tiny_model(), "cluster.lws.mode", "none")
    assert "set cluster.lws.workload to statefulset" in refused(raw)["cluster.lws.workload"]


def test_stack_files_pin_a_release_with_a_local_chart() -> None:
    for name in ("dev", "local"):
        lws = yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())["config"]["lws-inference:cluster"]["lws"]
        assert lws["chart"] == f".tools/charts/lws-{lws['version']}"
        assert (ROOT / "tools" / "lws" / lws["version"] / "go.mod").is_file()


def test_readme_release_table_is_generated_from_the_catalog() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- lws-releases:begin -->\n", "\n<!-- lws-releases:end -->"
    assert readme[readme.index(begin) + len(begin) : readme.index(end)] == release_table()


def test_the_releases_built_here_are_the_tools_lws_modules() -> None:
    assert sorted(p.parent.name for p in (ROOT / "tools" / "lws").glob("*/go.mod")) == sorted(LWS_BUILT_HERE)
    for version in LWS_BUILT_HERE:
        assert f"sigs.k8s.io/lws v{version}" in (ROOT / "tools" / "lws" / version / "go.mod").read_text()


def test_the_pack_prints_the_crd_step_for_a_controller_moved_across_0_8() -> None:
    from lws_guard.settings import Settings
    from lws_guard.upgrade import check_no_online_upgrade

    deployment = {
        "metadata": {"name": "lws-controller-manager", "namespace": "lws-system"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "manager", "image": "registry.k8s.io/lws/lws:v0.9.0"}]}}
        },
    }
    [message] = check_no_online_upgrade(
        "kubernetes:apps/v1:Deployment", deployment, Settings.from_config({"lwsVersion": "0.7.0"})
    )
    assert "changing it to 0.9.0" in message and "helm.sh/resource-policy=keep" in message


DATA = ROOT / "tests" / "data" / "lws_releases"


def test_published_examples_by_release() -> None:
    claims = yaml.safe_load((DATA / "volume-claim-templates.yaml").read_text())["spec"]
    [refusal] = check_lws_spec(claims, "0.7.0")
    assert (
        refusal.message
        == "leaderWorkerTemplate.volumeClaimTemplates needs LWS 0.8.0 or newer, but the cluster runs 0.7.0"
    )
    assert check_lws_spec(claims, "0.8.0") == []
    rolled = yaml.safe_load((DATA / "rollout-strategy.yaml").read_text())["spec"]
    assert all(check_lws_spec(rolled, str(r)) == [] for r in LWS_RELEASES)
