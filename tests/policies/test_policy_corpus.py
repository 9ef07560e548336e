"""The corpus of real deployments through the whole pack: exactly the expected verdicts, never an exception.

Run directly (the rule functions) and through the SDK wrappers as the engine calls them (proxied props, numbers
as floats, each policy with its own config), so both paths agree.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from lws_guard.pack import RESOURCE_RULES, resource_policies
from lws_guard.settings import Settings

from kernel.type_tokens import type_token_of
from tests.policies.corpus.expected import EXPECTED
from tests.policies.helpers import floats, run_resource_policy

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))
RESOURCE_RULES_BY_NAME = {rule.name: rule for rule in RESOURCE_RULES}
MANDATORY = {rule.name for rule in RESOURCE_RULES if not rule.advisory}
HEADER = re.compile(r"^# source: \S+/\S+ \S+.* @ [0-9a-f]{40}$")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def policy_config(path: Path) -> dict[str, Any]:
    gpu = EXPECTED[path.stem].gpu
    return {"defaultGpu": gpu} if gpu else {}


def verdict_direct(path: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    settings = Settings.from_config(policy_config(path))
    for doc in documents(path):
        for rule in RESOURCE_RULES:
            found[rule.name] += len(rule.check(type_token_of(doc), doc, settings, name=doc["metadata"]["name"]))
    return +found


def verdict_through_sdk(path: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for doc in documents(path):
        for policy in resource_policies():
            config = policy_config(path)
            found[policy.name] += len(run_resource_policy(policy, floats(doc), config, name=doc["metadata"]["name"]))
    return +found


def test_deepseek_r1_wide_ep_on_one_node_of_h100s_is_denied() -> None:
    """Its source runs it on H200s; DeepSeek-R1's 671B in fp8 over DP=EP=8 H100s does not fit (the experts alone
    are over 75 GiB a GPU), which the catalog knows and the name never told."""
    [doc] = documents(CORPUS / "llmd_wide_ep_decode.yaml")
    [message] = RESOURCE_RULES_BY_NAME["gpu-memory"].check(type_token_of(doc), doc, Settings(), name="decode")
    assert "NVIDIA-H100-80GB-HBM3" in message and "deepseek-ai/DeepSeek-R1 in fp8" in message


def test_the_corpus_is_big_enough_and_every_file_names_its_source() -> None:
    assert len(FILES) >= 25
    assert {path.stem for path in FILES} == set(EXPECTED)
    for path in FILES:
        first = path.read_text().splitlines()[0]
        assert HEADER.match(first), f"{path.name}: first line must be '# source: <repo> <path> @ <commit>'"
    sound = [name for name, verdict in EXPECTED.items() if verdict.sound]
    assert len(sound) >= 15 and len(EXPECTED) - len(sound) >= 8


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_verdicts_are_exactly_the_expected_ones(path: Path) -> None:
    expected = EXPECTED[path.stem]
    direct = verdict_direct(path)
    assert dict(direct) == expected.messages, expected.why
    assert dict(verdict_through_sdk(path)) == expected.messages, expected.why
    denied = set(direct) & MANDATORY
    assert bool(denied) is (not expected.sound), f"sound={expected.sound} but denied by {sorted(denied)}"


def test_verdict_totals() -> None:
    """The figures the closing note quotes."""
    totals: Counter[str] = Counter()
    for verdict in EXPECTED.values():
        totals.update(verdict.messages)
    assert sum(totals[name] for name in MANDATORY) == 11
    assert sum(1 for v in EXPECTED.values() if v.sound) == 19
