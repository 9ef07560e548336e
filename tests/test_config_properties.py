"""Properties of the config loader over odd stack configs (issue 13).

(a) Faults put at independent places of a valid stack (non-finite and huge numbers, booleans and other wrong
    types, unknown keys at any level, the top level included) end in one ConfigError that names every one of
    them: a user fixes them all in one round, and none is silently dropped or read as something else.
(b) Numbers at the edges of what the schema accepts (int32 maximum, 1e15, the smallest allowed) never crash the
    plan: the only outcomes are acceptance, ConfigError and PlanError, whose lines name config keys.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from config.load import ConfigError, config_key, parse
from config.model import FLOAT_MAX, INT32_MAX, StackConfig
from tests.factories import ack_qwen3_32b, cce_llama405b, tiny_model
from tests.test_plan_properties import _unwrap, assert_fails_cleanly, valid_stacks

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Json = Any
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Leaf:
    path: Path
    kind: str
    """int, float, str, bool, choice (enum or literal), or object (a pydantic model: a dict of known keys)."""


def _kind(annotation: Any) -> str | None:
    annotation = _unwrap(annotation)
    if annotation is bool:
        return "bool"
    if annotation in (int, float, str):
        return str(annotation.__name__)
    is_enum = isinstance(annotation, type) and issubclass(annotation, Enum)
    if typing.get_origin(annotation) is typing.Literal or is_enum:
        return "choice"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return None


def leaves(value: Json, annotation: Any = StackConfig, path: Path = ()) -> list[Leaf]:
    """Every place of a config with the schema type there (maps such as nodeSelector take any key: no object)."""
    annotation = _unwrap(annotation)
    kind = _kind(annotation)
    found = [Leaf(path, kind)] if kind and (path or kind == "object") else []
    if kind == "object" and isinstance(value, dict):
        fields = {info.alias or name: info.annotation for name, info in annotation.model_fields.items()}
        for key, child in value.items():
            if key in fields:
                found += leaves(child, fields[key], (*path, key))
    elif typing.get_origin(annotation) is list and isinstance(value, list):
        (item,) = typing.get_args(annotation)
        for index, child in enumerate(value):
            found += leaves(child, item, (*path, index))
    return found


BAD_VALUES: dict[str, list[Json]] = {
    "int": [float("inf"), float("-inf"), float("nan"), 10**400, 2**31, -(2**31) - 1, True, False, "many", 2.5, [1]],
    "float": [float("inf"), float("-inf"), float("nan"), 10**400, 1e300, -1e300, True, "fast", {"a": 1}],
    "str": [7, 1.5, True, ["x"], {"a": "b"}],
    "bool": [2, "maybe", [], {"a": 1}, 1.5],
    "choice": [7, "no-such-choice", True, ["vllm"]],
}
UNKNOWN_KEYS = ["tensorParalel", "per_node", "x.y", "Models", "replica", "gpu", "nvidia.com/gpu.product"]
UNKNOWN_TOP_LEVEL = ["model", "targets", "Cluster", "manifest", "hf_token", "lws-inference:models", "x.y"]


def at(config: Json, path: Path) -> Json:
    node = config
    for part in path:
        node = node[part]
    return node


def independent(paths: list[Path]) -> bool:
    """No fault sits inside another (a broken object hides what is inside it)."""
    return all(a == b or a[: len(b)] != b for a in paths for b in paths)


@st.composite
def faulty_stacks(draw: st.DrawFn) -> tuple[Json, list[str]]:
    """A valid stack with 1-4 independent faults, and the config key each must be reported at."""
    seed = st.sampled_from([cce_llama405b, lambda: ack_qwen3_32b("sglang"), tiny_model]).map(lambda build: build())
    raw = copy.deepcopy(draw(seed | valid_stacks()))
    places = [leaf for leaf in leaves(raw) if leaf.path]
    chosen = draw(st.lists(st.sampled_from(places), min_size=1, max_size=4, unique_by=lambda leaf: leaf.path))
    if not independent([leaf.path for leaf in chosen]):
        chosen = chosen[:1]
    expected = []
    for leaf in chosen:
        if leaf.kind == "object":
            unknown = draw(st.sampled_from([k for k in UNKNOWN_KEYS if k not in at(raw, leaf.path)]))
            at(raw, leaf.path)[unknown] = 1
            expected.append(config_key((*leaf.path, unknown)))
        else:
            *parent, last = leaf.path
            at(raw, tuple(parent))[last] = draw(st.sampled_from(BAD_VALUES[leaf.kind]))
            expected.append(config_key(leaf.path))
    for name in draw(st.lists(st.sampled_from(UNKNOWN_TOP_LEVEL), max_size=2, unique=True)):
        raw[name] = draw(st.sampled_from([[], {}, "x", 1]))
        expected.append(config_key((name,)))
    return raw, expected


@SETTINGS
@given(faulty_stacks())
def test_every_fault_is_reported_at_its_key_in_one_config_error(case: tuple[Json, list[str]]) -> None:
    raw, expected = case
    try:
        parse(raw)
    except ConfigError as error:
        keys = [line.split(": ", 1)[0] for line in error.lines]
        missing = [key for key in expected if key not in keys]
        assert not missing, f"not reported: {missing}\n" + "\n".join(error.lines)
        assert all(len(line) < 1000 for line in error.lines)
    else:
        raise AssertionError(f"accepted with faults at {expected}")


EDGE_VALUES: dict[str, list[Json]] = {
    "int": [INT32_MAX, INT32_MAX - 1, 2**30, 1, 0, -1],
    "float": [FLOAT_MAX, 1e12, 1e-300, 5e-324, 0.0, 1.0],
}


@st.composite
def edge_stacks(draw: st.DrawFn) -> Json:
    raw = copy.deepcopy(draw(valid_stacks()))
    numbers = [leaf for leaf in leaves(raw) if leaf.kind in EDGE_VALUES]
    for leaf in draw(st.lists(st.sampled_from(numbers), min_size=1, max_size=4, unique_by=lambda leaf: leaf.path)):
        *parent, last = leaf.path
        at(raw, tuple(parent))[last] = draw(st.sampled_from(EDGE_VALUES[leaf.kind]))
    return raw


@SETTINGS
@given(edge_stacks())
def test_numbers_at_the_edges_of_the_schema_never_crash_the_plan(raw: Json) -> None:
    assert_fails_cleanly(raw)


def test_the_leaves_cover_the_numbers_of_a_real_stack() -> None:
    kinds = {config_key(leaf.path): leaf.kind for leaf in leaves(cce_llama405b())}
    assert kinds["models[0].serving.tensorParallel"] == "int"
    assert kinds["models[0].model.parametersBillion"] == "float"
    assert kinds["models[0].serving.engine"] == "choice"
    assert kinds["cluster.lws"] == "object"
