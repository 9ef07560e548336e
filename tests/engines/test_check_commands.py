"""`make check-commands STACK=<stack>`, as a user runs it (scripts/check-commands.sh, its own parser builds)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]


def check_commands(stack: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / "check-commands.sh"), stack], capture_output=True, text=True)


def test_the_cce_example_passes() -> None:
    result = check_commands("cce")
    assert result.returncode == 0, result.stderr
    assert "every command is accepted" in result.stdout


def test_a_misspelt_flag_in_extra_args_fails_with_the_engines_own_message(tmp_path: Path) -> None:
    stack = yaml.safe_load((ROOT / "examples" / "Pulumi.ack.yaml").read_text())
    stack["config"]["lws-inference:models"][0]["serving"]["extraArgs"] = ["--enable-prefix-cachng"]
    path = tmp_path / "Pulumi.typo.yaml"
    path.write_text(yaml.safe_dump(stack))
    result = check_commands(str(path))
    assert result.returncode == 1
    assert (
        "models[0] (qwen3-32b) leader: vllm-0.10.0 (vllm api_server) refuses the command: "
        "api_server.py: error: unrecognized arguments: --enable-prefix-cachng"
    ) in result.stderr


def test_an_unknown_stack_is_named() -> None:
    result = check_commands("nosuch")
    assert result.returncode == 1
    assert "no Pulumi.nosuch.yaml here or in examples/" in result.stderr
