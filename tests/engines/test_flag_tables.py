"""kernel/commands.py's hand-written flag tables against the engines' parsers of the pinned releases.

_FLAGS (what the pack reads, and refuses in extraArgs), SWITCHES (valueless rank-layout flags) and _PLANNED
(flags the plan sets itself) must be flags the engine has, meaning what we think: a flag the engine does not
know crash-loops every pod of a group when we write it, and is a number the pack trusts that no engine reads
when we read it. A new engine release is then a pin change plus this test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from engine_parsers.check import ENGINE_FIELDS, SWITCH_FIELDS
from engine_parsers.client import EngineParsers, pinned_releases
from kernel.catalog import Engine
from kernel.commands import _FLAGS, _PLANNED, SWITCHES

pytestmark = pytest.mark.engines

ENTRYPOINT = {Engine.VLLM: "api_server", Engine.SGLANG: "launch_server"}
REQUIRED = {Engine.VLLM: [], Engine.SGLANG: ["--model-path", "/models/m"]}
# A value for each key and what the engine must then hold (it converts the text to its own type).
SAMPLES: dict[str, tuple[str, Any]] = {
    "tensor": ("3", 3),
    "pipeline": ("3", 3),
    "data": ("3", 3),
    "fraction": ("0.55", 0.55),
    "context": ("1234", 1234),
    "sequences": ("17", 17),
    "model": ("/models/other", "/models/other"),
    "quantization": ("fp8", "fp8"),
    "dtype": ("half", "half"),
    "nnodes": ("3", 3),
}


def releases_of(engine: Engine) -> list[str]:
    return [name for name in pinned_releases() if name.startswith(f"{engine.value}-")]


CASES = [(engine, release) for engine in Engine for release in releases_of(engine)]


def cases(table: Mapping[Engine, Any]) -> list[tuple[Engine, str, str, str]]:
    return [(e, r, key, flag) for e, r in CASES for key, flags in table[e].items() for flag in flags]


@pytest.mark.parametrize(("engine", "release", "key", "flag"), cases(_FLAGS), ids=lambda v: str(v))
def test_every_flag_the_pack_reads_sets_that_number_in_the_engine(
    engine: Engine, release: str, key: str, flag: str, parsers: EngineParsers
) -> None:
    text, value = SAMPLES[key]
    parsed = parsers.get(release).parse(ENTRYPOINT[engine], [*REQUIRED[engine], flag, text])
    assert parsed.accepted, f"{release} does not take {flag}: {parsed.error}"
    field = ENGINE_FIELDS[engine][key]
    assert parsed.values[field] == value, f"{flag} {text} sets {field}={parsed.values[field]!r} in {release}"


@pytest.mark.parametrize(("engine", "release", "key", "flag"), cases(SWITCHES), ids=lambda v: str(v))
def test_every_switch_is_a_valueless_flag_of_the_engine(
    engine: Engine, release: str, key: str, flag: str, parsers: EngineParsers
) -> None:
    parsed = parsers.get(release).parse(ENTRYPOINT[engine], [*REQUIRED[engine], flag])
    assert parsed.accepted, f"{release} does not take {flag}: {parsed.error}"
    assert parsed.values[SWITCH_FIELDS[engine][key]] is True


@pytest.mark.parametrize(("engine", "release"), CASES, ids=lambda v: str(v))
def test_every_flag_the_plan_sets_itself_is_the_engines(engine: Engine, release: str, parsers: EngineParsers) -> None:
    options = {flag for option in parsers.get(release).options(ENTRYPOINT[engine]) for flag in option.flags}
    assert sorted(set(_PLANNED[engine]) - options) == []


@pytest.mark.parametrize(("engine", "release"), CASES, ids=lambda v: str(v))
def test_the_engine_fields_we_compare_are_the_engines(engine: Engine, release: str, parsers: EngineParsers) -> None:
    parsed = parsers.get(release).parse(ENTRYPOINT[engine], REQUIRED[engine])
    assert parsed.accepted, parsed.error
    fields = {*ENGINE_FIELDS[engine].values(), *SWITCH_FIELDS[engine].values()}
    assert sorted(fields - set(parsed.values)) == []


@pytest.mark.parametrize(("engine", "release"), CASES, ids=lambda v: str(v))
def test_a_misspelt_flag_is_refused_with_the_engines_message(
    engine: Engine, release: str, parsers: EngineParsers
) -> None:
    parsed = parsers.get(release).parse(ENTRYPOINT[engine], [*REQUIRED[engine], "--tensor-paralel-size", "8"])
    assert not parsed.accepted
    assert "unrecognized arguments: --tensor-paralel-size" in parsed.error


def test_every_engine_has_a_pinned_release() -> None:
    assert {engine for engine, _ in CASES} == set(Engine)
