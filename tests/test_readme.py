"""The README's reference sections match the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

from lws_guard.pack import resource_policies, stack_policies
from pydantic import ConfigDict

from config.model import SECRET_KEYS, Model
from config.reference import BEGIN, END, field_docstrings, reference
from scripts import policy_reference
from tests.policies.helpers import floats, run_resource_policy, run_stack_policy

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_config_reference_is_generated_from_the_models() -> None:
    section = README[README.index(BEGIN) : README.index(END) + len(END)]
    assert section == reference(), "regenerate it: python -m config.reference"


class _Base(Model):
    model_config = ConfigDict(use_attribute_docstrings=True)  # what the program's models skip (40 ms a start)

    size: int = 1
    """How many.

    Continued, indented."""


class _Child(_Base):
    name: str = ""
    """What it is called."""

    untold: int = 0


def test_field_docs_are_read_as_pydantic_reads_attribute_docstrings() -> None:
    pydantic_reads = {name: field.description for name, field in _Child.model_fields.items() if field.description}
    assert field_docstrings(_Child) == pydantic_reads
    assert pydantic_reads == {"size": "How many.\n\nContinued, indented.", "name": "What it is called."}


def test_config_reference_lists_every_key_a_user_sets() -> None:
    for key in ("cluster.gpu.product", "models[].serving.tensorParallel", "cluster.storage.oss.bucket",
                "cluster.lws.maintenanceWindow", "target.renderDir"):  # fmt: skip
        assert f"`{key}`" in reference()
    for key in SECRET_KEYS:
        assert f"`{key}`" in reference()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make up", "make test"]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci


def test_policy_reference_is_generated_from_the_pack() -> None:
    start, end = README.index(policy_reference.BEGIN), README.index(policy_reference.END)
    section = README[start : end + len(policy_reference.END)]
    assert section == policy_reference.reference(), (
        "regenerate it: python -m scripts.policy_reference (rewrites README.md)"
    )


def test_policy_reference_names_every_policy_with_its_level() -> None:
    text = policy_reference.reference()
    policies = [*resource_policies(), *stack_policies()]
    assert len(policies) == len(policy_reference.EXAMPLES)
    for policy in policies:
        assert policy.enforcement_level is not None
        assert f"### `{policy.name}` ({policy.enforcement_level.value})" in text
        assert f"`{policy.name}`" in README


def test_policy_reference_examples_break_objects_that_pass_every_policy() -> None:
    """Each example message is caused by the one change its example describes."""
    for example in policy_reference.EXAMPLES:
        assert policy_reference.messages(example.policy, policy_reference.good_stack(), example.config) == []
        assert policy_reference.messages(example.policy, example.resources(), example.config)


def test_policy_reference_examples_are_what_the_engine_facing_policies_report() -> None:
    """The same messages through the pulumi_policy wrappers, with props as the engine sends them."""
    by_name = {p.name: p for p in resource_policies()}
    stacks = {p.name: p for p in stack_policies()}
    for example in policy_reference.EXAMPLES:
        objs = [floats(obj) for obj in example.resources()]
        if example.policy in stacks:
            reported = run_stack_policy(stacks[example.policy], objs, example.config)
        else:
            reported = [m for obj in objs for m in run_resource_policy(by_name[example.policy], obj, example.config)]
        assert reported == policy_reference.messages(example.policy, example.resources(), example.config)
