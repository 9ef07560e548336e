"""Properties of the plan over many configs.

(a) Whatever plan_stack accepts, the rules accept too: the policy pack, which applies the same rules to
    the rendered LeaderWorkerSets, never refuses what the program deploys, and the rendered commands say
    the TP and PP that the plan sized memory for.
(b) Whatever the user writes, the only failures are ConfigError and PlanError, and each of their lines
    starts with a config key that exists in the schema, in the form `pulumi config set --path` takes.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pydantic import BaseModel

from config.load import ConfigError, parse
from config.model import StackConfig
from kernel import rules
from kernel.catalog import GPU_MEMORY_MIB, Dtype, Engine
from kernel.commands import read_flags
from kernel.sizing import shm_floor_bytes
from plan.group import GroupPlan, PlanError, plan_stack
from tests.factories import ack_qwen3_32b, cce_llama405b, tiny_model

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Json = Any

# ---- (a) valid configs ------------------------------------------------------------------------------

HEADS = [8, 12, 16, 24, 28, 32, 40, 48, 64, 96, 128]
# (Kubernetes, LWS) pairs that LWS supports, and one per LWS minor the catalog knows
VERSIONS = [("1.27", "0.6.1"), ("1.31", "0.6.1"), ("1.31", "0.7.0"), ("1.33", "0.7.0"), ("1.34", "0.8.0"),
            ("1.35", "0.9.0"), ("1.36", "0.10.0")]  # fmt: skip
IMAGES = {
    "vllm": [
        "vllm/vllm-openai:v0.10.0",
        "registry.local:5000/vllm/vllm-openai:v0.9.2",
        "vllm/vllm-openai@sha256:" + "0" * 64,
    ],
    "sglang": ["lmsysorg/sglang:v0.4.10.post2-cu126", "registry.local:5000/sglang@sha256:" + "1" * 64],
}
HARMLESS_ARGS = [[], ["--trust-remote-code"], ["--enable-prefix-caching"], ["--served-model-name", "alias"]]


@st.composite
def model_cards(draw: st.DrawFn) -> Json:
    heads = draw(st.sampled_from(HEADS))
    kv_heads = draw(st.sampled_from([h for h in (1, 2, 4, 8, 16, heads) if h <= heads]))
    head_dim = draw(st.sampled_from([64, 80, 96, 128, 256]))
    card: Json = {
        "source": draw(st.sampled_from([{"path": "m"}, {"huggingFace": "org/m"}])),
        "parametersBillion": draw(st.floats(0.1, 700, allow_nan=False)),
        "dtype": draw(st.sampled_from([d.value for d in Dtype])),
        "layers": draw(st.integers(1, 128)),
        "attentionHeads": heads,
        "kvHeads": kv_heads,
        "contextLength": draw(st.sampled_from([2048, 8192, 32768, 131072])),
        "tiedEmbeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        card["headDim"] = head_dim
    if not card.get("headDim") or draw(st.booleans()):
        card["hiddenSize"] = heads * head_dim
    if draw(st.booleans()):
        card["vocabSize"] = draw(st.integers(1000, 256000))
    return card


@st.composite
def valid_stacks(draw: st.DrawFn) -> Json:
    kubernetes, lws = draw(st.sampled_from(VERSIONS))
    cluster: Json = {
        "name": "c",
        "kubernetesVersion": kubernetes,
        "lws": {"version": lws},
        "gpu": {
            "product": draw(st.sampled_from(sorted(GPU_MEMORY_MIB))),
            "perNode": draw(st.sampled_from([1, 2, 4, 8])),
        },
        "storage": {
            "nfs": {"server": "10.0.0.2", "path": "/models"},
            "throughputMibPerSecond": draw(st.floats(50, 5000)),
        },
        "shmBaseGib": draw(st.floats(0, 8)),
        "shmPerGpuGib": draw(st.floats(0, 4)),
    }
    models = []
    for index in range(draw(st.integers(1, 2))):
        card = draw(model_cards())
        engine = draw(st.sampled_from(["vllm", "sglang"]))
        serving: Json = {
            "engine": engine,
            "image": draw(st.sampled_from(IMAGES[engine])),
            "replicas": draw(st.integers(0, 4)),
            "kvCacheSequences": draw(st.integers(1, 8)),
            "maxModelLen": draw(st.integers(256, card["contextLength"])),
            "extraArgs": draw(st.sampled_from(HARMLESS_ARGS)),
        }
        for key, values in (("tensorParallel", [1, 2, 4, 8]), ("pipelineParallel", [1, 2, 3, 4]),
                            ("gpusPerPod", [1, 2, 4, 8])):  # fmt: skip
            if draw(st.integers(0, 3)) == 0:
                serving[key] = draw(st.sampled_from(values))
        if draw(st.booleans()):
            key = "gpuMemoryUtilization" if engine == "vllm" else "memFractionStatic"
            serving[key] = draw(st.floats(0.5, 0.95))
        models.append({"name": f"m{index}", "model": card, "serving": serving})
    return {"cluster": cluster, "models": models}


def shape_of(group: GroupPlan) -> rules.GroupShape:
    gpus = group.parallelism.gpus_per_pod
    return rules.GroupShape(
        group.engine,
        tensor_parallel=group.parallelism.tensor,
        pipeline_parallel=group.parallelism.pipeline,
        group_size=group.group_size,
        leader_gpus=gpus,
        worker_gpus=gpus,
        nnodes=read_flags(group.leader_command).values.get("nnodes"),
    )


@SETTINGS
@given(valid_stacks())
def test_every_accepted_plan_satisfies_every_rule(raw: Json) -> None:
    config = parse(raw)
    try:
        stack = plan_stack(config)
    except PlanError as error:
        event("refused")
        assert_lines_name_config_keys([str(p) for p in error.problems])
        return
    event("accepted")
    cluster = config.cluster
    findings = rules.check_versions(cluster.kubernetes_version_tuple, cluster.lws.version_tuple)
    for group, deployment in zip(stack.groups, config.models, strict=True):
        tp, pp = group.parallelism.tensor, group.parallelism.pipeline
        card, serving = deployment.model, deployment.serving
        gpus_per_pod = group.parallelism.gpus_per_pod
        findings += rules.check_parallelism(shape_of(group))
        findings += rules.check_heads(tp, card.attention_heads, card.kv_heads)
        findings += rules.check_memory_fit(group.memory, gpu_product=group.gpu_product, tensor_parallel=tp,
                                           pipeline_parallel=pp, kv_tokens=group.max_model_len)  # fmt: skip
        floor = shm_floor_bytes(gpus_per_pod, cluster.shm_base_gib, cluster.shm_per_gpu_gib)
        for role in ("leader", "worker"):
            findings += rules.check_shared_memory(container=role, medium="Memory", size_bytes=group.shm_bytes,
                                                  memory_limit=group.pod_memory_bytes, floor=floor)  # fmt: skip
        findings += rules.check_gpus_per_node(gpus_per_pod, cluster.gpu.per_node, cluster.gpu.product)
        findings += rules.check_env_expansion("leader", group.leader_command)
        findings += rules.check_env_expansion("worker", group.worker_command)
        findings += rules.check_image_pinned(group.image)
        findings += rules.check_utilization(serving.memory_fraction, "fraction")
        assert findings == []
        assert group.memory.fits
        assert group.shm_bytes < group.pod_memory_bytes

        # The numbers the user gave are the numbers deployed.
        for given_value, planned in ((serving.tensor_parallel, tp), (serving.pipeline_parallel, pp),
                                     (serving.gpus_per_pod, gpus_per_pod)):  # fmt: skip
            assert given_value in (None, planned)

        # The engine is told the TP and PP the memory was sized for.
        commands = [group.leader_command] + ([group.worker_command] if group.engine is Engine.SGLANG else [])
        for command in commands:
            flags = read_flags(command)
            assert flags.engine is group.engine
            assert flags.integer("tensor") == tp
            assert (flags.integer("pipeline") or 1) == pp
            assert flags.number("fraction") == pytest.approx(serving.memory_fraction, abs=1e-5)
            assert flags.integer("context") == group.max_model_len


# ---- (b) malformed configs ----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["1.31", "0.7.0", "vllm", "sglang", "NVIDIA-L20", "Exists", "-1", "2", "latest", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
TOP_LEVEL = st.sampled_from(["target", "cluster", "models", "hfToken", "other"])


@SETTINGS
@given(st.dictionaries(TOP_LEVEL, json_values, max_size=4))
def test_random_json_fails_only_with_config_or_plan_errors(raw: Json) -> None:
    assert_fails_cleanly(raw)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["cluster", "models"]), json_values, min_size=1))
def test_random_cluster_and_models_fail_only_with_config_or_plan_errors(raw: Json) -> None:
    assert_fails_cleanly(raw)


def paths(value: Json, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def wrong_values(current: Json) -> st.SearchStrategy[Json]:
    if isinstance(current, bool):
        return st.sampled_from(["yes", 2, None, []])
    if isinstance(current, int | float):
        return st.sampled_from([-current, -1, 0, -0.5, 1e30, 2**70, "many", True, None, {"a": 1}])
    if isinstance(current, str):
        return st.sampled_from([7, 1.5, "", "x" * 100, "Not A Label", None, [current], "1.2.3.4.5"])
    return json_values


@st.composite
def mutated_stacks(draw: st.DrawFn) -> Json:
    seed = st.sampled_from([cce_llama405b, lambda: ack_qwen3_32b("sglang"), tiny_model]).map(lambda build: build())
    raw = copy.deepcopy(draw(seed | valid_stacks()))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(raw)))
        *parents, last = where
        node: Json = raw
        for part in parents:
            node = node[part]
        kind = draw(st.sampled_from(["delete", "wrong", "unknown", "random"]))
        if kind == "delete":
            del node[last]
        elif kind == "wrong":
            node[last] = draw(wrong_values(node[last]))
        elif kind == "unknown" and isinstance(node[last], dict):
            node[last][draw(st.sampled_from(["tensorParalel", "per_node", "gpus", "x.y"]))] = 1
        else:
            node[last] = draw(json_values)
        if not paths(raw):
            break
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_stacks())
def test_mutated_configs_fail_only_with_config_or_plan_errors(raw: Json) -> None:
    assert_fails_cleanly(raw)


@pytest.mark.parametrize("value", [float("inf"), 1e-320, 10**30, 2**64], ids=["inf", "denormal", "1e30", "2**64"])
@pytest.mark.parametrize(
    "key",
    [
        ("cluster", "storage", "throughputMibPerSecond"),
        ("cluster", "gpu", "memoryMib"),
        ("cluster", "gpu", "nodeMemoryGib"),
        ("models", 0, "model", "parametersBillion"),
        ("models", 0, "serving", "maxModelLen"),
        ("models", 0, "serving", "kvCacheSequences"),
    ],
)
def test_extreme_numbers_fail_only_with_config_or_plan_errors(key: tuple[str | int, ...], value: float) -> None:
    raw = tiny_model()
    node: Json = raw
    for part in key[:-1]:
        node = node[part]
    node[key[-1]] = value

    assert_fails_cleanly(raw)


# ---- helpers: the shape of an error line ---------------------------------------------------------

_SEGMENT = re.compile(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
# A top-level key: a field of StackConfig, or an unknown one (named so the user finds it in the stack file).
_HEAD = re.compile(r'^(?:([A-Za-z_][A-Za-z0-9_-]*)|\[("(?:[^"\\]|\\.)*")\])')


def split_key(line: str) -> tuple[list[str | int], str]:
    """'models[0].serving.tensorParallel: message' -> (['models', 0, 'serving', 'tensorParallel'], message)."""
    head = _HEAD.match(line)
    assert head, f"line does not start with a config key: {line!r}"
    parts: list[str | int] = [head.group(1) if head.group(1) is not None else json.loads(head.group(2))]
    position = head.end()
    while (segment := _SEGMENT.match(line, position)) is not None:
        name, index, quoted = segment.groups()
        parts.append(name if name is not None else int(index) if index is not None else json.loads(quoted))
        position = segment.end()
    assert line[position : position + 2] == ": ", f"no ': ' after the config key: {line!r}"
    return parts, line[position + 2 :]


def _unwrap(annotation: Any) -> Any:
    """The model, list or dict type inside Optional[...] and Annotated[...]."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = inner[0]
        else:
            return annotation


def exists_in_schema(parts: list[str | int], message: str) -> bool:
    """Does the key name a field of StackConfig (the last part may be the unknown key itself)?"""
    current: Any = StackConfig
    for position, part in enumerate(parts):
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if not isinstance(part, str) or part not in fields:
                return position == len(parts) - 1 and message.startswith("unknown key")
            current = fields[part].annotation
        elif origin is list:
            if not isinstance(part, int):
                return False
            current = typing.get_args(current)[0]
        elif origin is dict:
            if not isinstance(part, str):
                return False
            current = typing.get_args(current)[1]
        else:
            return False
    return True


def assert_lines_name_config_keys(lines: list[str]) -> None:
    assert lines, "an error without lines tells the user nothing"
    for line in lines:
        parts, message = split_key(line)
        assert message.strip(), line
        assert exists_in_schema(parts, message), f"{line!r} names no key of the stack config"


def note(outcome: str) -> None:
    if currently_in_test_context():
        event(outcome)


def assert_fails_cleanly(raw: Json) -> None:
    try:
        stack = plan_stack(parse(raw))
    except ConfigError as error:
        note("ConfigError")
        assert_lines_name_config_keys(error.lines)
    except PlanError as error:
        note("PlanError")
        assert_lines_name_config_keys([str(p) for p in error.problems])
    else:
        note("accepted")
        assert all(group.memory.fits for group in stack.groups)


def test_split_key_reads_every_form() -> None:
    assert split_key('cluster.nodeSelector["nvidia.com/gpu.product"]: x') == (
        ["cluster", "nodeSelector", "nvidia.com/gpu.product"],
        "x",
    )
    assert split_key("models[1].serving.tensorParallel: y") == (["models", 1, "serving", "tensorParallel"], "y")
    assert exists_in_schema(["models", 1, "serving", "tensorParallel"], "y")
    assert exists_in_schema(["cluster", "nodeSelector", "any.label/key"], "y")
    assert not exists_in_schema(["models", 1, "serving", "tensorParalel"], "must be an integer")
    assert exists_in_schema(["models", 1, "serving", "tensorParalel"], "unknown key (check its spelling)")
    assert not exists_in_schema(["cluster", "gpu", "perNode", "deeper"], "y")
