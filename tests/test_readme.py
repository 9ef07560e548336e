"""The README's reference sections match the code they describe."""

from __future__ import annotations

import re
from pathlib import Path

from config.model import SECRET_KEYS
from config.reference import BEGIN, END, reference

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_config_reference_is_generated_from_the_models() -> None:
    section = README[README.index(BEGIN) : README.index(END) + len(END)]
    assert section == reference(), "regenerate it: python -m config.reference, and paste it into README.md"


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
