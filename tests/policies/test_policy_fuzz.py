"""No policy crashes on odd input: random nested values, and seed objects with random parts replaced."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lws_guard.gpu_memory import assess
from lws_guard.pack import RESOURCE_RULES, resource_policies
from lws_guard.settings import Settings
from lws_guard.upgrade import StackResource, check_no_online_upgrade_drained

from kernel.commands import read_flags, read_servers, unexpanded_lws_references
from tests.policies.helpers import LWS, floats, load, run_resource_policy
from tests.policies.test_policy_corpus import CORPUS

TYPES = [
    LWS,
    "kubernetes:apps/v1:Deployment",
    "kubernetes:core/v1:Pod",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:helm.sh/v4:Chart",
    "kubernetes:helm.sh/v3:Release",
    "not-a-token",
]
KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "leaderWorkerTemplate",
    "size", "leaderTemplate", "workerTemplate", "template", "jobTemplate", "containers", "initContainers", "command",
    "args", "env", "value", "valueFrom", "resources", "limits", "requests", "nvidia.com/gpu", "memory",
    "volumeMounts", "mountPath", "volumes", "emptyDir", "medium", "sizeLimit", "nodeSelector",
    "nvidia.com/gpu.product", "nvidia.com/gpu.memory", "affinity", "image", "imagePullPolicy", "readinessProbe",
    "helm.sh/chart", "app.kubernetes.io/version", "chart", "version", "values", "csi", "driver",
    "volumeAttributes", "persistentVolumeReclaimPolicy", "inference.lws.dev/parameters", "readOnly",
    "persistentVolumeClaim", "nfs",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "8", "8.0", "15Gi", "1e400", "-1", "main", "v0.7.0", "lws-0.7.0", "/dev/shm", "Memory",
                     "sh", "-c", "--tp", "$(LWS_GROUP_SIZE)", "$LWS_WORKER_INDEX", "vllm serve /m/Qwen3-32B -tp x",
                     "python3 -m sglang.launch_server --model-path /m/X-8x7B --tp 2 --nnodes 3",
                     "ossplugin.csi.alibabacloud.com", "HF_TOKEN", "registry.k8s.io/lws/lws", "Always"]),
    st.text(max_size=20),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6),
    ),
    max_leaves=40,
)
CONFIGS = st.dictionaries(
    st.sampled_from(["gpuMemoryMiB", "defaultGpu", "runtimeOverheadGiB", "shmBaseGiB", "shmPerGpuGiB", "lwsVersion",
                     "maintenance", "other"]),
    VALUES,
    max_size=4,
)  # fmt: skip
SEEDS = [doc for name in ("cce_llama405b", "ack_qwen3_vllm", "ack_qwen3_sglang", "lws_controller",
                          "ack_oss_model_volume") for doc in load(name)]  # fmt: skip
# The corpus of real deployments seeds the mutations too (DisaggregatedSets, bash scripts, DP, AMD, Ascend).
SEEDS += [doc for path in sorted(CORPUS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]

Check = Callable[..., list[str]]
CHECKS: list[Check] = [rule.check for rule in RESOURCE_RULES]


def assert_messages(result: object) -> None:
    assert isinstance(result, list)
    assert all(isinstance(message, str) for message in result)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource_type=st.sampled_from(TYPES), props=VALUES, config=CONFIGS)
def test_random_values_never_raise(resource_type: str, props: Any, config: dict[str, Any]) -> None:
    settings_ = Settings.from_config(config)
    for check in CHECKS:
        assert_messages(check(resource_type, props, settings_))
    report = assess(resource_type, props, settings_)
    assert_messages(report.denials)
    assert_messages(report.unverified)
    assert_messages(check_no_online_upgrade_drained([StackResource(resource_type, props)], settings_))


def replace_somewhere(obj: Any, path: list[int], value: Any) -> Any:
    """obj with the node reached by following path (indices into children, wrapping) replaced by value."""
    if not path or not isinstance(obj, dict | list) or not obj:
        return value
    keys = list(obj) if isinstance(obj, dict) else list(range(len(obj)))
    key = keys[path[0] % len(keys)]
    result = copy.copy(obj)
    result[key] = replace_somewhere(obj[key], path[1:], value)
    return result


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    path=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=12),
    value=VALUES,
    maintenance=st.booleans(),
)
def test_seed_objects_with_a_random_part_replaced_never_raise(
    seed: dict[str, Any], path: list[int], value: Any, maintenance: bool
) -> None:
    obj = replace_somewhere(seed, path, value)
    resource_type = LWS if seed.get("kind") == "LeaderWorkerSet" else f"kubernetes:x/v1:{seed.get('kind')}"
    settings_ = Settings.from_config({"maintenance": maintenance, "lwsVersion": "0.6.1"})
    for check in CHECKS:
        assert_messages(check(resource_type, obj, settings_))
    resources = [StackResource(resource_type, obj), StackResource(LWS, SEEDS[0])]
    assert_messages(check_no_online_upgrade_drained(resources, settings_))


# ---- huge, non-finite and wrongly typed numbers, through the SDK wrappers as the engine calls them -----------

HUGE = st.one_of(
    st.sampled_from(["9" * 400, "1" + "0" * 5000, "1e400", "-1e400", "inf", "nan", "NaN", "1e-400", "0x10", "²", "-0"]),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
FLAGS = ["-tp", "--tensor-parallel-size", "-pp", "--max-model-len", "--data-parallel-size", "-dp",
         "--gpu-memory-utilization", "--tp", "--dp-size", "--nnodes", "--context-length", "--max-num-seqs"]  # fmt: skip
SHELLS = [["sh", "-c"], ["bash", "-lc"], ["bash", "-o", "pipefail", "-c"], ["/usr/bin/env", "bash", "-c"], []]
ANNOTATIONS = ["parameters", "layers", "attention-heads", "kv-heads", "head-dim", "hidden-size", "vocab-size",
               "max-model-len", "kv-cache-sequences", "dtype"]  # fmt: skip
LWS_SEEDS = [doc for doc in SEEDS if doc.get("kind") == "LeaderWorkerSet"]
POLICIES = resource_policies()


def run_everything(resource_type: str, obj: Any) -> None:
    """Every rule function directly, and every policy through the SDK wrapper, with float-typed numbers."""
    settings_ = Settings()
    for check in CHECKS:
        assert_messages(check(resource_type, obj, settings_))
    if isinstance(obj, dict):
        for policy in POLICIES:
            assert_messages(run_resource_policy(policy, floats(obj)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(LWS_SEEDS),
    shell=st.sampled_from(SHELLS),
    flags=st.lists(st.tuples(st.sampled_from(FLAGS), HUGE), min_size=1, max_size=5),
    annotations=st.dictionaries(st.sampled_from(ANNOTATIONS), HUGE, max_size=6),
    size=HUGE,
    gpus=HUGE,
)
def test_huge_and_odd_numbers_never_raise(
    seed: dict[str, Any], shell: list[str], flags: list[tuple[str, Any]], annotations: dict[str, Any], size: Any,
    gpus: Any,
) -> None:  # fmt: skip
    words = ["vllm", "serve", "/models/Qwen3-32B"] + [str(w) for flag, value in flags for w in (flag, value)]
    command = [*shell, " ".join(words)] if shell else words
    obj = copy.deepcopy(seed)
    template = obj["spec"]["leaderWorkerTemplate"]
    template["size"] = size
    leader = template.get("leaderTemplate", template["workerTemplate"])["spec"]["containers"][0]
    leader["command"] = command
    leader.pop("args", None)
    leader.setdefault("resources", {}).setdefault("limits", {})["nvidia.com/gpu"] = gpus
    obj["metadata"]["annotations"] = {f"inference.lws.dev/{k}": v for k, v in annotations.items()}
    run_everything(LWS, obj)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    resource_type=st.sampled_from([*TYPES, "kubernetes:disaggregatedset.x-k8s.io/v1:DisaggregatedSet"]),
    props=st.dictionaries(st.sampled_from([*KEYS, "roles"]), VALUES, max_size=6),
)
def test_arbitrary_props_through_the_sdk_wrappers_never_raise(resource_type: str, props: dict[str, Any]) -> None:
    run_everything(resource_type, props)


@settings(max_examples=300, deadline=None)
@given(
    shell=st.sampled_from(SHELLS),
    script=st.lists(
        st.sampled_from(
            [
                *"$(){}*/+-%=;&|\\'\"# \n\tab01-_LWS",
                "--tp ",
                "vllm serve ",
                "$((",
                "))",
                "${A:-",
                "sglang",
                "CUDA_VISIBLE_DEVICES=0,1 ",
                "TP",
                "$TP",
                " -c ",
            ]
        ),
        max_size=40,
    ).map("".join),
    env=st.dictionaries(st.sampled_from(["A", "TP", "LWS_GROUP_SIZE", "DP"]), st.text(max_size=12), max_size=3),
)
def test_reading_any_script_never_raises(shell: list[str], script: str, env: dict[str, str]) -> None:
    for flags in (read_flags([*shell, script], env), *read_servers([*shell, script], env)):
        flags.integer("tensor"), flags.number("fraction"), flags.unresolved("data")
    unexpanded_lws_references([*shell, script])
