"""The adapter that lets the pack's group rules read StatefulSet groups (policies/lws_guard/statefulsets.py)."""

from __future__ import annotations

import copy
from typing import Any

from lws_guard.advisories import check_leader_probe
from lws_guard.gpu_memory import check_gpu_memory
from lws_guard.parallelism import check_parallelism_policy
from lws_guard.settings import Settings
from lws_guard.statefulsets import as_leader_worker_set, groups_in, is_leader_set

from plan.manifests import LWS_API_VERSION, Placement
from plan.statefulset import leader_stateful_set, worker_stateful_sets
from tests.test_statefulset import cce_statefulsets, the_group

PLACEMENT = Placement(namespace="inference", claim_name="models", mount_path="/models")
STS = "kubernetes:apps/v1:StatefulSet"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
SETTINGS = Settings.from_config({})


def stack_sets() -> list[tuple[str, dict[str, Any]]]:
    group = the_group(cce_statefulsets())
    return [(STS, leader_stateful_set(group, PLACEMENT))] + [(STS, w) for w in worker_stateful_sets(group, PLACEMENT)]


def test_the_planned_statefulsets_pass_the_group_rules() -> None:
    [(_, leader), *_] = stack_sets()
    assert is_leader_set(STS, leader)
    [group] = groups_in(stack_sets())
    assert group["apiVersion"] == LWS_API_VERSION and group["spec"]["leaderWorkerTemplate"]["size"] == 2
    for check in (check_parallelism_policy, check_gpu_memory, check_leader_probe):
        assert check(LWS, group, SETTINGS) == [], check.__name__
    assert check_parallelism_policy(LWS, as_leader_worker_set(leader), SETTINGS) == []


def test_a_worker_set_with_fewer_gpus_fails_parallelism_like_a_leader_worker_set() -> None:
    sets = stack_sets()
    broken = copy.deepcopy(sets[1][1])
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "4"
    [group] = groups_in([sets[0], (STS, broken)])
    [message] = check_parallelism_policy(LWS, group, SETTINGS)
    assert "8" in message and "4" in message


def test_other_statefulsets_are_not_groups() -> None:
    plain = {"metadata": {"name": "db"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    assert groups_in([(STS, plain)]) == [] and not is_leader_set(STS, plain)
